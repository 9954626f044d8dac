//! `decide`: what to do next for one PangeaTemplate. This is the pure centre of the
//! reconcile pipeline: the runtime observes (spec, status, annotations, running execution,
//! clock), calls [`decide`], and carries out the [`Step`] it returns.
//!
//! The status is the only memory: every schedule comes from timestamps persisted in it, so an
//! operator restart does not re-check or re-plan anything that is not due.
//!
//! # Priority (first match wins)
//! 1. **Running**: an execution is in flight → [`Step::AwaitExecution`] until its deadline.
//! 2. **Spec change**: `generation != status.observedGeneration` → plan, or apply with
//!    `pangea.autoApprove` (plan only while suspended or paused). A person changed the spec,
//!    so this also lifts a stall and skips a running backoff.
//! 3. **Stall**: condition `Stalled=True` for this generation (a non-transient failure) →
//!    [`BlockReason::Stalled`] until the spec or the source changes. Nothing runs, drift
//!    checks included: they would fail the same way.
//! 4. **Backoff**: after a transient failure no execution starts before
//!    `completion + min(10s·2^(n-1), 10m)`; blocks below are still reported.
//! 5. **Source change**: the runtime's resolved source revision differs from
//!    `status.source.revision` → like a spec change.
//! 6. **Approval**: a pending plan approved by `spec.approvePlan` or annotation
//!    `pangea.io/approve` → apply that plan id; an approval naming another id →
//!    [`BlockReason::StaleApproval`]; an unapproved pending plan → apply with `autoApprove`,
//!    else [`BlockReason::AwaitingApproval`]. An approved apply the executor refused as
//!    stale → plan again, so the current id is published.
//! 7. **Retry**: re-run the kind that failed (or was interrupted by an operator restart).
//! 8. **Drift remediation** per `remediationPolicy` (immediate / manual / scheduled).
//! 9. **Drift check** at `lastCheckTime + interval + jitter`.
//! 10. **Periodic reconcile** (modes `periodic`, `hybrid`) at
//!     `lastReconcileTime + interval + jitter`.
//!
//! A blocked item does not stop lower items from running: a paused template still has its
//! drift checked. When nothing runs, the step carries the time to the earliest future event
//! (drift check, periodic reconcile, retry, window start), so the runtime never polls.
//!
//! # Safety rules that hold across the table
//! - `suspend` and `pangea.io/pause` stop every apply, never a drift check; spec changes and
//!   periodic reconciles still plan, so people see what would change.
//! - An apply the executor refused (safety limit) is not repeated for the same generation and
//!   source: the refusal is kept in condition `RemediationBlocked` (its reason is the
//!   executor's) and blocks applies until the spec or source changes, an apply succeeds or
//!   the drift it was remediating goes away.
//! - A remediation apply is not repeated before a newer drift check ran.
//! - A periodic or auto-approved apply never overrides the drift policy: while drift is
//!   detected and the policy does not allow remediation now, they only plan.

mod facts;
mod stages;
#[cfg(test)]
mod tests;

use std::time::Duration;

use jiff::Timestamp;
use pangea_api::{
    PangeaTemplateSpec, PangeaTemplateStatus, exec::ExecutionKind, template::ExecutionPhase,
};

use crate::schedule;

/// Shortest wait the runtime is asked for, so a deadline in the past does not spin.
pub const MIN_REQUEUE: Duration = Duration::from_secs(5);

/// Everything `decide` looks at, observed by the runtime.
#[derive(Debug, Clone)]
pub struct Observed<'a> {
    /// The template's spec.
    pub spec: &'a PangeaTemplateSpec,
    /// `metadata.generation`.
    pub generation: i64,
    /// The status; `Default` when the object has none yet.
    pub status: &'a PangeaTemplateStatus,
    /// Annotation `pangea.io/pause` is present.
    pub paused: bool,
    /// Value of annotation `pangea.io/approve`.
    pub approved_by_annotation: Option<&'a str>,
    /// The execution in flight for this template. The runtime must record a finished
    /// execution with `status::on_finished` before it drops it from here: a status whose
    /// last execution is still `Running` with nothing in flight means the operator lost it
    /// (restart) and it is run again.
    pub running: Option<&'a RunningExecution>,
    /// Deterministic per template (see [`schedule::jitter_for`]); spreads the fleet.
    pub jitter: Duration,
    /// The current time.
    pub now: Timestamp,
    /// Revision of the source as the runtime resolved it before deciding. It must be computed
    /// exactly like the executor's `sourceRevision` (`sha256:<hex>` of inline or ConfigMap
    /// content), which plans and applies record in `status.source.revision`; otherwise every
    /// reconcile would see a change. `None` when unknown (e.g. git without a resolved ref):
    /// then only spec changes count.
    pub source_revision: Option<&'a str>,
}

/// An execution in flight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningExecution {
    /// Execution id (the request's).
    pub id: String,
    /// What it does.
    pub kind: ExecutionKind,
    /// Why it was started.
    pub trigger: Trigger,
    /// When it started.
    pub started: Timestamp,
}

/// Why an execution is started. Bounded set: usable as a metrics label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Trigger {
    /// The spec has a new generation.
    SpecChanged,
    /// The source content changed without a spec change (e.g. the ConfigMap was edited).
    SourceChanged,
    /// A person approved the pending plan.
    Approved,
    /// An approved apply was refused as stale: plan again to publish the current id.
    StaleApproval,
    /// A pending plan is applied because `autoApprove` allows it (e.g. after a pause ended).
    PendingChanges,
    /// The drift check is due.
    DriftCheckDue,
    /// Detected drift is remediated per policy.
    RemediateDrift,
    /// The periodic reconcile is due.
    PeriodicReconcile,
    /// The previous execution failed transiently or was interrupted.
    Retry,
    /// The template is being deleted with `deletionPolicy: Destroy`.
    Deletion,
}

