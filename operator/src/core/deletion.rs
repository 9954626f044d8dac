//! Deletion, as part of `step`: `Orphan` lets go at once; `Destroy` runs a destroy
//! execution and lets go only after it succeeded. A destroy that cannot run or did not
//! succeed keeps the finalizer and says why in `RemediationBlocked` (reason
//! `DeletionBlocked`): a refusal waits for the spec to change (say, `allowDestroy` or the
//! policy), a failure is retried with the same backoff as any other execution.

use std::time::Duration;

use jiff::Timestamp;
use pangea_api::{
    common::condition,
    exec::{ExecutionKind, Outcome as ExecOutcome},
    template::{DeletionPolicy, ExecutionPhase},
};

use super::{Finished, Inputs, Next, Observed, Outcome, start};
use crate::{
    conditions,
    decide::{MIN_REQUEUE, Trigger},
    schedule,
    status::{self, Emit, reason},
};

/// Condition reason while a `Destroy` deletion cannot complete.
pub const DELETION_BLOCKED: &str = "DeletionBlocked";

pub(super) fn step(
    o: &Observed<'_>,
    finished: &[Finished],
    policy: DeletionPolicy,
    now: Timestamp,
    out: &mut Outcome,
) {
    if policy == DeletionPolicy::Orphan {
        out.next = Next::Finalize;
        return;
    }
    if let Some(f) = finished
        .iter()
        .rev()
        .find(|f| f.result.kind == ExecutionKind::Destroy)
    {
        if f.result.outcome == ExecOutcome::Succeeded {
            out.next = Next::Finalize;
            return;
        }
        let cause = f.result.error.as_ref().map_or_else(
            || "the destroy did not succeed".to_owned(),
            |e| format!("{}: {}", e.reason, e.message),
        );
        blocked(out, &cause, o.generation, now);
    }
    if let Some(running) = o.running {
        // Whatever runs (a destroy, or an apply that was running when the deletion came)
        // finishes first: one execution per template.
        let deadline = schedule::add(
            running.running.started,
            o.spec.reconciliation.timeout.into(),
        );
        out.next = Next::Requeue(schedule::until(now, deadline).max(MIN_REQUEUE));
        return;
    }
    match o.inputs {
        Inputs::Resolved { .. } => {}
        Inputs::Invalid(cause) => {
            blocked(out, cause, o.generation, now);
            out.next = Next::Requeue(Duration::from_secs(60));
            return;
        }
        Inputs::Unavailable(_) => {
            out.next = Next::Requeue(super::UNAVAILABLE_RETRY);
            return;
        }
    }
    if let Some(next) = wait_before_retry(o, out, now) {
        out.next = next;
        return;
    }
    out.start = Some(start(
        o,
        &out.status,
        ExecutionKind::Destroy,
        Trigger::Deletion,
        None,
        now,
    ));
    out.next = Next::Requeue(o.spec.reconciliation.timeout.into());
}

/// After an unsuccessful destroy: a refusal waits for a spec change, a failure for its
/// backoff. `None` when a destroy may start now.
fn wait_before_retry(o: &Observed<'_>, out: &Outcome, now: Timestamp) -> Option<Next> {
    let last = out
        .status
        .last_execution
        .as_ref()
        .filter(|e| e.kind == ExecutionKind::Destroy && e.phase != ExecutionPhase::Running)
        .filter(|e| e.phase != ExecutionPhase::Succeeded)?;
    let blocked_now = conditions::true_for(
        &out.status.conditions,
        condition::REMEDIATION_BLOCKED,
        o.generation,
    )
    .is_some_and(|c| c.reason == DELETION_BLOCKED);
    if last.consecutive_failures == 0 {
        // Refused: the same spec would be refused again.
        return blocked_now.then_some(Next::AwaitChange);
    }
    let completed = last.completion_time.as_ref().map_or(now, |t| t.0);
    let not_before = schedule::add(completed, schedule::backoff(last.consecutive_failures));
    (not_before > now).then(|| Next::Requeue(schedule::until(now, not_before).max(MIN_REQUEUE)))
}

/// `RemediationBlocked=True` (`DeletionBlocked`) with the cause; an Event when it is new and
/// the finished result did not already announce a block.
fn blocked(out: &mut Outcome, cause: &str, generation: i64, now: Timestamp) {
    let message = format!("deletion blocked: {cause}");
    let newly = conditions::set_condition(
        &mut out.status.conditions,
        condition::REMEDIATION_BLOCKED,
        true,
        DELETION_BLOCKED,
        &message,
        generation,
        &status::stamp(now),
    );
    let announced = out
        .emits
        .iter()
        .any(|e| e.reason == reason::REMEDIATION_BLOCKED);
    if newly && !announced {
        out.emits.push(Emit {
            warning: true,
            reason: reason::REMEDIATION_BLOCKED,
            note: conditions::bound(&message, conditions::MAX_MESSAGE_CHARS),
        });
    }
}
