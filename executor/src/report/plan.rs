//! Pending changes of a normal plan (`terraform show -json` of it), and the plan id approvals
//! bind to. Pending changes come from `resource_changes` only: `resource_drift` describes what
//! changed outside Terraform and belongs to the drift report, never here.

use pangea_api::report::{ChangeAction, PlanReport, PlannedChange};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::state::StateV4;

/// Changes listed in a plan report by default: far above any real template, so the whole
/// list reaches the operator (which bounds what it shows in status itself). The result codec
/// cuts it further only when the encoded result would not fit a ConfigMap; a 3,000-resource
/// plan travels whole. The counts always cover all changes.
pub const DEFAULT_MAX_CHANGES: usize = 10_000;

/// Counts and (bounded) addresses of the changes in a plan's JSON.
///
/// `id`, `state_lineage` and `state_serial` are left empty: the plan JSON carries neither the
/// state's lineage nor its serial; [`stamp_plan`] fills them in.
pub fn build_plan_report(plan_json: &Value, max_changes: usize) -> PlanReport {
    let mut report = PlanReport::default();
    let mut changes = Vec::new();
    let entries = plan_json
        .get("resource_changes")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for entry in entries {
        let Some(action) = change_action(entry) else {
            continue;
        };
        match action {
            ChangeAction::Create => report.add += 1,
            ChangeAction::Update => report.change += 1,
            ChangeAction::Delete => report.destroy += 1,
            ChangeAction::Replace => {
                report.add += 1;
                report.destroy += 1;
            }
        }
        let address = entry
            .get("address")
            .and_then(Value::as_str)
            .unwrap_or_default();
        changes.push(PlannedChange {
            address: address.to_owned(),
            action,
        });
    }
    report.changes_omitted =
        u32::try_from(changes.len().saturating_sub(max_changes)).unwrap_or(u32::MAX);
    changes.truncate(max_changes);
    report.changes = changes;
    report
}

/// What a `resource_changes` entry will do, or `None` when it changes nothing
/// (`no-op`, `read` of a data source, `forget` of a resource that leaves the state only).
fn change_action(entry: &Value) -> Option<ChangeAction> {
    let actions: Vec<&str> = entry
        .pointer("/change/actions")?
        .as_array()?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    match actions.as_slice() {
        ["create"] => Some(ChangeAction::Create),
        ["update"] => Some(ChangeAction::Update),
        ["delete"] => Some(ChangeAction::Delete),
        ["delete", "create"] | ["create", "delete"] => Some(ChangeAction::Replace),
        _ => None,
    }
}

/// Sets the plan id and the state the plan was made against.
///
/// `plan_json` is the plan's `terraform show -json`, `state` the state it was planned on (the
/// plan file's refreshed `tfstate`, which, unlike `tfstate-prev`, keeps lineage and serial),
/// `source_revision` the template revision that was compiled.
pub fn stamp_plan(
    report: &mut PlanReport,
    plan_json: &Value,
    state: &StateV4,
    source_revision: &str,
) {
    report.id = plan_id(
        &plan_content(plan_json),
        &state.lineage,
        state.serial,
        source_revision,
    );
    report.state_lineage = Some(state.lineage.clone()).filter(|l| !l.is_empty());
    report.state_serial = Some(state.serial);
}

/// The part of a plan's JSON that says what the apply will do, as canonical bytes: planned
/// resource and output changes, keys sorted.
///
/// Not the plan file's bytes: Terraform stamps every plan with its creation time, so two plans
/// of the same changes never share bytes, and the apply (which re-plans) could never match an
/// approved id. Variables are left out too: they hold secret values, and the changes they
/// cause are in the resource changes already.
pub fn plan_content(plan_json: &Value) -> Vec<u8> {
    let mut content = Map::new();
    for key in ["resource_changes", "output_changes"] {
        content.insert(
            key.to_owned(),
            canonical(plan_json.get(key).unwrap_or(&Value::Null)),
        );
    }
    Value::Object(content).to_string().into_bytes()
}

