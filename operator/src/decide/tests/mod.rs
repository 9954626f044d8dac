//! One test per branch of `decide`, built from a template that is reconciled and quiet, then
//! changed by exactly what the branch is about.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use pangea_api::{
    PangeaTemplateSpec, PangeaTemplateStatus,
    common::{Severity, condition},
    exec::ExecutionKind,
    template::{
        DriftStatus, ExecutionPhase, ExecutionStatus, MaintenanceWindow, PlanStatus,
        ReconciliationMode, RemediationPolicy, SourceStatus,
    },
};
use rstest::rstest;

use super::*;
use crate::conditions::set_condition;

/// Wednesday noon UTC.
const NOW: &str = "2025-06-11T12:00:00Z";

fn now() -> Timestamp {
    NOW.parse().unwrap()
}

fn ago(secs: i64) -> Timestamp {
    now() - jiff::SignedDuration::from_secs(secs)
}

fn time(t: Timestamp) -> Time {
    Time(t)
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// A template at generation 1, applied a minute ago, drift checked a minute ago, nothing
/// pending. Defaults: hybrid every 5m, drift every 10m, manual approval.
struct Case {
    spec: PangeaTemplateSpec,
    status: PangeaTemplateStatus,
    generation: i64,
    paused: bool,
    annotation: Option<String>,
    running: Option<RunningExecution>,
    jitter: Duration,
    source_revision: Option<String>,
}

impl Case {
    fn new() -> Self {
        let spec: PangeaTemplateSpec =
            serde_json::from_value(serde_json::json!({"source": {"inline": "template :t do end"}}))
                .unwrap();
        let status = PangeaTemplateStatus {
            observed_generation: Some(1),
            last_reconcile_time: Some(time(ago(60))),
            last_successful_reconcile_time: Some(time(ago(60))),
            drift: Some(DriftStatus {
                last_check_time: Some(time(ago(60))),
                ..DriftStatus::default()
            }),
            plan: Some(PlanStatus {
                id: Some("p1".into()),
                pending: false,
                ..PlanStatus::default()
            }),
            source: Some(SourceStatus {
                revision: "sha256:aaa".into(),
            }),
            last_execution: Some(ExecutionStatus {
                id: "e1".into(),
                kind: ExecutionKind::Drift,
                phase: ExecutionPhase::Succeeded,
                start_time: Some(time(ago(70))),
                completion_time: Some(time(ago(60))),
                message: None,
                consecutive_failures: 0,
            }),
            ..PangeaTemplateStatus::default()
        };
        Self {
            spec,
            status,
            generation: 1,
            paused: false,
            annotation: None,
            running: None,
            jitter: Duration::ZERO,
            source_revision: None,
        }
    }

    fn decide(&self) -> Step {
        decide(&Observed {
            spec: &self.spec,
            generation: self.generation,
            status: &self.status,
            paused: self.paused,
            approved_by_annotation: self.annotation.as_deref(),
            running: self.running.as_ref(),
            jitter: self.jitter,
            now: now(),
            source_revision: self.source_revision.as_deref(),
        })
    }

    fn auto_approve(mut self) -> Self {
        self.spec.pangea.auto_approve = true;
        self
    }

    fn suspended(mut self) -> Self {
        self.spec.suspend = true;
        self
    }

    fn paused(mut self) -> Self {
        self.paused = true;
        self
    }

    fn new_generation(mut self) -> Self {
        self.generation = 2;
        self
    }

    fn pending(mut self, id: &str) -> Self {
        self.status.plan = Some(PlanStatus {
            id: Some(id.into()),
            pending: true,
            add: 1,
            change: 2,
            destroy: 0,
            ..PlanStatus::default()
        });
        self
    }

    fn drifted(mut self, first_detected: Timestamp) -> Self {
        let drift = self.status.drift.get_or_insert_with(Default::default);
        drift.detected = true;
        drift.severity = Some(Severity::Critical);
        drift.first_detected_time = Some(time(first_detected));
        self
    }

    fn remediate(mut self, policy: RemediationPolicy) -> Self {
        self.spec.drift_detection.auto_remediate = true;
        self.spec.drift_detection.remediation_policy = policy;
        self
    }

    fn window(mut self, schedule: &str, duration: &str, zone: Option<&str>) -> Self {
        self.spec
            .drift_detection
            .maintenance_windows
            .push(MaintenanceWindow {
                schedule: schedule.into(),
                duration: duration.parse().unwrap(),
                time_zone: zone.map(Into::into),
            });
        self
    }

    fn last(
        mut self,
        kind: ExecutionKind,
        phase: ExecutionPhase,
        failures: u32,
        done: Option<Timestamp>,
    ) -> Self {
        self.status.last_execution = Some(ExecutionStatus {
            id: "e2".into(),
            kind,
            phase,
            start_time: Some(time(ago(600))),
            completion_time: done.map(time),
            message: None,
            consecutive_failures: failures,
        });
        self
    }

    fn condition(mut self, type_: &str, reason: &str, message: &str, generation: i64) -> Self {
        set_condition(
            &mut self.status.conditions,
            type_,
            true,
            reason,
            message,
            generation,
            &time(ago(30)),
        );
        self
    }

    /// Nothing scheduled soon: the next drift check and periodic reconcile are far away.
    fn quiet(mut self) -> Self {
        self.spec.drift_detection.interval = secs(3600).into();
        self.spec.reconciliation.interval = secs(3600).into();
        self
    }

    fn drift_check_in(mut self, remaining: u64) -> Self {
        let interval = 600;
        self.spec.drift_detection.interval = secs(interval).into();
        self.status
            .drift
            .get_or_insert_with(Default::default)
            .last_check_time = Some(time(ago(i64::try_from(interval - remaining).unwrap())));
        self
    }
}

fn execute(kind: ExecutionKind, trigger: Trigger) -> Step {
    Step::Execute {
        kind,
        trigger,
        approved_plan_id: None,
    }
}

fn blocked_reason(step: &Step) -> Option<BlockReason> {
    match step {
        Step::Blocked { reason, .. } => Some(*reason),
        _ => None,
    }
}

fn blocked_message(step: &Step) -> String {
    match step {
        Step::Blocked { message, .. } => message.clone(),
        other => panic!("not blocked: {other:?}"),
    }
}

fn requeue(step: &Step) -> Option<Duration> {
    match step {
        Step::Idle { requeue_after } | Step::Blocked { requeue_after, .. } => *requeue_after,
        Step::AwaitExecution { requeue_after } => Some(*requeue_after),
        Step::Execute { .. } => None,
    }
}

// ---- 1. running -------------------------------------------------------------------------

#[rstest]
#[case::until_the_deadline(120, 480)]
#[case::deadline_passed(900, MIN_REQUEUE.as_secs())]
fn running_execution_is_awaited_until_its_deadline(#[case] started_ago: i64, #[case] wait: u64) {
    let mut case = Case::new().new_generation().auto_approve();
    case.running = Some(RunningExecution {
        id: "r".into(),
        kind: ExecutionKind::Drift,
        trigger: Trigger::DriftCheckDue,
        started: ago(started_ago),
    });
    assert_eq!(
        case.decide(),
        Step::AwaitExecution {
            requeue_after: secs(wait)
        }
    );
}

// ---- 2. spec change ---------------------------------------------------------------------

#[rstest]
#[case::plans_without_auto_approve(false, false, false, ExecutionKind::Plan)]
#[case::applies_with_auto_approve(true, false, false, ExecutionKind::Apply)]
#[case::only_plans_while_suspended(true, true, false, ExecutionKind::Plan)]
#[case::only_plans_while_paused(true, false, true, ExecutionKind::Plan)]
fn new_generation(
    #[case] auto: bool,
    #[case] suspend: bool,
    #[case] pause: bool,
    #[case] kind: ExecutionKind,
) {
    let mut case = Case::new().new_generation();
    case.spec.pangea.auto_approve = auto;
    case.spec.suspend = suspend;
    case.paused = pause;
    assert_eq!(case.decide(), execute(kind, Trigger::SpecChanged));
}

#[test]
fn a_new_object_is_planned() {
    let mut case = Case::new();
    case.status = PangeaTemplateStatus::default();
    assert_eq!(
        case.decide(),
        execute(ExecutionKind::Plan, Trigger::SpecChanged)
    );
}

#[test]
fn new_generation_lifts_a_stall_and_skips_the_backoff() {
    let case = Case::new()
        .condition(condition::STALLED, "TemplateError", "main.rb:3", 1)
        .last(ExecutionKind::Plan, ExecutionPhase::Failed, 4, Some(ago(1)))
        .new_generation()
        .auto_approve();
    assert_eq!(
        case.decide(),
        execute(ExecutionKind::Apply, Trigger::SpecChanged)
    );
}

#[test]
fn new_generation_goes_before_an_approval() {
    let mut case = Case::new().pending("p2").new_generation();
    case.spec.approve_plan = Some("p2".into());
    assert_eq!(
        case.decide(),
        execute(ExecutionKind::Plan, Trigger::SpecChanged)
    );
}

// ---- 3. stall ---------------------------------------------------------------------------

#[test]
fn a_stall_blocks_everything_even_a_due_drift_check() {
    let case = Case::new()
        .drift_check_in(0)
        .last(
            ExecutionKind::Plan,
            ExecutionPhase::Failed,
            1,
            Some(ago(3600)),
        )
        .condition(
            condition::STALLED,
            "TemplateError",
            "main.rb:3: undefined method",
            1,
        );
    let step = case.decide();
    assert_eq!(
        step,
        Step::Blocked {
            reason: BlockReason::Stalled,
            message: "main.rb:3: undefined method".into(),
            requeue_after: None,
        }
    );
}

#[test]
fn a_stall_from_an_older_generation_does_not_block() {
    // Generation 1 was applied since; only its Stalled condition was left behind.
    let case =
        Case::new()
            .drift_check_in(0)
            .condition(condition::STALLED, "TemplateError", "old", 0);
    assert_eq!(
        case.decide(),
        execute(ExecutionKind::Drift, Trigger::DriftCheckDue)
    );
}

#[test]
fn a_source_change_lifts_a_stall_after_the_backoff() {
    let mut case = Case::new()
        .last(ExecutionKind::Plan, ExecutionPhase::Failed, 1, Some(ago(3)))
        .condition(condition::STALLED, "TemplateError", "main.rb:3", 1);
    case.source_revision = Some("sha256:bbb".into());
    assert_eq!(requeue(&case.decide()), Some(secs(7)));
    case.status.last_execution.as_mut().unwrap().completion_time = Some(time(ago(10)));
    assert_eq!(
        case.decide(),
        execute(ExecutionKind::Plan, Trigger::SourceChanged)
    );
}

// ---- 4. backoff and 7. retry ------------------------------------------------------------

#[rstest]
#[case::first_failure(1, 4, 6)]
#[case::third_failure(3, 10, 30)]
#[case::capped(12, 60, 540)]
fn transient_failure_waits_for_the_backoff(
    #[case] failures: u32,
    #[case] done_ago: i64,
    #[case] wait: u64,
) {
    let case = Case::new().drift_check_in(0).last(
        ExecutionKind::Drift,
        ExecutionPhase::Failed,
        failures,
        Some(ago(done_ago)),
    );
    assert_eq!(
        case.decide(),
        Step::Idle {
            requeue_after: Some(secs(wait))
        }
    );
}

#[rstest]
#[case::plan(ExecutionKind::Plan, ExecutionPhase::Failed)]
#[case::drift(ExecutionKind::Drift, ExecutionPhase::Failed)]
#[case::timed_out_plan(ExecutionKind::Plan, ExecutionPhase::TimedOut)]
fn after_the_backoff_the_failed_kind_is_retried(
    #[case] kind: ExecutionKind,
    #[case] phase: ExecutionPhase,
) {
    let case = Case::new().quiet().last(kind, phase, 2, Some(ago(20)));
    assert_eq!(case.decide(), execute(kind, Trigger::Retry));
}

#[test]
fn backoff_still_reports_blocks() {
    let case = Case::new().pending("p2").last(
        ExecutionKind::Drift,
        ExecutionPhase::Failed,
        1,
        Some(ago(4)),
    );
    let step = case.decide();
    assert_eq!(blocked_reason(&step), Some(BlockReason::AwaitingApproval));
    assert_eq!(requeue(&step), Some(secs(6)));
}

#[test]
fn an_interrupted_execution_is_run_again_at_once() {
    let case = Case::new()
        .quiet()
        .last(ExecutionKind::Plan, ExecutionPhase::Running, 0, None);
    assert_eq!(case.decide(), execute(ExecutionKind::Plan, Trigger::Retry));
}

#[rstest]
#[case::auto_approved(true, None, Some(execute(ExecutionKind::Apply, Trigger::Retry)))]
#[case::auto_approved_but_paused(true, Some(BlockReason::Paused), None)]
#[case::not_wanted_without_approval(false, None, None)]
fn failed_apply_retry(
    #[case] auto: bool,
    #[case] blocked: Option<BlockReason>,
    #[case] expected: Option<Step>,
) {
    let mut case = Case::new().quiet().last(
        ExecutionKind::Apply,
        ExecutionPhase::Failed,
        1,
        Some(ago(20)),
    );
    case.spec.pangea.auto_approve = auto;
    case.paused = blocked.is_some();
    let step = case.decide();
    match expected {
        Some(e) => assert_eq!(step, e),
        None => {
            assert_eq!(blocked_reason(&step), blocked);
            assert!(!matches!(step, Step::Execute { .. }), "{step:?}");
        }
    }
}

#[test]
fn after_an_interrupted_apply_a_fresh_plan_is_made_for_approval_not_the_old_one_applied() {
    let mut case = Case::new().quiet().last(
        ExecutionKind::Apply,
        ExecutionPhase::Failed,
        1,
        Some(ago(20)),
    );
    // The plan the person approved was voided by the interruption.
    case.spec.approve_plan = Some("p1".into());
    case.status.interrupted_apply = Some("e2".into());
    assert_eq!(case.decide(), execute(ExecutionKind::Plan, Trigger::Retry));
    // Without the interruption a failed apply without approval waits for a person.
    case.status.interrupted_apply = None;
    assert!(!matches!(case.decide(), Step::Execute { .. }));
}

#[test]
fn a_remediation_apply_is_retried_only_when_the_policy_allows_it_now() {
    let case = Case::new()
        .quiet()
        .drifted(ago(3000))
        .remediate(RemediationPolicy::Immediate)
        .last(
            ExecutionKind::Apply,
            ExecutionPhase::Failed,
            1,
            Some(ago(20)),
        );
    assert_eq!(case.decide(), execute(ExecutionKind::Apply, Trigger::Retry));
}

#[test]
fn a_refusal_is_neither_backed_off_nor_retried() {
    let case = Case::new()
        .quiet()
        .auto_approve()
        .last(
            ExecutionKind::Apply,
            ExecutionPhase::Failed,
            0,
            Some(ago(1)),
        )
        .condition(
            condition::REMEDIATION_BLOCKED,
            "DestroyNotAllowed",
            "deletes 1",
            1,
        );
    assert!(
        matches!(case.decide(), Step::Idle { .. }),
        "{:?}",
        case.decide()
    );
}

#[test]
fn a_failed_drift_check_is_not_retried_when_drift_detection_is_off() {
    let mut case = Case::new().quiet().last(
        ExecutionKind::Drift,
        ExecutionPhase::Failed,
        1,
        Some(ago(60)),
    );
    case.spec.drift_detection.enabled = false;
    assert!(matches!(case.decide(), Step::Idle { .. }));
}

// ---- 5. source change -------------------------------------------------------------------

#[rstest]
#[case::plans(false, Some("sha256:bbb"), Some(ExecutionKind::Plan))]
#[case::applies_when_auto_approved(true, Some("sha256:bbb"), Some(ExecutionKind::Apply))]
#[case::same_revision(true, Some("sha256:aaa"), None)]
#[case::unknown_revision(true, None, None)]
fn source_change(
    #[case] auto: bool,
    #[case] revision: Option<&str>,
    #[case] kind: Option<ExecutionKind>,
) {
    let mut case = Case::new().quiet();
    case.spec.pangea.auto_approve = auto;
    case.source_revision = revision.map(Into::into);
    let step = case.decide();
    match kind {
        Some(kind) => assert_eq!(step, execute(kind, Trigger::SourceChanged)),
        None => assert!(matches!(step, Step::Idle { .. }), "{step:?}"),
    }
}

#[test]
fn a_source_change_waits_for_the_backoff() {
    let mut case =
        Case::new()
            .quiet()
            .last(ExecutionKind::Plan, ExecutionPhase::Failed, 2, Some(ago(5)));
    case.source_revision = Some("sha256:bbb".into());
    assert_eq!(requeue(&case.decide()), Some(secs(15)));
}

// ---- 6. approval ------------------------------------------------------------------------

#[rstest]
#[case::by_spec(Some("p2"), None)]
#[case::by_annotation(None, Some("p2"))]
#[case::either_of_two(Some("p-old"), Some("p2"))]
fn approved_pending_plan_is_applied(#[case] spec: Option<&str>, #[case] annotation: Option<&str>) {
    let mut case = Case::new().quiet().pending("p2");
    case.spec.approve_plan = spec.map(Into::into);
    case.annotation = annotation.map(Into::into);
    assert_eq!(
        case.decide(),
        Step::Execute {
            kind: ExecutionKind::Apply,
            trigger: Trigger::Approved,
            approved_plan_id: Some("p2".into()),
        }
    );
}

#[test]
fn approval_of_another_plan_is_stale() {
    let mut case = Case::new().quiet().pending("p2");
    case.annotation = Some("p1".into());
    let step = case.decide();
    assert_eq!(blocked_reason(&step), Some(BlockReason::StaleApproval));
    let message = blocked_message(&step);
    assert!(
        message.contains("p1") && message.contains("current plan is p2"),
        "{message}"
    );
}

#[test]
fn a_stale_approval_does_not_stop_a_due_drift_check() {
    let mut case = Case::new().drift_check_in(0).pending("p2");
    case.annotation = Some("p1".into());
    assert_eq!(
        case.decide(),
        execute(ExecutionKind::Drift, Trigger::DriftCheckDue)
    );
}

#[rstest]
#[case::suspended(true, false, BlockReason::Suspended)]
#[case::paused(false, true, BlockReason::Paused)]
fn approved_apply_waits_while_suspended_or_paused(
    #[case] suspend: bool,
    #[case] pause: bool,
    #[case] reason: BlockReason,
) {
    let mut case = Case::new().quiet().pending("p2");
    case.spec.approve_plan = Some("p2".into());
    case.spec.suspend = suspend;
    case.paused = pause;
    assert_eq!(blocked_reason(&case.decide()), Some(reason));
}

#[test]
fn a_pending_plan_waits_for_approval() {
    let case = Case::new().quiet().pending("p2");
    let step = case.decide();
    assert_eq!(blocked_reason(&step), Some(BlockReason::AwaitingApproval));
    assert!(blocked_message(&step).contains("pangea.io/approve to p2"));
    // It still wakes for the next scheduled event.
    assert!(requeue(&step).is_some());
}

#[test]
fn an_approval_without_a_pending_plan_is_ignored() {
    let mut case = Case::new().quiet();
    case.annotation = Some("p1".into());
    assert!(matches!(case.decide(), Step::Idle { .. }));
}

#[rstest]
#[case::applied(Case::new().quiet().pending("p2").auto_approve(), Some(Trigger::PendingChanges), None)]
#[case::paused(Case::new().quiet().pending("p2").auto_approve().paused(), None, Some(BlockReason::Paused))]
#[case::drift_not_to_be_remediated(
    Case::new().quiet().pending("p2").auto_approve().drifted(ago(90)),
    None,
    None
)]
fn auto_approved_pending_plan(
    #[case] case: Case,
    #[case] trigger: Option<Trigger>,
    #[case] blocked: Option<BlockReason>,
) {
    let step = case.decide();
    match trigger {
        Some(t) => assert_eq!(step, execute(ExecutionKind::Apply, t)),
        None => {
            assert!(!matches!(step, Step::Execute { .. }), "{step:?}");
            assert_eq!(blocked_reason(&step), blocked);
        }
    }
}

