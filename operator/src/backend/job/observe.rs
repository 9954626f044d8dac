//! Reading executions back from Jobs and their pods, without a client: which execution a Job
//! runs (its labels and annotations), whether it still runs, and — when the executor could
//! not deliver a result — a typed failure that names the pod's own reason. Every way a pod
//! can end maps to an end here, so no execution wedges: succeeded, failed, deadline
//! exceeded, OOMKilled, image unavailable, evicted.

use jiff::Timestamp;
use k8s_openapi::api::{batch::v1::Job, core::v1::Pod};
use pangea_api::exec::{ExecutionError, ExecutionKind, ExecutionResult, Outcome, Progress};

use super::{
    build::{EXECUTION_ID, GENERATION, KIND, STARTED, TRIGGER},
    lock::{DeadPod, LockState},
};
use crate::{
    core::Execution,
    decide::{RunningExecution, Trigger},
};

/// Where a Job is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobState {
    /// Created, suspended, pending or running.
    Running,
    /// The Job (or its pod) ended. `failure` is the pod's own reason when the executor may not
    /// have delivered a result; `None` when it completed.
    Ended { failure: Option<PodFailure> },
}

/// Why a pod ended without the executor finishing on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodFailure {
    /// Stable reason (`OOMKilled`, `DeadlineExceeded`, `ImageUnavailable`, `Evicted`, …).
    pub reason: String,
    /// What Kubernetes said.
    pub message: String,
    /// Worth retrying as is (a deadline, an eviction) rather than after a fix.
    pub transient: bool,
}

/// Waiting reasons that never resolve by waiting: the image cannot be had.
const IMAGE_REASONS: [&str; 5] = [
    "ErrImagePull",
    "ImagePullBackOff",
    "ErrImageNeverPull",
    "InvalidImageName",
    "CreateContainerConfigError",
];

/// The execution a Job of ours runs, from its labels and annotations.
pub fn execution_of(job: &Job) -> Option<Execution> {
    let meta = &job.metadata;
    let label = |k: &str| meta.labels.as_ref()?.get(k).cloned();
    let note = |k: &str| meta.annotations.as_ref()?.get(k).cloned();
    let kind: ExecutionKind =
        serde_json::from_value(serde_json::Value::String(label(KIND)?)).ok()?;
    let started = note(STARTED)?.parse::<i64>().ok()?;
    Some(Execution {
        running: RunningExecution {
            id: note(EXECUTION_ID)?,
            kind,
            trigger: Trigger::parse(&note(TRIGGER)?).unwrap_or(Trigger::Retry),
            started: Timestamp::from_second(started).ok()?,
        },
        generation: label(GENERATION)?.parse().ok()?,
    })
}

/// How long a Job may stay suspended: it is created suspended and resumed a few calls later,
/// so one still suspended after this was left by an operator that died while launching it.
pub const LAUNCH_GRACE: std::time::Duration = std::time::Duration::from_secs(60);

/// Where `job` is, given its pods, at `now`.
pub fn state(job: &Job, pods: &[Pod], now: Timestamp) -> JobState {
    let condition = |type_: &str| {
        job.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == type_ && c.status == "True"))
    };
    if condition("Complete").is_some() {
        return JobState::Ended { failure: None };
    }
    if abandoned_launch(job, now) {
        return JobState::Ended {
            failure: Some(PodFailure {
                reason: "LaunchInterrupted".into(),
                message: "the operator stopped while starting this execution; it is started again"
                    .into(),
                transient: true,
            }),
        };
    }
    let from_job = condition("Failed").map(|failed| {
        let reason = failed.reason.clone().unwrap_or_else(|| "JobFailed".into());
        PodFailure {
            transient: reason == "DeadlineExceeded",
            reason,
            message: failed.message.clone().unwrap_or_default(),
        }
    });
    let from_pod = pods.iter().find_map(pod_failure);
    // The pod's own reason (memory, eviction, a lost node, its image) says most; a bare exit
    // code says less than the Job's deadline that may have caused it, so it waits for the
    // Job controller's verdict (a moment later).
    let failure = match (from_pod, from_job) {
        (Some(pod), None) if is_bare_exit(&pod) => None,
        (Some(pod), Some(job)) if is_bare_exit(&pod) && job.reason == "DeadlineExceeded" => {
            Some(job)
        }
        (Some(pod), _) => Some(pod),
        (None, job) => job,
    };
    match failure {
        Some(failure) => JobState::Ended {
            failure: Some(failure),
        },
        None => JobState::Running,
    }
}

