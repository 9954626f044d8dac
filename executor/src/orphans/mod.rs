//! Orphans of interrupted applies: resources a create had in flight when terraform stopped,
//! which may exist in the cloud without being in state. [`journal`] remembers the candidates
//! across runs (reading which creates an apply started from its event log), [`identity`] knows which
//! configured names identify a resource, and [`decide`] turns the candidates and a fresh plan
//! into imports, settled entries and orphans a person must resolve. The execution step that
//! runs the imports is `execute::adopt`.

pub mod identity;
pub mod journal;

use pangea_api::exec::{InFlightCreate, Orphan};
use serde_json::Value;

use self::identity::Identity;

/// An orphan to import, by address and configured id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Import {
    /// The in-flight create.
    pub create: InFlightCreate,
    /// Import id from configuration.
    pub id: String,
}

/// What to do with each candidate after a plan without imports.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Decision {
    /// Adopt with an `import` block.
    pub import: Vec<Import>,
    /// Stop and name these.
    pub named: Vec<Orphan>,
    /// Nothing to do any more: in state, no longer configured, or safe to create again.
    pub settled: Vec<String>,
}

/// Decides each candidate from the plan `shown` (`terraform show -json` of a plan made
/// without import blocks). Only a candidate the plan still creates can be an orphan: anything
/// else is in state (terraform recorded it after all) or no longer in the configuration.
/// `workspace` only appears in the commands offered to a person.
pub fn decide(
    candidates: &[InFlightCreate],
    shown: &Value,
    adopt: bool,
    workspace: &str,
) -> Decision {
    let mut decision = Decision::default();
    for candidate in candidates {
        let Some(change) = planned_create(shown, &candidate.address) else {
            decision.settled.push(candidate.address.clone());
            continue;
        };
        let after = change.get("after").unwrap_or(&Value::Null);
        let sensitive = change.get("after_sensitive").unwrap_or(&Value::Null);
        match identity::identify(&candidate.resource_type, after, sensitive) {
            Identity::Idempotent => decision.settled.push(candidate.address.clone()),
            Identity::ImportId(id) if adopt => decision.import.push(Import {
                create: candidate.clone(),
                id,
            }),
            Identity::ImportId(id) => decision.named.push(Orphan {
                address: candidate.address.clone(),
                resource_type: candidate.resource_type.clone(),
                reason: "safety.adoptOrphans is false".into(),
                resolution: format!(
                    "if it exists, import it (terraform -chdir={workspace} import '{addr}' '{id}') or delete it; set safety.adoptOrphans to let the executor import it; then run again with --forget-orphan '{addr}' if it never existed",
                    addr = candidate.address
                ),
            }),
            Identity::NotIdentifiable(why) => decision.named.push(Orphan {
                address: candidate.address.clone(),
                resource_type: candidate.resource_type.clone(),
                reason: format!("the interrupted apply was creating it and {why}"),
                resolution: format!(
                    "look for a {ty} created by the interrupted apply that is not in state; import it (terraform -chdir={workspace} import '{addr}' <id>) or delete it; then run again with --forget-orphan '{addr}'",
                    ty = candidate.resource_type,
                    addr = candidate.address
                ),
            }),
        }
    }
    decision
}

/// The `change` of a managed create (or create-half of a replacement) at `address`.
fn planned_create<'a>(shown: &'a Value, address: &str) -> Option<&'a Value> {
    shown
        .get("resource_changes")?
        .as_array()?
        .iter()
        .filter(|rc| rc.get("address").and_then(Value::as_str) == Some(address))
        .filter(|rc| rc.get("mode").and_then(Value::as_str) == Some("managed"))
        .filter_map(|rc| rc.get("change"))
        .find(|change| {
            change
                .get("actions")
                .and_then(Value::as_array)
                .is_some_and(|a| a.iter().any(|x| x == "create"))
        })
}

/// The creates of a saved plan, for the journal.
pub fn planned_creates(shown: &Value) -> Vec<InFlightCreate> {
    let Some(changes) = shown.get("resource_changes").and_then(Value::as_array) else {
        return Vec::new();
    };
    changes
        .iter()
        .filter(|rc| rc.get("mode").and_then(Value::as_str) == Some("managed"))
        .filter_map(|rc| {
            let address = rc.get("address")?.as_str()?;
            planned_create(shown, address)?;
            Some(InFlightCreate {
                address: address.to_owned(),
                resource_type: rc.get("type")?.as_str()?.to_owned(),
            })
        })
        .collect()
}

/// The configuration file of import blocks for `imports` (Terraform JSON syntax).
pub fn import_blocks(imports: &[Import]) -> Value {
    let blocks: Vec<Value> = imports
        .iter()
        .map(|i| serde_json::json!({"to": i.create.address, "id": i.id}))
        .collect();
    serde_json::json!({ "import": blocks })
}