/// `value` with object keys sorted at every depth, whatever map order serde_json was built
/// with.
fn canonical(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k.clone(), canonical(v)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

/// Version tag of the id encoding, hashed first so a future encoding cannot collide with it.
const PLAN_ID_DOMAIN: &[u8] = b"pangea-plan-id/v1";

/// Hex SHA-256 binding an approval to exactly what was reviewed:
/// - the plan content (see [`plan_content`]): the changes the reviewer saw;
/// - the state lineage and serial: the same changes planned against a state that has moved on
///   (another apply, drift settled) may no longer be what the apply would do, and a different
///   lineage is another state altogether;
/// - the source revision: the same changes from another revision of the template mean the
///   reviewer approved other code, and the next plan from it could differ.
///
/// Each field is length-prefixed so no two different inputs encode to the same bytes.
pub fn plan_id(plan_content: &[u8], lineage: &str, serial: i64, source_revision: &str) -> String {
    let mut hasher = Sha256::new();
    for field in [
        PLAN_ID_DOMAIN,
        plan_content,
        lineage.as_bytes(),
        &serial.to_be_bytes(),
        source_revision.as_bytes(),
    ] {
        hasher.update((field.len() as u64).to_be_bytes());
        hasher.update(field);
    }
    hex::encode(hasher.finalize())
}

/// `id` bound to an apply that was interrupted since the last successful one as well. Such
/// an apply may have changed the cloud without a trace in state (a dead pod writes nothing),
/// so the same changes against the same state are not the same decision any more: a person
/// reviews the plan made after the interruption and approves its own id.
pub fn after_interruption(id: &str, interrupted_apply: &str) -> String {
    plan_id(id.as_bytes(), INTERRUPTED_DOMAIN, 0, interrupted_apply)
}

const INTERRUPTED_DOMAIN: &str = "after-interrupted-apply";

#[cfg(test)]
mod tests {
    use rstest::rstest;
    use serde_json::json;

    use super::*;

    fn change(address: &str, actions: &[&str]) -> Value {
        json!({"address": address, "mode": "managed", "change": {"actions": actions}})
    }

    #[rstest]
    #[case::create(&["create"], (1, 0, 0), Some(ChangeAction::Create))]
    #[case::update(&["update"], (0, 1, 0), Some(ChangeAction::Update))]
    #[case::delete(&["delete"], (0, 0, 1), Some(ChangeAction::Delete))]
    #[case::replace_destroy_first(&["delete", "create"], (1, 0, 1), Some(ChangeAction::Replace))]
    #[case::replace_create_first(&["create", "delete"], (1, 0, 1), Some(ChangeAction::Replace))]
    #[case::no_op(&["no-op"], (0, 0, 0), None)]
    #[case::read(&["read"], (0, 0, 0), None)]
    #[case::forget(&["forget"], (0, 0, 0), None)]
    fn counts_actions(
        #[case] actions: &[&str],
        #[case] counts: (u32, u32, u32),
        #[case] listed: Option<ChangeAction>,
    ) {
        let report = build_plan_report(&json!({"resource_changes": [change("a.b", actions)]}), 10);
        assert_eq!((report.add, report.change, report.destroy), counts);
        assert_eq!(report.changes.first().map(|c| c.action), listed);
    }

    #[test]
    fn never_counts_resource_drift() {
        let plan = json!({
            "resource_drift": [change("aws_s3_bucket.logs", &["delete"])],
            "resource_changes": [change("aws_vpc.main", &["update"])]
        });
        let report = build_plan_report(&plan, 10);
        assert_eq!((report.add, report.change, report.destroy), (0, 1, 0));
        assert_eq!(report.changes.len(), 1);
        assert_eq!(report.changes[0].address, "aws_vpc.main");
    }

    #[test]
    fn bounds_the_listed_changes_but_counts_all() {
        let entries: Vec<Value> = (0..5)
            .map(|i| change(&format!("a.r{i}"), &["create"]))
            .collect();
        let report = build_plan_report(&json!({"resource_changes": entries}), 2);
        assert_eq!(report.add, 5);
        assert_eq!(report.changes.len(), 2);
        assert_eq!(report.changes_omitted, 3);
        assert!(report.has_changes());
    }

    #[test]
    fn a_plan_without_changes_is_empty() {
        let report = build_plan_report(&json!({"format_version": "1.2"}), 10);
        assert_eq!(report, PlanReport::default());
        assert!(!report.has_changes());
    }

    #[test]
    fn a_plan_after_an_interrupted_apply_has_an_id_of_its_own() {
        let id = plan_id(b"plan", "lineage", 7, "rev");
        let bound = after_interruption(&id, "team.web.apply.1");
        assert_ne!(bound, id);
        assert_eq!(
            bound,
            after_interruption(&id, "team.web.apply.1"),
            "deterministic"
        );
        assert_ne!(bound, after_interruption(&id, "team.web.apply.2"));
        assert_eq!(bound.len(), id.len());
    }

    #[test]
    fn plan_id_depends_on_every_input() {
        let base = plan_id(b"plan", "lineage", 7, "rev");
        assert_eq!(base.len(), 64);
        assert_eq!(base, plan_id(b"plan", "lineage", 7, "rev"), "deterministic");
        for other in [
            plan_id(b"plan2", "lineage", 7, "rev"),
            plan_id(b"plan", "lineage2", 7, "rev"),
            plan_id(b"plan", "lineage", 8, "rev"),
            plan_id(b"plan", "lineage", 7, "rev2"),
        ] {
            assert_ne!(base, other);
        }
    }

    #[test]
    fn plan_id_fields_cannot_bleed_into_each_other() {
        assert_ne!(plan_id(b"ab", "c", 0, ""), plan_id(b"a", "bc", 0, ""));
        assert_ne!(
            plan_id(b"", "lin", 0, "eage"),
            plan_id(b"", "line", 0, "age")
        );
    }

    #[test]
    fn plan_content_ignores_timestamps_key_order_and_variables() {
        let a = json!({
            "timestamp": "2026-01-01T00:00:00Z",
            "variables": {"app_secret": {"value": "s3cr3t"}},
            "resource_changes": [{"address": "x", "change": {"actions": ["update"], "after": {"b": 1, "a": 2}}}]
        });
        let b = json!({
            "timestamp": "2026-01-02T00:00:00Z",
            "variables": {"app_secret": {"value": "other"}},
            "resource_changes": [{"change": {"after": {"a": 2, "b": 1}, "actions": ["update"]}, "address": "x"}]
        });
        assert_eq!(plan_content(&a), plan_content(&b));
        assert!(
            !String::from_utf8(plan_content(&a))
                .unwrap()
                .contains("s3cr3t")
        );
        let c = json!({"resource_changes": [{"address": "x", "change": {"actions": ["delete"]}}]});
        assert_ne!(plan_content(&a), plan_content(&c));
    }
}