#[rstest]
#[case::approval_unchanged("p2")]
#[case::approval_already_names_the_new_id("p3")]
fn an_apply_refused_as_stale_is_planned_again(#[case] approval: &str) {
    let mut case = Case::new()
        .quiet()
        .pending("p2")
        .last(
            ExecutionKind::Apply,
            ExecutionPhase::Failed,
            0,
            Some(ago(5)),
        )
        .condition(
            condition::REMEDIATION_BLOCKED,
            "StaleApproval",
            "current is p3",
            1,
        );
    case.annotation = Some(approval.into());
    assert_eq!(
        case.decide(),
        execute(ExecutionKind::Plan, Trigger::StaleApproval)
    );
}

#[test]
fn an_approval_refused_for_a_safety_limit_is_not_applied_again() {
    let mut case = Case::new()
        .quiet()
        .pending("p2")
        .last(
            ExecutionKind::Apply,
            ExecutionPhase::Failed,
            0,
            Some(ago(5)),
        )
        .condition(
            condition::REMEDIATION_BLOCKED,
            "DestroyNotAllowed",
            "deletes 1",
            1,
        );
    case.annotation = Some("p2".into());
    let step = case.decide();
    assert_eq!(blocked_reason(&step), Some(BlockReason::Refused));
    assert!(blocked_message(&step).starts_with("DestroyNotAllowed: deletes 1"));
}

