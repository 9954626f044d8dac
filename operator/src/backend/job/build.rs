//! The objects of one execution in the Job backend, built without a client: the Job (suspended
//! until its inputs exist), the request ConfigMap, the Secret holding every secret file the
//! request names (mounted as files, never env or args) and the empty result ConfigMap the
//! executor fills. Labels and annotations carry the execution, so a restarted operator
//! rebuilds its books from the Jobs alone.

use std::collections::BTreeMap;

use k8s_openapi::{
    ByteString,
    api::{
        batch::v1::{Job, JobSpec},
        core::v1::{
            Capabilities, ConfigMap, ConfigMapVolumeSource, Container, EmptyDirVolumeSource,
            EnvVar, EnvVarSource, ObjectFieldSelector, PodSecurityContext, PodSpec,
            PodTemplateSpec, ResourceRequirements, SeccompProfile, Secret, SecretVolumeSource,
            SecurityContext, Volume, VolumeMount,
        },
    },
    apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference},
};
use pangea_api::exec::{ExecutionKind, Request};
use sha2::{Digest, Sha256};

use crate::core::Execution;

/// Label every object of ours carries (and the watch selects on).
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "pangea-operator");
/// Label: the template's UID (what executions are keyed by).
pub const TEMPLATE_UID: &str = "pangea.io/template-uid";
/// Label: the template's name (to wake its reconcile).
pub const TEMPLATE_NAME: &str = "pangea.io/template";
/// Label set once the result is recorded: the Job stays for people to inspect until its
/// TTL, but no longer counts as an execution.
pub const RECORDED: &str = "pangea.io/recorded";
/// Label: the execution kind.
pub const KIND: &str = "pangea.io/kind";
/// Label: `metadata.generation` the execution was started for.
pub const GENERATION: &str = "pangea.io/generation";
/// Annotation: the execution id (too long for a label).
pub const EXECUTION_ID: &str = "pangea.io/execution-id";
/// Annotation: why the execution was started.
pub const TRIGGER: &str = "pangea.io/trigger";
/// Annotation: when it was started (unix seconds).
pub const STARTED: &str = "pangea.io/started";

/// Where the pod finds its request, secrets and scratch space.
pub const REQUEST_DIR: &str = "/etc/pangea/request";
/// Secret files, read-only, 0400.
pub const SECRETS_DIR: &str = "/var/run/pangea/secrets";
const SCRATCH_DIR: &str = "/tmp";
const REQUEST_FILE: &str = "request.json";
/// Executor image's non-root user.
const EXECUTOR_UID: i64 = 65532;

/// Default seconds an executor Job runs beyond the execution's own deadline: room for the
/// executor to interrupt terraform gracefully (so it releases its state lock) and deliver its
/// result before Kubernetes ends the Job.
pub const DEFAULT_DEADLINE_MARGIN: i64 = 90;

/// Settings of executor pods that come from the operator, not the template.
#[derive(Clone, Debug)]
pub struct PodDefaults {
    /// Image when the template names none.
    pub image: String,
    /// `imagePullPolicy` (`Never` for images imported on the node).
    pub pull_policy: Option<String>,
    /// Service account when the template names none.
    pub service_account: String,
    /// Pods share the node's network (test clusters whose services listen on loopback).
    pub host_network: bool,
    /// Extra environment (e.g. an emulator endpoint, an apiserver address without a
    /// service proxy). Never secrets: those go in the Secret.
    pub env: Vec<(String, String)>,
    /// Seconds a finished Job stays for inspection before Kubernetes removes it (the operator
    /// deletes it earlier, once its result is recorded).
    pub ttl_after_finished: i32,
    /// Seconds added to the execution's deadline for the Job's `activeDeadlineSeconds`
    /// ([`DEFAULT_DEADLINE_MARGIN`]); zero or less lets Kubernetes end the pod first.
    pub deadline_margin_seconds: i64,
}

impl Default for PodDefaults {
    fn default() -> Self {
        Self {
            image: String::new(),
            pull_policy: None,
            service_account: String::new(),
            host_network: false,
            env: Vec::new(),
            ttl_after_finished: 0,
            deadline_margin_seconds: DEFAULT_DEADLINE_MARGIN,
        }
    }
}

/// What the template says about its pod.
#[derive(Clone, Debug, Default)]
pub struct PodOverrides {
    /// `spec.executor.image`.
    pub image: Option<String>,
    /// `spec.executor.serviceAccountName`.
    pub service_account: Option<String>,
    /// `spec.executor.resources`.
    pub resources: Option<ResourceRequirements>,
}

/// Everything one execution's objects are built from.
pub struct Launch<'a> {
    /// The template's namespace (every object lives there).
    pub namespace: &'a str,
    /// The template's name.
    pub template: &'a str,
    /// The template's UID.
    pub uid: &'a str,
    /// The execution.
    pub execution: &'a Execution,
    /// The execution's own deadline in seconds (the request's timeout); the Job's
    /// `activeDeadlineSeconds` adds the operator's margin.
    pub timeout_seconds: u64,
    /// Operator defaults.
    pub defaults: &'a PodDefaults,
    /// Template overrides.
    pub overrides: &'a PodOverrides,
}

