//! Status transitions, each from a small status and an executor result.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use pangea_api::{
    PangeaTemplateSpec, PangeaTemplateStatus,
    common::{Severity, condition},
    exec::{ExecutionError, ExecutionKind, ExecutionResult, Outcome},
    report::{AttributeDrift, DriftAction, DriftReport, DriftedResource, PlanReport},
    template::{DriftHistoryEntry, DriftStatus, ExecutionPhase},
};
use rstest::rstest;

use super::{drift::MAX_HISTORY, execution::format_duration, *};
use crate::conditions::{find, is_true, set_condition};

const T0: &str = "2025-06-11T12:00:00Z";

fn t(offset_secs: i64) -> Timestamp {
    T0.parse::<Timestamp>().unwrap() + SignedDuration::from_secs(offset_secs)
}

fn time(offset_secs: i64) -> Time {
    Time(t(offset_secs))
}

fn spec() -> PangeaTemplateSpec {
    serde_json::from_value(serde_json::json!({
        "source": {"inline": "template :t do end"},
        "driftDetection": {"interval": "10m"}
    }))
    .unwrap()
}

fn result(id: &str, kind: ExecutionKind, outcome: Outcome) -> ExecutionResult {
    ExecutionResult {
        id: id.into(),
        kind,
        outcome,
        source_revision: Some("sha256:aaa".into()),
        drift: None,
        plan: None,
        compliance: None,
        resources_total: Some(3),
        outputs: Default::default(),
        error: None,
        duration_seconds: 12.4,
        in_flight_creates: Vec::new(),
        adopted: Vec::new(),
        orphans: Vec::new(),
    }
}

fn plan_result(id: &str, plan_id: &str, add: u32, change: u32, destroy: u32) -> ExecutionResult {
    ExecutionResult {
        plan: Some(PlanReport {
            id: plan_id.into(),
            add,
            change,
            destroy,
            state_serial: Some(7),
            state_lineage: Some("lin".into()),
            ..PlanReport::default()
        }),
        ..result(id, ExecutionKind::Plan, Outcome::Succeeded)
    }
}

fn apply_result(id: &str, plan_id: &str, add: u32, change: u32, destroy: u32) -> ExecutionResult {
    ExecutionResult {
        kind: ExecutionKind::Apply,
        outputs: [("bucket".to_owned(), serde_json::json!("logs"))].into(),
        ..plan_result(id, plan_id, add, change, destroy)
    }
}

fn resource(address: &str, severity: Severity, attributes: usize) -> DriftedResource {
    DriftedResource {
        address: address.into(),
        resource_type: address.split('.').next().unwrap().into(),
        name: address.split('.').nth(1).unwrap_or("x").into(),
        action: DriftAction::Updated,
        severity,
        attributes: (0..attributes)
            .map(|i| AttributeDrift {
                path: format!("attr.{i}"),
                expected: Some("\"a\"".into()),
                actual: Some("\"b\"".into()),
            })
            .collect(),
        attributes_omitted: 0,
        mirror_of: None,
    }
}

fn drift_result(id: &str, resources: Vec<DriftedResource>) -> ExecutionResult {
    ExecutionResult {
        drift: Some(DriftReport {
            resources,
            resources_omitted: 0,
        }),
        ..result(id, ExecutionKind::Drift, Outcome::Succeeded)
    }
}

fn failure(id: &str, kind: ExecutionKind, transient: bool, reason: &str) -> ExecutionResult {
    ExecutionResult {
        error: Some(ExecutionError {
            transient,
            reason: reason.into(),
            message: format!("{reason} happened"),
        }),
        resources_total: None,
        ..result(id, kind, Outcome::Failed)
    }
}

fn finish(
    status: &PangeaTemplateStatus,
    r: &ExecutionResult,
    at: i64,
) -> (PangeaTemplateStatus, Vec<Emit>) {
    on_finished(
        status,
        &spec(),
        4,
        r,
        Trigger::DriftCheckDue,
        Duration::from_secs(7),
        t(at),
    )
}

fn reasons(emits: &[Emit]) -> Vec<&'static str> {
    emits.iter().map(|e| e.reason).collect()
}

fn cond<'a>(
    s: &'a PangeaTemplateStatus,
    type_: &str,
) -> &'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
    find(&s.conditions, type_).unwrap_or_else(|| panic!("no {type_} condition"))
}

fn running(id: &str, kind: ExecutionKind) -> RunningExecution {
    RunningExecution {
        id: id.into(),
        kind,
        trigger: Trigger::SpecChanged,
        started: t(-30) + SignedDuration::from_millis(250),
    }
}

// ---- on_started ---------------------------------------------------------------------------

