//! The stages of `decide` below the spec-change and stall checks, in priority order, and the
//! agenda that turns their wishes into one [`Step`].

use std::time::Duration;

use jiff::Timestamp;
use pangea_api::{exec::ExecutionKind, template::RemediationPolicy};

use super::{
    BlockReason, Step, Trigger,
    facts::{Approval, Facts},
};
use crate::schedule;

/// A stage adds what it wants to the agenda.
type Stage = fn(&Facts, &mut Agenda);

/// Priority order; see the module docs of `decide`.
const STAGES: [Stage; 6] = [
    source_change,
    approval,
    retry,
    remediation,
    drift_check,
    periodic,
];

/// Runs the stages until one starts an execution.
pub(super) fn agenda(f: &Facts) -> Step {
    let mut agenda = Agenda::new(f.now(), f.not_before());
    for stage in STAGES {
        stage(f, &mut agenda);
        if agenda.run.is_some() {
            break;
        }
    }
    agenda.finish()
}

/// The step for a new spec (or source): plan, or apply when auto-approved and not held.
pub(super) fn new_input(f: &Facts, trigger: Trigger) -> Step {
    let kind = if f.auto_approve() && f.change_hold().is_none() {
        ExecutionKind::Apply
    } else {
        ExecutionKind::Plan
    };
    execute(kind, trigger, None)
}

fn source_change(f: &Facts, a: &mut Agenda) {
    if f.source_changed {
        a.run(new_input(f, Trigger::SourceChanged));
    }
}

fn approval(f: &Facts, a: &mut Agenda) {
    // The executor found another plan than the approved one: publish it, whatever id the
    // approval names by now (the person may already have copied the id from the refusal).
    if f.stale_refusal() {
        a.run(execute(ExecutionKind::Plan, Trigger::StaleApproval, None));
        return;
    }
    let Some((plan, id)) = f.pending_plan() else {
        return;
    };
    match f.approval() {
        Approval::Matches(approved) => {
            match f.apply_hold() {
                Some((reason, message)) => a.block(reason, message, None),
                None => a.run(execute(
                    ExecutionKind::Apply,
                    Trigger::Approved,
                    Some(approved.to_owned()),
                )),
            }
            return;
        }
        Approval::Stale { given, current } => a.block(
            BlockReason::StaleApproval,
            format!(
                "the approval names plan {given} but the current plan is {current}; \
                 approve {current} to apply it"
            ),
            None,
        ),
        Approval::None => {}
    }
    if !f.auto_approve() {
        a.block(
            BlockReason::AwaitingApproval,
            format!(
                "plan {id} ({}) waits for approval: set spec.approvePlan or annotation \
                 pangea.io/approve to {id}",
                counts(plan.add, plan.change, plan.destroy)
            ),
            None,
        );
        return;
    }
    if let Some((reason, message)) = f.apply_hold() {
        a.block(reason, message, None);
    } else if f.unapproved_apply_respects_drift_policy() {
        a.run(execute(ExecutionKind::Apply, Trigger::PendingChanges, None));
    }
}

fn retry(f: &Facts, a: &mut Agenda) {
    match f.retry_kind() {
        Some(ExecutionKind::Plan) => a.run(execute(ExecutionKind::Plan, Trigger::Retry, None)),
        Some(ExecutionKind::Drift) if f.o.spec.drift_detection.enabled => {
            a.run(execute(ExecutionKind::Drift, Trigger::Retry, None));
        }
        Some(ExecutionKind::Apply) => retry_apply(f, a),
        // Destroy belongs to deletion (the finalizer); compliance is not scheduled here.
        _ => {}
    }
}

/// An apply is retried only when one would be started without an approval now: an approved
/// apply is retried by the approval stage, and a remediation apply waits for its window.
fn retry_apply(f: &Facts, a: &mut Agenda) {
    let wanted = if f.auto_approve() {
        f.unapproved_apply_respects_drift_policy()
    } else {
        f.remediation_may_apply_now()
    };
    if !wanted {
        // The interrupted apply's plan is void: publish the one made after it, for approval.
        if f.o.status.interrupted_apply.is_some() && f.pending_plan().is_none() {
            a.run(execute(ExecutionKind::Plan, Trigger::Retry, None));
        }
        return;
    }
    match f.apply_hold() {
        Some((reason, message)) => a.block(reason, message, None),
        None => a.run(execute(ExecutionKind::Apply, Trigger::Retry, None)),
    }
}

fn remediation(f: &Facts, a: &mut Agenda) {
    let Some((drift, policy)) = f.remediation() else {
        return;
    };
    if f.applied_since_last_check(drift) {
        return;
    }
    if let Some((reason, message)) = f.apply_hold() {
        a.block(reason, message, None);
        return;
    }
    match policy {
        RemediationPolicy::Immediate => {
            a.run(execute(ExecutionKind::Apply, Trigger::RemediateDrift, None));
        }
        RemediationPolicy::Manual => manual_remediation(f, a, drift),
        RemediationPolicy::Scheduled => scheduled_remediation(f, a),
    }
}

