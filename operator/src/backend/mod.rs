//! Where executions run. The controller hands a typed [`Request`] to an
//! [`ExecutionBackend`], learns about completion through the notifier channel (which triggers
//! a reconcile of that template), and collects the typed result. `decide` never knows which
//! backend ran it: the local backend runs the executor in-process; a Job backend (a pod per
//! execution running `pangea-executor run`) plugs in behind the same trait.

pub mod local;

use kube::runtime::reflector::ObjectRef;
use pangea_api::{
    PangeaTemplate,
    exec::{ExecutionResult, Request},
};

use crate::secrets::SecretFiles;

/// The key executions are tracked by.
pub type TemplateRef = ObjectRef<PangeaTemplate>;

/// A backend could not start an execution.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The template already has an execution in flight (one at a time per template).
    #[error("an execution is already running for {0}")]
    Busy(String),
    /// The operator is shutting down.
    #[error("shutting down: not starting new executions")]
    ShuttingDown,
}

/// Runs executions and reports their results.
pub trait ExecutionBackend: Send + Sync {
    /// Starts `request` for `template`. `secrets` holds the files the request names (sensitive
    /// variables, git credentials) and is removed when the execution ends. Completion is
    /// announced by sending `template` on the notifier given at construction.
    fn start(
        &self,
        template: TemplateRef,
        request: Request,
        secrets: SecretFiles,
    ) -> Result<(), BackendError>;

    /// Takes the result of a finished execution, if there is one.
    fn take_finished(&self, template: &TemplateRef) -> Option<ExecutionResult>;

    /// Whether an execution for `template` is queued or running.
    fn is_running(&self, template: &TemplateRef) -> bool;

    /// Executions queued or running.
    fn in_flight(&self) -> usize;
}