impl Trigger {
    /// Every trigger, for parsing.
    pub const ALL: [Self; 10] = [
        Self::SpecChanged,
        Self::SourceChanged,
        Self::Approved,
        Self::StaleApproval,
        Self::PendingChanges,
        Self::DriftCheckDue,
        Self::RemediateDrift,
        Self::PeriodicReconcile,
        Self::Retry,
        Self::Deletion,
    ];

    /// The trigger named `name` (as [`Trigger::as_str`] spells it).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// Kebab-case name, for metrics labels, logs and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SpecChanged => "spec-changed",
            Self::SourceChanged => "source-changed",
            Self::Approved => "approved",
            Self::StaleApproval => "stale-approval",
            Self::PendingChanges => "pending-changes",
            Self::DriftCheckDue => "drift-check-due",
            Self::RemediateDrift => "remediate-drift",
            Self::PeriodicReconcile => "periodic-reconcile",
            Self::Retry => "retry",
            Self::Deletion => "deletion",
        }
    }
}

/// What the runtime does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Nothing to do; look again after this long (None = only when something changes).
    Idle { requeue_after: Option<Duration> },
    /// An execution is running; check again by then (its deadline).
    AwaitExecution { requeue_after: Duration },
    /// Start an execution.
    Execute {
        kind: ExecutionKind,
        trigger: Trigger,
        approved_plan_id: Option<String>,
    },
    /// Progress needs a person or a window: suspended/paused with drift to remediate,
    /// outside the maintenance window, waiting for approval, stalled on a non-transient
    /// error. The runtime records it with `status::on_decided` (condition `RemediationBlocked`
    /// or `Stalled`) and publishes the Event that returns, once.
    Blocked {
        reason: BlockReason,
        message: String,
        requeue_after: Option<Duration>,
    },
}

/// Why progress is blocked. Its name is the condition reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BlockReason {
    /// `spec.suspend` is true.
    Suspended,
    /// Annotation `pangea.io/pause` is set.
    Paused,
    /// Scheduled remediation waits for the next maintenance window.
    OutsideMaintenanceWindow,
    /// A pending plan waits for `spec.approvePlan` or annotation `pangea.io/approve`.
    AwaitingApproval,
    /// The approval names a plan id that is not the current one.
    StaleApproval,
    /// A maintenance window cannot be evaluated (bad cron expression or time zone).
    InvalidMaintenanceWindow,
    /// The executor refused an apply (safety limit); condition `RemediationBlocked` already
    /// carries the executor's reason and message.
    Refused,
    /// A non-transient failure; condition `Stalled` already carries the cause.
    Stalled,
}

impl BlockReason {
    /// Every reason, for exhaustive checks.
    pub const ALL: [Self; 8] = [
        Self::Suspended,
        Self::Paused,
        Self::OutsideMaintenanceWindow,
        Self::AwaitingApproval,
        Self::StaleApproval,
        Self::InvalidMaintenanceWindow,
        Self::Refused,
        Self::Stalled,
    ];

    /// The condition reason.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Suspended => "Suspended",
            Self::Paused => "Paused",
            Self::OutsideMaintenanceWindow => "OutsideMaintenanceWindow",
            Self::AwaitingApproval => "AwaitingApproval",
            Self::StaleApproval => "StaleApproval",
            Self::InvalidMaintenanceWindow => "InvalidMaintenanceWindow",
            Self::Refused => "Refused",
            Self::Stalled => "Stalled",
        }
    }

    /// Whether `decide` itself writes this reason into `RemediationBlocked` (through
    /// `status::on_decided`). `Refused` and `Stalled` are recorded by `status::on_finished`
    /// with the executor's own reason instead.
    pub fn decided_here(self) -> bool {
        !matches!(self, Self::Refused | Self::Stalled)
    }

    /// Whether a condition reason is one `decide` writes (as opposed to an executor's).
    pub fn is_decided_reason(reason: &str) -> bool {
        Self::ALL
            .iter()
            .any(|r| r.decided_here() && r.as_str() == reason)
    }
}

/// What to do next. See the module docs for the priority table.
pub fn decide(o: &Observed) -> Step {
    if let Some(running) = o.running {
        return await_execution(o, running);
    }
    let facts = facts::Facts::of(o);
    if facts.new_generation {
        return stages::new_input(&facts, Trigger::SpecChanged);
    }
    if let Some(message) = facts.stall_message() {
        return Step::Blocked {
            reason: BlockReason::Stalled,
            message,
            requeue_after: None,
        };
    }
    stages::agenda(&facts)
}

/// Wait for the running execution until its deadline; the runtime enforces the deadline.
fn await_execution(o: &Observed, running: &RunningExecution) -> Step {
    let timeout = Duration::from(o.spec.reconciliation.timeout);
    let deadline = schedule::add(running.started, timeout);
    Step::AwaitExecution {
        requeue_after: schedule::until(o.now, deadline).max(MIN_REQUEUE),
    }
}

/// Whether an execution phase means the execution ended badly.
fn failed(phase: ExecutionPhase) -> bool {
    matches!(phase, ExecutionPhase::Failed | ExecutionPhase::TimedOut)
}
