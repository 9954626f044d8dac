//! `pangea-operator` binary: parse flags, start logging, run until SIGTERM/SIGINT.

use std::{net::SocketAddr, path::PathBuf, process::ExitCode};

use clap::{Parser, ValueEnum};
use pangea_operator::{
    backend::job::{PodDefaults, build::DEFAULT_DEADLINE_MARGIN},
    leader::{self, ElectionConfig},
    run::{BackendChoice, Options, run},
};
use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Backend {
    /// The executor in-process: templates run with the operator's rights.
    Local,
    /// One Kubernetes Job per execution, in its own pod.
    Job,
}

/// Executor pods (`--execution-backend job`).
#[derive(Debug, clap::Args)]
struct ExecutorPods {
    /// Executor image when a template names none.
    #[arg(
        long,
        env = "PANGEA_EXECUTOR_IMAGE",
        default_value = "ghcr.io/pangea-io/pangea-executor:latest"
    )]
    executor_image: String,
    /// `imagePullPolicy` of executor pods (`Never` for images imported on the node).
    #[arg(long, env = "PANGEA_EXECUTOR_IMAGE_PULL_POLICY")]
    executor_image_pull_policy: Option<String>,
    /// Service account of executor pods when a template names none.
    #[arg(
        long,
        env = "PANGEA_EXECUTOR_SERVICE_ACCOUNT",
        default_value = "pangea-executor"
    )]
    executor_service_account: String,
    /// Executor pods use the node's network (test clusters whose services listen on the
    /// node's loopback).
    #[arg(long, env = "PANGEA_EXECUTOR_HOST_NETWORK")]
    executor_host_network: bool,
    /// Extra environment of executor pods, `NAME=VALUE`; repeat. Never secrets.
    #[arg(long = "executor-env", value_parser = parse_env)]
    executor_env: Vec<(String, String)>,
    /// Seconds a finished executor Job is kept when its result was not recorded.
    #[arg(long, env = "PANGEA_EXECUTOR_TTL_SECONDS", default_value_t = 3600)]
    executor_ttl_seconds: i32,
    /// Seconds an executor Job may run beyond the template's `reconciliation.timeout`
    /// (its `activeDeadlineSeconds` is the sum, at least 1): the executor stops terraform
    /// gracefully at the timeout and needs this long to release the state lock and deliver
    /// its result. Zero or negative makes Kubernetes end the pod first, as it would a wedged
    /// executor (for tests of that path).
    #[arg(
        long,
        env = "PANGEA_EXECUTOR_DEADLINE_MARGIN_SECONDS",
        default_value_t = DEFAULT_DEADLINE_MARGIN,
        allow_negative_numbers = true
    )]
    executor_deadline_margin_seconds: i64,
}

/// Leader election: run several replicas, one acts.
#[derive(Debug, clap::Args)]
struct Election {
    /// Take part in leader election through a `coordination.k8s.io` Lease: only the leader
    /// reconciles and starts executions; standbys wait, ready, and take over when it stops.
    #[arg(long, env = "PANGEA_LEADER_ELECT")]
    leader_elect: bool,
    /// Namespace of the Lease (default: the pod's own, from the downward API).
    #[arg(long, env = "POD_NAMESPACE")]
    leader_election_namespace: Option<String>,
    /// Name of the Lease.
    #[arg(
        long,
        env = "PANGEA_LEADER_ELECTION_ID",
        default_value = "pangea-operator-leader"
    )]
    leader_election_id: String,
    /// Seconds a renewal keeps the Lease: a standby takes over at most this long (plus a
    /// second) after the leader dies; the leader renews every third of it.
    #[arg(
        long,
        env = "PANGEA_LEADER_LEASE_SECONDS",
        default_value_t = 15,
        value_parser = clap::value_parser!(u64).range(3..=3600)
    )]
    leader_lease_seconds: u64,
}

impl Election {
    fn into_config(self) -> Result<Option<ElectionConfig>, String> {
        if !self.leader_elect {
            return Ok(None);
        }
        let namespace = self.leader_election_namespace.ok_or(
            "--leader-elect needs --leader-election-namespace (or POD_NAMESPACE from the downward API)",
        )?;
        Ok(Some(ElectionConfig {
            namespace,
            lease_name: self.leader_election_id,
            identity: leader::identity(std::env::var("POD_NAME").ok().as_deref()),
            lease_duration: std::time::Duration::from_secs(self.leader_lease_seconds),
        }))
    }
}

fn parse_env(value: &str) -> Result<(String, String), String> {
    value
        .split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("expected NAME=VALUE, got {value:?}"))
}