/// The imports a failed plan reports as "Cannot import non-existent remote object": those
/// objects were never created.
pub fn never_created<'a>(error: &str, imports: &'a [Import]) -> Vec<&'a Import> {
    if !error.contains("Cannot import non-existent remote object") {
        return Vec::new();
    }
    imports
        .iter()
        .filter(|i| error.contains(&format!("\"{}\"", i.create.address)))
        .collect()
}

/// A create at a plain `type.name` address, for tests.
#[cfg(test)]
pub(crate) fn create_for_test(address: &str) -> InFlightCreate {
    InFlightCreate {
        address: address.into(),
        resource_type: address.split('.').next().unwrap().into(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    use super::create_for_test as create;

    fn shown() -> Value {
        let rc = |address: &str, actions: Value, after: Value| {
            json!({"address": address, "mode": "managed", "type": address.split('.').next().unwrap(),
                   "change": {"actions": actions, "after": after, "after_sensitive": {"value": true}}})
        };
        json!({"resource_changes": [
            rc("aws_ssm_parameter.p", json!(["create"]), json!({"name": "/x/p", "value": "s"})),
            rc("aws_vpc.v", json!(["create"]), json!({"cidr_block": "10.0.0.0/16"})),
            rc("aws_s3_bucket_versioning.b", json!(["create"]), json!({"bucket": "b"})),
            rc("aws_s3_bucket.b", json!(["no-op"]), json!({"bucket": "b"})),
            rc("aws_iam_role.r", json!(["delete", "create"]), json!({"name": "r"})),
        ]})
    }

    #[test]
    fn candidates_become_imports_orphans_or_settled() {
        let candidates: Vec<InFlightCreate> = [
            "aws_ssm_parameter.p",
            "aws_vpc.v",
            "aws_s3_bucket_versioning.b",
            "aws_s3_bucket.b",
            "aws_s3_bucket.gone",
        ]
        .map(create)
        .to_vec();
        let d = decide(&candidates, &shown(), true, "/ws");
        assert_eq!(
            d.import,
            [Import {
                create: create("aws_ssm_parameter.p"),
                id: "/x/p".into()
            }]
        );
        assert_eq!(d.named.len(), 1);
        assert_eq!(d.named[0].address, "aws_vpc.v");
        assert!(
            d.named[0]
                .resolution
                .contains("terraform -chdir=/ws import 'aws_vpc.v'")
        );
        assert!(
            d.named[0]
                .resolution
                .contains("--forget-orphan 'aws_vpc.v'")
        );
        assert_eq!(
            d.settled,
            [
                "aws_s3_bucket_versioning.b",
                "aws_s3_bucket.b",
                "aws_s3_bucket.gone"
            ]
        );
    }

    #[test]
    fn without_the_policy_an_identifiable_orphan_is_named_with_its_import_command() {
        let d = decide(&[create("aws_ssm_parameter.p")], &shown(), false, "/ws");
        assert!(d.import.is_empty());
        assert!(
            d.named[0]
                .resolution
                .contains("import 'aws_ssm_parameter.p' '/x/p'"),
            "{:?}",
            d.named
        );
    }

    #[test]
    fn the_journal_lists_creates_and_replacements() {
        let creates: Vec<String> = planned_creates(&shown())
            .into_iter()
            .map(|c| c.address)
            .collect();
        assert_eq!(
            creates,
            [
                "aws_ssm_parameter.p",
                "aws_vpc.v",
                "aws_s3_bucket_versioning.b",
                "aws_iam_role.r"
            ]
        );
    }

    #[test]
    fn import_failures_name_the_objects_that_never_existed() {
        let imports = vec![
            Import {
                create: create("aws_ssm_parameter.p"),
                id: "/x/p".into(),
            },
            Import {
                create: create("aws_s3_bucket.b"),
                id: "b".into(),
            },
        ];
        let error = "Error: Cannot import non-existent remote object | While attempting to import an existing object to \"aws_s3_bucket.b\", the provider detected that no object exists with the given id.";
        let gone: Vec<&str> = never_created(error, &imports)
            .iter()
            .map(|i| i.create.address.as_str())
            .collect();
        assert_eq!(gone, ["aws_s3_bucket.b"]);
        assert!(
            never_created("Error: Unsupported argument \"aws_s3_bucket.b\"", &imports).is_empty()
        );
        assert_eq!(
            import_blocks(&imports[..1]),
            json!({"import": [{"to": "aws_ssm_parameter.p", "id": "/x/p"}]})
        );
    }
}