#[test]
fn started_marks_reconciling_and_running() {
    let before = PangeaTemplateStatus {
        last_execution: Some(pangea_api::template::ExecutionStatus {
            id: "old".into(),
            kind: ExecutionKind::Plan,
            phase: ExecutionPhase::Failed,
            start_time: None,
            completion_time: None,
            message: Some("x".into()),
            consecutive_failures: 2,
        }),
        ..PangeaTemplateStatus::default()
    };
    let s = on_started(&before, &running("e1", ExecutionKind::Plan), 4, t(0));
    let last = s.last_execution.as_ref().unwrap();
    assert_eq!(last.id, "e1");
    assert_eq!(last.phase, ExecutionPhase::Running);
    assert_eq!(last.start_time, Some(time(-30)), "cut to whole seconds");
    assert_eq!(last.completion_time, None);
    assert_eq!(last.message, None);
    assert_eq!(
        last.consecutive_failures, 2,
        "the backoff count survives a start"
    );
    let r = cond(&s, condition::RECONCILING);
    assert_eq!((r.status.as_str(), r.reason.as_str()), ("True", "Planning"));
    assert_eq!(
        on_started(&s, &running("e1", ExecutionKind::Plan), 4, t(0)),
        s
    );
}

#[test]
fn starting_an_apply_lifts_a_block_only_if_there_is_one() {
    let s = on_started(
        &PangeaTemplateStatus::default(),
        &running("e1", ExecutionKind::Apply),
        4,
        t(0),
    );
    assert!(find(&s.conditions, condition::REMEDIATION_BLOCKED).is_none());
    let mut blocked = PangeaTemplateStatus::default();
    set_condition(
        &mut blocked.conditions,
        condition::REMEDIATION_BLOCKED,
        true,
        "AwaitingApproval",
        "m",
        4,
        &time(-60),
    );
    let s = on_started(&blocked, &running("e1", ExecutionKind::Apply), 4, t(0));
    assert!(!is_true(&s.conditions, condition::REMEDIATION_BLOCKED));
    let s = on_started(&blocked, &running("e1", ExecutionKind::Drift), 4, t(0));
    assert!(is_true(&s.conditions, condition::REMEDIATION_BLOCKED));
}

// ---- on_finished: plan and apply ----------------------------------------------------------

#[test]
fn plan_with_changes_is_published_pending() {
    let started = on_started(
        &PangeaTemplateStatus::default(),
        &running("e1", ExecutionKind::Plan),
        4,
        t(0),
    );
    let (s, emits) = finish(&started, &plan_result("e1", "p1", 1, 2, 0), 12);
    let plan = s.plan.as_ref().unwrap();
    assert_eq!(plan.id.as_deref(), Some("p1"));
    assert!(plan.pending);
    assert_eq!((plan.add, plan.change, plan.destroy), (1, 2, 0));
    assert_eq!(plan.source_revision.as_deref(), Some("sha256:aaa"));
    assert_eq!(
        (plan.state_serial, plan.state_lineage.as_deref()),
        (Some(7), Some("lin"))
    );
    assert_eq!(s.observed_generation, Some(4));
    assert_eq!(s.last_reconcile_time, Some(time(12)));
    assert_eq!(s.last_successful_reconcile_time, Some(time(12)));
    assert_eq!(s.reconciliation_duration.as_deref(), Some("12.4s"));
    assert_eq!(s.source.as_ref().unwrap().revision, "sha256:aaa");
    assert_eq!(s.resources.as_ref().unwrap().total, 3);
    let last = s.last_execution.as_ref().unwrap();
    assert_eq!(last.phase, ExecutionPhase::Succeeded);
    assert_eq!(last.start_time, Some(time(-30)));
    assert_eq!(last.completion_time, Some(time(12)));
    let ready = cond(&s, condition::READY);
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "PlanPending")
    );
    assert_eq!(cond(&s, condition::RECONCILING).status, "False");
    assert_eq!(reasons(&emits), [reason::PLAN_PENDING]);
    assert!(!emits[0].warning);
}

#[test]
fn the_same_pending_plan_is_announced_once() {
    let (s, _) = finish(
        &PangeaTemplateStatus::default(),
        &plan_result("e1", "p1", 1, 0, 0),
        0,
    );
    let (s2, emits) = finish(&s, &plan_result("e2", "p1", 1, 0, 0), 300);
    assert!(emits.is_empty(), "{emits:?}");
    assert_eq!(cond(&s2, condition::READY).last_transition_time, time(0));
    let (_, emits) = finish(&s2, &plan_result("e3", "p2", 2, 0, 0), 600);
    assert_eq!(reasons(&emits), [reason::PLAN_PENDING]);
}

#[test]
fn plan_without_changes_is_up_to_date() {
    let (s, emits) = finish(
        &PangeaTemplateStatus::default(),
        &plan_result("e1", "p1", 0, 0, 0),
        0,
    );
    assert!(!s.plan.as_ref().unwrap().pending);
    let ready = cond(&s, condition::READY);
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("True", "UpToDate")
    );
    assert!(emits.is_empty());
}

