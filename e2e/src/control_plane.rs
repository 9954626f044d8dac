//! A real Kubernetes control plane for tests: etcd + kube-apiserver on free loopback ports,
//! a CA-signed serving certificate, token authentication with an admin in `system:masters`,
//! RBAC, a kubeconfig file, a `kube::Client`, and every pangea CRD installed and Established.

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::atomic::{AtomicU32, Ordering},
    time::{Duration, Instant},
};

use k8s_openapi::{
    api::core::v1::Namespace,
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
};
use kube::{
    Api, Client, Config,
    api::{ObjectMeta, Patch, PatchParams, PostParams},
    config::{KubeConfigOptions, Kubeconfig},
    runtime::wait::{await_condition, conditions},
};

use crate::{
    Error, Node, Result, Toolchain, io_err,
    pki::Pki,
    process::{ManagedProcess, free_port, port_open},
};

/// Field manager used for everything the harness applies.
pub const FIELD_MANAGER: &str = "pangea-e2e";
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A running etcd + kube-apiserver, optionally with a node. Dropping it stops everything and
/// removes their data.
pub struct ControlPlane {
    // Field order is drop order: the node (it drains its pods through the apiserver), then
    // apiserver before etcd, files last.
    node: Option<Node>,
    apiserver: ManagedProcess,
    etcd: ManagedProcess,
    client: Client,
    /// Port of the apiserver (HTTPS on 127.0.0.1).
    pub apiserver_port: u16,
    /// Client port of etcd (HTTP on 127.0.0.1).
    pub etcd_port: u16,
    /// Kubeconfig file authenticating as cluster admin.
    pub kubeconfig: PathBuf,
    /// Certificates and keys.
    pub pki: Pki,
    /// Time from apiserver start to `/readyz` ok.
    pub apiserver_ready_after: Duration,
    dir: tempfile::TempDir,
}

impl ControlPlane {
    /// Starts etcd and kube-apiserver, writes a kubeconfig, installs the pangea CRDs.
    pub async fn start() -> Result<Self> {
        let tools = Toolchain::load()?;
        let dir = tools.run_dir("cp-")?;
        let pki = Pki::generate(dir.path())?;
        let (etcd, etcd_port) = start_etcd(&tools, dir.path())?;
        let token = admin_token();
        let token_file = dir.path().join("tokens.csv");
        std::fs::write(
            &token_file,
            format!("{token},admin,admin,\"system:masters\"\n"),
        )
        .map_err(io_err("writing token file"))?;
        let apiserver_port = free_port()?;
        let started = Instant::now();
        let mut apiserver = start_apiserver(
            &tools,
            dir.path(),
            &pki,
            &token_file,
            apiserver_port,
            etcd_port,
        )?;
        let kubeconfig = write_kubeconfig(dir.path(), &pki, apiserver_port, &token)?;
        let client = client_for(&kubeconfig).await?;
        apiserver.wait_ready(READY_TIMEOUT, || port_open(apiserver_port))?;
        wait_readyz(&client, &mut apiserver).await?;
        let apiserver_ready_after = started.elapsed();
        tracing::info!(
            port = apiserver_port,
            ready_ms = apiserver_ready_after.as_millis() as u64,
            "apiserver ready"
        );
        let plane = Self {
            node: None,
            apiserver,
            etcd,
            client,
            apiserver_port,
            etcd_port,
            kubeconfig,
            pki,
            apiserver_ready_after,
            dir,
        };
        plane.install_crds(&pangea_api::crds()).await?;
        Ok(plane)
    }

    /// Like [`ControlPlane::start`], plus a node that runs pods: images built (cheap when warm)
    /// and imported, the Node Ready. Fails with the reason when the node cannot start.
    pub async fn start_with_node() -> Result<Self> {
        let mut plane = Self::start().await?;
        plane.node = Some(Node::start(&plane).await?);
        Ok(plane)
    }

    /// The node, when started with [`ControlPlane::start_with_node`].
    pub fn node(&self) -> Option<&Node> {
        self.node.as_ref()
    }

    /// A client authenticated as cluster admin.
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// PIDs of the processes this control plane runs.
    pub fn pids(&self) -> Vec<u32> {
        vec![self.apiserver.pid(), self.etcd.pid()]
    }

    /// Ports this control plane listens on.
    pub fn ports(&self) -> Vec<u16> {
        vec![self.apiserver_port, self.etcd_port]
    }

