//! `step`: one reconcile of one PangeaTemplate as a single pure function, and [`carry_out`],
//! the one order in which its [`Outcome`] is put into effect.
//!
//! The runtime reads the inputs (the object, what the execution backend holds for it, the
//! resolved references), calls [`step`], and hands the outcome to [`carry_out`] with its
//! [`Effects`]: start → write status → acknowledge the recorded results → publish Events.
//! The simulated scenarios in `tests/` drive the same two functions with effects of their
//! own, so they test the order production uses, not a copy of it.
//!
//! Why this order cannot lose a result: the backend keeps a finished result until it is
//! acknowledged, and the acknowledgement comes only after the status that records it was
//! written. A failed write (or a crash before it) means the same result is offered again and
//! recorded then; recording is idempotent (`status::on_finished` remembers the execution
//! id). A start whose status write failed is seen again as the backend's running execution
//! and recorded by the next step.

mod deletion;
mod invalid;
pub mod orphans;
#[cfg(test)]
mod tests;

use std::time::Duration;

pub use deletion::DELETION_BLOCKED;
use futures::future::BoxFuture;
pub use invalid::INVALID_SPEC;
use jiff::Timestamp;
use pangea_api::{
    PangeaTemplateSpec, PangeaTemplateStatus,
    exec::{ExecutionKind, ExecutionResult},
    template::{DeletionPolicy, ExecutionPhase},
};

use crate::{
    decide::{self, RunningExecution, Step, Trigger},
    status::{self, Emit},
};

/// An execution as the backend records it: what runs and the generation it was started for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Execution {
    /// What runs, why, and since when.
    pub running: RunningExecution,
    /// `metadata.generation` when it started.
    pub generation: i64,
}

/// A finished execution the backend holds until it is acknowledged.
#[derive(Debug, Clone, PartialEq)]
pub struct Finished {
    /// The execution as started.
    pub execution: Execution,
    /// Its typed result.
    pub result: ExecutionResult,
}

/// What became of the references the spec makes (Secrets, ConfigMaps, other templates).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inputs<'a> {
    /// Everything resolved; the source revision when it is known before running.
    Resolved { source_revision: Option<&'a str> },
    /// A reference a person must fix (missing Secret, key, template): the cause.
    Invalid(&'a str),
    /// The apiserver could not answer: nothing starts, a result is still recorded.
    Unavailable(&'a str),
}

/// Everything [`step`] looks at besides a finished result and deletion.
#[derive(Debug, Clone)]
pub struct Observed<'a> {
    /// `metadata.namespace`.
    pub namespace: &'a str,
    /// `metadata.name`.
    pub name: &'a str,
    /// The template's spec.
    pub spec: &'a PangeaTemplateSpec,
    /// `metadata.generation`.
    pub generation: i64,
    /// The status as read; `Default` when the object has none yet.
    pub status: &'a PangeaTemplateStatus,
    /// Annotation `pangea.io/pause` is present.
    pub paused: bool,
    /// Value of annotation `pangea.io/approve`.
    pub approved_by_annotation: Option<&'a str>,
    /// Value of annotation `pangea.io/forget-orphans` (see [`orphans`]).
    pub forget_orphans: Option<&'a str>,
    /// Deterministic per template (see `schedule::jitter_for`).
    pub jitter: Duration,
    /// The execution the backend runs for this template, if any.
    pub running: Option<&'a Execution>,
    /// The references, resolved or why not.
    pub inputs: Inputs<'a>,
}

/// An execution to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Start {
    /// The execution (id, kind, trigger, start time, generation).
    pub execution: Execution,
    /// Plan id an apply is approved for.
    pub approved_plan_id: Option<String>,
    /// What the status hands to the next executor, from the status this step writes (not the
    /// one it read: a result recorded in the same step may have changed it).
    pub carried: Carried,
}

