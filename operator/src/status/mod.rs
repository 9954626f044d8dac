//! Pure transitions of `PangeaTemplateStatus`: when an execution starts ([`on_started`]),
//! when it finishes ([`on_finished`]), and when `decide` blocks or unblocks
//! ([`on_decided`]); plus [`content_changed`], which the runtime uses to skip writes.
//!
//! Rules that hold in every transition:
//! - Timestamps move only on real transitions, and are cut to whole seconds (the API stores
//!   no more), so a status read back compares equal to the one written.
//! - Recording the same result twice changes nothing (the execution id is remembered).
//! - Values come from the executor already redacted; nothing here adds any.
//! - Lists are bounded and cuts are counted.

mod drift;
mod execution;
pub use execution::INTERRUPTED;
mod plan;
#[cfg(test)]
mod tests;

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use pangea_api::{
    PangeaTemplateSpec, PangeaTemplateStatus,
    common::condition,
    exec::{ExecutionKind, ExecutionResult, Outcome},
    template::{ExecutionPhase, ExecutionStatus},
};

use crate::{
    conditions,
    decide::{BlockReason, RunningExecution, Step, Trigger},
};

/// Event reasons. Stable: people filter and alert on them.
pub mod reason {
    /// A drift check found drift (new, or different from the last check).
    pub const DRIFT_DETECTED: &str = "DriftDetected";
    /// An apply removed detected drift.
    pub const DRIFT_REMEDIATED: &str = "DriftRemediated";
    /// A plan with changes was published and waits to be applied.
    pub const PLAN_PENDING: &str = "PlanPending";
    /// An apply changed the infrastructure.
    pub const PLAN_APPLIED: &str = "PlanApplied";
    /// An apply was refused, or waits for approval or a window.
    pub const REMEDIATION_BLOCKED: &str = "RemediationBlocked";
    /// An execution failed or hit its deadline.
    pub const EXECUTION_FAILED: &str = "ExecutionFailed";
    /// An apply imported resources an interrupted apply had created outside state.
    pub const ORPHANS_ADOPTED: &str = "OrphansAdopted";
    /// A person resolved orphans an interrupted apply left (`pangea.io/forget-orphans`).
    pub const ORPHANS_FORGOTTEN: &str = "OrphansForgotten";
}

/// An Event for the runtime to publish on the template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Emit {
    /// `Warning` rather than `Normal`.
    pub warning: bool,
    /// One of [`reason`].
    pub reason: &'static str,
    /// The Event's note (never contains secrets).
    pub note: String,
}

/// An execution started: `Reconciling=True`, `lastExecution` running.
pub fn on_started(
    status: &PangeaTemplateStatus,
    running: &RunningExecution,
    generation: i64,
    now: Timestamp,
) -> PangeaTemplateStatus {
    let mut c = Change::new(status, generation, now);
    let failures = status
        .last_execution
        .as_ref()
        .map_or(0, |e| e.consecutive_failures);
    c.status.last_execution = Some(ExecutionStatus {
        id: running.id.clone(),
        kind: running.kind,
        phase: ExecutionPhase::Running,
        start_time: Some(stamp(running.started)),
        completion_time: None,
        message: None,
        consecutive_failures: failures,
    });
    c.set(
        condition::RECONCILING,
        true,
        running_reason(running.kind),
        &format!(
            "{} {} started ({})",
            running.kind.as_str(),
            running.id,
            running.trigger.as_str()
        ),
    );
    if running.kind == ExecutionKind::Apply {
        // A new apply lifts whatever blocked the previous one; a refusal is recorded again
        // when it finishes.
        c.clear(
            condition::REMEDIATION_BLOCKED,
            "Applying",
            &format!("apply {} started", running.id),
        );
    }
    c.status
}

/// An execution finished: everything its result tells, and the Events to publish.
///
/// `generation` is the generation the execution was started for. `jitter` is the template's
/// (the same `decide` gets), so `drift.nextCheckTime` is when the check really runs.
pub fn on_finished(
    status: &PangeaTemplateStatus,
    spec: &PangeaTemplateSpec,
    generation: i64,
    result: &ExecutionResult,
    trigger: Trigger,
    jitter: Duration,
    now: Timestamp,
) -> (PangeaTemplateStatus, Vec<Emit>) {
    if already_recorded(status, result) {
        return (status.clone(), Vec::new());
    }
    let mut c = Change::new(status, generation, now);
    let ctx = Finished {
        spec,
        result,
        trigger,
        jitter,
    };
    execution::record(&mut c, &ctx);
    execution::in_flight(&mut c, &ctx);
    execution::interruption(&mut c, &ctx);
    match result.outcome {
        Outcome::Succeeded => match result.kind {
            ExecutionKind::Plan => plan::planned(&mut c, &ctx),
            ExecutionKind::Apply => plan::applied(&mut c, &ctx),
            ExecutionKind::Drift => drift::checked(&mut c, &ctx),
            ExecutionKind::Destroy => plan::destroyed(&mut c, &ctx),
            // Compliance results are not part of this status transition yet.
            ExecutionKind::Compliance => {}
        },
        Outcome::Refused => execution::refused(&mut c, &ctx),
        Outcome::Failed | Outcome::TimedOut => execution::failed(&mut c, &ctx),
    }
    (c.status, c.emits)
}

