//! The Job backend: one Kubernetes Job per execution, running `pangea-executor run` in its own
//! pod — the isolation boundary between a template (Ruby code) and the operator. The Jobs
//! themselves are the record: labels and annotations carry the execution, the executor
//! patches its typed result into a ConfigMap the Job owns, and a watch on our Jobs and pods
//! wakes the template's reconcile when one changes. A restarted operator therefore adopts
//! running Jobs and records results written while it was down, and never starts a second Job
//! for an execution that runs.
//!
//! Lifecycle of an execution: the Job is created suspended and owned by the template; its
//! request ConfigMap, Secret (every secret file, mounted read-only) and empty result
//! ConfigMap are created owned by the Job; then the Job is resumed. Acknowledging the
//! result deletes the Secret at once and labels the Job recorded: it stays (with its pod and
//! result) for `kubectl get jobs` until its TTL, then the garbage collector takes it all.
//! A deleted template's Jobs are deleted.

pub mod build;
pub mod lock;
pub mod observe;
mod results;
#[cfg(test)]
mod tests;

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::{Arc, Mutex},
    time::Instant,
};

use futures::{FutureExt, StreamExt, future::BoxFuture};
use jiff::Timestamp;
use k8s_openapi::{
    api::{
        batch::v1::Job,
        core::v1::{ConfigMap, Pod, Secret},
    },
    apimachinery::pkg::apis::meta::v1::OwnerReference,
};
use kube::{
    Api, Client, Resource, ResourceExt,
    api::{DeleteParams, Patch, PatchParams, PostParams, PropagationPolicy},
    core::PartialObjectMeta,
    runtime::{
        WatchStreamExt,
        reflector::{self, ObjectRef, Store},
        watcher,
    },
};
use pangea_api::{PangeaTemplate, exec::Request};
use tokio::sync::mpsc;

pub use self::build::{PodDefaults, PodOverrides};
use self::{
    build::{Launch, MANAGED_BY, RECORDED, TEMPLATE_NAME, TEMPLATE_UID},
    observe::JobState,
};
use super::{BackendError, ExecutionBackend, Observation, TemplateKey, TemplateRef};
use crate::{core::Execution, secrets::SecretFiles};

/// Runs executions as Jobs.
pub struct JobBackend {
    client: Client,
    defaults: PodDefaults,
    budget: usize,
    jobs: Store<Job>,
    pods: Store<Pod>,
    /// Metadata of result ConfigMaps: which results are delivered.
    results: Store<PartialObjectMeta<ConfigMap>>,
    /// Jobs created (`namespace/name`, and when) that the watch has not shown yet: counted
    /// against the budget so concurrent reconciles cannot overshoot it.
    created: Mutex<HashMap<String, Instant>>,
    /// Jobs whose result is recorded and whose deletion the watch has not shown yet.
    acked: Mutex<HashSet<String>>,
    /// Held from the budget check until the Job is counted: concurrent reconciles start
    /// one at a time, so they cannot both take the last slot.
    admission: tokio::sync::Mutex<()>,
}

impl JobBackend {
    /// A backend with at most `budget` executor Jobs running across the cluster. The returned
    /// future runs the watches (Jobs and pods of ours) and sends the template of every Job
    /// or pod that changed on `notify`; run it beside the controllers.
    pub fn new(
        client: Client,
        defaults: PodDefaults,
        budget: usize,
        notify: mpsc::UnboundedSender<TemplateRef>,
    ) -> (Arc<Self>, BoxFuture<'static, ()>) {
        let selector = format!("{}={}", MANAGED_BY.0, MANAGED_BY.1);
        let config = watcher::Config::default().labels(&selector);
        let (jobs, job_writer) = reflector::store();
        let (pods, pod_writer) = reflector::store();
        let job_events = watcher(Api::<Job>::all(client.clone()), config.clone())
            .default_backoff()
            .reflect(job_writer)
            .applied_objects()
            .filter_map(|job| async move { job.ok().and_then(|j| template_of(&j)) });
        let pod_events = watcher(Api::<Pod>::all(client.clone()), config)
            .default_backoff()
            .reflect(pod_writer)
            .applied_objects()
            .filter_map(|pod| async move { pod.ok().and_then(|p| template_of(&p)) });
        let (results, result_writer) = reflector::store();
        let result_selector = format!("{}={}", build::RESULT_ROLE.0, build::RESULT_ROLE.1);
        let result_events = watcher(
            Api::<PartialObjectMeta<ConfigMap>>::all(client.clone()),
            watcher::Config::default().labels(&result_selector),
        )
        .default_backoff()
        .reflect(result_writer)
        .applied_objects()
        .filter_map(|map| async move { map.ok().and_then(|m| template_of(&m)) });
        let watches = futures::stream::select(
            futures::stream::select(job_events, pod_events),
            result_events,
        )
        .for_each(move |template| {
            let _ = notify.send(template);
            async {}
        })
        .boxed();
        let backend = Arc::new(Self {
            client,
            defaults,
            budget: budget.max(1),
            jobs,
            pods,
            results,
            created: Mutex::default(),
            acked: Mutex::default(),
            admission: tokio::sync::Mutex::new(()),
        });
        (backend, watches)
    }

