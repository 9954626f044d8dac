//! Starting the operator: client, executor and backend, HTTP endpoints, one controller per
//! watched namespace (or one for all), and a graceful stop that interrupts running
//! executions so their state locks are released.

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use futures::future::{FutureExt, Shared, join_all};
use k8s_openapi::{
    api::core::v1::ConfigMap,
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
};
use kube::{
    Api, Client, Config, CustomResourceExt,
    config::{KubeConfigOptions, Kubeconfig},
    runtime::{
        events::{Recorder, Reporter},
        wait::{await_condition, conditions},
        watcher,
    },
};
use pangea_api::PangeaTemplate;
use pangea_executor::{compile::Compiler, execute::Executor};
use tokio::sync::mpsc;

use crate::{
    backend::{
        ExecutionBackend,
        job::{JobBackend, PodDefaults},
        local::LocalBackend,
    },
    context::{Context, Settings},
    http::Readiness,
    leader::{ElectionConfig, ElectionError, Elector, Leading, Loss},
    metrics::Metrics,
};

/// Everything the operator is configured with.
#[derive(Clone, Debug)]
pub struct Options {
    /// Kubeconfig file; in-cluster configuration when `None`.
    pub kubeconfig: Option<PathBuf>,
    /// Namespaces to watch; all when empty.
    pub namespaces: Vec<String>,
    /// Label selector restricting the templates handled (sharding).
    pub selector: Option<String>,
    /// Executions at once, across all templates.
    pub max_concurrent_executions: usize,
    /// Reconciles at once.
    pub reconcile_concurrency: u16,
    /// `/metrics`, `/healthz`, `/readyz` address.
    pub metrics_addr: SocketAddr,
    /// Workspaces, caches and secret files.
    pub state_dir: PathBuf,
    /// Ruby for the compiler (default: on PATH).
    pub ruby: Option<PathBuf>,
    /// Point AWS providers at an emulator.
    pub aws_endpoint: Option<String>,
    /// How long start-up waits for the CRDs to be established.
    pub crd_wait: Duration,
    /// Where executions run.
    pub execution_backend: BackendChoice,
    /// Take part in leader election (several replicas); `None`: always act.
    pub leader_election: Option<ElectionConfig>,
}

/// Where executions run.
#[derive(Clone, Debug)]
pub enum BackendChoice {
    /// In this process (development, the CLI, single-tenant installs).
    Local,
    /// One Job per execution, with these pod settings.
    Job(PodDefaults),
}

/// Startup failures.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The cluster configuration could not be loaded.
    #[error("kubernetes configuration: {0}")]
    Config(String),
    /// The client could not be built.
    #[error(transparent)]
    Kube(#[from] kube::Error),
    /// The compiler's Ruby is missing.
    #[error(transparent)]
    Ruby(#[from] pangea_executor::compile::CompileError),
    /// Directories failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The metrics address could not be bound.
    #[error("binding {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A CRD is missing or not established.
    #[error("CRD {0} is not established (install deploy/crds/ first)")]
    CrdMissing(String),
    /// Leader election could not start.
    #[error(transparent)]
    Election(#[from] ElectionError),
    /// Leadership ended while leading: the process exits so it restarts as a standby.
    #[error("leadership lost: {0}")]
    LeadershipLost(Loss),
}

/// Runs until `shutdown` resolves, then stops reconciling, interrupts running executions and
/// waits for them. With leader election, waits as a standby until it leads, and returns
/// [`RunError::LeadershipLost`] when leadership ends (the process restarts as a standby).
pub async fn run(
    options: Options,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    let client = client(options.kubeconfig.as_deref()).await?;
    let shutdown = shutdown.shared();
    let metrics = Arc::new(Metrics::default());
    // Ready once the CRDs are established and, while leading, every controller's cache has
    // synced. A standby is ready too: a rollout must not wait for it to lead.
    let ready = Arc::new(Readiness::new(1));
    let listener = tokio::net::TcpListener::bind(options.metrics_addr)
        .await
        .map_err(|source| RunError::Bind {
            addr: options.metrics_addr,
            source,
        })?;
    let http = tokio::spawn(crate::http::serve(
        listener,
        metrics.clone(),
        ready.clone(),
        shutdown.clone(),
    ));
    crds_established(&client, options.crd_wait).await?;
    let scopes = scopes(&options);
    let electing = options.leader_election.is_some();
    if electing {
        ready.done(); // the CRD check: a standby is ready
    }
    let Some((elector, leading)) = lead(&client, &options, shutdown.clone()).await? else {
        return Ok(()); // asked to stop while standing by
    };
    ready.add(scopes.len()); // leading needs every controller's cache
    if !electing {
        ready.done(); // the CRD check
    }
    metrics.set_leader(true);
    let (lost_tx, lost_rx) = tokio::sync::oneshot::channel();
    let (stop, stopping) = leadership_or(elector, shutdown, lost_tx);
    let (notify, finished) = mpsc::unbounded_channel();
    let (backend, local) = backend(&client, &options, notify).await?;
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "pangea-operator".into(),
            instance: std::env::var("POD_NAME").ok(),
        },
    );
    let settings = Settings {
        secrets_dir: options.state_dir.join("secrets"),
    };
    let ctx = Arc::new(Context::new(
        client.clone(),
        backend.clone(),
        recorder,
        metrics.clone(),
        settings,
        leading,
    ));
    tracing::info!(namespaces = ?options.namespaces, selector = ?options.selector, "operator running");
    controllers(&client, &options, scopes, ctx, finished, ready, stop).await;
    metrics.set_leader(false);
    tracing::info!(in_flight = backend.in_flight(), "stopping");
    // In-process executions are interrupted (their locks released); executor Jobs run on
    // and the next leader adopts them.
    if let Some(local) = local {
        local.shutdown().await;
    }
    // The Lease is released only after everything stopped acting.
    if let Some(elector) = stopping.await.ok().flatten() {
        elector.release().await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), http).await;
    match lost_rx.await {
        Ok(loss) => Err(RunError::LeadershipLost(loss)),
        Err(_) => Ok(()),
    }
}