/// Records what `decide` returned: a block it owns sets `RemediationBlocked` (with an Event
/// when it starts or its reason changes); `Idle` lifts such a block. Executions, awaits,
/// stalls and executor refusals are recorded by [`on_started`] / [`on_finished`].
pub fn on_decided(
    status: &PangeaTemplateStatus,
    step: &Step,
    generation: i64,
    now: Timestamp,
) -> (PangeaTemplateStatus, Vec<Emit>) {
    let mut c = Change::new(status, generation, now);
    let current = conditions::find(&status.conditions, condition::REMEDIATION_BLOCKED)
        .filter(|cond| cond.status == "True");
    match step {
        Step::Blocked {
            reason, message, ..
        } if reason.decided_here() => {
            let hides_refusal = current.is_some_and(|cond| {
                cond.observed_generation == Some(generation)
                    && !BlockReason::is_decided_reason(&cond.reason)
            });
            if hides_refusal {
                return (c.status, c.emits);
            }
            let starts = current.is_none_or(|cond| cond.reason != reason.as_str());
            c.set(
                condition::REMEDIATION_BLOCKED,
                true,
                reason.as_str(),
                message,
            );
            if starts {
                c.warn(reason::REMEDIATION_BLOCKED, message.clone());
            }
        }
        Step::Idle { .. } => {
            let lifted = current.is_some_and(|cond| {
                BlockReason::is_decided_reason(&cond.reason)
                    || cond.observed_generation != Some(generation)
            });
            if lifted {
                c.set(
                    condition::REMEDIATION_BLOCKED,
                    false,
                    "NotBlocked",
                    "nothing waits for a person or a window",
                );
            }
        }
        _ => {}
    }
    (c.status, c.emits)
}

/// Whether writing `new` would change anything. Condition order is not content.
pub fn content_changed(old: &PangeaTemplateStatus, new: &PangeaTemplateStatus) -> bool {
    if old.conditions.len() != new.conditions.len() {
        return true;
    }
    let same_conditions = old
        .conditions
        .iter()
        .all(|c| conditions::find(&new.conditions, &c.type_) == Some(c));
    let strip = |s: &PangeaTemplateStatus| PangeaTemplateStatus {
        conditions: Vec::new(),
        ..s.clone()
    };
    !same_conditions || strip(old) != strip(new)
}

/// The result was recorded already (its id is the last execution's, no longer running).
fn already_recorded(status: &PangeaTemplateStatus, result: &ExecutionResult) -> bool {
    status
        .last_execution
        .as_ref()
        .is_some_and(|e| e.id == result.id && e.phase != ExecutionPhase::Running)
}

fn running_reason(kind: ExecutionKind) -> &'static str {
    match kind {
        ExecutionKind::Plan => "Planning",
        ExecutionKind::Apply => "Applying",
        ExecutionKind::Drift => "CheckingDrift",
        ExecutionKind::Compliance => "CheckingCompliance",
        ExecutionKind::Destroy => "Destroying",
    }
}

/// `t` cut to whole seconds: what the API server keeps of a `Time`.
pub fn stamp(t: Timestamp) -> Time {
    Time(Timestamp::from_second(t.as_second()).unwrap_or(t))
}

/// The inputs of [`on_finished`] besides the status.
struct Finished<'a> {
    spec: &'a PangeaTemplateSpec,
    result: &'a ExecutionResult,
    trigger: Trigger,
    jitter: Duration,
}

impl Finished<'_> {
    /// `<kind> <id>`, how messages name the execution.
    fn name(&self) -> String {
        format!("{} {}", self.result.kind.as_str(), self.result.id)
    }
}

/// A status being changed, the Events the change produces, and the clock of the change.
struct Change {
    status: PangeaTemplateStatus,
    emits: Vec<Emit>,
    generation: i64,
    now: Time,
}

impl Change {
    fn new(status: &PangeaTemplateStatus, generation: i64, now: Timestamp) -> Self {
        Self {
            status: status.clone(),
            emits: Vec::new(),
            generation,
            now: stamp(now),
        }
    }

    fn set(&mut self, type_: &str, status: bool, reason: &str, message: &str) {
        conditions::set_condition(
            &mut self.status.conditions,
            type_,
            status,
            reason,
            message,
            self.generation,
            &self.now,
        );
    }

    /// Sets the condition `False` only if it is present: `Stalled` and `RemediationBlocked`
    /// appear once they were true, not before.
    fn clear(&mut self, type_: &str, reason: &str, message: &str) {
        if conditions::find(&self.status.conditions, type_).is_some() {
            self.set(type_, false, reason, message);
        }
    }

    fn warn(&mut self, reason: &'static str, note: String) {
        self.emits.push(Emit {
            warning: true,
            reason,
            note: conditions::bound(&note, conditions::MAX_MESSAGE_CHARS),
        });
    }

    fn inform(&mut self, reason: &'static str, note: String) {
        self.emits.push(Emit {
            warning: false,
            reason,
            note: conditions::bound(&note, conditions::MAX_MESSAGE_CHARS),
        });
    }
}