#[test]
fn a_new_plan_answers_a_stale_approval() {
    let mut before = PangeaTemplateStatus::default();
    set_condition(
        &mut before.conditions,
        condition::REMEDIATION_BLOCKED,
        true,
        "StaleApproval",
        "m",
        4,
        &time(-60),
    );
    let (s, _) = finish(&before, &plan_result("e1", "p2", 1, 0, 0), 0);
    let rb = cond(&s, condition::REMEDIATION_BLOCKED);
    assert_eq!(
        (rb.status.as_str(), rb.reason.as_str()),
        ("False", "Replanned")
    );
    // Other blocks are not a plan's to lift.
    let mut before = PangeaTemplateStatus::default();
    set_condition(
        &mut before.conditions,
        condition::REMEDIATION_BLOCKED,
        true,
        "DestroyNotAllowed",
        "m",
        4,
        &time(-60),
    );
    let (s, _) = finish(&before, &plan_result("e1", "p2", 1, 0, 0), 0);
    assert!(is_true(&s.conditions, condition::REMEDIATION_BLOCKED));
}

#[test]
fn apply_records_what_it_did() {
    let (pending, _) = finish(
        &PangeaTemplateStatus::default(),
        &plan_result("e1", "p1", 2, 1, 1),
        0,
    );
    let mut blocked = pending.clone();
    set_condition(
        &mut blocked.conditions,
        condition::REMEDIATION_BLOCKED,
        true,
        "AwaitingApproval",
        "m",
        4,
        &time(1),
    );
    let (s, emits) = finish(&blocked, &apply_result("e2", "p1", 2, 1, 1), 60);
    let plan = s.plan.as_ref().unwrap();
    assert!(!plan.pending);
    assert_eq!(plan.id.as_deref(), Some("p1"));
    let res = s.resources.as_ref().unwrap();
    assert_eq!(
        (res.total, res.created, res.modified, res.deleted),
        (3, 2, 1, 1)
    );
    assert_eq!(s.outputs["bucket"], serde_json::json!("logs"));
    let ready = cond(&s, condition::READY);
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("True", "Applied")
    );
    assert_eq!(ready.last_transition_time, time(60));
    assert!(!is_true(&s.conditions, condition::REMEDIATION_BLOCKED));
    assert_eq!(reasons(&emits), [reason::PLAN_APPLIED]);
}

#[test]
fn an_apply_without_changes_announces_nothing() {
    let (_, emits) = finish(
        &PangeaTemplateStatus::default(),
        &apply_result("e1", "p1", 0, 0, 0),
        0,
    );
    assert!(emits.is_empty());
}

#[test]
fn an_apply_that_adopted_orphans_says_so() {
    let r = ExecutionResult {
        adopted: vec![pangea_api::exec::AdoptedOrphan {
            address: "aws_ssm_parameter.app".into(),
            resource_type: "aws_ssm_parameter".into(),
            import_id: "/app/secret".into(),
        }],
        ..apply_result("e1", "p1", 0, 1, 0)
    };
    let (_, emits) = finish(&PangeaTemplateStatus::default(), &r, 0);
    assert_eq!(
        reasons(&emits),
        [reason::PLAN_APPLIED, reason::ORPHANS_ADOPTED]
    );
    assert!(
        emits[1]
            .note
            .contains("aws_ssm_parameter.app (id /app/secret)"),
        "{emits:?}"
    );
}

// ---- on_finished: drift -------------------------------------------------------------------

fn drifted_once() -> PangeaTemplateStatus {
    let r = drift_result(
        "d1",
        vec![resource("aws_security_group.web", Severity::Critical, 2)],
    );
    finish(&PangeaTemplateStatus::default(), &r, 0).0
}

#[test]
fn drift_found_opens_an_episode() {
    let r = drift_result(
        "d1",
        vec![resource("aws_security_group.web", Severity::Critical, 2)],
    );
    let (s, emits) = finish(&PangeaTemplateStatus::default(), &r, 0);
    let d = s.drift.as_ref().unwrap();
    assert!(d.detected);
    assert_eq!(d.severity, Some(Severity::Critical));
    assert_eq!(d.last_check_time, Some(time(0)));
    assert_eq!(
        d.next_check_time,
        Some(time(607)),
        "interval 10m + jitter 7s"
    );
    assert_eq!(d.first_detected_time, Some(time(0)));
    assert_eq!(d.resources[0].attributes[0].path, "attr.0");
    assert_eq!(d.history.len(), 1);
    assert_eq!(d.history[0].resolved_time, None);
    let drifted = cond(&s, condition::DRIFTED);
    assert_eq!(drifted.status, "True");
    assert!(
        drifted.message.contains("aws_security_group.web"),
        "{}",
        drifted.message
    );
    assert!(drifted.message.contains("critical"));
    assert_eq!(reasons(&emits), [reason::DRIFT_DETECTED]);
    assert!(emits[0].warning);
    // A drift check is not a reconcile.
    assert_eq!(s.observed_generation, None);
    assert_eq!(s.last_reconcile_time, None);
    assert_eq!(s.source, None);
}

