//! Facts `decide` derives from what it observed: one place that reads the status, so the
//! stages read like the rules they implement.

use jiff::Timestamp;
use pangea_api::{
    common::condition,
    exec::ExecutionKind,
    template::{
        DriftStatus, ExecutionPhase, ExecutionStatus, PlanStatus, ReconciliationMode,
        RemediationPolicy,
    },
};

use super::{BlockReason, Observed, failed};
use crate::{conditions, schedule};

/// How the approvals given relate to the pending plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Approval<'a> {
    /// No approval, or nothing pending to approve.
    None,
    /// An approval names the pending plan's id.
    Matches(&'a str),
    /// Approvals were given but none names the pending plan.
    Stale { given: &'a str, current: &'a str },
}

/// The derived view of one observation.
pub(super) struct Facts<'a> {
    pub o: &'a Observed<'a>,
    /// The spec has a generation no plan or apply has evaluated yet.
    pub new_generation: bool,
    /// The runtime resolved a source revision other than the one last planned or applied.
    pub source_changed: bool,
}

impl<'a> Facts<'a> {
    pub fn of(o: &'a Observed<'a>) -> Self {
        let source_changed = o.source_revision.is_some_and(|current| {
            o.status.source.as_ref().map(|s| s.revision.as_str()) != Some(current)
        });
        Self {
            o,
            new_generation: o.status.observed_generation != Some(o.generation),
            source_changed,
        }
    }

    pub fn now(&self) -> Timestamp {
        self.o.now
    }

    /// The message of a stall that still holds: a non-transient failure for this generation
    /// that no source change has lifted.
    pub fn stall_message(&self) -> Option<String> {
        if self.source_changed {
            return None;
        }
        conditions::true_for(
            &self.o.status.conditions,
            condition::STALLED,
            self.o.generation,
        )
        .map(|c| c.message.clone())
    }

    /// No execution may start before this: the backoff after a failure.
    pub fn not_before(&self) -> Option<Timestamp> {
        let last = self.failure()?;
        let completed = last.completion_time.as_ref().map_or(self.now(), |t| t.0);
        Some(schedule::add(
            completed,
            schedule::backoff(last.consecutive_failures),
        ))
    }

