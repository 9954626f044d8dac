//! Reading results back and acknowledging them. The executor marks its result ConfigMap
//! delivered (annotation) in the same patch that writes the result; a metadata-only watch of
//! those ConfigMaps wakes the template at once, so a successful (or refused) result is
//! recorded as soon as it is there instead of after the pod has exited and the Job controller
//! has noticed (about 2.4 s per execution on the harness's node). A failure waits for the
//! pod's ending, which may explain it better. Results are read with one GET each.

use std::{collections::HashSet, sync::Arc};

use jiff::Timestamp;
use k8s_openapi::api::{
    batch::v1::Job,
    core::v1::{ConfigMap, Secret},
};
use kube::{
    Api, ResourceExt,
    api::{DeleteParams, Patch, PatchParams},
    runtime::reflector::ObjectRef,
};
use pangea_api::exec::{ExecutionResult, Outcome, Progress};
use pangea_executor::result_codec;

use super::{
    JobBackend, background, build,
    build::RECORDED,
    finished, key, lock,
    observe::{self, JobState},
};
use crate::{backend::Observation, core::Finished};

impl JobBackend {
    pub(super) async fn observe_now(&self, uid: &str) -> Observation {
        let mut observation = Observation::default();
        for job in self.jobs_of(uid) {
            let Some(execution) = observe::execution_of(&job) else {
                continue;
            };
            let state = observe::state(&job, &self.pods_of(&job), Timestamp::now());
            if state == JobState::Running && self.result_ready(&job) {
                // Delivered while its pod is still exiting: record a success or a refusal now
                // rather than seconds later, when the kubelet and the Job controller have
                // caught up. A failure waits for the pod's ending, which may explain it
                // better (terraform killed for memory, the Job's deadline).
                if let (Some(result), _) = self.delivered(&job).await
                    && matches!(result.outcome, Outcome::Succeeded | Outcome::Refused)
                {
                    observation.finished.push(Finished { execution, result });
                    continue;
                }
            }
            match state {
                JobState::Running => {
                    let newer = observation
                        .running
                        .as_ref()
                        .is_none_or(|r| r.running.started < execution.running.started);
                    if newer {
                        observation.running = Some(execution);
                    }
                }
                JobState::Ended { failure } => {
                    let (delivered, progress) = self.delivered(&job).await;
                    let result = match delivered {
                        Some(result) => {
                            observe::result_of(&execution, Some(result), failure.as_ref())
                        }
                        None => {
                            let remains = self.remains(&job, failure.as_ref(), progress).await;
                            observe::undelivered(&execution, failure.as_ref(), &remains)
                        }
                    };
                    observation.finished.push(Finished { execution, result });
                }
            }
        }
        observation
            .finished
            .sort_by_key(|f| f.execution.running.started);
        observation
    }

    /// The result the executor patched into the Job's result ConfigMap, if any, and the
    /// progress it recorded on the way.
    async fn delivered(&self, job: &Job) -> (Option<ExecutionResult>, Option<Progress>) {
        let maps: Api<ConfigMap> =
            Api::namespaced(self.client.clone(), &job.namespace().unwrap_or_default());
        let Some(map) = maps
            .get_opt(&build::result_name(&job.name_any()))
            .await
            .inspect_err(|e| tracing::warn!(error = %e, "reading a result ConfigMap"))
            .ok()
            .flatten()
        else {
            return (None, None);
        };
        let result = map
            .binary_data
            .as_ref()
            .and_then(|b| b.get(result_codec::RESULT_KEY))
            .and_then(|bytes| {
                result_codec::decode(&bytes.0)
                    .inspect_err(
                        |e| tracing::warn!(error = %e, job = %job.name_any(), "undecodable result"),
                    )
                    .ok()
            });
        let progress = map
            .data
            .as_ref()
            .and_then(|d| d.get(result_codec::PROGRESS_KEY))
            .and_then(|text| serde_json::from_str(text).ok());
        (result, progress)
    }