#[test]
fn a_stale_approval_block_written_by_decide_is_not_a_refusal() {
    // decide itself recorded StaleApproval; the person then approved the current id.
    let mut case = Case::new().quiet().pending("p2").condition(
        condition::REMEDIATION_BLOCKED,
        "StaleApproval",
        "names p1",
        1,
    );
    case.annotation = Some("p2".into());
    assert_eq!(
        case.decide(),
        Step::Execute {
            kind: ExecutionKind::Apply,
            trigger: Trigger::Approved,
            approved_plan_id: Some("p2".into()),
        }
    );
}

// ---- 8. drift remediation ---------------------------------------------------------------

#[test]
fn immediate_remediation_applies() {
    let case = Case::new()
        .quiet()
        .drifted(ago(60))
        .remediate(RemediationPolicy::Immediate);
    assert_eq!(
        case.decide(),
        execute(ExecutionKind::Apply, Trigger::RemediateDrift)
    );
}

#[rstest]
#[case::suspended(Case::new().suspended(), BlockReason::Suspended)]
#[case::paused(Case::new().paused(), BlockReason::Paused)]
fn remediation_is_blocked_while_suspended_or_paused(
    #[case] case: Case,
    #[case] reason: BlockReason,
) {
    let case = case
        .quiet()
        .drifted(ago(60))
        .remediate(RemediationPolicy::Immediate);
    assert_eq!(blocked_reason(&case.decide()), Some(reason));
    // Drift checks continue.
    let case = case.drift_check_in(0);
    assert_eq!(
        case.decide(),
        execute(ExecutionKind::Drift, Trigger::DriftCheckDue)
    );
}

