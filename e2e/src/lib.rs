//! Test harness that runs pangea-operator against REAL components on this machine, kind-like
//! but without Docker: etcd + kube-apiserver built by `scripts/bootstrap.sh`, and an AWS
//! emulator (LocalStack by default, moto on request), and on request a node (containerd,
//! kubelet, kube-controller-manager, kube-scheduler) running the images of
//! `scripts/build-images.sh`, and podman's Docker-compatible API for running those images
//! outside Kubernetes. Every server binds 127.0.0.1 on a free port, is stopped by PID
//! (TERM, wait, KILL) when its handle drops — also while a test panics — and has its log
//! printed when the test fails.

pub mod chart;
pub mod control_plane;
pub mod emulator;
pub mod faults;
pub mod fixtures;
pub mod images;
pub mod job_cluster;
pub mod jobs;
pub mod manifests;
pub mod node;
pub mod operator;
pub mod pki;
pub mod podman;
pub mod process;
pub mod release;
pub mod sockets;
pub mod toolchain;

pub use control_plane::{ControlPlane, TestNamespace};
pub use emulator::{AwsEmulator, EmulatorKind};
pub use images::{ExecutorVariant, Images};
pub use job_cluster::JobCluster;
pub use node::Node;
pub use operator::OperatorProcess;
pub use podman::{Podman, PodmanClient};
pub use toolchain::Toolchain;

/// Harness failures. Each names the component and carries the cause.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bootstrap has not been run or its output is incomplete.
    #[error("toolchain: {0} (run scripts/bootstrap.sh)")]
    Toolchain(String),
    /// A process could not be started.
    #[error("starting {name}: {source}")]
    Spawn {
        /// Component name.
        name: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// A component did not become ready in time.
    #[error("{name} not ready after {seconds}s; last log lines:\n{log_tail}")]
    NotReady {
        /// Component name.
        name: String,
        /// How long we waited.
        seconds: u64,
        /// End of its log.
        log_tail: String,
    },
    /// File system problems in the harness's own directories.
    #[error("{context}: {source}")]
    Io {
        /// What the harness was doing.
        context: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// Certificate generation failed.
    #[error("generating certificates: {0}")]
    Pki(#[from] rcgen::Error),
    /// Talking to the apiserver failed.
    #[error("kubernetes: {0}")]
    Kube(#[from] kube::Error),
    /// An out-of-band change to the emulator failed.
    #[error("out-of-band change failed: {0}")]
    OutOfBand(String),
    /// Building or reading the container images failed.
    #[error("images: {0}")]
    Images(String),
    /// The node (containerd, kubelet, controllers) failed.
    #[error("node: {0}")]
    Node(String),
    /// podman, an image import into it, or a test run against it failed.
    #[error("podman: {0}")]
    Podman(String),
    /// Building the client configuration failed.
    #[error("kubeconfig: {0}")]
    Kubeconfig(String),
    /// Rendering the Helm chart or applying what it rendered failed.
    #[error("chart: {0}")]
    Chart(String),
    /// Something a test waited for did not happen in time.
    #[error("timed out: {0}")]
    TimedOut(String),
}

/// Result with the harness's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Status (`"True"`, `"False"`, ...) of condition `type_` on a template, if it is set.
pub fn condition_status<'a>(tpl: &'a pangea_api::PangeaTemplate, type_: &str) -> Option<&'a str> {
    let status = tpl.status.as_ref()?;
    status
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| c.status.as_str())
}

/// `Ready=True` and a drift check has run: a template that has settled after its apply.
pub fn ready_and_checked(tpl: &pangea_api::PangeaTemplate) -> bool {
    condition_status(tpl, pangea_api::common::condition::READY) == Some("True")
        && tpl
            .status
            .as_ref()
            .and_then(|s| s.drift.as_ref())
            .is_some_and(|d| d.last_check_time.is_some())
}

pub(crate) fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let context = context.into();
    move |source| Error::Io { context, source }
}