/// Publish one plan per drift episode, then wait for its approval (the approval stage
/// applies it).
fn manual_remediation(f: &Facts, a: &mut Agenda, drift: &pangea_api::template::DriftStatus) {
    if !f.planned_since_detection(drift) {
        a.run(execute(ExecutionKind::Plan, Trigger::RemediateDrift, None));
        return;
    }
    if let Some((plan, id)) = f.pending_plan() {
        a.block(
            BlockReason::AwaitingApproval,
            format!(
                "drift remediation plan {id} ({}) waits for approval: set spec.approvePlan or \
                 annotation pangea.io/approve to {id}",
                counts(plan.add, plan.change, plan.destroy)
            ),
            None,
        );
    }
}

fn scheduled_remediation(f: &Facts, a: &mut Agenda) {
    match f.window_open() {
        Err(message) => a.block(BlockReason::InvalidMaintenanceWindow, message, None),
        Ok(true) => a.run(execute(ExecutionKind::Apply, Trigger::RemediateDrift, None)),
        Ok(false) => {
            let next = f.next_window();
            let message = match next {
                Some(t) => format!("drift is remediated in the next maintenance window, at {t}"),
                None => "no maintenance window opens in the future".to_owned(),
            };
            a.block(BlockReason::OutsideMaintenanceWindow, message, next);
        }
    }
}

fn drift_check(f: &Facts, a: &mut Agenda) {
    if let Some(due) = f.drift_check_due() {
        a.run_at(
            due,
            execute(ExecutionKind::Drift, Trigger::DriftCheckDue, None),
        );
    }
}

fn periodic(f: &Facts, a: &mut Agenda) {
    let Some(due) = f.periodic_due() else {
        return;
    };
    let apply =
        f.auto_approve() && f.apply_hold().is_none() && f.unapproved_apply_respects_drift_policy();
    let kind = if apply {
        ExecutionKind::Apply
    } else {
        ExecutionKind::Plan
    };
    a.run_at(due, execute(kind, Trigger::PeriodicReconcile, None));
}

fn execute(kind: ExecutionKind, trigger: Trigger, approved_plan_id: Option<String>) -> Step {
    Step::Execute {
        kind,
        trigger,
        approved_plan_id,
    }
}

fn counts(add: u32, change: u32, destroy: u32) -> String {
    format!("{add} to add, {change} to change, {destroy} to destroy")
}

/// Collects the stages' wishes: the first execution that may start, the first block, and
/// the earliest future time something becomes due.
struct Agenda {
    now: Timestamp,
    /// Backoff: executions wanted before this wait for it.
    not_before: Option<Timestamp>,
    run: Option<Step>,
    block: Option<(BlockReason, String)>,
    next: Option<Timestamp>,
}

impl Agenda {
    fn new(now: Timestamp, not_before: Option<Timestamp>) -> Self {
        Self {
            now,
            not_before: not_before.filter(|t| *t > now),
            run: None,
            block: None,
            next: None,
        }
    }

    /// Start `step` now, or when the backoff ends.
    fn run(&mut self, step: Step) {
        self.run_at(self.now, step);
    }

    /// Start `step` at `due` (or when the backoff ends, whichever is later).
    fn run_at(&mut self, due: Timestamp, step: Step) {
        let due = self.not_before.map_or(due, |nb| due.max(nb));
        if due <= self.now {
            self.run.get_or_insert(step);
        } else {
            self.wake_at(Some(due));
        }
    }

    /// Report a block (the first one wins) and optionally when it may lift.
    fn block(&mut self, reason: BlockReason, message: String, lifts_at: Option<Timestamp>) {
        self.block.get_or_insert((reason, message));
        self.wake_at(lifts_at);
    }

    fn wake_at(&mut self, t: Option<Timestamp>) {
        if let Some(t) = t.filter(|t| *t > self.now) {
            self.next = Some(self.next.map_or(t, |n| n.min(t)));
        }
    }

    fn finish(self) -> Step {
        if let Some(step) = self.run {
            return step;
        }
        let requeue_after = self.next.map(|t| requeue(self.now, t));
        match self.block {
            Some((reason, message)) => Step::Blocked {
                reason,
                message,
                requeue_after,
            },
            None => Step::Idle { requeue_after },
        }
    }
}

/// Time until `t`, at least a second so a due time a few milliseconds ahead does not spin.
fn requeue(now: Timestamp, t: Timestamp) -> Duration {
    schedule::until(now, t).max(Duration::from_secs(1))
}
