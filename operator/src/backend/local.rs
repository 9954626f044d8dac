//! The local backend: the executor library in-process. A global budget (a semaphore) bounds
//! how many executions run at once; each still has its own deadline. On shutdown the running
//! ones are cancelled, which interrupts terraform so it releases its state lock.
//!
//! Templates run with the operator's rights here (files, environment, service account): use
//! it for development, the CLI and single-tenant installs; the Job backend isolates them.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex},
};

use futures::{FutureExt, future::BoxFuture};
use pangea_api::exec::Request;
use pangea_executor::execute::Executor;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use super::{BackendError, ExecutionBackend, Observation, PodOverrides, TemplateKey, TemplateRef};
use crate::{
    core::{Execution, Finished},
    secrets::SecretFiles,
};

/// Runs executions as tasks of this process.
pub struct LocalBackend {
    executor: Arc<Executor>,
    budget: Arc<Semaphore>,
    state: Arc<Mutex<State>>,
    notify: mpsc::UnboundedSender<TemplateRef>,
    cancel: CancellationToken,
    tasks: TaskTracker,
}

/// Per template UID: the execution in flight (with its cancel switch) and finished results
/// in the order they finished, kept until acknowledged.
#[derive(Default)]
struct State {
    running: HashMap<String, (Execution, CancellationToken)>,
    finished: HashMap<String, VecDeque<Finished>>,
}

impl LocalBackend {
    /// At most `max_concurrent` executions at once; finished templates are sent on `notify`.
    pub fn new(
        executor: Executor,
        max_concurrent: usize,
        notify: mpsc::UnboundedSender<TemplateRef>,
    ) -> Self {
        Self {
            executor: Arc::new(executor),
            budget: Arc::new(Semaphore::new(max_concurrent.max(1))),
            state: Arc::default(),
            notify,
            cancel: CancellationToken::new(),
            tasks: TaskTracker::new(),
        }
    }

    /// Cancels every execution (terraform gets SIGINT and releases its lock) and waits for
    /// them to end.
    pub async fn shutdown(&self) {
        self.cancel.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }

    fn start_now(
        &self,
        template: &TemplateKey,
        execution: &Execution,
        request: Request,
        secrets: SecretFiles,
    ) -> Result<(), BackendError> {
        if self.cancel.is_cancelled() {
            return Err(BackendError::ShuttingDown);
        }
        let cancel = self.cancel.child_token();
        {
            let mut state = lock(&self.state);
            if state.running.contains_key(&template.uid) {
                return Err(BackendError::Busy(template.object.to_string()));
            }
            state
                .running
                .insert(template.uid.clone(), (execution.clone(), cancel.clone()));
        }
        let (executor, budget, state) = (
            self.executor.clone(),
            self.budget.clone(),
            self.state.clone(),
        );
        let (notify, template, execution) =
            (self.notify.clone(), template.clone(), execution.clone());
        self.tasks.spawn(async move {
            let result = match budget.acquire_owned().await {
                Ok(_permit) => executor.execute(&request, cancel.clone()).await,
                Err(_) => return,
            };
            drop(secrets);
            let mut state = lock(&state);
            state.running.remove(&template.uid);
            // Cancelled means forgotten (the template is gone) or shutting down: either way
            // nobody will record the result, and the next run resumes from state.
            if !cancel.is_cancelled() {
                state
                    .finished
                    .entry(template.uid.clone())
                    .or_default()
                    .push_back(Finished { execution, result });
            }
            drop(state);
            let _ = notify.send(template.object);
        });
        Ok(())
    }
}

impl ExecutionBackend for LocalBackend {
    fn start<'a>(
        &'a self,
        template: &'a TemplateKey,
        execution: &'a Execution,
        request: Request,
        secrets: SecretFiles,
        _overrides: &'a PodOverrides,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        let started = self.start_now(template, execution, request, secrets);
        async move { started }.boxed()
    }

    fn observe<'a>(&'a self, uid: &'a str) -> BoxFuture<'a, Observation> {
        let state = lock(&self.state);
        let observation = Observation {
            running: state.running.get(uid).map(|(e, _)| e.clone()),
            finished: state
                .finished
                .get(uid)
                .map(|q| q.iter().cloned().collect())
                .unwrap_or_default(),
        };
        async move { observation }.boxed()
    }

    fn ack<'a>(&'a self, uid: &'a str, execution_id: &'a str) -> BoxFuture<'a, ()> {
        let mut state = lock(&self.state);
        if let Some(queue) = state.finished.get_mut(uid) {
            queue.retain(|f| f.result.id != execution_id);
            if queue.is_empty() {
                state.finished.remove(uid);
            }
        }
        async {}.boxed()
    }

    fn forget<'a>(&'a self, uid: &'a str) -> BoxFuture<'a, ()> {
        let mut state = lock(&self.state);
        state.finished.remove(uid);
        if let Some((_, cancel)) = state.running.get(uid) {
            cancel.cancel();
        }
        async {}.boxed()
    }

    fn in_flight(&self) -> usize {
        lock(&self.state).running.len()
    }
}

/// The state is only touched in short critical sections without awaits; a poisoned lock
/// means a panic elsewhere already, and the data is still consistent enough to continue.
fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