/// Keeps PangeaTemplates compared with reality: drift, remediation, status, Events, metrics.
#[derive(Debug, Parser)]
#[command(name = "pangea-operator", version, about)]
struct Args {
    /// Kubeconfig file (default: in-cluster configuration).
    #[arg(long, env = "KUBECONFIG")]
    kubeconfig: Option<PathBuf>,
    /// Namespace to watch; repeat for several; all namespaces when omitted.
    #[arg(
        long = "namespace",
        env = "PANGEA_WATCH_NAMESPACES",
        value_delimiter = ','
    )]
    namespaces: Vec<String>,
    /// Only templates matching this label selector (sharding across operators).
    #[arg(long, env = "PANGEA_SELECTOR")]
    selector: Option<String>,
    /// Executions running at once, across all templates.
    #[arg(long, env = "PANGEA_MAX_CONCURRENT_EXECUTIONS", default_value_t = 4)]
    max_concurrent_executions: usize,
    /// Reconciles running at once.
    #[arg(long, env = "PANGEA_RECONCILE_CONCURRENCY", default_value_t = 8)]
    reconcile_concurrency: u16,
    /// Where executions run.
    #[arg(
        long,
        env = "PANGEA_EXECUTION_BACKEND",
        value_enum,
        default_value_t = Backend::Local
    )]
    execution_backend: Backend,
    #[command(flatten)]
    executor_pods: ExecutorPods,
    #[command(flatten)]
    election: Election,
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, env = "PANGEA_METRICS_ADDR", default_value = "127.0.0.1:9090")]
    metrics_addr: SocketAddr,
    /// Workspaces, caches and per-execution secret files.
    #[arg(
        long,
        env = "PANGEA_STATE_DIR",
        default_value = "/var/lib/pangea-operator"
    )]
    state_dir: PathBuf,
    /// Ruby interpreter for the Pangea compiler (default: on PATH).
    #[arg(long, env = "PANGEA_RUBY")]
    ruby: Option<PathBuf>,
    /// Point AWS providers at this endpoint (LocalStack, moto).
    #[arg(long, env = "PANGEA_AWS_ENDPOINT")]
    aws_endpoint: Option<String>,
    /// Log format.
    #[arg(long, env = "PANGEA_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Seconds start-up waits for the CRDs to be established before it fails.
    #[arg(long, env = "PANGEA_CRD_WAIT_SECONDS", default_value_t = 60)]
    crd_wait_seconds: u64,
}

impl Args {
    fn into_options(self) -> Result<(Options, LogFormat), String> {
        let Self {
            kubeconfig,
            namespaces,
            selector,
            max_concurrent_executions,
            reconcile_concurrency,
            execution_backend,
            executor_pods,
            election,
            metrics_addr,
            state_dir,
            ruby,
            aws_endpoint,
            log_format,
            crd_wait_seconds,
        } = self;
        let execution_backend = match execution_backend {
            Backend::Local => BackendChoice::Local,
            Backend::Job => BackendChoice::Job(executor_pods.into_defaults(aws_endpoint.clone())),
        };
        let options = Options {
            kubeconfig,
            namespaces,
            selector,
            max_concurrent_executions,
            reconcile_concurrency,
            metrics_addr,
            state_dir,
            ruby,
            aws_endpoint,
            crd_wait: std::time::Duration::from_secs(crd_wait_seconds),
            execution_backend,
            leader_election: election.into_config()?,
        };
        Ok((options, log_format))
    }
}

impl ExecutorPods {
    fn into_defaults(self, aws_endpoint: Option<String>) -> PodDefaults {
        let Self {
            executor_image,
            executor_image_pull_policy,
            executor_service_account,
            executor_host_network,
            mut executor_env,
            executor_ttl_seconds,
            executor_deadline_margin_seconds,
        } = self;
        // The emulator endpoint the operator was given reaches executor pods too.
        if let Some(endpoint) = aws_endpoint {
            executor_env.push(("PANGEA_AWS_ENDPOINT".into(), endpoint));
        }
        PodDefaults {
            image: executor_image,
            pull_policy: executor_image_pull_policy,
            service_account: executor_service_account,
            host_network: executor_host_network,
            env: executor_env,
            ttl_after_finished: executor_ttl_seconds,
            deadline_margin_seconds: executor_deadline_margin_seconds,
        }
    }
}

fn init_tracing(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,kube=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// SIGTERM (Kubernetes) or SIGINT (a terminal).
async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    tracing::info!("shutdown requested");
}

#[tokio::main]
async fn main() -> ExitCode {
    let (options, log_format) = match Args::parse().into_options() {
        Ok(parsed) => parsed,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    init_tracing(log_format);
    match run(options, shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "operator failed");
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
