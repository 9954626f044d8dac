//! `run --result-configmap NAME`: hands the typed result to the operator from a Job pod, where
//! stdout is not a contract and `kubectl logs` may not work. The operator pre-creates the
//! ConfigMap (empty, owned by the Job), so the pod only needs `patch` on configmaps; the
//! payload is [`result_codec`]'s, under its keys.

use std::time::Duration;

use anyhow::Context;
use k8s_openapi::{ByteString, api::core::v1::ConfigMap};
use kube::{
    Api, Client, Config,
    api::{Patch, PatchParams},
};
use pangea_api::exec::{ExecutionResult, Progress};
use pangea_executor::{
    execute::{ProgressSink, SinkFuture},
    result_codec::{self, DELIVERED_ANNOTATION, PROGRESS_KEY, RESULT_KEY, SUMMARY_KEY},
};

/// Where a pod finds its own namespace when `POD_NAMESPACE` is not set.
const SERVICE_ACCOUNT_NAMESPACE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";
/// Tries of one patch; the waits between them double from [`FIRST_BACKOFF`] (≈ 7.5 s in all),
/// enough to ride out an apiserver restart without holding a finished pod for long.
const ATTEMPTS: u32 = 5;
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// A patch of at most 1 MiB that takes longer has hung.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const FIELD_MANAGER: &str = "pangea-executor";

/// Writes `result` (encoded) and its summary into the existing ConfigMap `name` of
/// `namespace` (default: the pod's own), retrying transient API errors.
pub async fn deliver(
    result: &ExecutionResult,
    name: &str,
    namespace: Option<String>,
) -> anyhow::Result<()> {
    let encoded = result_codec::encode(result).context("encoding the result")?;
    let namespace = namespace.map_or_else(own_namespace, Ok)?;
    // Sizes only: the body must not reach the logs even at debug level.
    tracing::debug!(bytes = encoded.len(), %namespace, name, "delivering the result");
    let api: Api<ConfigMap> = Api::namespaced(client().await?, &namespace);
    let patch = Patch::Merge(serde_json::json!({
        "metadata": { "annotations": { DELIVERED_ANNOTATION: "true" } },
        "binaryData": { RESULT_KEY: ByteString(encoded) },
        "data": { SUMMARY_KEY: result_codec::summary(result) },
    }));
    patch_with_retries(&api, name, &patch)
        .await
        .map_err(plain)
        .with_context(|| format!("patching ConfigMap {namespace}/{name}"))
}

/// Publishes an execution's progress into its result ConfigMap (key
/// [`result_codec::PROGRESS_KEY`]), so the operator learns what a pod that dies leaves behind.
pub struct ConfigMapProgress {
    api: Api<ConfigMap>,
    name: String,
}

impl ConfigMapProgress {
    /// The sink for ConfigMap `name` of `namespace` (default: the pod's own).
    pub async fn new(name: &str, namespace: Option<String>) -> anyhow::Result<Self> {
        let namespace = namespace.map_or_else(own_namespace, Ok)?;
        Ok(Self {
            api: Api::namespaced(client().await?, &namespace),
            name: name.to_owned(),
        })
    }
}

impl ProgressSink for ConfigMapProgress {
    fn publish<'a>(&'a self, progress: &'a Progress) -> SinkFuture<'a> {
        Box::pin(async move {
            let json = serde_json::to_string(progress).map_err(|e| e.to_string())?;
            let patch = Patch::Merge(serde_json::json!({"data": { PROGRESS_KEY: json }}));
            patch_with_retries(&self.api, &self.name, &patch)
                .await
                .map_err(|e| plain(e).to_string())
        })
    }
}

/// The apiserver's own words (kube's rendering of a Status repeats it three times).
fn plain(error: kube::Error) -> anyhow::Error {
    match error {
        kube::Error::Api(status) => anyhow::anyhow!(
            "the apiserver answered {} {}: {}",
            status.code,
            status.reason,
            status.message
        ),
        other => other.into(),
    }
}

/// In-cluster credentials in a pod; `KUBECONFIG` elsewhere (tests).
async fn client() -> anyhow::Result<Client> {
    let mut config = Config::infer()
        .await
        .context("no Kubernetes credentials (in-cluster or KUBECONFIG)")?;
    config.read_timeout = Some(REQUEST_TIMEOUT);
    Client::try_from(config).context("building the Kubernetes client")
}

fn own_namespace() -> anyhow::Result<String> {
    let namespace = std::fs::read_to_string(SERVICE_ACCOUNT_NAMESPACE).with_context(|| {
        format!("POD_NAMESPACE is not set and {SERVICE_ACCOUNT_NAMESPACE} is unreadable")
    })?;
    Ok(namespace.trim().to_owned())
}

async fn patch_with_retries(
    api: &Api<ConfigMap>,
    name: &str,
    patch: &Patch<serde_json::Value>,
) -> Result<(), kube::Error> {
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PatchParams::default()
    };
    let mut backoff = FIRST_BACKOFF;
    for attempt in 1.. {
        match api.patch(name, &params, patch).await {
            Ok(_) => return Ok(()),
            Err(error) if attempt < ATTEMPTS && is_transient(&error) => {
                tracing::warn!(attempt, %error, "delivering the result failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
            Err(error) => return Err(error),
        }
    }
    unreachable!("the loop returns by its last attempt")
}

/// Connection trouble, throttling and server-side errors may pass; a missing ConfigMap or
/// missing rights will not (the operator creates the ConfigMap before the Job).
fn is_transient(error: &kube::Error) -> bool {
    match error {
        kube::Error::Api(status) => status.code == 429 || status.code >= 500,
        kube::Error::HyperError(_) | kube::Error::Service(_) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use kube::core::Status;

    use super::*;

    #[test]
    fn only_passing_troubles_are_retried() {
        let api = |code| kube::Error::Api(Box::new(Status::failure("x", "y").with_code(code)));
        assert!(is_transient(&api(503)));
        assert!(is_transient(&api(429)));
        assert!(!is_transient(&api(404)));
        assert!(!is_transient(&api(403)));
        assert!(!is_transient(&kube::Error::LinesCodecMaxLineLengthExceeded));
    }
}