/// Joins the election and waits to lead, or leads at once without one. `None` when
/// `shutdown` came first.
async fn lead<S>(
    client: &Client,
    options: &Options,
    shutdown: Shared<S>,
) -> Result<Option<(Option<Elector>, Leading)>, RunError>
where
    S: std::future::Future<Output = ()> + Send + 'static,
{
    let Some(config) = options.leader_election.clone() else {
        return Ok(Some((None, Leading::always())));
    };
    let mut elector = Elector::start(client.clone(), config).await?;
    let leading = elector.leading();
    tokio::select! {
        acquired = elector.acquired() => {
            if !acquired {
                return Err(RunError::LeadershipLost(Loss::ElectorStopped));
            }
        }
        () = shutdown => {
            elector.release().await;
            return Ok(None);
        }
    }
    Ok(Some((Some(elector), leading)))
}

/// A stop signal for the controllers: `shutdown`, or the end of leadership (reported on
/// `lost`), watched by a task of its own. The receiver hands the elector back for release
/// once everything stopped.
fn leadership_or<S>(
    elector: Option<Elector>,
    shutdown: Shared<S>,
    lost: tokio::sync::oneshot::Sender<Loss>,
) -> (
    Shared<futures::future::BoxFuture<'static, ()>>,
    tokio::sync::oneshot::Receiver<Option<Elector>>,
)
where
    S: std::future::Future<Output = ()> + Send + 'static,
{
    let (hand_back, stopping) = tokio::sync::oneshot::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let kept = match elector {
            None => {
                shutdown.await;
                None
            }
            Some(mut elector) => tokio::select! {
                loss = elector.lost() => {
                    let _ = lost.send(loss);
                    None // lost, not given up: nothing to release
                }
                () = shutdown => Some(elector),
            },
        };
        let _ = stop_tx.send(());
        let _ = hand_back.send(kept);
    });
    (stop_rx.map(|_| ()).boxed().shared(), stopping)
}