    /// What a pod that delivered nothing left: its recorded progress and, when it may have
    /// run terraform, its state lock — released if the dead pod took it.
    async fn remains(
        &self,
        job: &Job,
        failure: Option<&observe::PodFailure>,
        progress: Option<Progress>,
    ) -> observe::Remains {
        let lock = match progress.as_ref().and_then(|p| p.state_lock.as_ref()) {
            Some(at) if observe::may_have_run(failure) => {
                let pod = observe::dead_pod(job, &self.pods_of(job), Timestamp::now());
                Some(lock::settle(&self.client, at, &pod).await)
            }
            None if progress.is_none() && observe::may_have_run(failure) => {
                Some(lock::LockState::NotTaken)
            }
            _ => None,
        };
        observe::Remains { progress, lock }
    }

    /// Marks `jobs` recorded and removes their secrets; the Jobs expire with their TTL. A Job
    /// Kubernetes still runs without a delivered result (a pod that cannot pull its image) is
    /// deleted instead: it would hold its pod until the Job's deadline. One whose executor
    /// delivered is only exiting, and stays for `kubectl get jobs`.
    pub(super) async fn record_jobs(&self, jobs: Vec<Arc<Job>>) {
        let label = serde_json::json!({"metadata": {"labels": {RECORDED: "true"}}});
        // Kubernetes marks a Job failed a moment after its pod: a pod that ended already
        // (OOM-killed, say) keeps its Job for inspection like any finished one.
        let (ended, stuck): (Vec<_>, Vec<_>) = jobs.into_iter().partition(|j| {
            finished(j) || observe::pods_done(&self.pods_of(j)) || self.result_ready(j)
        });
        self.delete_jobs(stuck).await;
        for job in ended {
            let namespace = job.namespace().unwrap_or_default();
            let api: Api<Job> = Api::namespaced(self.client.clone(), &namespace);
            let marked = api
                .patch(
                    &job.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(&label),
                )
                .await;
            match marked {
                Ok(_) => {
                    lock(&self.acked).insert(key(&job));
                }
                Err(kube::Error::Api(e)) if e.code == 404 => {
                    lock(&self.acked).insert(key(&job));
                }
                Err(error) => {
                    tracing::warn!(%error, job = %job.name_any(), "marking a Job recorded");
                    continue;
                }
            }
            let secrets: Api<Secret> = Api::namespaced(self.client.clone(), &namespace);
            if let Err(error) = secrets
                .delete(
                    &build::secret_name(&job.name_any()),
                    &DeleteParams::default(),
                )
                .await
                && !matches!(&error, kube::Error::Api(e) if e.code == 404)
            {
                tracing::warn!(%error, job = %job.name_any(), "deleting a Job's secrets");
            }
        }
        self.forget_seen_acks();
    }

    /// Forget acknowledgements the watch has caught up with (the label, or the deletion).
    fn forget_seen_acks(&self) {
        let pending: HashSet<String> = self
            .jobs
            .state()
            .iter()
            .filter(|j| !j.labels().contains_key(RECORDED))
            .map(|j| key(j))
            .collect();
        lock(&self.acked).retain(|k| pending.contains(k));
    }

    pub(super) async fn delete_jobs(&self, jobs: Vec<Arc<Job>>) {
        for job in jobs {
            let api: Api<Job> =
                Api::namespaced(self.client.clone(), &job.namespace().unwrap_or_default());
            match api.delete(&job.name_any(), &background()).await {
                Ok(_) => {
                    lock(&self.acked).insert(key(&job));
                }
                Err(kube::Error::Api(e)) if e.code == 404 => {
                    lock(&self.acked).insert(key(&job));
                }
                Err(error) => tracing::warn!(%error, job = %job.name_any(), "deleting a Job"),
            }
        }
        self.forget_seen_acks();
    }
    /// Whether the executor has marked `job`'s result ConfigMap delivered (as the watch saw
    /// it; results of Jobs made before the mark existed are found when the Job ends).
    pub(super) fn result_ready(&self, job: &Job) -> bool {
        let name = build::result_name(&job.name_any());
        let reference = ObjectRef::new(&name).within(&job.namespace().unwrap_or_default());
        self.results.get(&reference).is_some_and(|meta| {
            meta.annotations()
                .contains_key(result_codec::DELIVERED_ANNOTATION)
        })
    }
}