    /// Scratch directory of this control plane (logs, data), removed when it stops.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Server-side applies the CRDs and waits until each is Established.
    pub async fn install_crds(&self, crds: &[CustomResourceDefinition]) -> Result<()> {
        let api: Api<CustomResourceDefinition> = Api::all(self.client());
        let params = PatchParams::apply(FIELD_MANAGER).force();
        for crd in crds {
            let name = crd.metadata.name.clone().unwrap_or_default();
            api.patch(&name, &params, &Patch::Apply(crd)).await?;
            let established = await_condition(api.clone(), &name, conditions::is_crd_established());
            tokio::time::timeout(READY_TIMEOUT, established)
                .await
                .map_err(|_| Error::NotReady {
                    name: format!("CRD {name}"),
                    seconds: READY_TIMEOUT.as_secs(),
                    log_tail: String::new(),
                })?
                .map_err(|e| Error::Kubeconfig(format!("waiting for CRD {name}: {e}")))?;
        }
        self.wait_openapi_published(crds).await
    }

    /// `kubectl explain` reads the OpenAPI v3 document, which the apiserver publishes a moment
    /// after a CRD is Established.
    async fn wait_openapi_published(&self, crds: &[CustomResourceDefinition]) -> Result<()> {
        let start = Instant::now();
        for crd in crds {
            for version in &crd.spec.versions {
                let path = format!("/openapi/v3/apis/{}/{}", crd.spec.group, version.name);
                let kind = &crd.spec.names.kind;
                loop {
                    let request = http::Request::get(&path)
                        .body(Vec::new())
                        .map_err(|e| Error::Kubeconfig(e.to_string()))?;
                    if let Ok(doc) = self.client.request_text(request).await
                        && doc.contains(&format!("\"kind\":\"{kind}\""))
                    {
                        break;
                    }
                    if start.elapsed() > READY_TIMEOUT {
                        return Err(Error::NotReady {
                            name: format!("OpenAPI of {kind}"),
                            seconds: start.elapsed().as_secs(),
                            log_tail: self.apiserver.log_tail(20),
                        });
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        Ok(())
    }

    /// Creates a fresh namespace named `<prefix>-<unique suffix>`.
    pub async fn namespace(&self, prefix: &str) -> Result<TestNamespace> {
        let name = format!("{prefix}-{}", unique_suffix());
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        Api::<Namespace>::all(self.client())
            .create(&PostParams::default(), &ns)
            .await?;
        Ok(TestNamespace {
            name,
            client: self.client(),
        })
    }

    /// Stops the node, the apiserver, then etcd (also done on drop).
    pub fn stop(mut self) {
        if let Some(node) = self.node.as_mut() {
            node.teardown();
        }
        self.apiserver.stop();
        self.etcd.stop();
    }
}

/// A namespace created for one test. The cluster is thrown away after the run, so it is not
/// deleted (without kube-controller-manager a namespace would never finish terminating).
#[derive(Clone)]
pub struct TestNamespace {
    /// Namespace name.
    pub name: String,
    client: Client,
}

impl TestNamespace {
    /// A typed API scoped to this namespace.
    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.name)
    }

    /// Creates PangeaTemplate `name` with `spec` here.
    pub async fn create_template(&self, name: &str, spec: serde_json::Value) -> Result<()> {
        let tpl: pangea_api::PangeaTemplate = serde_json::from_value(serde_json::json!({
            "apiVersion": "pangea.io/v1alpha1", "kind": "PangeaTemplate",
            "metadata": {"name": name}, "spec": spec,
        }))
        .map_err(|e| crate::Error::Toolchain(format!("bad template: {e}")))?;
        self.api::<pangea_api::PangeaTemplate>()
            .create(&Default::default(), &tpl)
            .await?;
        Ok(())
    }

    /// Polls template `name` every second until `ok` holds; after `wait`, fails with its
    /// status.
    pub async fn template_until(
        &self,
        name: &str,
        what: &str,
        wait: Duration,
        ok: impl Fn(&pangea_api::PangeaTemplate) -> bool,
    ) -> Result<pangea_api::PangeaTemplate> {
        let start = Instant::now();
        loop {
            let tpl = self.api::<pangea_api::PangeaTemplate>().get(name).await?;
            if ok(&tpl) {
                return Ok(tpl);
            }
            if start.elapsed() > wait {
                return Err(Error::TimedOut(format!(
                    "{name}: not {what} after {}s; status: {:#?}",
                    wait.as_secs(),
                    tpl.status
                )));
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// Reasons of the Events about object `name` here, oldest first as listed.
    pub async fn event_reasons(&self, name: &str) -> Result<Vec<String>> {
        let events: Api<k8s_openapi::api::core::v1::Event> = self.api();
        Ok(events
            .list(&Default::default())
            .await?
            .items
            .into_iter()
            .filter(|e| e.involved_object.name.as_deref() == Some(name))
            .filter_map(|e| e.reason)
            .collect())
    }
}

fn start_etcd(tools: &Toolchain, dir: &Path) -> Result<(ManagedProcess, u16)> {
    let (client_port, peer_port) = (free_port()?, free_port()?);
    let client_url = format!("http://127.0.0.1:{client_port}");
    let peer_url = format!("http://127.0.0.1:{peer_port}");
    let mut cmd = Command::new(&tools.etcd);
    cmd.arg("--name=e2e")
        .arg(format!("--data-dir={}", dir.join("etcd").display()))
        .arg(format!("--listen-client-urls={client_url}"))
        .arg(format!("--advertise-client-urls={client_url}"))
        .arg(format!("--listen-peer-urls={peer_url}"))
        .arg(format!("--initial-advertise-peer-urls={peer_url}"))
        .arg(format!("--initial-cluster=e2e={peer_url}"))
        .arg("--listen-metrics-urls=")
        .arg("--log-level=warn")
        // Test data is disposable; skipping fsync makes etcd fast on slow disks.
        .arg("--unsafe-no-fsync");
    let mut etcd =
        ManagedProcess::spawn("etcd", cmd, &dir.join("etcd.log"), Duration::from_secs(5))?;
    etcd.wait_ready(READY_TIMEOUT, || {
        crate::process::http_status(client_port, "/health") == Some(200)
    })?;
    Ok((etcd, client_port))
}

fn start_apiserver(
    tools: &Toolchain,
    dir: &Path,
    pki: &Pki,
    token_file: &Path,
    port: u16,
    etcd_port: u16,
) -> Result<ManagedProcess> {
    let mut cmd = Command::new(&tools.kube_apiserver);
    cmd.arg(format!("--etcd-servers=http://127.0.0.1:{etcd_port}"))
        .arg("--bind-address=127.0.0.1")
        .arg("--advertise-address=127.0.0.1")
        .arg(format!("--secure-port={port}"))
        .arg(format!("--cert-dir={}", dir.join("certs").display()))
        .arg(format!("--tls-cert-file={}", pki.serving_cert.display()))
        .arg(format!(
            "--tls-private-key-file={}",
            pki.serving_key.display()
        ))
        .arg(format!("--client-ca-file={}", pki.ca_cert.display()))
        .arg(format!("--token-auth-file={}", token_file.display()))
        .arg("--authorization-mode=RBAC")
        .arg(format!(
            "--service-account-key-file={}",
            pki.service_account_pub.display()
        ))
        .arg(format!(
            "--service-account-signing-key-file={}",
            pki.service_account_key.display()
        ))
        .arg("--service-account-issuer=https://kubernetes.default.svc")
        .arg("--service-cluster-ip-range=10.96.0.0/16")
        // No kube-proxy or nodes here: do not maintain the `kubernetes` Service endpoints.
        .arg("--endpoint-reconciler-type=none")
        .arg("--profiling=false");
    ManagedProcess::spawn(
        "kube-apiserver",
        cmd,
        &dir.join("kube-apiserver.log"),
        Duration::from_secs(10),
    )
}

fn write_kubeconfig(dir: &Path, pki: &Pki, port: u16, token: &str) -> Result<PathBuf> {
    let path = dir.join("kubeconfig");
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: e2e\n  cluster:\n    server: https://127.0.0.1:{port}\n    certificate-authority: {ca}\nusers:\n- name: admin\n  user:\n    token: {token}\ncontexts:\n- name: e2e\n  context:\n    cluster: e2e\n    user: admin\n    namespace: default\ncurrent-context: e2e\n",
        ca = pki.ca_cert.display(),
    );
    std::fs::write(&path, text).map_err(io_err("writing kubeconfig"))?;
    Ok(path)
}

async fn client_for(kubeconfig: &Path) -> Result<Client> {
    let kc = Kubeconfig::read_from(kubeconfig).map_err(|e| Error::Kubeconfig(e.to_string()))?;
    let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .map_err(|e| Error::Kubeconfig(e.to_string()))?;
    Ok(Client::try_from(config)?)
}

async fn wait_readyz(client: &Client, apiserver: &mut ManagedProcess) -> Result<()> {
    let start = Instant::now();
    loop {
        let request = http::Request::get("/readyz")
            .body(Vec::new())
            .map_err(|e| Error::Kubeconfig(e.to_string()))?;
        if let Ok(body) = client.request_text(request).await
            && body.trim() == "ok"
        {
            return Ok(());
        }
        if start.elapsed() > READY_TIMEOUT || !apiserver.is_running() {
            return Err(Error::NotReady {
                name: "kube-apiserver".into(),
                seconds: start.elapsed().as_secs(),
                log_tail: apiserver.log_tail(40),
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A random-enough bearer token for a throw-away cluster.
fn admin_token() -> String {
    format!("e2e-{}-{}", std::process::id(), unique_suffix())
}

/// Short unique suffix: process id, time and a counter (no RNG dependency needed).
fn unique_suffix() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{:x}{:x}{n}", std::process::id() % 0xfff, nanos % 0xfffff)
}
