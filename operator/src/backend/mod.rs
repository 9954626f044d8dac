//! Where executions run. The backend is the only record of what runs and what finished:
//! the reconcile asks it ([`ExecutionBackend::observe`]) instead of keeping its own books,
//! so an operator restart or a failed status write cannot make it forget a result. A finished
//! result stays with the backend until the status that records it was written and
//! [`ExecutionBackend::ack`] is called; until then it is offered again.
//!
//! Executions are keyed by template UID: a template deleted and re-created under the same
//! name never inherits the old one's result. `decide` never knows which backend ran it: the
//! local backend runs the executor in-process; the Job backend runs `pangea-executor run` in
//! a pod per execution.

pub mod job;
pub mod local;

use futures::future::BoxFuture;
use kube::runtime::reflector::ObjectRef;
use pangea_api::{PangeaTemplate, exec::Request};

pub use self::job::PodOverrides;
use crate::{
    core::{Execution, Finished},
    secrets::SecretFiles,
};

/// The object reference completion notifications carry (they trigger a reconcile).
pub type TemplateRef = ObjectRef<PangeaTemplate>;

/// A template as a backend knows it: by UID, with the reference to wake its reconcile.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TemplateKey {
    /// `metadata.uid`: what executions are keyed by.
    pub uid: String,
    /// Namespace and name, for notifications.
    pub object: TemplateRef,
}

/// What a backend holds for one template.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observation {
    /// The execution queued or running.
    pub running: Option<Execution>,
    /// Finished executions not acknowledged yet, oldest first.
    pub finished: Vec<Finished>,
}

/// A backend could not start an execution.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The template already has an execution in flight (one at a time per template).
    #[error("an execution is already running for {0}")]
    Busy(String),
    /// The operator is shutting down.
    #[error("shutting down: not starting new executions")]
    ShuttingDown,
    /// The cluster refused or failed a call the backend needs.
    #[error("{0}")]
    Cluster(String),
}

/// Runs executions and keeps their results until acknowledged.
pub trait ExecutionBackend: Send + Sync {
    /// Starts `request` as `execution` for `template`. `secrets` holds the files the request
    /// names (sensitive variables, git credentials); the backend removes them when the
    /// execution ends. `overrides` are the template's pod settings (backends without pods
    /// ignore them). Completion is announced on the notifier given at construction.
    fn start<'a>(
        &'a self,
        template: &'a TemplateKey,
        execution: &'a Execution,
        request: Request,
        secrets: SecretFiles,
        overrides: &'a PodOverrides,
    ) -> BoxFuture<'a, Result<(), BackendError>>;

    /// What runs and what finished for the template with this UID.
    fn observe<'a>(&'a self, uid: &'a str) -> BoxFuture<'a, Observation>;

    /// The status recording `execution_id` was written: drop its result.
    fn ack<'a>(&'a self, uid: &'a str, execution_id: &'a str) -> BoxFuture<'a, ()>;

    /// The template is gone: cancel what runs for it and drop its results.
    fn forget<'a>(&'a self, uid: &'a str) -> BoxFuture<'a, ()>;

    /// Executions queued or running.
    fn in_flight(&self) -> usize;
}
