//! Running a pod to its end and reading what it reported. `kubectl logs` cannot reach a node
//! registered with a loopback IP, so a pod reports through its termination message.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use kube::{Api, api::PostParams};

use crate::{Error, Result, TestNamespace};

/// How a finished pod ended, from its first container's terminated state.
#[derive(Clone, Debug)]
pub struct PodOutcome {
    /// `Succeeded` or `Failed`.
    pub phase: String,
    /// Exit code of the container.
    pub exit_code: i32,
    /// Kubernetes' reason (`Completed`, `Error`, `OOMKilled`, ...).
    pub reason: String,
    /// The termination message (the container's `/dev/termination-log`).
    pub message: String,
    /// From creation to the end, as the test saw it.
    pub took: Duration,
}

/// Waits until the `default` service account of `ns` exists: the apiserver refuses pods
/// before kube-controller-manager has created it.
pub async fn wait_for_default_service_account(ns: &TestNamespace, timeout: Duration) -> Result<()> {
    let api: Api<ServiceAccount> = ns.api();
    let start = Instant::now();
    while api.get_opt("default").await?.is_none() {
        if start.elapsed() > timeout {
            return Err(Error::Node(format!(
                "no default service account in {} after {}s (is kube-controller-manager running?)",
                ns.name,
                timeout.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

/// Creates `pod` in `ns` and waits until it has ended.
pub async fn run_to_completion(
    ns: &TestNamespace,
    pod: &Pod,
    timeout: Duration,
) -> Result<PodOutcome> {
    wait_for_default_service_account(ns, timeout).await?;
    let api: Api<Pod> = ns.api();
    let name = pod.metadata.name.clone().unwrap_or_default();
    let start = Instant::now();
    api.create(&PostParams::default(), pod).await?;
    loop {
        let current = api.get(&name).await?;
        if let Some(outcome) = outcome_of(&current, start.elapsed()) {
            return Ok(outcome);
        }
        if start.elapsed() > timeout {
            return Err(Error::Node(format!(
                "pod {}/{name} did not finish in {}s; status: {}",
                ns.name,
                timeout.as_secs(),
                serde_json::to_string(&current.status).unwrap_or_default()
            )));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn outcome_of(pod: &Pod, took: Duration) -> Option<PodOutcome> {
    let status = pod.status.as_ref()?;
    let phase = status.phase.clone()?;
    if phase != "Succeeded" && phase != "Failed" {
        return None;
    }
    let terminated = status
        .container_statuses
        .as_ref()?
        .first()?
        .state
        .as_ref()?
        .terminated
        .clone()?;
    Some(PodOutcome {
        phase,
        exit_code: terminated.exit_code,
        reason: terminated.reason.unwrap_or_default(),
        message: terminated.message.unwrap_or_default(),
        took,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_running_pod_has_no_outcome_and_a_finished_one_does() {
        let running: Pod = serde_json::from_value(serde_json::json!({
            "status": {"phase": "Running"}
        }))
        .unwrap();
        assert!(outcome_of(&running, Duration::ZERO).is_none());
        let done: Pod = serde_json::from_value(serde_json::json!({
            "status": {"phase": "Failed", "containerStatuses": [{
                "name": "c", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"terminated": {"exitCode": 3, "reason": "Error", "message": "boom"}}
            }]}
        }))
        .unwrap();
        let outcome = outcome_of(&done, Duration::ZERO).unwrap();
        assert_eq!((outcome.exit_code, outcome.message.as_str()), (3, "boom"));
    }
}