/// `<template>-<kind>-<hash of the execution id>`: at most 63 characters (a Job's name is
/// a label value of its pods), readable, unique per execution.
pub fn job_name(template: &str, execution_id: &str, kind: ExecutionKind) -> String {
    let hash = hex::encode(Sha256::digest(execution_id.as_bytes()));
    let prefix: String = template.chars().take(40).collect();
    format!(
        "{}-{}-{}",
        prefix.trim_end_matches(['-', '.']),
        kind.as_str(),
        &hash[..8]
    )
}

/// The result ConfigMap's name for a Job.
pub fn result_name(job: &str) -> String {
    format!("{job}-result")
}

fn labels(l: &Launch<'_>) -> BTreeMap<String, String> {
    let running = &l.execution.running;
    BTreeMap::from([
        (MANAGED_BY.0.to_owned(), MANAGED_BY.1.to_owned()),
        (TEMPLATE_UID.to_owned(), l.uid.to_owned()),
        (TEMPLATE_NAME.to_owned(), l.template.to_owned()),
        (KIND.to_owned(), running.kind.as_str().to_owned()),
        (GENERATION.to_owned(), l.execution.generation.to_string()),
    ])
}

fn annotations(l: &Launch<'_>) -> BTreeMap<String, String> {
    let running = &l.execution.running;
    BTreeMap::from([
        (EXECUTION_ID.to_owned(), running.id.clone()),
        (TRIGGER.to_owned(), running.trigger.as_str().to_owned()),
        (STARTED.to_owned(), running.started.as_second().to_string()),
    ])
}

/// The Job, suspended (it starts once its ConfigMaps and Secret exist) and owned by the
/// template so it goes with it.
pub fn job(l: &Launch<'_>, owner: OwnerReference) -> Job {
    let name = job_name(
        l.template,
        &l.execution.running.id,
        l.execution.running.kind,
    );
    let result = result_name(&name);
    Job {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(l.namespace.to_owned()),
            labels: Some(labels(l)),
            annotations: Some(annotations(l)),
            owner_references: Some(vec![owner]),
            ..ObjectMeta::default()
        },
        spec: Some(JobSpec {
            suspend: Some(true),
            backoff_limit: Some(0),
            active_deadline_seconds: Some(active_deadline(
                l.timeout_seconds,
                l.defaults.deadline_margin_seconds,
            )),
            ttl_seconds_after_finished: Some(l.defaults.ttl_after_finished),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels(l)),
                    annotations: Some(annotations(l)),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod(l, &name, &result)),
            },
            ..JobSpec::default()
        }),
        status: None,
    }
}

/// The Job's `activeDeadlineSeconds`: the execution's deadline plus `margin`, at least one
/// second (Kubernetes refuses zero).
pub fn active_deadline(timeout_seconds: u64, margin: i64) -> i64 {
    i64::try_from(timeout_seconds)
        .unwrap_or(i64::MAX)
        .saturating_add(margin)
        .max(1)
}

fn pod(l: &Launch<'_>, job: &str, result: &str) -> PodSpec {
    let image = l
        .overrides
        .image
        .clone()
        .unwrap_or_else(|| l.defaults.image.clone());
    let service_account = l
        .overrides
        .service_account
        .clone()
        .unwrap_or_else(|| l.defaults.service_account.clone());
    PodSpec {
        restart_policy: Some("Never".into()),
        service_account_name: Some(service_account),
        host_network: l.defaults.host_network.then_some(true),
        enable_service_links: Some(false),
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(EXECUTOR_UID),
            run_as_group: Some(EXECUTOR_UID),
            fs_group: Some(EXECUTOR_UID),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".into(),
                ..SeccompProfile::default()
            }),
            ..PodSecurityContext::default()
        }),
        containers: vec![Container {
            name: "executor".into(),
            image: Some(image),
            image_pull_policy: l.defaults.pull_policy.clone(),
            args: Some(vec![
                "run".into(),
                "--request".into(),
                format!("{REQUEST_DIR}/{REQUEST_FILE}"),
                "--result-configmap".into(),
                result.into(),
                "--termination-log".into(),
                "/dev/termination-log".into(),
                "--cache-dir".into(),
                format!("{SCRATCH_DIR}/pangea"),
            ]),
            env: Some(env(l)),
            resources: l.overrides.resources.clone(),
            termination_message_policy: Some("File".into()),
            security_context: Some(SecurityContext {
                allow_privilege_escalation: Some(false),
                read_only_root_filesystem: Some(true),
                run_as_non_root: Some(true),
                capabilities: Some(Capabilities {
                    drop: Some(vec!["ALL".into()]),
                    ..Capabilities::default()
                }),
                ..SecurityContext::default()
            }),
            volume_mounts: Some(vec![
                mount("request", REQUEST_DIR),
                mount("secrets", SECRETS_DIR),
                VolumeMount {
                    read_only: Some(false),
                    ..mount("scratch", SCRATCH_DIR)
                },
            ]),
            ..Container::default()
        }],
        volumes: Some(vec![
            Volume {
                name: "request".into(),
                config_map: Some(ConfigMapVolumeSource {
                    name: request_name(job),
                    ..ConfigMapVolumeSource::default()
                }),
                ..Volume::default()
            },
            Volume {
                name: "secrets".into(),
                secret: Some(SecretVolumeSource {
                    secret_name: Some(secret_name(job)),
                    default_mode: Some(0o400),
                    ..SecretVolumeSource::default()
                }),
                ..Volume::default()
            },
            Volume {
                name: "scratch".into(),
                empty_dir: Some(EmptyDirVolumeSource::default()),
                ..Volume::default()
            },
        ]),
        ..PodSpec::default()
    }
}