    /// Waits until both watches listed once (a restarted operator sees every Job first).
    pub async fn synced(&self) {
        let _ = self.jobs.wait_until_ready().await;
        let _ = self.pods.wait_until_ready().await;
    }

    fn running_jobs(&self) -> usize {
        let seen: HashSet<String> = self.jobs.state().iter().map(|j| key(j)).collect();
        let unseen = unseen_created(&mut lock(&self.created), &seen, Instant::now());
        let running = self
            .jobs
            .state()
            .iter()
            // Recorded or not: a Job recorded as soon as its result came still has a pod
            // exiting, and the budget bounds pods.
            .filter(|j| observe::state(j, &self.pods_of(j), Timestamp::now()) == JobState::Running)
            .count();
        running + unseen
    }

    fn jobs_of(&self, uid: &str) -> Vec<Arc<Job>> {
        let acked = lock(&self.acked);
        self.jobs
            .state()
            .into_iter()
            .filter(|j| j.labels().get(TEMPLATE_UID).map(String::as_str) == Some(uid))
            .filter(|j| !j.labels().contains_key(RECORDED) && !acked.contains(&key(j)))
            .collect()
    }

    fn pods_of(&self, job: &Job) -> Vec<Pod> {
        let name = job.name_any();
        self.pods
            .state()
            .into_iter()
            .filter(|p| p.namespace() == job.namespace())
            .filter(|p| p.labels().get("batch.kubernetes.io/job-name") == Some(&name))
            .map(|p| (*p).clone())
            .collect()
    }

    async fn launch(
        &self,
        template: &TemplateKey,
        execution: &Execution,
        request: Request,
        secrets: SecretFiles,
        overrides: &PodOverrides,
    ) -> Result<(), BackendError> {
        let admission = self.admission.lock().await;
        if self.running_jobs() >= self.budget {
            return Err(BackendError::Busy(format!(
                "the execution budget ({}) is in use",
                self.budget
            )));
        }
        let namespace = template.object.namespace.clone().unwrap_or_default();
        let launch = Launch {
            namespace: &namespace,
            template: &template.object.name,
            uid: &template.uid,
            execution,
            timeout_seconds: request.timeout_seconds,
            defaults: &self.defaults,
            overrides,
        };
        let jobs: Api<Job> = Api::namespaced(self.client.clone(), &namespace);
        let job = jobs
            .create(
                &PostParams::default(),
                &build::job(&launch, template_owner(template)),
            )
            .await
            .map_err(cluster)?;
        lock(&self.created).insert(key(&job), Instant::now());
        drop(admission);
        let inputs = self.inputs(&job, &namespace, &request, &secrets).await;
        drop(secrets);
        if let Err(error) = inputs {
            let _ = jobs
                .delete(&job.name_any(), &background())
                .await
                .inspect_err(|e| tracing::warn!(error = %e, "could not remove a half-made Job"));
            lock(&self.created).remove(&key(&job));
            return Err(error);
        }
        let resume = serde_json::json!({"spec": {"suspend": false}});
        jobs.patch(
            &job.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&resume),
        )
        .await
        .map_err(cluster)?;
        tracing::info!(job = %job.name_any(), id = %execution.running.id, "executor Job started");
        Ok(())
    }

    /// The request ConfigMap, the Secret and the empty result ConfigMap, owned by `job`.
    async fn inputs(
        &self,
        job: &Job,
        namespace: &str,
        request: &Request,
        secrets: &SecretFiles,
    ) -> Result<(), BackendError> {
        let owner = build::owner_of(job)
            .ok_or_else(|| BackendError::Cluster("the created Job has no UID".into()))?;
        let name = job.name_any();
        let request_map =
            build::request_config_map(&name, namespace, request, secrets.dir(), &owner)
                .map_err(|e| BackendError::Cluster(format!("encoding the request: {e}")))?;
        let files = read_files(secrets)
            .map_err(|e| BackendError::Cluster(format!("reading secret files: {e}")))?;
        let maps: Api<ConfigMap> = Api::namespaced(self.client.clone(), namespace);
        let secret_api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        let post = PostParams::default();
        maps.create(&post, &request_map).await.map_err(cluster)?;
        secret_api
            .create(&post, &build::secret(&name, namespace, files, &owner))
            .await
            .map_err(cluster)?;
        maps.create(&post, &build::result_config_map(job, namespace, &owner))
            .await
            .map_err(cluster)?;
        Ok(())
    }
}