#[test]
fn drift_without_auto_remediation_is_only_reported() {
    let case = Case::new().quiet().drifted(ago(60));
    assert!(matches!(case.decide(), Step::Idle { .. }));
}

#[test]
fn stale_drift_status_is_ignored_when_drift_detection_is_off() {
    let mut case = Case::new()
        .quiet()
        .drifted(ago(60))
        .remediate(RemediationPolicy::Immediate);
    case.spec.drift_detection.enabled = false;
    assert!(matches!(case.decide(), Step::Idle { .. }));
}

#[test]
fn no_second_remediation_before_a_new_drift_check() {
    // The remediation apply finished after the last check; its effect is not known yet.
    let case = Case::new()
        .drift_check_in(120)
        .drifted(ago(600))
        .remediate(RemediationPolicy::Immediate)
        .last(
            ExecutionKind::Apply,
            ExecutionPhase::Succeeded,
            0,
            Some(ago(10)),
        );
    assert_eq!(
        case.decide(),
        Step::Idle {
            requeue_after: Some(secs(120))
        }
    );
}

#[test]
fn a_refused_remediation_is_not_repeated_for_the_same_generation() {
    let case = Case::new()
        .quiet()
        .drifted(ago(600))
        .remediate(RemediationPolicy::Immediate)
        .condition(
            condition::REMEDIATION_BLOCKED,
            "DestroyNotAllowed",
            "deletes 1",
            1,
        );
    assert_eq!(blocked_reason(&case.decide()), Some(BlockReason::Refused));
}

