//! The local backend: the executor library in-process. A global budget (a semaphore) bounds
//! how many executions run at once; each still has its own deadline. On shutdown the running
//! ones are cancelled, which interrupts terraform so it releases its state lock.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
};

use pangea_api::exec::{ExecutionResult, Request};
use pangea_executor::execute::Executor;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use super::{BackendError, ExecutionBackend, TemplateRef};
use crate::secrets::SecretFiles;

/// Runs executions as tasks of this process.
pub struct LocalBackend {
    executor: Arc<Executor>,
    budget: Arc<Semaphore>,
    state: Arc<Mutex<State>>,
    notify: mpsc::UnboundedSender<TemplateRef>,
    cancel: CancellationToken,
    tasks: TaskTracker,
}

#[derive(Default)]
struct State {
    running: HashSet<TemplateRef>,
    finished: HashMap<TemplateRef, ExecutionResult>,
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
}

impl ExecutionBackend for LocalBackend {
    fn start(
        &self,
        template: TemplateRef,
        request: Request,
        secrets: SecretFiles,
    ) -> Result<(), BackendError> {
        if self.cancel.is_cancelled() {
            return Err(BackendError::ShuttingDown);
        }
        if !lock(&self.state).running.insert(template.clone()) {
            return Err(BackendError::Busy(template.to_string()));
        }
        let (executor, budget, state) = (
            self.executor.clone(),
            self.budget.clone(),
            self.state.clone(),
        );
        let (notify, cancel) = (self.notify.clone(), self.cancel.child_token());
        self.tasks.spawn(async move {
            let result = match budget.acquire_owned().await {
                Ok(_permit) => executor.execute(&request, cancel).await,
                Err(_) => return,
            };
            drop(secrets);
            let mut state = lock(&state);
            state.running.remove(&template);
            state.finished.insert(template.clone(), result);
            drop(state);
            let _ = notify.send(template);
        });
        Ok(())
    }

    fn take_finished(&self, template: &TemplateRef) -> Option<ExecutionResult> {
        lock(&self.state).finished.remove(template)
    }

    fn is_running(&self, template: &TemplateRef) -> bool {
        lock(&self.state).running.contains(template)
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