impl ExecutionBackend for JobBackend {
    fn start<'a>(
        &'a self,
        template: &'a TemplateKey,
        execution: &'a Execution,
        request: Request,
        secrets: SecretFiles,
        overrides: &'a PodOverrides,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        self.launch(template, execution, request, secrets, overrides)
            .boxed()
    }

    fn observe<'a>(&'a self, uid: &'a str) -> BoxFuture<'a, Observation> {
        self.observe_now(uid).boxed()
    }

    fn ack<'a>(&'a self, uid: &'a str, execution_id: &'a str) -> BoxFuture<'a, ()> {
        let jobs = self
            .jobs_of(uid)
            .into_iter()
            .filter(|j| {
                j.annotations().get(build::EXECUTION_ID).map(String::as_str) == Some(execution_id)
            })
            .collect();
        self.record_jobs(jobs).boxed()
    }

    fn forget<'a>(&'a self, uid: &'a str) -> BoxFuture<'a, ()> {
        self.delete_jobs(self.jobs_of(uid)).boxed()
    }

    fn in_flight(&self) -> usize {
        self.running_jobs()
    }
}

/// How many Jobs this operator created are not in the watch's view yet. Each is counted until
/// the watch shows it (then the watch counts it), but a Job can also be gone before the watch
/// was ever consulted (deleted at once after a failure, expired with its TTL): after
/// [`observe::LAUNCH_GRACE`] its entry goes regardless, so no budget slot is held for good.
fn unseen_created(
    created: &mut HashMap<String, Instant>,
    seen: &HashSet<String>,
    now: Instant,
) -> usize {
    created.retain(|k, at| !seen.contains(k) && now.duration_since(*at) < observe::LAUNCH_GRACE);
    created.len()
}

/// Whether Kubernetes considers the Job finished (it will expire with its TTL).
fn finished(job: &Job) -> bool {
    job.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
        })
}

/// The template a Job or pod of ours belongs to.
fn template_of<K: Resource>(obj: &K) -> Option<TemplateRef> {
    let name = obj.meta().labels.as_ref()?.get(TEMPLATE_NAME)?;
    let namespace = obj.meta().namespace.as_deref()?;
    Some(ObjectRef::new(name).within(namespace))
}

fn template_owner(template: &TemplateKey) -> OwnerReference {
    OwnerReference {
        api_version: PangeaTemplate::api_version(&()).into_owned(),
        kind: PangeaTemplate::kind(&()).into_owned(),
        name: template.object.name.clone(),
        uid: template.uid.clone(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

fn key(job: &Job) -> String {
    format!("{}/{}", job.namespace().unwrap_or_default(), job.name_any())
}

fn background() -> DeleteParams {
    DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        ..DeleteParams::default()
    }
}

fn cluster(e: kube::Error) -> BackendError {
    BackendError::Cluster(e.to_string())
}

/// Every file of the execution's private directory, by name.
fn read_files(secrets: &SecretFiles) -> std::io::Result<BTreeMap<String, Vec<u8>>> {
    let mut files = BTreeMap::new();
    let Some(dir) = secrets.dir() else {
        return Ok(files);
    };
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            let name = entry.file_name().to_string_lossy().into_owned();
            files.insert(name, std::fs::read(entry.path())?);
        }
    }
    Ok(files)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