#[test]
fn a_refusal_of_an_older_generation_does_not_block() {
    let case = Case::new()
        .quiet()
        .drifted(ago(600))
        .remediate(RemediationPolicy::Immediate)
        .condition(
            condition::REMEDIATION_BLOCKED,
            "DestroyNotAllowed",
            "deletes 1",
            0,
        );
    assert_eq!(
        case.decide(),
        execute(ExecutionKind::Apply, Trigger::RemediateDrift)
    );
}

#[test]
fn a_refusal_is_lifted_by_a_source_change() {
    let mut case = Case::new().quiet().auto_approve().condition(
        condition::REMEDIATION_BLOCKED,
        "TooManyChanges",
        "7 > 5",
        1,
    );
    case.source_revision = Some("sha256:bbb".into());
    assert_eq!(
        case.decide(),
        execute(ExecutionKind::Apply, Trigger::SourceChanged)
    );
}

#[test]
fn manual_remediation_plans_once_per_episode() {
    // Last successful plan was before the drift was first seen.
    let case = Case::new()
        .quiet()
        .drifted(ago(30))
        .remediate(RemediationPolicy::Manual);
    assert_eq!(
        case.decide(),
        execute(ExecutionKind::Plan, Trigger::RemediateDrift)
    );
}

#[test]
fn manual_remediation_then_waits_for_approval() {
    let case = Case::new()
        .quiet()
        .drifted(ago(120))
        .remediate(RemediationPolicy::Manual)
        .pending("p9");
    let step = case.decide();
    assert_eq!(blocked_reason(&step), Some(BlockReason::AwaitingApproval));
}