fn is_bare_exit(f: &PodFailure) -> bool {
    matches!(f.reason.as_str(), "Killed" | "ExecutorExited")
}

fn abandoned_launch(job: &Job, now: Timestamp) -> bool {
    let suspended = job.spec.as_ref().and_then(|s| s.suspend) == Some(true);
    let created = job.metadata.creation_timestamp.as_ref().map(|t| t.0);
    suspended && created.is_some_and(|t| crate::schedule::add(t, LAUNCH_GRACE) < now)
}

/// A pod that ended (or cannot start) for a reason of its own.
fn pod_failure(pod: &Pod) -> Option<PodFailure> {
    let status = pod.status.as_ref()?;
    if status.reason.as_deref() == Some("Evicted") {
        return Some(PodFailure {
            reason: "Evicted".into(),
            message: status.message.clone().unwrap_or_default(),
            transient: true,
        });
    }
    if let Some(lost) = node_lost(pod) {
        return Some(lost);
    }
    let container = status.container_statuses.as_ref()?.first()?;
    let state = container.state.as_ref()?;
    if let Some(waiting) = &state.waiting
        && let Some(reason) = waiting.reason.as_deref()
        && IMAGE_REASONS.contains(&reason)
    {
        return Some(PodFailure {
            reason: "ImageUnavailable".into(),
            message: format!("{reason}: {}", waiting.message.clone().unwrap_or_default()),
            transient: false,
        });
    }
    let terminated = state.terminated.as_ref()?;
    if terminated.reason.as_deref() == Some("OOMKilled") {
        return Some(PodFailure {
            reason: "OOMKilled".into(),
            message:
                "the executor pod ran out of memory; raise spec.executor.resources.limits.memory"
                    .into(),
            transient: false,
        });
    }
    // The executor exits non-zero after delivering a failed result too; such a result wins
    // over this. Without one, the exit is all there is to say.
    (terminated.exit_code != 0).then(|| exited(terminated.exit_code))
}

/// The pod's node went away (the node controller marks such pods `NodeLost`, the taint
/// manager removes them), or the pod is removed for another disruption (`DisruptionTarget`:
/// preemption, an API eviction). The executor cannot report; waiting would last until the Job's
/// deadline.
fn node_lost(pod: &Pod) -> Option<PodFailure> {
    let status = pod.status.as_ref()?;
    if status.reason.as_deref() == Some("NodeLost") {
        return Some(PodFailure {
            reason: "NodeLost".into(),
            message: status
                .message
                .clone()
                .unwrap_or_else(|| "the pod's node was lost".into()),
            transient: true,
        });
    }
    let disruption = status
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "DisruptionTarget" && c.status == "True")?;
    let why = disruption.reason.as_deref().unwrap_or("DisruptionTarget");
    Some(PodFailure {
        // The taint manager removes pods of unreachable nodes; preemption and API evictions
        // are disruptions of another kind.
        reason: if why == "DeletionByTaintManager" {
            "NodeLost"
        } else {
            "Disrupted"
        }
        .into(),
        message: format!(
            "the pod is being removed ({why}): {}",
            disruption.message.as_deref().unwrap_or_default()
        ),
        transient: true,
    })
}

/// 128 + 9: the container's main process got SIGKILL (a kill, not a failure it reported).
const KILLED: i32 = 137;

