//! The operator installed like a user installs it: `helm install` of the chart into the
//! harness cluster, the operator a pod of its Deployment on the node (its image imported, never
//! pulled), executors Jobs. The values differ from a real cluster's only where the loopback
//! node needs it: host network (the apiserver and the emulator listen on the node's
//! loopback; there is no service proxy), a metrics address on 127.0.0.1, one replica (two
//! host-network pods on one node would share a port), images that are never pulled.

use std::{
    path::PathBuf,
    process::Command,
    time::{Duration, Instant},
};

use k8s_openapi::api::core::v1::Pod;
use kube::{Api, api::ListParams};

use crate::{
    AwsEmulator, ControlPlane, Error, ExecutorVariant, Result, Toolchain,
    chart::{OPERATOR_NAMESPACE, RELEASE, chart_dir, ensure_namespace},
    process::free_port,
};

/// Longest wait for the operator pod to be Ready (image import and start on a busy node).
const READY_WAIT: Duration = Duration::from_secs(300);

/// The installed release.
pub struct Release {
    /// Port of the operator's `/metrics` on the node's loopback.
    pub metrics_port: u16,
    /// The values file it was installed with.
    pub values: PathBuf,
}

/// Values for the harness cluster: `watched` is the namespace of the templates (executor
/// Jobs run there too).
pub fn values(
    cp: &ControlPlane,
    aws: &AwsEmulator,
    watched: &str,
    metrics_port: u16,
) -> Result<serde_json::Value> {
    let node = cp
        .node()
        .ok_or_else(|| Error::Toolchain("the control plane has no node".into()))?;
    let (operator, executor) = (
        node.operator_image()?,
        node.executor_image(ExecutorVariant::Full)?,
    );
    let apiserver = [
        ("KUBERNETES_SERVICE_HOST", "127.0.0.1".to_owned()),
        ("KUBERNETES_SERVICE_PORT", cp.apiserver_port.to_string()),
    ];
    let env = |extra: Vec<(String, String)>| {
        apiserver
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .chain(extra)
            .map(|(name, value)| serde_json::json!({"name": name, "value": value}))
            .collect::<Vec<_>>()
    };
    Ok(serde_json::json!({
        "image": image(&operator),
        "replicas": 1,
        "hostNetwork": true,
        "extraEnv": env(Vec::new()),
        "metrics": {"port": metrics_port, "bindAddress": "127.0.0.1"},
        "watchNamespaces": [watched],
        "awsEndpoint": aws.endpoint(),
        "executor": {
            "image": image(&executor),
            "hostNetwork": true,
            // The emulator's fixed test credentials, never a real secret.
            "env": env(aws.aws_env()),
        },
    }))
}

/// `repository`, `tag` and `pullPolicy: Never` of an image reference.
fn image(reference: &str) -> serde_json::Value {
    let (repository, tag) = reference.rsplit_once(':').unwrap_or((reference, "latest"));
    serde_json::json!({"repository": repository, "tag": tag, "pullPolicy": "Never"})
}

/// `helm install` of the chart watching `watched`, then waits until the operator pod is Ready.
pub async fn install(cp: &ControlPlane, aws: &AwsEmulator, watched: &str) -> Result<Release> {
    let tools = Toolchain::load()?;
    let metrics_port = free_port()?;
    let values_path = cp.dir().join("values.yaml");
    let text = serde_json::to_string_pretty(&values(cp, aws, watched, metrics_port)?)
        .map_err(|e| Error::Chart(e.to_string()))?;
    std::fs::write(&values_path, text).map_err(crate::io_err("writing values.yaml"))?;
    ensure_namespace(&cp.client(), OPERATOR_NAMESPACE).await?;
    let mut cmd = Command::new(tools.helm()?);
    cmd.args(["install", RELEASE])
        .arg(chart_dir())
        .args(["--namespace", OPERATOR_NAMESPACE, "--kubeconfig"])
        .arg(&cp.kubeconfig)
        .arg("-f")
        .arg(&values_path);
    let output = tokio::task::block_in_place(|| cmd.output())
        .map_err(crate::io_err("running helm install"))?;
    if !output.status.success() {
        return Err(Error::Chart(format!(
            "helm install failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    operator_pod_ready(cp).await?;
    Ok(Release {
        metrics_port,
        values: values_path,
    })
}

/// Waits until the Deployment's pod is Ready (its readiness probe: CRDs established, leading
/// or standing by).
async fn operator_pod_ready(cp: &ControlPlane) -> Result<Pod> {
    let pods: Api<Pod> = Api::namespaced(cp.client(), OPERATOR_NAMESPACE);
    let selector = format!("app.kubernetes.io/instance={RELEASE}");
    let start = Instant::now();
    loop {
        let listed = pods.list(&ListParams::default().labels(&selector)).await?;
        if let Some(pod) = listed.items.iter().find(|p| is_ready(p)) {
            return Ok(pod.clone());
        }
        if start.elapsed() > READY_WAIT {
            let statuses: Vec<_> = listed.items.iter().map(|p| &p.status).collect();
            let node = cp.node().map(|n| n.log_tails(30)).unwrap_or_default();
            return Err(Error::TimedOut(format!(
                "the operator pod was not Ready after {}s; pods: {statuses:#?}\nnode:\n{node}",
                READY_WAIT.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}