#[test]
fn manual_remediation_with_auto_approve_still_waits_for_approval() {
    let case = Case::new()
        .quiet()
        .auto_approve()
        .drifted(ago(120))
        .remediate(RemediationPolicy::Manual)
        .pending("p9");
    let step = case.decide();
    assert_eq!(blocked_reason(&step), Some(BlockReason::AwaitingApproval));
    assert!(blocked_message(&step).starts_with("drift remediation plan p9"));
}

#[test]
fn manual_remediation_with_nothing_to_apply_is_idle() {
    let case = Case::new()
        .quiet()
        .drifted(ago(120))
        .remediate(RemediationPolicy::Manual);
    assert!(matches!(case.decide(), Step::Idle { .. }));
}

#[test]
fn scheduled_remediation_applies_inside_the_window() {
    // Wednesday 11:30-13:30 UTC.
    let case = Case::new()
        .quiet()
        .drifted(ago(60))
        .remediate(RemediationPolicy::Scheduled)
        .window("30 11 * * 3", "2h", None);
    assert_eq!(
        case.decide(),
        execute(ExecutionKind::Apply, Trigger::RemediateDrift)
    );
}

#[test]
fn scheduled_remediation_waits_for_the_next_window() {
    // Now is 14:00 in Berlin (CEST): the 14:30 window opens in half an hour, before the
    // next drift check (59 minutes away).
    let case = Case::new()
        .quiet()
        .drifted(ago(60))
        .remediate(RemediationPolicy::Scheduled)
        .window("30 14 * * *", "1h", Some("Europe/Berlin"));
    let step = case.decide();
    assert_eq!(
        blocked_reason(&step),
        Some(BlockReason::OutsideMaintenanceWindow)
    );
    assert_eq!(requeue(&step), Some(secs(1800)));
    assert!(blocked_message(&step).contains("2025-06-11T12:30:00Z"));
}