fn exited(code: i32) -> PodFailure {
    if code == KILLED {
        PodFailure {
            reason: "Killed".into(),
            message: "the executor container was killed (exit code 137, SIGKILL)".into(),
            transient: true,
        }
    } else {
        PodFailure {
            reason: "ExecutorExited".into(),
            message: format!("the executor container exited with code {code}"),
            transient: true,
        }
    }
}

/// When the pod of an ended Job lived, for telling its state lock from anyone else's: its
/// container's start and end, or the Job's start and `now` when the pod is gone.
pub fn dead_pod(job: &Job, pods: &[Pod], now: Timestamp) -> DeadPod {
    let terminated = pods.iter().find_map(|p| {
        let state = p
            .status
            .as_ref()?
            .container_statuses
            .as_ref()?
            .first()?
            .state
            .as_ref()?;
        Some((p, state.terminated.as_ref()?))
    });
    let job_start = job
        .status
        .as_ref()
        .and_then(|s| s.start_time.as_ref())
        .map(|t| t.0)
        .or_else(|| job.metadata.creation_timestamp.as_ref().map(|t| t.0))
        .unwrap_or(now);
    match terminated {
        Some((pod, t)) => DeadPod {
            name: pod.metadata.name.clone().unwrap_or_default(),
            started: t.started_at.as_ref().map_or(job_start, |s| s.0),
            ended: t.finished_at.as_ref().map_or(now, |f| f.0),
        },
        None => DeadPod {
            name: pods
                .first()
                .and_then(|p| p.metadata.name.clone())
                .unwrap_or_default(),
            started: job_start,
            ended: now,
        },
    }
}

/// Reasons of a pod that never ran the executor: nothing can be in flight or locked.
const NEVER_RAN: [&str; 2] = ["ImageUnavailable", "LaunchInterrupted"];

/// What a pod that ended without a result may have left behind, for its result.
#[derive(Debug, Clone, Default)]
pub struct Remains {
    /// The progress it recorded.
    pub progress: Option<Progress>,
    /// Its state lock, as settled.
    pub lock: Option<LockState>,
}

/// Whether the pod may have run terraform: only then can it have left a lock or orphans.
pub fn may_have_run(failure: Option<&PodFailure>) -> bool {
    failure.is_none_or(|f| !NEVER_RAN.contains(&f.reason.as_str()))
}

/// The result to record for an ended Job: what its executor delivered, unless the pod's own
/// ending explains that failure better. An executor whose terraform the kernel killed for
/// memory reports "terraform failed (no output)", one stopped by the Job's deadline reports
/// "cancelled": symptoms, while what a person must change is the memory limit or the
/// timeout. The delivered result keeps everything else (revision, in-flight creates).
pub fn result_of(
    execution: &Execution,
    delivered: Option<ExecutionResult>,
    failure: Option<&PodFailure>,
) -> ExecutionResult {
    let Some(mut result) = delivered else {
        return undelivered(execution, failure, &Remains::default());
    };
    let failed = matches!(result.outcome, Outcome::Failed | Outcome::TimedOut);
    if let Some(f) = failure.filter(|f| failed && EXPLAINS_FAILURES.contains(&f.reason.as_str())) {
        let said = result
            .error
            .as_ref()
            .map(|e| format!("; the executor reported {}: {}", e.reason, e.message))
            .unwrap_or_default();
        let mut error = pod_error(f);
        error.message.push_str(&said);
        result.error = Some(error);
        result.outcome = outcome_for(f);
    }
    result
}

/// Pod endings that cause the executor's own failure rather than follow from it: the kernel
/// or Kubernetes stopped the pod while it ran.
const EXPLAINS_FAILURES: [&str; 3] = ["OOMKilled", "DeadlineExceeded", "Evicted"];

/// Whether every pod of a Job has stopped running (so the Job can stay for inspection
/// instead of being deleted to free its pod).
pub fn pods_done(pods: &[Pod]) -> bool {
    !pods.is_empty()
        && pods.iter().all(|pod| {
            let status = pod.status.as_ref();
            matches!(
                status.and_then(|s| s.phase.as_deref()),
                Some("Succeeded" | "Failed")
            ) || status
                .and_then(|s| s.container_statuses.as_ref())
                .and_then(|cs| cs.first()?.state.as_ref()?.terminated.as_ref())
                .is_some()
        })
}