/// One controller for all namespaces, or one per listed namespace. Finished-execution
/// notifications go to the controller owning the template's namespace.
async fn controllers<S>(
    client: &Client,
    options: &Options,
    scopes: Vec<Option<String>>,
    ctx: Arc<Context>,
    mut finished: mpsc::UnboundedReceiver<crate::backend::TemplateRef>,
    ready: Arc<Readiness>,
    shutdown: Shared<S>,
) where
    S: std::future::Future<Output = ()> + Send + 'static,
{
    let mut watch = watcher::Config::default();
    if let Some(selector) = &options.selector {
        watch = watch.labels(selector);
    }
    let mut routes = Vec::new();
    let mut runs = Vec::new();
    for scope in scopes {
        let (api, configmaps): (Api<PangeaTemplate>, Api<ConfigMap>) = match &scope {
            Some(ns) => (
                Api::namespaced(client.clone(), ns),
                Api::namespaced(client.clone(), ns),
            ),
            None => (Api::all(client.clone()), Api::all(client.clone())),
        };
        let (tx, rx) = mpsc::unbounded_channel();
        routes.push((scope, tx));
        let watched = crate::controller::Watched {
            templates: api,
            configmaps,
            config: watch.clone(),
        };
        runs.push(crate::controller::run(
            watched,
            ctx.clone(),
            rx,
            options.reconcile_concurrency,
            ready.clone(),
            shutdown.clone(),
        ));
    }
    tokio::spawn(async move {
        while let Some(template) = finished.recv().await {
            let route = routes.iter().find(|(scope, _)| {
                scope.is_none() || scope.as_deref() == template.namespace.as_deref()
            });
            if let Some((_, tx)) = route {
                let _ = tx.send(template);
            }
        }
    });
    join_all(runs).await;
}

/// One scope per watched namespace, or one for all.
fn scopes(options: &Options) -> Vec<Option<String>> {
    if options.namespaces.is_empty() {
        vec![None]
    } else {
        options.namespaces.iter().cloned().map(Some).collect()
    }
}

/// The execution backend `options` ask for; the local one is also returned for shutdown.
async fn backend(
    client: &Client,
    options: &Options,
    notify: mpsc::UnboundedSender<crate::backend::TemplateRef>,
) -> Result<(Arc<dyn ExecutionBackend>, Option<Arc<LocalBackend>>), RunError> {
    match &options.execution_backend {
        BackendChoice::Local => {
            let local = Arc::new(LocalBackend::new(
                executor(options)?,
                options.max_concurrent_executions,
                notify,
            ));
            Ok((local.clone(), Some(local)))
        }
        BackendChoice::Job(defaults) => {
            let (jobs, watches) = JobBackend::new(
                client.clone(),
                defaults.clone(),
                options.max_concurrent_executions,
                notify,
            );
            tokio::spawn(watches);
            // Every running Job is known before the first decision: none is started twice.
            jobs.synced().await;
            Ok((jobs, None))
        }
    }
}

/// Waits (bounded) until the apiserver serves our CRDs: starting watches on a missing CRD
/// would only log errors forever.
async fn crds_established(client: &Client, wait: Duration) -> Result<(), RunError> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for name in [
        PangeaTemplate::crd_name(),
        pangea_api::PangeaStack::crd_name(),
    ] {
        let established = await_condition(crds.clone(), name, conditions::is_crd_established());
        match tokio::time::timeout(wait, established).await {
            Ok(Ok(_)) => tracing::debug!(crd = name, "established"),
            Ok(Err(error)) => {
                return Err(RunError::CrdMissing(format!("{name}: {error}")));
            }
            Err(_) => return Err(RunError::CrdMissing(name.to_owned())),
        }
    }
    Ok(())
}

async fn client(kubeconfig: Option<&std::path::Path>) -> Result<Client, RunError> {
    let config = match kubeconfig {
        Some(path) => {
            let kc = Kubeconfig::read_from(path).map_err(|e| RunError::Config(e.to_string()))?;
            Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
                .await
                .map_err(|e| RunError::Config(e.to_string()))?
        }
        None => Config::infer()
            .await
            .map_err(|e| RunError::Config(e.to_string()))?,
    };
    Ok(Client::try_from(config)?)
}

fn executor(options: &Options) -> Result<Executor, RunError> {
    let cache_dir = options.state_dir.join("executor");
    std::fs::create_dir_all(&cache_dir)?;
    let ruby = pangea_executor::compile::find_ruby(options.ruby.as_deref())?;
    Ok(Executor {
        compiler: Compiler::new(ruby).with_cache_dir(cache_dir.join("compiler")),
        cache_dir,
        aws_endpoint: options.aws_endpoint.clone(),
        kubeconfig: options.kubeconfig.clone(),
        grace: Duration::from_secs(30),
        lock_timeout: Duration::from_secs(60),
    })
}
