//! Progress an execution records outside its own filesystem before the steps a sudden death
//! would leave unfinished: where its state lock lives (after `init`) and the creates it puts in
//! flight (before `apply`). In a Job pod the workspace dies with the pod, so without this a
//! killed apply would leave orphans and a held lock nobody can attribute.

use std::{future::Future, pin::Pin, sync::Mutex};

use pangea_api::exec::{InFlightCreate, Progress, StateLockRef};

use super::ExecError;

/// A boxed future, so the sink can be a trait object.
pub type SinkFuture<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// Where progress goes (the Job's result ConfigMap). Publishing replaces what was there.
pub trait ProgressSink: Send + Sync {
    /// Makes `progress` durable outside the executor; an error is the cause in words.
    fn publish<'a>(&'a self, progress: &'a Progress) -> SinkFuture<'a>;
}

/// The progress of one execution and where it is published, if anywhere.
#[derive(Default)]
pub(crate) struct Recorder<'a> {
    sink: Option<&'a dyn ProgressSink>,
    current: Mutex<Progress>,
}

impl<'a> Recorder<'a> {
    pub(crate) fn new(sink: Option<&'a dyn ProgressSink>) -> Self {
        Self {
            sink,
            current: Mutex::default(),
        }
    }

    /// The state lock the next terraform commands take. Best effort: knowing where the lock
    /// is only helps explain a death, so a failure to publish it does not stop the run.
    pub(crate) async fn lock(&self, lock: Option<StateLockRef>) {
        let snapshot = self.update(|p| p.state_lock = lock);
        if let Err(e) = self.publish(&snapshot).await {
            tracing::warn!(error = %e, "could not record where the state lock is");
        }
    }

    /// The creates an apply is about to put in flight. Required: an apply whose creates are
    /// not recorded outside the pod could leave resources nobody knows about.
    pub(crate) async fn in_flight(&self, creates: Vec<InFlightCreate>) -> Result<(), ExecError> {
        let snapshot = self.update(|p| p.in_flight_creates = creates);
        self.publish(&snapshot)
            .await
            .map_err(|e| ExecError::Progress(format!("recording the creates in flight: {e}")))
    }

    fn update(&self, change: impl FnOnce(&mut Progress)) -> Progress {
        let mut current = self
            .current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        change(&mut current);
        current.clone()
    }

    async fn publish(&self, progress: &Progress) -> Result<(), String> {
        match self.sink {
            Some(sink) => sink.publish(progress).await,
            None => Ok(()),
        }
    }
}