#[test]
fn the_same_drift_again_moves_only_the_check_times() {
    let first = drifted_once();
    let r = drift_result(
        "d2",
        vec![resource("aws_security_group.web", Severity::Critical, 2)],
    );
    let (s, emits) = finish(&first, &r, 600);
    assert!(emits.is_empty(), "{emits:?}");
    let d = s.drift.as_ref().unwrap();
    assert_eq!(d.first_detected_time, Some(time(0)));
    assert_eq!(d.last_check_time, Some(time(600)));
    assert_eq!(cond(&s, condition::DRIFTED).last_transition_time, time(0));
    assert_eq!(d.history, first.drift.as_ref().unwrap().history);
    // Nothing else changed besides the check times and the execution record.
    let normalize = |s: &PangeaTemplateStatus| {
        let mut s = s.clone();
        let d = s.drift.as_mut().unwrap();
        d.last_check_time = None;
        d.next_check_time = None;
        s.last_execution = None;
        s.conditions.retain(|c| c.type_ != condition::RECONCILING);
        s
    };
    assert_eq!(normalize(&s), normalize(&first));
}

#[test]
fn worse_drift_is_announced_and_raises_the_episode() {
    let first = finish(
        &PangeaTemplateStatus::default(),
        &drift_result(
            "d1",
            vec![resource("aws_s3_bucket.logs", Severity::Info, 1)],
        ),
        0,
    )
    .0;
    let r = drift_result(
        "d2",
        vec![
            resource("aws_s3_bucket.logs", Severity::Info, 1),
            resource("aws_security_group.web", Severity::Critical, 1),
        ],
    );
    let (s, emits) = finish(&first, &r, 600);
    assert_eq!(reasons(&emits), [reason::DRIFT_DETECTED]);
    let d = s.drift.as_ref().unwrap();
    assert_eq!(d.first_detected_time, Some(time(0)));
    assert_eq!(d.history.len(), 1);
    assert_eq!(d.history[0].severity, Severity::Critical);
    assert_eq!(d.history[0].resources, 2);
    assert_eq!(
        d.resources[0].address, "aws_security_group.web",
        "most severe first"
    );
}

#[test]
fn drift_gone_without_an_apply_is_reverted() {
    let mut first = drifted_once();
    set_condition(
        &mut first.conditions,
        condition::REMEDIATION_BLOCKED,
        true,
        "DestroyNotAllowed",
        "m",
        4,
        &time(1),
    );
    let (s, emits) = finish(&first, &drift_result("d2", vec![]), 600);
    assert!(emits.is_empty());
    let d = s.drift.as_ref().unwrap();
    assert!(!d.detected);
    assert_eq!(d.severity, None);
    assert_eq!(d.first_detected_time, None);
    assert!(d.resources.is_empty());
    assert_eq!(d.history[0].resolved_time, Some(time(600)));
    assert_eq!(d.history[0].resolution.as_deref(), Some("reverted"));
    let drifted = cond(&s, condition::DRIFTED);
    assert_eq!(
        (drifted.status.as_str(), drifted.reason.as_str()),
        ("False", "Reverted")
    );
    let rb = cond(&s, condition::REMEDIATION_BLOCKED);
    assert_eq!(
        (rb.status.as_str(), rb.reason.as_str()),
        ("False", "DriftResolved")
    );
}

#[test]
fn apply_remediates_drift() {
    let (s, emits) = finish(&drifted_once(), &apply_result("a1", "p1", 0, 1, 0), 30);
    let d = s.drift.as_ref().unwrap();
    assert!(!d.detected);
    assert!(d.resources.is_empty());
    assert_eq!(d.last_check_time, Some(time(0)), "an apply is not a check");
    assert_eq!(d.history[0].resolution.as_deref(), Some("remediated"));
    assert_eq!(d.history[0].resolved_time, Some(time(30)));
    let drifted = cond(&s, condition::DRIFTED);
    assert_eq!(
        (drifted.status.as_str(), drifted.reason.as_str()),
        ("False", "Remediated")
    );
    assert_eq!(
        reasons(&emits),
        [reason::PLAN_APPLIED, reason::DRIFT_REMEDIATED]
    );
    assert_eq!(cond(&s, condition::READY).status, "True");
}

#[test]
fn no_drift_on_the_first_check() {
    let (s, emits) = finish(
        &PangeaTemplateStatus::default(),
        &drift_result("d1", vec![]),
        0,
    );
    assert!(emits.is_empty());
    assert_eq!(cond(&s, condition::DRIFTED).reason, "NoDrift");
    assert!(s.drift.as_ref().unwrap().history.is_empty());
    let (s2, _) = finish(&s, &drift_result("d2", vec![]), 600);
    assert_eq!(cond(&s2, condition::DRIFTED), cond(&s, condition::DRIFTED));
}

