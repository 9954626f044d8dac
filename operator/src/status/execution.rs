//! What every finished execution records (last execution, reconcile times, source revision)
//! and the transitions of the two unhappy outcomes: a refusal and a failure.

use pangea_api::{
    common::condition,
    exec::{ExecutionError, ExecutionKind, Outcome},
    template::{ExecutionPhase, ExecutionStatus, ResourceCounts, SourceStatus},
};

use super::{Change, Finished, reason, stamp};
use crate::{conditions, schedule};

/// Common bookkeeping for every outcome.
pub(super) fn record(c: &mut Change, f: &Finished) {
    let r = f.result;
    let previous = c.status.last_execution.take();
    let same = previous.as_ref().filter(|e| e.id == r.id);
    let failures = previous.as_ref().map_or(0, |e| e.consecutive_failures);
    c.status.last_execution = Some(ExecutionStatus {
        id: r.id.clone(),
        kind: r.kind,
        phase: phase(r.outcome),
        start_time: same.and_then(|e| e.start_time.clone()),
        completion_time: Some(c.now.clone()),
        message: message(f),
        consecutive_failures: match r.outcome {
            // A refusal is the policy working, not the machinery failing: no backoff.
            Outcome::Succeeded | Outcome::Refused => 0,
            Outcome::Failed | Outcome::TimedOut => failures.saturating_add(1),
        },
    });
    c.set(
        condition::RECONCILING,
        false,
        outcome_name(r.outcome),
        &format!("{} finished ({})", f.name(), f.trigger.as_str()),
    );
    if is_reconcile(r.kind) {
        record_reconcile(c, f);
    }
    if r.outcome == Outcome::Succeeded
        && let Some(total) = r.resources_total
    {
        let counts = c
            .status
            .resources
            .get_or_insert_with(ResourceCounts::default);
        counts.total = total;
    }
}

/// The creates an interrupted apply left in flight. A successful execution read the journal
/// it was handed and reports what is still pending; any other result may have ended before
/// reading it (a pod that never started), so it only adds.
pub(super) fn in_flight(c: &mut Change, f: &Finished) {
    let reported = &f.result.in_flight_creates;
    let list = &mut c.status.in_flight_creates;
    if f.result.outcome == Outcome::Succeeded {
        list.clone_from(reported);
    } else {
        list.extend(reported.iter().cloned());
    }
    list.sort();
    list.dedup();
}

/// An apply that may have changed the cloud without recording it (its pod died, or it hit
/// its deadline) voids the plan it applied and binds the plans made after it
/// (`interruptedApply`, see the request's field of that name), so an approval given before
/// cannot apply again. A successful apply ends that.
pub(super) fn interruption(c: &mut Change, f: &Finished) {
    let r = f.result;
    if r.kind != ExecutionKind::Apply {
        return;
    }
    let interrupted = r.outcome == Outcome::TimedOut
        || (r.outcome == Outcome::Failed
            && r.error
                .as_ref()
                .is_some_and(|e| INTERRUPTING.contains(&e.reason.as_str())));
    if r.outcome == Outcome::Succeeded {
        c.status.interrupted_apply = None;
    } else if interrupted {
        c.status.interrupted_apply = Some(r.id.clone());
        if let Some(plan) = c.status.plan.as_mut() {
            plan.pending = false;
        }
    }
}

/// Reason of an apply whose executor pod died before reporting.
pub const INTERRUPTED: &str = "ApplyInterrupted";

/// Failure reasons that stop terraform mid-command from outside: the apply may have changed
/// the cloud without recording it.
const INTERRUPTING: [&str; 7] = [
    INTERRUPTED,
    "Killed",
    "OOMKilled",
    "Evicted",
    "NodeLost",
    "Disrupted",
    "DeadlineExceeded",
];

/// Plans and applies evaluate the spec: they move `observedGeneration` (whatever the
/// outcome, so `decide` tells "not tried yet" from "tried and failed"), the reconcile times
/// and the source revision.
fn record_reconcile(c: &mut Change, f: &Finished) {
    let r = f.result;
    c.status.observed_generation = Some(c.generation);
    c.status.last_reconcile_time = Some(c.now.clone());
    c.status.reconciliation_duration = Some(format_duration(r.duration_seconds));
    if r.outcome == Outcome::Succeeded {
        c.status.last_successful_reconcile_time = Some(c.now.clone());
    }
    if let Some(revision) = &r.source_revision {
        c.status.source = Some(SourceStatus {
            revision: revision.clone(),
        });
    }
}

