//! The Helm chart (`deploy/helm/pangea-operator`) as the harness uses it: rendered with the
//! bootstrapped `helm`, its RBAC applied to a test cluster, and the operator given the
//! identity the chart makes for it — a ServiceAccount token from the TokenRequest API in a
//! kubeconfig of its own — so every test that runs the operator this way proves the chart's
//! rights are enough. The admin kubeconfig stays the tests' own.

use std::{
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
    process::Command,
};

use k8s_openapi::api::{
    authentication::v1::{TokenRequest, TokenRequestSpec},
    core::v1::{Namespace, ServiceAccount},
};
use kube::{
    Api, Client,
    api::{DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams},
    discovery::{Scope, pinned_kind},
};

use crate::{
    ControlPlane, Error, Result, Toolchain, control_plane::FIELD_MANAGER, images::repo_root,
    manifests::parse_documents,
};

/// Release name the harness installs the chart's objects under.
pub const RELEASE: &str = "pangea-operator";
/// Namespace of the operator's ServiceAccount (the release namespace).
pub const OPERATOR_NAMESPACE: &str = "pangea-system";
/// Kinds that make up the chart's identities and rights.
const RBAC_KINDS: &[&str] = &[
    "ServiceAccount",
    "Role",
    "RoleBinding",
    "ClusterRole",
    "ClusterRoleBinding",
];
/// Lifetime asked of the operator's token: longer than any test. The apiserver may shorten it.
const TOKEN_SECONDS: i64 = 6 * 3600;

/// The chart's directory in this repository.
pub fn chart_dir() -> PathBuf {
    repo_root().join("deploy/helm/pangea-operator")
}

/// `helm template` of the chart as release [`RELEASE`] in `namespace` with `args` added
/// (`--set`, `-f`, ...): the rendered YAML, or the error with helm's output.
pub fn render(tools: &Toolchain, namespace: &str, args: &[&str]) -> Result<String> {
    let mut cmd = Command::new(tools.helm()?);
    cmd.args(["template", RELEASE])
        .arg(chart_dir())
        .args(["--namespace", namespace])
        .args(args);
    let output = cmd
        .output()
        .map_err(crate::io_err("running helm template"))?;
    if !output.status.success() {
        return Err(Error::Chart(format!(
            "helm template {args:?} failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    String::from_utf8(output.stdout).map_err(|e| Error::Chart(format!("helm output: {e}")))
}

/// The chart's ServiceAccounts, Roles, ClusterRoles and bindings for an operator watching
/// `watched` (executor Jobs run there too), released in [`OPERATOR_NAMESPACE`].
pub fn rbac_objects(tools: &Toolchain, watched: &str) -> Result<Vec<DynamicObject>> {
    let watch = format!("watchNamespaces={{{watched}}}");
    let text = render(tools, OPERATOR_NAMESPACE, &["--set", &watch])?;
    Ok(parse_documents(&text)?
        .into_iter()
        .filter(|o| {
            o.types
                .as_ref()
                .is_some_and(|t| RBAC_KINDS.contains(&t.kind.as_str()))
        })
        .collect())
}

/// Server-side applies `objects` (any kind the apiserver serves), namespaced ones in the
/// namespace their manifest names. Applying again changes nothing.
pub async fn apply(client: &Client, objects: &[DynamicObject]) -> Result<()> {
    let params = PatchParams::apply(FIELD_MANAGER).force();
    for obj in objects {
        let types = obj.types.clone().unwrap_or_default();
        let gvk = GroupVersionKind::try_from(&types)
            .map_err(|e| Error::Chart(format!("object without a kind: {e}")))?;
        let (resource, caps) = pinned_kind(client, &gvk).await?;
        let api: Api<DynamicObject> = match (caps.scope, obj.metadata.namespace.as_deref()) {
            (Scope::Namespaced, Some(ns)) => Api::namespaced_with(client.clone(), ns, &resource),
            (Scope::Namespaced, None) => {
                return Err(Error::Chart(format!("{} has no namespace", gvk.kind)));
            }
            (Scope::Cluster, _) => Api::all_with(client.clone(), &resource),
        };
        let name = obj.metadata.name.clone().unwrap_or_default();
        api.patch(&name, &params, &Patch::Apply(obj)).await?;
    }
    Ok(())
}

/// Applies the chart's RBAC for an operator watching `watched` and returns a kubeconfig that
/// authenticates as the chart's operator ServiceAccount (a fresh TokenRequest token).
pub async fn operator_identity(cp: &ControlPlane, watched: &str) -> Result<PathBuf> {
    let tools = Toolchain::load()?;
    ensure_namespace(&cp.client(), OPERATOR_NAMESPACE).await?;
    let objects = tokio::task::block_in_place(|| rbac_objects(&tools, watched))?;
    apply(&cp.client(), &objects).await?;
    let account = objects
        .iter()
        .find(|o| {
            o.types.as_ref().is_some_and(|t| t.kind == "ServiceAccount")
                && o.metadata.namespace.as_deref() == Some(OPERATOR_NAMESPACE)
        })
        .and_then(|o| o.metadata.name.clone())
        .ok_or_else(|| Error::Chart("the chart made no operator ServiceAccount".into()))?;
    let token = service_account_token(&cp.client(), OPERATOR_NAMESPACE, &account).await?;
    let path = cp.dir().join("operator-kubeconfig");
    write_kubeconfig(&path, cp, &account, &token)?;
    Ok(path)
}

/// Creates namespace `name` unless it exists.
pub async fn ensure_namespace(client: &Client, name: &str) -> Result<()> {
    let ns: Namespace = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}
    }))
    .map_err(|e| Error::Chart(e.to_string()))?;
    match Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

async fn service_account_token(client: &Client, namespace: &str, name: &str) -> Result<String> {
    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            expiration_seconds: Some(TOKEN_SECONDS),
            ..TokenRequestSpec::default()
        }),
        ..TokenRequest::default()
    };
    let answer = Api::<ServiceAccount>::namespaced(client.clone(), namespace)
        .create_token_request(name, &PostParams::default(), &request)
        .await?;
    answer
        .status
        .and_then(|s| s.token)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Error::Chart(format!("no token for {namespace}/{name}")))
}

/// Owner-only (0600): it holds a credential.
fn write_kubeconfig(path: &Path, cp: &ControlPlane, user: &str, token: &str) -> Result<()> {
    use std::io::Write;
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: e2e\n  cluster:\n    server: https://127.0.0.1:{port}\n    certificate-authority: {ca}\nusers:\n- name: {user}\n  user:\n    token: {token}\ncontexts:\n- name: e2e\n  context:\n    cluster: e2e\n    user: {user}\ncurrent-context: e2e\n",
        port = cp.apiserver_port,
        ca = cp.pki.ca_cert.display(),
    );
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(crate::io_err(format!("writing {}", path.display())))?;
    file.write_all(text.as_bytes())
        .map_err(crate::io_err(format!("writing {}", path.display())))
}
