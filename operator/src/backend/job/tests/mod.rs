//! The Job backend's objects and how Jobs and pods read back, from fixtures.

use jiff::Timestamp;
use k8s_openapi::{
    api::{batch::v1::Job, core::v1::Pod},
    apimachinery::pkg::apis::meta::v1::OwnerReference,
};
use pangea_api::exec::{ExecutionKind, Outcome};

use super::{build::*, observe::*};
use crate::{
    core::Execution,
    decide::{RunningExecution, Trigger},
};

fn execution() -> Execution {
    Execution {
        running: RunningExecution {
            id: "team-a.web.apply.1749643200".into(),
            kind: ExecutionKind::Apply,
            trigger: Trigger::RemediateDrift,
            started: Timestamp::from_second(1_749_643_200).unwrap(),
        },
        generation: 3,
    }
}

fn now() -> Timestamp {
    Timestamp::from_second(1_749_643_300).unwrap()
}

fn owner() -> OwnerReference {
    OwnerReference {
        api_version: "pangea.io/v1alpha1".into(),
        kind: "PangeaTemplate".into(),
        name: "web".into(),
        uid: "uid-1".into(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

fn built(defaults: &PodDefaults, overrides: &PodOverrides) -> Job {
    let execution = execution();
    let launch = Launch {
        namespace: "team-a",
        template: "web",
        uid: "uid-1",
        execution: &execution,
        timeout_seconds: 600,
        defaults,
        overrides,
    };
    job(&launch, owner())
}

fn defaults() -> PodDefaults {
    PodDefaults {
        image: "executor:1".into(),
        service_account: "pangea-executor".into(),
        ttl_after_finished: 600,
        ..PodDefaults::default()
    }
}

#[test]
fn job_names_fit_a_label_and_differ_per_execution() {
    let long = "a".repeat(200);
    let name = job_name(&long, "x", ExecutionKind::Compliance);
    assert!(name.len() <= 63, "{name}");
    assert_ne!(
        job_name("web", "team-a.web.drift.1", ExecutionKind::Drift),
        job_name("web", "team-a.web.drift.2", ExecutionKind::Drift)
    );
    assert_eq!(
        job_name("web", "i", ExecutionKind::Drift),
        job_name("web", "i", ExecutionKind::Drift)
    );
}

#[test]
fn the_job_is_suspended_hardened_owned_and_carries_its_execution() {
    let job = built(&defaults(), &PodOverrides::default());
    let spec = job.spec.as_ref().unwrap();
    assert_eq!(spec.suspend, Some(true));
    assert_eq!(spec.backoff_limit, Some(0));
    assert_eq!(
        spec.active_deadline_seconds,
        Some(690),
        "the timeout plus the margin"
    );
    assert_eq!(spec.ttl_seconds_after_finished, Some(600));
    assert_eq!(
        job.metadata.owner_references.as_ref().unwrap()[0].kind,
        "PangeaTemplate"
    );
    let pod = spec.template.spec.as_ref().unwrap();
    let security = pod.security_context.as_ref().unwrap();
    assert_eq!(security.run_as_non_root, Some(true));
    assert_eq!(
        security.seccomp_profile.as_ref().unwrap().type_,
        "RuntimeDefault"
    );
    let container = &pod.containers[0];
    let hardening = container.security_context.as_ref().unwrap();
    assert_eq!(hardening.read_only_root_filesystem, Some(true));
    assert_eq!(hardening.allow_privilege_escalation, Some(false));
    assert_eq!(
        hardening.capabilities.as_ref().unwrap().drop.as_deref(),
        Some(&["ALL".to_owned()][..])
    );
    assert_eq!(pod.service_account_name.as_deref(), Some("pangea-executor"));
    assert_eq!(container.image.as_deref(), Some("executor:1"));
    // Nothing secret on the command line or in the environment: only names and paths.
    let args = container.args.as_ref().unwrap().join(" ");
    assert!(args.contains("--result-configmap web-apply-"), "{args}");
    let names: Vec<_> = container
        .env
        .as_ref()
        .unwrap()
        .iter()
        .map(|e| e.name.as_str())
        .collect();
    assert_eq!(names, ["POD_NAMESPACE"]);
    // The execution reads back from the Job alone.
    assert_eq!(execution_of(&job), Some(execution()));
}

#[test]
fn the_deadline_margin_moves_the_jobs_deadline_never_below_a_second() {
    assert_eq!(active_deadline(600, DEFAULT_DEADLINE_MARGIN), 690);
    assert_eq!(active_deadline(30, 0), 30);
    assert_eq!(active_deadline(30, -15), 15, "Kubernetes' deadline first");
    assert_eq!(active_deadline(30, -45), 1);
    assert_eq!(active_deadline(u64::MAX, 90), i64::MAX);
    let early = PodDefaults {
        deadline_margin_seconds: -15,
        ..defaults()
    };
    let job = built(&early, &PodOverrides::default());
    assert_eq!(job.spec.unwrap().active_deadline_seconds, Some(585));
}

#[test]
fn template_overrides_win() {
    let overrides = PodOverrides {
        image: Some("mine:2".into()),
        service_account: Some("team-a-cloud".into()),
        resources: None,
    };
    let job = built(&defaults(), &overrides);
    let pod = job.spec.unwrap().template.spec.unwrap();
    assert_eq!(pod.containers[0].image.as_deref(), Some("mine:2"));
    assert_eq!(pod.service_account_name.as_deref(), Some("team-a-cloud"));
}

#[test]
fn secret_paths_in_the_request_point_into_the_mounted_secret() {
    let request: pangea_api::exec::Request = serde_json::from_value(serde_json::json!({
        "id": "x", "kind": "apply", "template": "team-a/web",
        "source": {"content": {"content": "", "fileName": "main.rb"}},
        "sensitiveVariableFiles": {"db_password": "/var/lib/op/secrets/x/var-db_password"},
        "timeoutSeconds": 60
    }))
    .unwrap();
    let map = request_config_map(
        "web-apply-1",
        "team-a",
        &request,
        Some(std::path::Path::new("/var/lib/op/secrets/x")),
        &owner(),
    )
    .unwrap();
    let json = &map.data.unwrap()["request.json"];
    assert!(
        json.contains("\"/var/run/pangea/secrets/var-db_password\""),
        "{json}"
    );
    assert!(!json.contains("/var/lib/op"), "{json}");
}

fn job_with(status: serde_json::Value) -> Job {
    let mut job = built(&defaults(), &PodOverrides::default());
    job.status = Some(serde_json::from_value(status).unwrap());
    job
}

fn pod(status: serde_json::Value) -> Pod {
    serde_json::from_value(serde_json::json!({"metadata": {"name": "p"}, "status": status}))
        .unwrap()
}

#[test]
fn every_way_a_pod_ends_is_an_end_with_its_reason() {
    let running = job_with(serde_json::json!({"active": 1}));
    assert_eq!(state(&running, &[], now()), JobState::Running);

    let complete =
        job_with(serde_json::json!({"conditions": [{"type": "Complete", "status": "True"}]}));
    assert_eq!(
        state(&complete, &[], now()),
        JobState::Ended { failure: None }
    );

    let deadline = job_with(serde_json::json!({"conditions": [
        {"type": "Failed", "status": "True", "reason": "DeadlineExceeded", "message": "Job was active longer than specified deadline"}]}));
    let JobState::Ended { failure: Some(f) } = state(&deadline, &[], now()) else {
        panic!()
    };
    assert_eq!((f.reason.as_str(), f.transient), ("DeadlineExceeded", true));
    let result = undelivered(&execution(), Some(&f), &Remains::default());
    assert_eq!(result.outcome, Outcome::TimedOut);

    let oom = pod(
        serde_json::json!({"containerStatuses": [{"name": "executor", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
        "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}]}),
    );
    let JobState::Ended { failure: Some(f) } = state(&running, &[oom], now()) else {
        panic!()
    };
    assert_eq!(f.reason, "OOMKilled");
    assert!(f.message.contains("resources.limits.memory"));

    let image = pod(
        serde_json::json!({"containerStatuses": [{"name": "executor", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
        "state": {"waiting": {"reason": "ErrImageNeverPull", "message": "image not present"}}}]}),
    );
    let JobState::Ended { failure: Some(f) } = state(&running, &[image], now()) else {
        panic!()
    };
    assert_eq!(
        (f.reason.as_str(), f.transient),
        ("ImageUnavailable", false)
    );
    assert!(f.message.contains("ErrImageNeverPull"));

    let evicted = pod(
        serde_json::json!({"phase": "Failed", "reason": "Evicted", "message": "low on memory"}),
    );
    let JobState::Ended { failure: Some(f) } = state(&running, &[evicted], now()) else {
        panic!()
    };
    assert_eq!(f.reason, "Evicted");

    let pulling = pod(
        serde_json::json!({"containerStatuses": [{"name": "executor", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
        "state": {"waiting": {"reason": "ContainerCreating"}}}]}),
    );
    assert_eq!(state(&running, &[pulling], now()), JobState::Running);
}

fn drift_execution() -> Execution {
    let mut e = execution();
    e.running.kind = ExecutionKind::Drift;
    e.running.id = "team-a.web.drift.1749643200".into();
    e
}

#[test]
fn a_completed_job_without_a_result_says_so() {
    let result = undelivered(&drift_execution(), None, &Remains::default());
    assert_eq!(result.outcome, Outcome::Failed);
    assert_eq!(result.id, drift_execution().running.id);
    assert_eq!(result.error.unwrap().reason, "ResultMissing");
}

fn killed_pod() -> Pod {
    pod(
        serde_json::json!({"phase": "Failed", "containerStatuses": [{"name": "executor", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
        "state": {"terminated": {"exitCode": 137, "reason": "Error",
            "startedAt": "2025-06-11T12:00:05Z", "finishedAt": "2025-06-11T12:00:40Z"}}}]}),
    )
}

fn failed_job() -> Job {
    job_with(
        serde_json::json!({"failed": 1, "conditions": [{"type": "Failed", "status": "True",
        "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}]}),
    )
}

#[test]
fn a_killed_executor_ends_its_job_with_the_exit_named_once_the_job_failed() {
    let running = job_with(serde_json::json!({"active": 1}));
    // A bare exit waits for the Job controller: it may yet say the deadline caused it.
    assert_eq!(state(&running, &[killed_pod()], now()), JobState::Running);
    let failed = failed_job();
    let JobState::Ended { failure: Some(f) } = state(&failed, &[killed_pod()], now()) else {
        panic!()
    };
    assert_eq!((f.reason.as_str(), f.transient), ("Killed", true));
    assert!(f.message.contains("137"), "{}", f.message);
    let dead = dead_pod(&running, &[killed_pod()], now());
    assert_eq!(dead.started.to_string(), "2025-06-11T12:00:05Z");
    assert_eq!(dead.ended.to_string(), "2025-06-11T12:00:40Z");
}

#[test]
fn an_apply_whose_pod_died_is_interrupted_with_its_lock_and_creates_named() {
    let JobState::Ended { failure } = state(&failed_job(), &[killed_pod()], now()) else {
        panic!()
    };
    let create = pangea_api::exec::InFlightCreate {
        address: "aws_ssm_parameter.a".into(),
        resource_type: "aws_ssm_parameter".into(),
    };
    let remains = Remains {
        progress: Some(pangea_api::exec::Progress {
            in_flight_creates: vec![create.clone()],
            state_lock: None,
        }),
        lock: Some(super::lock::LockState::Free),
    };
    let result = undelivered(&execution(), failure.as_ref(), &remains);
    let error = result.error.unwrap();
    assert_eq!(
        (error.reason.as_str(), error.transient),
        ("ApplyInterrupted", true)
    );
    for part in [
        "apply team-a.web.apply.1749643200 was interrupted",
        "exit code 137",
        "The state lock is free.",
        "aws_ssm_parameter.a",
    ] {
        assert!(error.message.contains(part), "{part}: {}", error.message);
    }
    assert_eq!(result.in_flight_creates, vec![create]);

    // A drift check killed the same way keeps the pod's reason.
    let drift = undelivered(&drift_execution(), failure.as_ref(), &Remains::default());
    assert_eq!(drift.error.unwrap().reason, "Killed");
}

#[test]
fn a_pod_whose_node_is_lost_ends_the_job_at_once() {
    let running = job_with(serde_json::json!({"active": 1}));
    let lost = pod(serde_json::json!({"phase": "Running", "reason": "NodeLost",
        "message": "Node node-1 which was running pod web-apply-x is unresponsive"}));
    let JobState::Ended { failure: Some(f) } = state(&running, &[lost], now()) else {
        panic!()
    };
    assert_eq!((f.reason.as_str(), f.transient), ("NodeLost", true));
    assert!(f.message.contains("unresponsive"));
    let evicted = pod(serde_json::json!({"phase": "Running", "conditions": [
        {"type": "DisruptionTarget", "status": "True", "reason": "DeletionByTaintManager",
         "message": "Taint manager: deleting due to NoExecute taint"}]}));
    let JobState::Ended { failure: Some(f) } = state(&running, &[evicted], now()) else {
        panic!()
    };
    assert_eq!(f.reason, "NodeLost");
    assert!(
        f.message.contains("DeletionByTaintManager"),
        "{}",
        f.message
    );
}

#[test]
fn an_apply_whose_image_never_ran_is_not_interrupted() {
    let failure = PodFailure {
        reason: "ImageUnavailable".into(),
        message: "ErrImageNeverPull".into(),
        transient: false,
    };
    assert!(!may_have_run(Some(&failure)));
    let result = undelivered(&execution(), Some(&failure), &Remains::default());
    assert_eq!(result.error.unwrap().reason, "ImageUnavailable");
}

#[test]
fn a_job_left_suspended_by_a_crashed_launch_ends_and_is_retried() {
    let mut job = built(&defaults(), &PodOverrides::default());
    job.metadata.creation_timestamp =
        Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now()));
    // Being launched: its inputs are on their way.
    let soon = now() + jiff::SignedDuration::from_secs(5);
    assert_eq!(state(&job, &[], soon), JobState::Running);
    // Still suspended a minute later: the operator died between create and resume.
    let later = now() + jiff::SignedDuration::from_secs(61);
    let JobState::Ended { failure: Some(f) } = state(&job, &[], later) else {
        panic!("a suspended Job must not wedge the template")
    };
    assert_eq!(
        (f.reason.as_str(), f.transient),
        ("LaunchInterrupted", true)
    );
}

#[test]
fn a_result_configmap_wakes_its_template_and_is_found_by_its_role() {
    let job = built(&defaults(), &PodOverrides::default());
    let owner = k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
        api_version: "batch/v1".into(),
        kind: "Job".into(),
        name: "web-drift-1".into(),
        uid: "job-uid".into(),
        ..Default::default()
    };
    let map = result_config_map(&job, "team-a", &owner);
    let labels = map.metadata.labels.unwrap();
    assert_eq!(labels[RESULT_ROLE.0], RESULT_ROLE.1);
    let job_labels = job.metadata.labels.unwrap();
    for key in [TEMPLATE_UID, TEMPLATE_NAME] {
        assert_eq!(labels.get(key), job_labels.get(key), "{key}");
    }
    assert_eq!(
        map.metadata.name.unwrap(),
        result_name(job.metadata.name.as_deref().unwrap())
    );
}

/// What an executor delivers when its run failed: `reason` and a revision it knew.
fn delivered(outcome: Outcome, reason: &str, message: &str) -> pangea_api::exec::ExecutionResult {
    let mut result = undelivered(&execution(), None, &Remains::default());
    result.outcome = outcome;
    result.source_revision = Some("sha256:abc".into());
    result.in_flight_creates = vec![pangea_api::exec::InFlightCreate {
        address: "aws_vpc.main".into(),
        resource_type: "aws_vpc".into(),
    }];
    result.error = Some(pangea_api::exec::ExecutionError {
        transient: true,
        reason: reason.into(),
        message: message.into(),
    });
    result
}

fn ended(job: &Job, pods: &[Pod]) -> Option<PodFailure> {
    match state(job, pods, now()) {
        JobState::Ended { failure } => failure,
        JobState::Running => panic!("still running"),
    }
}

#[test]
fn a_child_killed_for_memory_is_reported_as_oomkilled_not_as_its_symptom() {
    // The kernel killed terraform; the executor lived, reported the symptom and exited 3;
    // containerd saw the OOM in the container's cgroup.
    let oom = pod(
        serde_json::json!({"phase": "Failed", "containerStatuses": [{"name": "executor",
        "image": "i", "imageID": "", "ready": false, "restartCount": 0,
        "state": {"terminated": {"exitCode": 3, "reason": "OOMKilled"}}}]}),
    );
    let running = job_with(serde_json::json!({"active": 1}));
    let failure = ended(&running, &[oom]);
    let said = delivered(
        Outcome::Failed,
        "TerraformFailed",
        "`terraform init` failed: (no output)",
    );
    let result = result_of(&execution(), Some(said.clone()), failure.as_ref());
    let error = result.error.as_ref().unwrap();
    assert_eq!(
        (error.reason.as_str(), error.transient),
        ("OOMKilled", false)
    );
    assert!(
        error.message.contains("resources.limits.memory"),
        "{}",
        error.message
    );
    assert!(
        error.message.ends_with(
            "the executor reported TerraformFailed: `terraform init` failed: (no output)"
        ),
        "{}",
        error.message
    );
    assert_eq!(result.outcome, Outcome::Failed);
    // Everything else the executor knew stays.
    assert_eq!(result.source_revision, said.source_revision);
    assert_eq!(result.in_flight_creates, said.in_flight_creates);
}

#[test]
fn a_job_ended_at_its_deadline_is_reported_as_timed_out_not_cancelled() {
    let deadline = job_with(serde_json::json!({"conditions": [
        {"type": "FailureTarget", "status": "True", "reason": "DeadlineExceeded", "message": "Job was active longer than specified deadline"},
        {"type": "Failed", "status": "True", "reason": "DeadlineExceeded", "message": "Job was active longer than specified deadline"}]}));
    let stopped = pod(
        serde_json::json!({"phase": "Failed", "containerStatuses": [{"name": "executor",
        "image": "i", "imageID": "", "ready": false, "restartCount": 0,
        "state": {"terminated": {"exitCode": 3, "reason": "Error"}}}]}),
    );
    let failure = ended(&deadline, &[stopped]);
    let said = delivered(
        Outcome::Failed,
        "Cancelled",
        "compiling the template was cancelled: the executor is stopping",
    );
    let result = result_of(&execution(), Some(said), failure.as_ref());
    assert_eq!(result.outcome, Outcome::TimedOut);
    let error = result.error.unwrap();
    assert_eq!(error.reason, "DeadlineExceeded");
    assert!(error.message.starts_with("the executor pod ended: Job was active longer than specified deadline; the executor reported Cancelled"), "{}", error.message);
}

#[test]
fn the_executors_own_result_stands_when_the_pod_ending_only_follows_from_it() {
    // Exit 3 after a failure of its own: Kubernetes only counts the failed pod.
    let failed = job_with(serde_json::json!({"conditions": [
        {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}]}));
    let failure = ended(&failed, &[]);
    let said = delivered(Outcome::Failed, "TemplateError", "web.rb:2: NoMethodError");
    assert_eq!(
        result_of(&execution(), Some(said.clone()), failure.as_ref()),
        said
    );
    // A result that succeeded is a success, whatever happened to the pod afterwards.
    let oom = PodFailure {
        reason: "OOMKilled".into(),
        message: String::new(),
        transient: false,
    };
    let mut fine = said;
    fine.outcome = Outcome::Succeeded;
    fine.error = None;
    assert_eq!(
        result_of(&execution(), Some(fine.clone()), Some(&oom)),
        fine
    );
    // Nothing delivered: the pod's reason alone.
    let alone = result_of(&execution(), None, Some(&oom));
    assert_eq!(alone.error.unwrap().reason, "OOMKilled");
}

#[test]
fn a_job_whose_pod_ended_is_kept_and_one_whose_pod_cannot_start_is_not() {
    let ended_pod = pod(serde_json::json!({"phase": "Failed"}));
    let terminated = pod(
        serde_json::json!({"phase": "Running", "containerStatuses": [{"name": "executor",
        "image": "i", "imageID": "", "ready": false, "restartCount": 0,
        "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}]}),
    );
    let waiting = pod(
        serde_json::json!({"phase": "Pending", "containerStatuses": [{"name": "executor",
        "image": "i", "imageID": "", "ready": false, "restartCount": 0,
        "state": {"waiting": {"reason": "ErrImageNeverPull"}}}]}),
    );
    assert!(pods_done(std::slice::from_ref(&ended_pod)));
    assert!(pods_done(&[terminated]));
    assert!(!pods_done(std::slice::from_ref(&waiting)));
    assert!(!pods_done(&[ended_pod, waiting]));
    assert!(
        !pods_done(&[]),
        "no pod seen: nothing is known to have ended"
    );
}

#[test]
fn a_created_job_counts_against_the_budget_until_seen_and_never_for_good() {
    use std::{
        collections::{HashMap, HashSet},
        time::{Duration, Instant},
    };
    let start = Instant::now();
    let mut created = HashMap::from([("ns/a".to_owned(), start), ("ns/b".to_owned(), start)]);
    let seen = HashSet::from(["ns/a".to_owned()]);
    assert_eq!(
        super::unseen_created(&mut created, &seen, start),
        1,
        "a is counted by the watch"
    );
    // b was deleted (or expired) before the watch was ever consulted: it must not hold a slot.
    let later = start + LAUNCH_GRACE + Duration::from_secs(1);
    assert_eq!(
        super::unseen_created(&mut created, &HashSet::new(), later),
        0
    );
    assert!(created.is_empty());
}