/// Status the next executor needs (see the request's fields of the same names).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Carried {
    /// `status.inFlightCreates`.
    pub in_flight_creates: Vec<pangea_api::exec::InFlightCreate>,
    /// `status.interruptedApply`.
    pub interrupted_apply: Option<String>,
    /// Orphans a person resolved (`pangea.io/forget-orphans`).
    pub forget_orphans: Vec<String>,
}

/// When the runtime should look at the template again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// After this long.
    Requeue(Duration),
    /// Only when something changes (a watch event or a finished execution).
    AwaitChange,
    /// Deletion may complete: remove the finalizer.
    Finalize,
}

/// What one reconcile does.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The status to write (before any start; [`carry_out`] records a start itself).
    pub status: PangeaTemplateStatus,
    /// Events to publish.
    pub emits: Vec<Emit>,
    /// An execution to start.
    pub start: Option<Start>,
    /// The execution ids whose results this status records: acknowledge them after the write.
    pub ack: Vec<String>,
    /// When to look again.
    pub next: Next,
}

/// Waiting after a start the backend refused (budget full, apiserver trouble).
pub const START_RETRY: Duration = Duration::from_secs(10);
/// Waiting when the references could not be read.
pub const UNAVAILABLE_RETRY: Duration = Duration::from_secs(30);

/// One reconcile, decided. `finished` are the results the backend holds, oldest first: all
/// are recorded before anything is decided, so no decision is made on a status that misses
/// one. `deleting` is the deletion policy once the object is being deleted.
pub fn step(
    o: &Observed<'_>,
    finished: &[Finished],
    deleting: Option<DeletionPolicy>,
    now: Timestamp,
) -> Outcome {
    let (status, emits) = record(o, finished, now);
    let mut outcome = Outcome {
        status,
        emits,
        start: None,
        ack: finished.iter().map(|f| f.result.id.clone()).collect(),
        next: Next::AwaitChange,
    };
    match deleting {
        Some(policy) => deletion::step(o, finished, policy, now, &mut outcome),
        None => live(o, now, &mut outcome),
    }
    outcome
}

/// Records the finished results, then the running execution when the status does not show
/// it yet (its start was not written: a failed write or a restart).
fn record(
    o: &Observed<'_>,
    finished: &[Finished],
    now: Timestamp,
) -> (PangeaTemplateStatus, Vec<Emit>) {
    let mut status = o.status.clone();
    let mut emits = Vec::new();
    for f in finished {
        let (after, more) = status::on_finished(
            &status,
            o.spec,
            f.execution.generation,
            &f.result,
            f.execution.running.trigger,
            o.jitter,
            now,
        );
        status = after;
        emits.extend(more);
    }
    if let Some(running) = o.running
        && !shows_running(&status, &running.running.id)
    {
        status = status::on_started(&status, &running.running, running.generation, now);
    }
    (status, emits)
}

fn shows_running(status: &PangeaTemplateStatus, id: &str) -> bool {
    status
        .last_execution
        .as_ref()
        .is_some_and(|e| e.id == id && e.phase == ExecutionPhase::Running)
}

/// A template that is not being deleted: references, then `decide`.
fn live(o: &Observed<'_>, now: Timestamp, out: &mut Outcome) {
    let source_revision = match o.inputs {
        Inputs::Resolved { source_revision } => source_revision,
        Inputs::Invalid(message) => {
            invalid::stall(out, message, o.generation, now);
            return;
        }
        Inputs::Unavailable(_) => {
            out.next = Next::Requeue(UNAVAILABLE_RETRY);
            return;
        }
    };
    invalid::lift(&mut out.status, o.generation, now);
    orphans::forget(
        &mut out.status,
        &mut out.emits,
        o.forget_orphans,
        o.generation,
        now,
    );
    orphans::hint(&mut out.status, o.namespace, o.name);
    let decided = decide::decide(&decide::Observed {
        spec: o.spec,
        generation: o.generation,
        status: &out.status,
        paused: o.paused,
        approved_by_annotation: o.approved_by_annotation,
        running: o.running.map(|e| &e.running),
        jitter: o.jitter,
        now,
        source_revision,
    });
    let (status, emits) = status::on_decided(&out.status, &decided, o.generation, now);
    out.status = status;
    out.emits.extend(emits);
    out.next = match decided {
        Step::Idle { requeue_after } | Step::Blocked { requeue_after, .. } => {
            requeue_after.map_or(Next::AwaitChange, Next::Requeue)
        }
        Step::AwaitExecution { requeue_after } => Next::Requeue(requeue_after),
        Step::Execute {
            kind,
            trigger,
            approved_plan_id,
        } => {
            out.start = Some(start(o, &out.status, kind, trigger, approved_plan_id, now));
            // The backend announces completion; this is only the safety net.
            Next::Requeue(o.spec.reconciliation.timeout.into())
        }
    };
}