#[test]
fn drift_detail_is_bounded() {
    let severities = [Severity::Info, Severity::Warning, Severity::Critical];
    let mut resources: Vec<_> = (0..25)
        .map(|i| resource(&format!("aws_s3_bucket.b{i:02}"), severities[i % 3], 15))
        .collect();
    resources[0].attributes[0].actual = Some("x".repeat(1000));
    let mut r = drift_result("d1", resources);
    r.drift.as_mut().unwrap().resources_omitted = 4;
    let (s, _) = finish(&PangeaTemplateStatus::default(), &r, 0);
    let d = s.drift.as_ref().unwrap();
    assert_eq!(d.resources.len(), 20);
    assert_eq!(d.resources_omitted, 9);
    assert!(
        d.resources
            .windows(2)
            .all(|w| w[0].severity >= w[1].severity)
    );
    // Among equals the executor's order is kept.
    assert_eq!(d.resources[0].address, "aws_s3_bucket.b02");
    assert!(
        d.resources
            .iter()
            .all(|r| r.attributes.len() == 10 && r.attributes_omitted == 5)
    );
    let info = d
        .resources
        .iter()
        .find(|r| r.address == "aws_s3_bucket.b00")
        .unwrap();
    assert_eq!(
        info.attributes[0].actual.as_ref().unwrap().chars().count(),
        256
    );
    assert_eq!(d.history[0].resources, 29);
    let message = &cond(&s, condition::DRIFTED).message;
    assert!(message.starts_with("29 resource(s) drifted"), "{message}");
    assert!(message.ends_with("and 24 more"), "{message}");
}

#[test]
fn history_keeps_the_newest_episodes() {
    let s = PangeaTemplateStatus {
        drift: Some(DriftStatus {
            history: (0..MAX_HISTORY)
                .map(|i| DriftHistoryEntry {
                    detected_time: time(-10_000 + i64::try_from(i).unwrap()),
                    resolved_time: Some(time(-5_000)),
                    severity: Severity::Info,
                    resources: 1,
                    resolution: Some("reverted".into()),
                })
                .collect(),
            ..DriftStatus::default()
        }),
        ..PangeaTemplateStatus::default()
    };
    let oldest_kept = s.drift.as_ref().unwrap().history[MAX_HISTORY - 2].clone();
    let r = drift_result(
        "d1",
        vec![resource("aws_s3_bucket.a", Severity::Warning, 1)],
    );
    let (s, _) = finish(&s, &r, 0);
    let h = &s.drift.as_ref().unwrap().history;
    assert_eq!(h.len(), MAX_HISTORY);
    assert_eq!(h[0].detected_time, time(0));
    assert_eq!(h[0].severity, Severity::Warning);
    assert_eq!(h[MAX_HISTORY - 1], oldest_kept);
}

// ---- on_finished: failures and refusals ---------------------------------------------------

#[rstest]
#[case::transient_plan(ExecutionKind::Plan, true, true, false)]
#[case::permanent_plan(ExecutionKind::Plan, false, true, true)]
#[case::transient_drift(ExecutionKind::Drift, true, false, false)]
#[case::permanent_drift(ExecutionKind::Drift, false, true, true)]
fn failures(
    #[case] kind: ExecutionKind,
    #[case] transient: bool,
    #[case] not_ready: bool,
    #[case] stalled: bool,
) {
    let (ok, _) = finish(
        &PangeaTemplateStatus::default(),
        &plan_result("e0", "p0", 0, 0, 0),
        -100,
    );
    let (s, emits) = finish(&ok, &failure("e1", kind, transient, "TerraformFailed"), 0);
    assert_eq!(cond(&s, condition::READY).status == "False", not_ready);
    assert_eq!(is_true(&s.conditions, condition::STALLED), stalled);
    if stalled {
        assert_eq!(cond(&s, condition::STALLED).reason, "TerraformFailed");
    }
    let last = s.last_execution.as_ref().unwrap();
    assert_eq!(last.phase, ExecutionPhase::Failed);
    assert_eq!(last.consecutive_failures, 1);
    assert_eq!(
        last.message.as_deref(),
        Some("TerraformFailed: TerraformFailed happened")
    );
    assert_eq!(reasons(&emits), [reason::EXECUTION_FAILED]);
    assert!(emits[0].warning);
    let (s2, _) = finish(&s, &failure("e2", kind, transient, "TerraformFailed"), 10);
    assert_eq!(s2.last_execution.as_ref().unwrap().consecutive_failures, 2);
}