fn mount(name: &str, path: &str) -> VolumeMount {
    VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        read_only: Some(true),
        ..VolumeMount::default()
    }
}

fn env(l: &Launch<'_>) -> Vec<EnvVar> {
    let mut env = vec![EnvVar {
        name: "POD_NAMESPACE".into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: "metadata.namespace".into(),
                ..ObjectFieldSelector::default()
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }];
    env.extend(l.defaults.env.iter().map(|(name, value)| EnvVar {
        name: name.clone(),
        value: Some(value.clone()),
        ..EnvVar::default()
    }));
    env
}

/// The request ConfigMap's name for a Job.
pub fn request_name(job: &str) -> String {
    format!("{job}-request")
}

/// The Secret's name for a Job.
pub fn secret_name(job: &str) -> String {
    format!("{job}-secrets")
}

/// An object of the execution, owned by its Job.
fn owned(name: String, namespace: &str, owner: &OwnerReference) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: Some(namespace.to_owned()),
        labels: Some(BTreeMap::from([(
            MANAGED_BY.0.to_owned(),
            MANAGED_BY.1.to_owned(),
        )])),
        owner_references: Some(vec![owner.clone()]),
        ..ObjectMeta::default()
    }
}

/// The request as the pod sees it: secret file paths point into the mounted Secret.
pub fn request_config_map(
    job: &str,
    namespace: &str,
    request: &Request,
    secrets_dir: Option<&std::path::Path>,
    owner: &OwnerReference,
) -> serde_json::Result<ConfigMap> {
    let mut json = serde_json::to_string(request)?;
    if let Some(dir) = secrets_dir {
        // The request names files in the operator's private directory; in the pod the same
        // files are in the Secret's mount. The directory is unique per execution.
        let host = serde_json::to_string(&format!("{}/", dir.display()))?;
        let pod = serde_json::to_string(&format!("{SECRETS_DIR}/"))?;
        json = json.replace(host.trim_matches('"'), pod.trim_matches('"'));
    }
    Ok(ConfigMap {
        metadata: owned(request_name(job), namespace, owner),
        data: Some(BTreeMap::from([(REQUEST_FILE.to_owned(), json)])),
        ..ConfigMap::default()
    })
}

/// The Secret with every secret file of the execution (empty when there are none: the pod
/// mounts it either way).
pub fn secret(
    job: &str,
    namespace: &str,
    files: BTreeMap<String, Vec<u8>>,
    owner: &OwnerReference,
) -> Secret {
    Secret {
        metadata: owned(secret_name(job), namespace, owner),
        data: Some(
            files
                .into_iter()
                .map(|(name, value)| (name, ByteString(value)))
                .collect(),
        ),
        type_: Some("Opaque".into()),
        ..Secret::default()
    }
}

/// The empty result ConfigMap the executor patches.
/// Label of result ConfigMaps (the operator watches their metadata).
pub const RESULT_ROLE: (&str, &str) = ("pangea.io/role", "result");

/// The empty ConfigMap the executor delivers into, labelled with the template of `job` so a
/// change wakes that template.
pub fn result_config_map(job: &Job, namespace: &str, owner: &OwnerReference) -> ConfigMap {
    let name = job.metadata.name.clone().unwrap_or_default();
    let mut metadata = owned(result_name(&name), namespace, owner);
    let labels = metadata.labels.get_or_insert_with(BTreeMap::new);
    labels.insert(RESULT_ROLE.0.to_owned(), RESULT_ROLE.1.to_owned());
    for key in [TEMPLATE_UID, TEMPLATE_NAME] {
        if let Some(value) = job.metadata.labels.as_ref().and_then(|l| l.get(key)) {
            labels.insert(key.to_owned(), value.clone());
        }
    }
    ConfigMap {
        metadata,
        ..ConfigMap::default()
    }
}

/// An owner reference to `job` (created already: it has a UID).
pub fn owner_of(job: &Job) -> Option<OwnerReference> {
    Some(OwnerReference {
        api_version: "batch/v1".into(),
        kind: "Job".into(),
        name: job.metadata.name.clone()?,
        uid: job.metadata.uid.clone()?,
        controller: Some(true),
        block_owner_deletion: Some(true),
    })
}