    /// The last execution if it failed (refusals are not failures: they count 0).
    fn failure(&self) -> Option<&'a ExecutionStatus> {
        self.last_execution()
            .filter(|e| failed(e.phase) && e.consecutive_failures > 0)
    }

    /// The kind to run again: it failed, or it was left `Running` by an operator that
    /// stopped (nothing is in flight when `decide` gets this far).
    pub fn retry_kind(&self) -> Option<ExecutionKind> {
        let last = self.last_execution()?;
        let interrupted = last.phase == ExecutionPhase::Running;
        (interrupted || self.failure().is_some()).then_some(last.kind)
    }

    fn last_execution(&self) -> Option<&'a ExecutionStatus> {
        self.o.status.last_execution.as_ref()
    }

    /// The executor refused an apply for this generation and source for a safety limit: the
    /// reason (not one `decide` writes) and message kept in `RemediationBlocked`.
    pub fn refusal(&self) -> Option<String> {
        if self.source_changed {
            return None;
        }
        conditions::true_for(
            &self.o.status.conditions,
            condition::REMEDIATION_BLOCKED,
            self.o.generation,
        )
        .filter(|c| !BlockReason::is_decided_reason(&c.reason))
        .map(|c| format!("{}: {}", c.reason, c.message))
    }

    /// The last execution was an approved apply the executor refused as stale: the plan must
    /// be made again so the current id is published.
    pub fn stale_refusal(&self) -> bool {
        let refused_apply = self.last_execution().is_some_and(|e| {
            e.kind == ExecutionKind::Apply
                && e.phase == ExecutionPhase::Failed
                && e.consecutive_failures == 0
        });
        refused_apply
            && !self.source_changed
            && conditions::true_for(
                &self.o.status.conditions,
                condition::REMEDIATION_BLOCKED,
                self.o.generation,
            )
            .is_some_and(|c| c.reason == BlockReason::StaleApproval.as_str())
    }

    /// Why no apply may start now, if one may not: a refusal, `suspend`, or the pause
    /// annotation. Refusals come first so that recording another block cannot hide them.
    pub fn apply_hold(&self) -> Option<(BlockReason, String)> {
        if let Some(message) = self.refusal() {
            return Some((BlockReason::Refused, message));
        }
        self.change_hold()
    }

    /// `suspend` or the pause annotation.
    pub fn change_hold(&self) -> Option<(BlockReason, String)> {
        if self.o.spec.suspend {
            return Some((
                BlockReason::Suspended,
                "spec.suspend is true: no changes are applied; drift checks continue".into(),
            ));
        }
        if self.o.paused {
            return Some((
                BlockReason::Paused,
                "annotation pangea.io/pause is set: no changes are applied; drift checks continue"
                    .into(),
            ));
        }
        None
    }

    pub fn plan(&self) -> Option<&'a PlanStatus> {
        self.o.status.plan.as_ref()
    }

    /// The pending plan and its id, when there is one to approve.
    pub fn pending_plan(&self) -> Option<(&'a PlanStatus, &'a str)> {
        let plan = self.plan().filter(|p| p.pending)?;
        Some((plan, plan.id.as_deref()?))
    }

    pub fn approval(&self) -> Approval<'a> {
        let Some((_, current)) = self.pending_plan() else {
            return Approval::None;
        };
        let given: Vec<&'a str> = [
            self.o.spec.approve_plan.as_deref(),
            self.o.approved_by_annotation,
        ]
        .into_iter()
        .flatten()
        .filter(|id| !id.is_empty())
        .collect();
        if given.contains(&current) {
            Approval::Matches(current)
        } else if let Some(first) = given.first() {
            Approval::Stale {
                given: first,
                current,
            }
        } else {
            Approval::None
        }
    }

    pub fn auto_approve(&self) -> bool {
        self.o.spec.pangea.auto_approve
    }

    /// The drift status, when drift detection is on and the last check found drift.
    pub fn drift(&self) -> Option<&'a DriftStatus> {
        let enabled = self.o.spec.drift_detection.enabled;
        self.o
            .status
            .drift
            .as_ref()
            .filter(|d| enabled && d.detected)
    }

    /// Drift is detected and `autoRemediate` is on.
    pub fn remediation(&self) -> Option<(&'a DriftStatus, RemediationPolicy)> {
        let dd = &self.o.spec.drift_detection;
        let drift = self.drift().filter(|_| dd.auto_remediate)?;
        Some((drift, dd.remediation_policy))
    }

    /// Whether the drift policy lets an apply run now (ignoring suspend/pause).
    pub fn remediation_may_apply_now(&self) -> bool {
        match self.remediation() {
            Some((_, RemediationPolicy::Immediate)) => true,
            Some((_, RemediationPolicy::Scheduled)) => self.window_open() == Ok(true),
            _ => false,
        }
    }

    /// An apply that is not explicitly approved is acceptable: no drift, or the drift policy
    /// allows remediation now. Keeps periodic and auto-approved applies from overriding it.
    pub fn unapproved_apply_respects_drift_policy(&self) -> bool {
        self.drift().is_none() || self.remediation_may_apply_now()
    }

    /// Whether a maintenance window is open; the error names an invalid window.
    pub fn window_open(&self) -> Result<bool, String> {
        let windows = self.windows()?;
        Ok(schedule::is_open(&windows, self.now()))
    }

    pub fn next_window(&self) -> Option<Timestamp> {
        let windows = self.windows().ok()?;
        schedule::next_start(&windows, self.now())
    }

    fn windows(&self) -> Result<Vec<schedule::Window>, String> {
        schedule::parse_windows(&self.o.spec.drift_detection.maintenance_windows)
            .map_err(|e| e.to_string())
    }

    /// An apply finished after the last drift check: its effect is not known yet, so
    /// remediating again would loop.
    pub fn applied_since_last_check(&self, drift: &DriftStatus) -> bool {
        let Some(last) = self.last_execution() else {
            return false;
        };
        let check = drift.last_check_time.as_ref().map(|t| t.0);
        last.kind == ExecutionKind::Apply
            && match (&last.completion_time, check) {
                (Some(done), Some(check)) => done.0 >= check,
                _ => true,
            }
    }

    /// A plan succeeded after the current drift was first seen (manual remediation publishes
    /// one plan per drift episode).
    pub fn planned_since_detection(&self, drift: &DriftStatus) -> bool {
        let planned = self.o.status.last_successful_reconcile_time.as_ref();
        match (planned, drift.first_detected_time.as_ref()) {
            (Some(planned), Some(detected)) => planned.0 >= detected.0,
            (Some(_), None) => true,
            (None, _) => false,
        }
    }

    /// When the next drift check is due; `None` when drift detection is off or nothing was
    /// reconciled successfully yet (there is no state to compare).
    pub fn drift_check_due(&self) -> Option<Timestamp> {
        let dd = &self.o.spec.drift_detection;
        if !dd.enabled || self.o.status.last_successful_reconcile_time.is_none() {
            return None;
        }
        let last = self
            .o
            .status
            .drift
            .as_ref()
            .and_then(|d| d.last_check_time.as_ref());
        Some(match last {
            Some(last) => self.after_interval(last.0, dd.interval.into()),
            // First check right after the first successful reconcile.
            None => self.now(),
        })
    }

    /// When the periodic reconcile is due; `None` in mode `event-driven`.
    pub fn periodic_due(&self) -> Option<Timestamp> {
        let rec = &self.o.spec.reconciliation;
        if rec.mode == ReconciliationMode::EventDriven {
            return None;
        }
        let last = self.o.status.last_reconcile_time.as_ref()?;
        Some(self.after_interval(last.0, rec.interval.into()))
    }

    fn after_interval(&self, t: Timestamp, interval: std::time::Duration) -> Timestamp {
        schedule::add(schedule::add(t, interval), self.o.jitter)
    }
}