#[test]
fn an_invalid_window_blocks_scheduled_remediation() {
    let case = Case::new()
        .quiet()
        .drifted(ago(60))
        .remediate(RemediationPolicy::Scheduled)
        .window("0 2 * * 6", "1h", Some("Europe/Atlantis"));
    let step = case.decide();
    assert_eq!(
        blocked_reason(&step),
        Some(BlockReason::InvalidMaintenanceWindow)
    );
    assert!(blocked_message(&step).contains("Europe/Atlantis"));
}

// ---- 9. drift check ---------------------------------------------------------------------

#[test]
fn drift_check_runs_when_due() {
    let case = Case::new().drift_check_in(0);
    assert_eq!(
        case.decide(),
        execute(ExecutionKind::Drift, Trigger::DriftCheckDue)
    );
}

#[test]
fn idle_until_the_next_drift_check_with_jitter() {
    let mut case = Case::new().drift_check_in(90);
    case.spec.reconciliation.mode = ReconciliationMode::EventDriven;
    case.jitter = secs(30);
    assert_eq!(
        case.decide(),
        Step::Idle {
            requeue_after: Some(secs(120))
        }
    );
}

#[test]
fn first_drift_check_right_after_the_first_successful_reconcile() {
    let mut case = Case::new().quiet();
    case.status.drift = None;
    assert_eq!(
        case.decide(),
        execute(ExecutionKind::Drift, Trigger::DriftCheckDue)
    );
}

#[test]
fn no_drift_check_before_anything_was_reconciled() {
    let mut case = Case::new().quiet();
    case.status.drift = None;
    case.status.last_successful_reconcile_time = None;
    assert!(matches!(case.decide(), Step::Idle { .. }));
}

#[test]
fn no_drift_check_when_disabled() {
    let mut case = Case::new().drift_check_in(0);
    case.spec.drift_detection.enabled = false;
    case.spec.reconciliation.mode = ReconciliationMode::EventDriven;
    assert_eq!(
        case.decide(),
        Step::Idle {
            requeue_after: None
        }
    );
}

#[test]
fn a_restart_does_not_recheck_what_is_not_due() {
    // A freshly started operator sees only persisted timestamps: nothing is due.
    let case = Case::new();
    let step = case.decide();
    assert_eq!(
        step,
        Step::Idle {
            requeue_after: Some(secs(240))
        }
    );
}

// ---- 10. periodic reconcile -------------------------------------------------------------