#[test]
fn a_failed_plan_still_records_the_generation_it_tried() {
    let (s, _) = finish(
        &PangeaTemplateStatus::default(),
        &failure("e1", ExecutionKind::Plan, false, "TemplateError"),
        0,
    );
    assert_eq!(s.observed_generation, Some(4));
    assert_eq!(s.last_reconcile_time, Some(time(0)));
    assert_eq!(s.last_successful_reconcile_time, None);
    assert_eq!(s.source.as_ref().unwrap().revision, "sha256:aaa");
}

#[test]
fn a_failed_drift_check_is_retried_after_the_backoff() {
    let first = drifted_once();
    let (s, _) = finish(
        &first,
        &failure("d2", ExecutionKind::Drift, true, "TerraformFailed"),
        100,
    );
    let d = s.drift.as_ref().unwrap();
    assert_eq!(
        d.last_check_time,
        Some(time(0)),
        "a failed check checked nothing"
    );
    assert_eq!(d.next_check_time, Some(time(110)));
    assert!(d.detected, "what is known about drift stays");
}

#[test]
fn a_timeout_is_transient() {
    let r = ExecutionResult {
        error: None,
        ..result("e1", ExecutionKind::Apply, Outcome::TimedOut)
    };
    let (s, emits) = finish(&PangeaTemplateStatus::default(), &r, 0);
    let last = s.last_execution.as_ref().unwrap();
    assert_eq!(last.phase, ExecutionPhase::TimedOut);
    assert_eq!(last.consecutive_failures, 1);
    assert!(!is_true(&s.conditions, condition::STALLED));
    assert_eq!(cond(&s, condition::READY).reason, "TimedOut");
    assert_eq!(reasons(&emits), [reason::EXECUTION_FAILED]);
}

#[test]
fn an_interrupted_apply_voids_its_plan_until_an_apply_succeeds() {
    let (pending, _) = finish(
        &PangeaTemplateStatus::default(),
        &plan_result("p", "plan-x", 2, 0, 0),
        0,
    );
    assert!(pending.plan.as_ref().unwrap().pending);
    let killed = failure("a1", ExecutionKind::Apply, true, INTERRUPTED);
    let (s, _) = finish(&pending, &killed, 10);
    assert_eq!(s.interrupted_apply.as_deref(), Some("a1"));
    assert!(
        !s.plan.as_ref().unwrap().pending,
        "the approved plan is void"
    );
    assert_eq!(cond(&s, condition::READY).reason, INTERRUPTED);
    assert!(!is_true(&s.conditions, condition::STALLED), "it is retried");
    // A failure that is not an interruption leaves the plan as it was.
    let (other, _) = finish(
        &pending,
        &failure("a2", ExecutionKind::Apply, true, "TerraformFailed"),
        10,
    );
    assert_eq!(other.interrupted_apply, None);
    assert!(other.plan.as_ref().unwrap().pending);
    // The plan made after it keeps the mark; a successful apply clears it.
    let (s, _) = finish(&s, &plan_result("p2", "plan-y", 2, 0, 0), 20);
    assert_eq!(s.interrupted_apply.as_deref(), Some("a1"));
    let (s, _) = finish(&s, &apply_result("a3", "plan-y", 2, 0, 0), 30);
    assert_eq!(s.interrupted_apply, None);
}

#[test]
fn success_after_failures_resets_the_count_and_the_stall() {
    let (s, _) = finish(
        &PangeaTemplateStatus::default(),
        &failure("e1", ExecutionKind::Plan, false, "TemplateError"),
        0,
    );
    let (s, _) = finish(&s, &plan_result("e2", "p1", 0, 0, 0), 60);
    assert_eq!(s.last_execution.as_ref().unwrap().consecutive_failures, 0);
    assert_eq!(s.last_execution.as_ref().unwrap().message, None);
    let stalled = cond(&s, condition::STALLED);
    assert_eq!(
        (stalled.status.as_str(), stalled.reason.as_str()),
        ("False", "Succeeded")
    );
}

#[test]
fn a_refusal_blocks_remediation_without_counting_as_a_failure() {
    let r = ExecutionResult {
        error: Some(ExecutionError {
            transient: false,
            reason: "DestroyNotAllowed".into(),
            message: "the plan deletes 1 resource(s)".into(),
        }),
        ..result("a1", ExecutionKind::Apply, Outcome::Refused)
    };
    let (failed_once, _) = finish(
        &PangeaTemplateStatus::default(),
        &failure("e0", ExecutionKind::Drift, true, "X"),
        -50,
    );
    let (s, emits) = finish(&failed_once, &r, 0);
    let rb = cond(&s, condition::REMEDIATION_BLOCKED);
    assert_eq!(
        (rb.status.as_str(), rb.reason.as_str()),
        ("True", "DestroyNotAllowed")
    );
    assert_eq!(rb.message, "the plan deletes 1 resource(s)");
    assert_eq!(cond(&s, condition::READY).reason, "DestroyNotAllowed");
    let last = s.last_execution.as_ref().unwrap();
    assert_eq!(last.phase, ExecutionPhase::Failed);
    assert_eq!(last.consecutive_failures, 0);
    assert!(
        last.message
            .as_ref()
            .unwrap()
            .starts_with("refused (DestroyNotAllowed)")
    );
    assert!(!is_true(&s.conditions, condition::STALLED));
    assert_eq!(reasons(&emits), [reason::REMEDIATION_BLOCKED]);
}