/// An execution of `kind` for this template, starting now.
fn start(
    o: &Observed<'_>,
    status: &PangeaTemplateStatus,
    kind: ExecutionKind,
    trigger: Trigger,
    approved_plan_id: Option<String>,
    now: Timestamp,
) -> Start {
    Start {
        carried: Carried {
            in_flight_creates: status.in_flight_creates.clone(),
            interrupted_apply: status.interrupted_apply.clone(),
            forget_orphans: orphans::forgotten(status, o.forget_orphans),
        },
        execution: Execution {
            running: RunningExecution {
                id: execution_id(o.namespace, o.name, kind, now),
                kind,
                trigger,
                started: now,
            },
            generation: o.generation,
        },
        approved_plan_id,
    }
}

/// `<namespace>.<name>.<kind>.<unix seconds>`: unique per template (one execution at a
/// time), unique across namespaces, readable in logs, and a valid object name.
pub fn execution_id(namespace: &str, name: &str, kind: ExecutionKind, now: Timestamp) -> String {
    format!("{namespace}.{name}.{}.{}", kind.as_str(), now.as_second())
}

/// A start the backend refused.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StartError(pub String);

/// The I/O of one reconcile, as [`carry_out`] needs it.
pub trait Effects: Sync {
    /// The write error.
    type Error: Send;

    /// Starts `start`.
    fn start<'a>(&'a self, start: &'a Start) -> BoxFuture<'a, Result<(), StartError>>;
    /// Writes the status (only when its content changed: the effect decides).
    fn write_status<'a>(
        &'a self,
        status: &'a PangeaTemplateStatus,
    ) -> BoxFuture<'a, Result<(), Self::Error>>;
    /// The status recording `execution_id`'s result is written: the backend may drop it.
    fn ack<'a>(&'a self, execution_id: &'a str) -> BoxFuture<'a, ()>;
    /// Publishes Events (failures are the effect's to log: the status is the record).
    fn publish<'a>(&'a self, emits: &'a [Emit]) -> BoxFuture<'a, ()>;
}

/// Puts `outcome` into effect: start → write status → acknowledge → publish. A refused
/// start leaves the status without it and looks again soon; a failed write stops before
/// the acknowledgement, so the result is offered again.
pub async fn carry_out<E: Effects>(
    mut outcome: Outcome,
    effects: &E,
    now: Timestamp,
) -> Result<Next, E::Error> {
    if let Some(start) = outcome.start.take() {
        match effects.start(&start).await {
            Ok(()) => {
                let execution = &start.execution;
                outcome.status = status::on_started(
                    &outcome.status,
                    &execution.running,
                    execution.generation,
                    now,
                );
            }
            Err(error) => {
                tracing::warn!(%error, "execution not started");
                outcome.next = Next::Requeue(START_RETRY);
            }
        }
    }
    effects.write_status(&outcome.status).await?;
    for id in &outcome.ack {
        effects.ack(id).await;
    }
    effects.publish(&outcome.emits).await;
    Ok(outcome.next)
}