fn periodic_due(mode: ReconciliationMode) -> Case {
    let mut case = Case::new();
    case.spec.reconciliation.mode = mode;
    case.spec.reconciliation.interval = secs(60).into();
    case.spec.drift_detection.interval = secs(3600).into();
    case
}

#[rstest]
#[case::hybrid_plans(periodic_due(ReconciliationMode::Hybrid), Some(ExecutionKind::Plan))]
#[case::periodic_plans(periodic_due(ReconciliationMode::Periodic), Some(ExecutionKind::Plan))]
#[case::auto_approved_applies(periodic_due(ReconciliationMode::Hybrid).auto_approve(), Some(ExecutionKind::Apply))]
#[case::suspended_plans(periodic_due(ReconciliationMode::Hybrid).auto_approve().suspended(), Some(ExecutionKind::Plan))]
#[case::paused_plans(periodic_due(ReconciliationMode::Hybrid).auto_approve().paused(), Some(ExecutionKind::Plan))]
#[case::drift_kept_by_policy_plans(
    periodic_due(ReconciliationMode::Hybrid).auto_approve().drifted(ago(60)),
    Some(ExecutionKind::Plan)
)]
#[case::event_driven_never(periodic_due(ReconciliationMode::EventDriven), None)]
fn periodic_reconcile(#[case] case: Case, #[case] kind: Option<ExecutionKind>) {
    let step = case.decide();
    match kind {
        Some(kind) => assert_eq!(step, execute(kind, Trigger::PeriodicReconcile)),
        None => assert_eq!(
            step,
            Step::Idle {
                requeue_after: Some(secs(3540))
            }
        ),
    }
}

#[test]
fn idle_requeue_is_the_earliest_event() {
    let mut case = Case::new().drift_check_in(500);
    case.spec.reconciliation.interval = secs(200).into();
    case.jitter = secs(3);
    // Periodic: 200 + 3 - 60 = 143s; drift: 500 + 3 = 503s.
    assert_eq!(
        case.decide(),
        Step::Idle {
            requeue_after: Some(secs(143))
        }
    );
}

// ---- priorities between stages ----------------------------------------------------------

#[test]
fn approval_goes_before_a_retry() {
    let mut case = Case::new().quiet().pending("p2").last(
        ExecutionKind::Drift,
        ExecutionPhase::Failed,
        1,
        Some(ago(60)),
    );
    case.annotation = Some("p2".into());
    assert!(matches!(
        case.decide(),
        Step::Execute {
            trigger: Trigger::Approved,
            ..
        }
    ));
}

#[test]
fn retry_goes_before_remediation() {
    let case = Case::new()
        .quiet()
        .drifted(ago(3000))
        .remediate(RemediationPolicy::Immediate)
        .last(
            ExecutionKind::Drift,
            ExecutionPhase::Failed,
            1,
            Some(ago(60)),
        );
    assert_eq!(case.decide(), execute(ExecutionKind::Drift, Trigger::Retry));
}

#[test]
fn remediation_goes_before_a_drift_check() {
    let case = Case::new()
        .drift_check_in(0)
        .drifted(ago(3000))
        .remediate(RemediationPolicy::Immediate);
    assert_eq!(
        case.decide(),
        execute(ExecutionKind::Apply, Trigger::RemediateDrift)
    );
}

#[test]
fn drift_check_goes_before_the_periodic_reconcile() {
    let mut case = periodic_due(ReconciliationMode::Hybrid).drift_check_in(0);
    case.spec.pangea.auto_approve = true;
    assert_eq!(
        case.decide(),
        execute(ExecutionKind::Drift, Trigger::DriftCheckDue)
    );
}

// ---- helpers ----------------------------------------------------------------------------

#[test]
fn decided_reasons_are_exactly_the_ones_decide_writes() {
    for reason in BlockReason::ALL {
        assert_eq!(
            BlockReason::is_decided_reason(reason.as_str()),
            reason.decided_here(),
            "{reason:?}"
        );
    }
    assert!(!BlockReason::is_decided_reason("DestroyNotAllowed"));
}

#[test]
fn trigger_names_are_distinct() {
    let all = [
        Trigger::SpecChanged,
        Trigger::SourceChanged,
        Trigger::Approved,
        Trigger::StaleApproval,
        Trigger::PendingChanges,
        Trigger::DriftCheckDue,
        Trigger::RemediateDrift,
        Trigger::PeriodicReconcile,
        Trigger::Retry,
    ];
    let names: std::collections::BTreeSet<_> = all.iter().map(|t| t.as_str()).collect();
    assert_eq!(names.len(), all.len());
}
