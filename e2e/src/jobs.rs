//! The operator with the Job execution backend on the harness's node, under the Helm chart's
//! RBAC (not as cluster admin): the chart's operator and executor ServiceAccounts, Roles and
//! bindings for the template namespace, the operator authenticated as its ServiceAccount, and
//! the flags that point executor pods at the locally built image, the apiserver and the
//! emulator. Shared by the Job-backend tests and the demo.

use std::path::Path;

use crate::{
    AwsEmulator, ControlPlane, Error, ExecutorVariant, OperatorProcess, Result, chart,
    operator::Launch,
};

/// Name of the executor service account, Role and RoleBinding (the chart's default).
pub const EXECUTOR_ACCOUNT: &str = "pangea-executor";

/// Operator flags for the Job backend on `cp`'s node: the full executor image (imported,
/// never pulled), the node's network (the apiserver and the emulator listen on its
/// loopback; there is no service proxy) and the emulator's test credentials.
pub fn job_backend_flags(cp: &ControlPlane, aws: &AwsEmulator) -> Result<Vec<String>> {
    let node = cp
        .node()
        .ok_or_else(|| Error::Toolchain("the control plane has no node".into()))?;
    let image = node.executor_image(ExecutorVariant::Full)?;
    let mut flags: Vec<String> = [
        "--execution-backend",
        "job",
        "--executor-image",
        &image,
        "--executor-image-pull-policy",
        "Never",
        "--executor-host-network",
    ]
    .map(String::from)
    .to_vec();
    let env = [
        ("KUBERNETES_SERVICE_HOST".to_owned(), "127.0.0.1".to_owned()),
        (
            "KUBERNETES_SERVICE_PORT".to_owned(),
            cp.apiserver_port.to_string(),
        ),
    ]
    .into_iter()
    .chain(aws.aws_env());
    for (name, value) in env {
        flags.push("--executor-env".into());
        flags.push(format!("{name}={value}"));
    }
    Ok(flags)
}

impl OperatorProcess {
    /// `binary` with the Job execution backend, watching `namespace`, plus `extra` flags and
    /// `env`; it acts as the chart's operator ServiceAccount with the chart's rights (applied
    /// here, with the executor's in `namespace`), so a right the chart lacks fails the test.
    pub async fn start_with_jobs(
        binary: &Path,
        cp: &ControlPlane,
        aws: &AwsEmulator,
        namespace: &str,
        state_dir: &Path,
        extra: &[&str],
        env: &[(String, String)],
    ) -> Result<Self> {
        let kubeconfig = chart::operator_identity(cp, namespace).await?;
        let mut flags = job_backend_flags(cp, aws)?;
        flags.extend(extra.iter().map(|f| (*f).to_owned()));
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        let launch = Launch {
            binary,
            kubeconfig: &kubeconfig,
            namespace: Some(namespace),
            state_dir,
            extra: &flags,
            env,
        };
        tokio::task::block_in_place(|| Self::launch(&launch, aws))
    }
}