/// The result of an execution whose executor delivered none: a failure naming the pod's
/// reason, or — for a Job that completed without a result — a failure that says so. An
/// apply or destroy that may have run is `ApplyInterrupted` / `DestroyInterrupted`: it may
/// have changed the cloud without recording it, so its message names the execution, the
/// pod's reason, the state lock and the creates it had in flight, which the result carries
/// to the next execution.
pub fn undelivered(
    execution: &Execution,
    failure: Option<&PodFailure>,
    remains: &Remains,
) -> ExecutionResult {
    let mut result = pod_ended(execution, failure);
    let in_flight = remains
        .progress
        .as_ref()
        .map(|p| p.in_flight_creates.clone())
        .unwrap_or_default();
    let interrupted = match execution.running.kind {
        ExecutionKind::Apply => Some(crate::status::INTERRUPTED),
        ExecutionKind::Destroy => Some("DestroyInterrupted"),
        _ => None,
    }
    .filter(|_| may_have_run(failure));
    if let Some(error) = result.error.as_mut() {
        let lock = remains
            .lock
            .as_ref()
            .map(LockState::sentence)
            .unwrap_or_default();
        let mut message = match interrupted {
            Some(reason) => {
                // A cause a person must fix (memory) keeps its name and stalls; anything else
                // is retried from the state.
                if failure.is_none_or(|f| f.transient) {
                    error.reason = reason.into();
                    error.transient = true;
                }
                format!(
                    "{} {} was interrupted: {}.",
                    execution.running.kind.as_str(),
                    execution.running.id,
                    error.message
                )
            }
            None => format!("{}.", error.message),
        };
        for sentence in [lock, in_flight_sentence(&in_flight)] {
            if !sentence.is_empty() {
                message.push(' ');
                message.push_str(&sentence);
            }
        }
        error.message = message;
    }
    result.in_flight_creates = in_flight;
    result
}

fn in_flight_sentence(creates: &[pangea_api::exec::InFlightCreate]) -> String {
    if creates.is_empty() {
        return String::new();
    }
    const NAMED: usize = 5;
    let names: Vec<&str> = creates
        .iter()
        .take(NAMED)
        .map(|c| c.address.as_str())
        .collect();
    let more = match creates.len().saturating_sub(NAMED) {
        0 => String::new(),
        n => format!(" and {n} more"),
    };
    format!(
        "{} create(s) possibly in flight, checked by the next run: {}{more}.",
        creates.len(),
        names.join(", ")
    )
}

fn pod_ended(execution: &Execution, failure: Option<&PodFailure>) -> ExecutionResult {
    let error = failure.map_or_else(
        || ExecutionError {
            transient: true,
            reason: "ResultMissing".into(),
            message: "the executor pod ended without delivering a result".into(),
        },
        pod_error,
    );
    ExecutionResult {
        id: execution.running.id.clone(),
        kind: execution.running.kind,
        outcome: failure.map_or(Outcome::Failed, outcome_for),
        source_revision: None,
        drift: None,
        plan: None,
        compliance: None,
        resources_total: None,
        outputs: Default::default(),
        error: Some(error),
        duration_seconds: 0.0,
        in_flight_creates: Vec::new(),
        adopted: Vec::new(),
        orphans: Vec::new(),
    }
}

fn pod_error(f: &PodFailure) -> ExecutionError {
    ExecutionError {
        transient: f.transient,
        reason: f.reason.clone(),
        message: if f.message.is_empty() {
            format!("the executor pod ended: {}", f.reason)
        } else {
            format!("the executor pod ended: {}", f.message)
        },
    }
}

fn outcome_for(f: &PodFailure) -> Outcome {
    if f.reason == "DeadlineExceeded" {
        Outcome::TimedOut
    } else {
        Outcome::Failed
    }
}