// ---- idempotence and time ------------------------------------------------------------------

#[rstest]
#[case::plan(plan_result("e1", "p1", 1, 0, 0))]
#[case::apply(apply_result("e1", "p1", 1, 0, 0))]
#[case::failure(failure("e1", ExecutionKind::Plan, true, "TerraformFailed"))]
#[case::drift(drift_result("e1", vec![resource("aws_s3_bucket.a", Severity::Warning, 1)]))]
fn recording_a_result_twice_changes_nothing(#[case] r: ExecutionResult) {
    let base = drifted_once();
    let (once, _) = finish(&base, &r, 100);
    assert_eq!(finish(&base, &r, 100).0, once, "pure");
    let (twice, emits) = finish(&once, &r, 100);
    assert_eq!(twice, once);
    assert!(emits.is_empty());
}

#[test]
fn timestamps_are_whole_seconds() {
    let now = t(0) + SignedDuration::from_millis(999);
    let r = drift_result(
        "d1",
        vec![resource("aws_s3_bucket.a", Severity::Warning, 1)],
    );
    let (s, _) = on_finished(
        &PangeaTemplateStatus::default(),
        &spec(),
        4,
        &r,
        Trigger::DriftCheckDue,
        Duration::from_millis(1500),
        now,
    );
    let d = s.drift.as_ref().unwrap();
    assert_eq!(d.last_check_time, Some(time(0)));
    assert_eq!(d.next_check_time, Some(time(601)));
    assert_eq!(cond(&s, condition::DRIFTED).last_transition_time, time(0));
    // What the API server would return compares equal.
    let round_trip: PangeaTemplateStatus =
        serde_json::from_value(serde_json::to_value(&s).unwrap()).unwrap();
    assert!(!content_changed(&s, &round_trip));
}

// ---- on_decided ---------------------------------------------------------------------------

fn blocked(reason: BlockReason, message: &str) -> Step {
    Step::Blocked {
        reason,
        message: message.into(),
        requeue_after: None,
    }
}

#[test]
fn a_block_is_recorded_and_announced_once() {
    let step = blocked(BlockReason::AwaitingApproval, "plan p1 waits");
    let (s, emits) = on_decided(&PangeaTemplateStatus::default(), &step, 4, t(0));
    let rb = cond(&s, condition::REMEDIATION_BLOCKED);
    assert_eq!(
        (rb.status.as_str(), rb.reason.as_str()),
        ("True", "AwaitingApproval")
    );
    assert_eq!(reasons(&emits), [reason::REMEDIATION_BLOCKED]);
    let (again, emits) = on_decided(&s, &step, 4, t(60));
    assert_eq!(again, s);
    assert!(emits.is_empty());
    // A new message alone is recorded quietly; a new reason is announced.
    let (s2, emits) = on_decided(
        &s,
        &blocked(BlockReason::AwaitingApproval, "plan p2 waits"),
        4,
        t(60),
    );
    assert_eq!(
        cond(&s2, condition::REMEDIATION_BLOCKED).message,
        "plan p2 waits"
    );
    assert!(emits.is_empty());
    let (s3, emits) = on_decided(&s2, &blocked(BlockReason::Paused, "paused"), 4, t(90));
    assert_eq!(
        cond(&s3, condition::REMEDIATION_BLOCKED).last_transition_time,
        time(0)
    );
    assert_eq!(reasons(&emits), [reason::REMEDIATION_BLOCKED]);
}

#[test]
fn refusals_and_stalls_are_not_rewritten_by_decisions() {
    let mut refused = PangeaTemplateStatus::default();
    set_condition(
        &mut refused.conditions,
        condition::REMEDIATION_BLOCKED,
        true,
        "DestroyNotAllowed",
        "m",
        4,
        &time(-60),
    );
    for step in [
        blocked(BlockReason::Refused, "DestroyNotAllowed: m"),
        blocked(BlockReason::Stalled, "x"),
        blocked(BlockReason::Paused, "paused"),
        Step::Idle {
            requeue_after: None,
        },
    ] {
        let (s, emits) = on_decided(&refused, &step, 4, t(0));
        assert_eq!(s, refused, "{step:?}");
        assert!(emits.is_empty());
    }
    // A refusal of an older generation is replaced.
    let (s, _) = on_decided(&refused, &blocked(BlockReason::Paused, "paused"), 5, t(0));
    assert_eq!(cond(&s, condition::REMEDIATION_BLOCKED).reason, "Paused");
    let (s, _) = on_decided(
        &refused,
        &Step::Idle {
            requeue_after: None,
        },
        5,
        t(0),
    );
    assert!(!is_true(&s.conditions, condition::REMEDIATION_BLOCKED));
}

