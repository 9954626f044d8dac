//! The operator with the Job execution backend on the harness's node: the executor service
//! account and its least-privilege Role in the template namespace, and the flags that point
//! executor pods at the locally built image, the apiserver and the emulator. Shared by the
//! Job-backend tests and the demo.

use std::path::Path;

use k8s_openapi::api::{
    core::v1::ServiceAccount,
    rbac::v1::{Role, RoleBinding},
};
use kube::{
    Api,
    api::{Patch, PatchParams},
};

use crate::{
    AwsEmulator, ControlPlane, Error, ExecutorVariant, OperatorProcess, Result,
    manifests::from_json,
};

/// Name of the executor service account, Role and RoleBinding.
pub const EXECUTOR_ACCOUNT: &str = "pangea-executor";

/// What an executor pod may do in its own namespace: deliver its result (get and patch the
/// result ConfigMap its Job owns) and keep Terraform state in a Secret with a Lease lock.
/// Applied (server-side), so calling it again changes nothing.
pub async fn executor_rbac(cp: &ControlPlane, namespace: &str) -> Result<()> {
    let params = PatchParams::apply("pangea-e2e").force();
    let account: ServiceAccount = from_json(serde_json::json!({
        "apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": EXECUTOR_ACCOUNT}
    }))?;
    let role: Role = from_json(serde_json::json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": EXECUTOR_ACCOUNT},
        "rules": [
            {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "patch"]},
            {"apiGroups": [""], "resources": ["secrets"],
             "verbs": ["get", "list", "create", "update", "patch", "delete"]},
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
             "verbs": ["get", "list", "create", "update", "patch", "delete"]}
        ]
    }))?;
    let binding: RoleBinding = from_json(serde_json::json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": EXECUTOR_ACCOUNT},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": EXECUTOR_ACCOUNT},
        "subjects": [{"kind": "ServiceAccount", "name": EXECUTOR_ACCOUNT, "namespace": namespace}]
    }))?;
    Api::<ServiceAccount>::namespaced(cp.client(), namespace)
        .patch(EXECUTOR_ACCOUNT, &params, &Patch::Apply(&account))
        .await?;
    Api::<Role>::namespaced(cp.client(), namespace)
        .patch(EXECUTOR_ACCOUNT, &params, &Patch::Apply(&role))
        .await?;
    Api::<RoleBinding>::namespaced(cp.client(), namespace)
        .patch(EXECUTOR_ACCOUNT, &params, &Patch::Apply(&binding))
        .await?;
    Ok(())
}

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
    /// `binary` with the Job execution backend, watching `namespace` (whose executor RBAC
    /// this sets up), plus `extra` flags and `env`.
    pub async fn start_with_jobs(
        binary: &Path,
        cp: &ControlPlane,
        aws: &AwsEmulator,
        namespace: &str,
        state_dir: &Path,
        extra: &[&str],
        env: &[(String, String)],
    ) -> Result<Self> {
        executor_rbac(cp, namespace).await?;
        let mut flags = job_backend_flags(cp, aws)?;
        flags.extend(extra.iter().map(|f| (*f).to_owned()));
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        let (binary, namespace) = (binary.to_owned(), namespace.to_owned());
        let state_dir = state_dir.to_owned();
        tokio::task::block_in_place(|| {
            Self::start_with_env(&binary, cp, aws, Some(&namespace), &state_dir, &flags, env)
        })
    }
}