/// The executor refused an apply before changing anything (safety limit, stale approval).
pub(super) fn refused(c: &mut Change, f: &Finished) {
    let err = error_or_default(f);
    c.set(condition::READY, false, &err.reason, &err.message);
    c.set(
        condition::REMEDIATION_BLOCKED,
        true,
        &err.reason,
        &err.message,
    );
    c.clear(
        condition::STALLED,
        "Refused",
        "the last execution was refused, not failed",
    );
    c.warn(
        reason::REMEDIATION_BLOCKED,
        format!("{} refused ({}): {}", f.name(), err.reason, err.message),
    );
}

/// The execution failed or hit its deadline. A non-transient failure stalls the template
/// (condition `Stalled`, which `decide` reads) until the spec or source changes.
pub(super) fn failed(c: &mut Change, f: &Finished) {
    let err = error_or_default(f);
    // Hitting the deadline is retried: the next attempt resumes from state.
    let transient = err.transient || f.result.outcome == Outcome::TimedOut;
    if is_reconcile(f.result.kind) || !transient {
        c.set(condition::READY, false, &err.reason, &err.message);
    }
    if transient {
        c.clear(
            condition::STALLED,
            "Retrying",
            "the last failure is transient and is retried with backoff",
        );
    } else {
        c.set(condition::STALLED, true, &err.reason, &err.message);
    }
    if f.result.kind == ExecutionKind::Drift && transient {
        // The check is retried after the backoff: that is when it next runs.
        let failures = c
            .status
            .last_execution
            .as_ref()
            .map_or(1, |e| e.consecutive_failures);
        let retry = schedule::add(c.now.0, schedule::backoff(failures));
        c.status
            .drift
            .get_or_insert_with(Default::default)
            .next_check_time = Some(stamp(retry));
    }
    c.warn(
        reason::EXECUTION_FAILED,
        format!("{} failed ({}): {}", f.name(), err.reason, err.message),
    );
}

fn is_reconcile(kind: ExecutionKind) -> bool {
    matches!(kind, ExecutionKind::Plan | ExecutionKind::Apply)
}

fn phase(outcome: Outcome) -> ExecutionPhase {
    match outcome {
        Outcome::Succeeded => ExecutionPhase::Succeeded,
        Outcome::Refused | Outcome::Failed => ExecutionPhase::Failed,
        Outcome::TimedOut => ExecutionPhase::TimedOut,
    }
}

fn outcome_name(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Succeeded => "Succeeded",
        Outcome::Refused => "Refused",
        Outcome::Failed => "Failed",
        Outcome::TimedOut => "TimedOut",
    }
}

fn message(f: &Finished) -> Option<String> {
    if f.result.outcome == Outcome::Succeeded {
        return None;
    }
    let err = error_or_default(f);
    let text = match f.result.outcome {
        Outcome::Refused => format!("refused ({}): {}", err.reason, err.message),
        _ => format!("{}: {}", err.reason, err.message),
    };
    Some(conditions::bound(&text, conditions::MAX_MESSAGE_CHARS))
}

/// The executor's classified error, or a stand-in when a result carries none.
fn error_or_default(f: &Finished) -> ExecutionError {
    if let Some(err) = &f.result.error {
        return err.clone();
    }
    let (reason, message) = match f.result.outcome {
        Outcome::TimedOut => ("TimedOut", "the execution hit its deadline"),
        Outcome::Refused => ("Refused", "the apply was refused"),
        _ => ("ExecutionFailed", "the execution failed without a reason"),
    };
    ExecutionError {
        transient: true,
        reason: reason.to_owned(),
        message: message.to_owned(),
    }
}

/// Seconds as a Go-style duration: `850ms`, `12.4s`, `3m5.2s`, `1h2m3s`.
pub(super) fn format_duration(seconds: f64) -> String {
    let seconds = if seconds.is_finite() {
        seconds.max(0.0)
    } else {
        0.0
    };
    if seconds < 1.0 {
        return format!("{}ms", (seconds * 1000.0).round() as u64);
    }
    let tenths = (seconds * 10.0).round() as u64;
    let (hours, rest) = (tenths / 36_000, tenths % 36_000);
    let (minutes, rest) = (rest / 600, rest % 600);
    let secs = format!("{}.{}s", rest / 10, rest % 10);
    let secs = secs.replace(".0s", "s");
    match (hours, minutes) {
        (0, 0) => secs,
        (0, m) => format!("{m}m{secs}"),
        (h, m) => format!("{h}h{m}m{secs}"),
    }
}