#[test]
fn idle_lifts_a_block_decide_made() {
    let (s, _) = on_decided(
        &PangeaTemplateStatus::default(),
        &blocked(BlockReason::Suspended, "s"),
        4,
        t(0),
    );
    let (s, emits) = on_decided(
        &s,
        &Step::Idle {
            requeue_after: None,
        },
        4,
        t(60),
    );
    let rb = cond(&s, condition::REMEDIATION_BLOCKED);
    assert_eq!(
        (rb.status.as_str(), rb.reason.as_str()),
        ("False", "NotBlocked")
    );
    assert_eq!(rb.last_transition_time, time(60));
    assert!(emits.is_empty());
}

#[test]
fn executions_and_waits_change_nothing() {
    let (s, _) = on_decided(
        &PangeaTemplateStatus::default(),
        &blocked(BlockReason::Suspended, "s"),
        4,
        t(0),
    );
    for step in [
        Step::AwaitExecution {
            requeue_after: Duration::from_secs(5),
        },
        Step::Execute {
            kind: ExecutionKind::Drift,
            trigger: Trigger::DriftCheckDue,
            approved_plan_id: None,
        },
    ] {
        assert_eq!(on_decided(&s, &step, 4, t(60)).0, s);
    }
    let (idle, _) = on_decided(
        &PangeaTemplateStatus::default(),
        &Step::Idle {
            requeue_after: None,
        },
        4,
        t(0),
    );
    assert_eq!(idle, PangeaTemplateStatus::default());
}

// ---- content_changed and formatting -------------------------------------------------------

#[test]
fn content_changed_ignores_condition_order_only() {
    let s = drifted_once();
    assert!(!content_changed(&s, &s.clone()));
    let mut reordered = s.clone();
    reordered.conditions.reverse();
    assert!(reordered.conditions.len() > 1);
    assert!(!content_changed(&s, &reordered));
    let mut fewer = s.clone();
    fewer.conditions.pop();
    assert!(content_changed(&s, &fewer));
    let mut later = s.clone();
    later.drift.as_mut().unwrap().last_check_time = Some(time(5));
    assert!(content_changed(&s, &later));
    let mut reason = s.clone();
    reason.conditions[0].reason = "Other".into();
    assert!(content_changed(&s, &reason));
}

#[rstest]
#[case(0.0, "0ms")]
#[case(0.8504, "850ms")]
#[case(12.44, "12.4s")]
#[case(12.0, "12s")]
#[case(185.2, "3m5.2s")]
#[case(3723.0, "1h2m3s")]
#[case(f64::NAN, "0ms")]
#[case(-4.0, "0ms")]
fn durations_read_like_go(#[case] secs: f64, #[case] text: &str) {
    assert_eq!(format_duration(secs), text);
}

fn in_flight(addresses: &[&str]) -> Vec<pangea_api::exec::InFlightCreate> {
    addresses
        .iter()
        .map(|a| pangea_api::exec::InFlightCreate {
            address: (*a).to_owned(),
            resource_type: a.split('.').next().unwrap_or_default().to_owned(),
        })
        .collect()
}

#[test]
fn in_flight_creates_survive_until_an_execution_settles_them() {
    // An apply interrupted at its deadline reports what it had in flight.
    let timed_out = ExecutionResult {
        in_flight_creates: in_flight(&["aws_ssm_parameter.app", "aws_vpc.main"]),
        ..result("a1", ExecutionKind::Apply, Outcome::TimedOut)
    };
    let (s, _) = finish(&PangeaTemplateStatus::default(), &timed_out, 0);
    assert_eq!(s.in_flight_creates.len(), 2);
    // A pod that died before reading them (a synthesized failure) does not forget them.
    let (s, _) = finish(&s, &result("a2", ExecutionKind::Apply, Outcome::Failed), 60);
    assert_eq!(
        s.in_flight_creates,
        in_flight(&["aws_ssm_parameter.app", "aws_vpc.main"])
    );
    // The next successful run adopted one and still names the other.
    let settled = ExecutionResult {
        in_flight_creates: in_flight(&["aws_vpc.main"]),
        ..result("a3", ExecutionKind::Apply, Outcome::Succeeded)
    };
    let (s, _) = finish(&s, &settled, 120);
    assert_eq!(s.in_flight_creates, in_flight(&["aws_vpc.main"]));
    let (s, _) = finish(
        &s,
        &result("a4", ExecutionKind::Apply, Outcome::Succeeded),
        180,
    );
    assert!(s.in_flight_creates.is_empty());
}
