//! Shared state of the controller: the client, the execution backend (the only record of
//! executions), the last status written per template (to skip writes that change nothing),
//! the Event recorder and metrics. The only writer of PangeaTemplate status.

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{Arc, Mutex},
};

use kube::{
    Api, Client, Resource, ResourceExt,
    api::{Patch, PatchParams},
    runtime::events::{Event, EventType, Recorder},
};
use pangea_api::{PangeaTemplate, PangeaTemplateStatus};

use crate::{
    backend::ExecutionBackend,
    leader::Leading,
    metrics::Metrics,
    status::{self, Emit},
};

/// Field manager of every status write (server-side apply).
pub const FIELD_MANAGER: &str = "pangea-operator";

/// Settings the reconcile needs besides the cluster.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Where secret files for executions are written (private, removed after each run).
    pub secrets_dir: PathBuf,
}

/// Shared controller state.
pub struct Context {
    /// Cluster client.
    pub client: Client,
    /// Where executions run.
    pub backend: Arc<dyn ExecutionBackend>,
    /// Event recorder.
    pub recorder: Recorder,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Settings.
    pub settings: Settings,
    /// Whether this process leads (checked before every start and status write).
    pub leading: Leading,
    written: Mutex<HashMap<String, PangeaTemplateStatus>>,
}

/// Errors writing status.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The apiserver refused or failed the patch.
    #[error("writing status of {name}: {source}")]
    Patch {
        /// The template.
        name: String,
        /// Why.
        #[source]
        source: kube::Error,
    },
    /// Leadership ended: the new leader writes this status.
    #[error("not writing status of {0}: this operator no longer leads")]
    NotLeading(String),
}

impl Context {
    /// A context around these parts.
    pub fn new(
        client: Client,
        backend: Arc<dyn ExecutionBackend>,
        recorder: Recorder,
        metrics: Arc<Metrics>,
        settings: Settings,
        leading: Leading,
    ) -> Self {
        Self {
            client,
            backend,
            recorder,
            metrics,
            settings,
            leading,
            written: Mutex::default(),
        }
    }

    /// Server-side applies `new` as the status of `tpl`, unless it equals what this process
    /// last wrote (or, after a restart, what the object carries). Returns whether it wrote.
    pub async fn write_status(
        &self,
        tpl: &PangeaTemplate,
        new: &PangeaTemplateStatus,
    ) -> Result<bool, WriteError> {
        let uid = tpl.uid().unwrap_or_default();
        let previous = lock(&self.written)
            .get(&uid)
            .cloned()
            .or_else(|| tpl.status.clone())
            .unwrap_or_default();
        if !status::content_changed(&previous, new) {
            return Ok(false);
        }
        if !self.leading.holds() {
            return Err(WriteError::NotLeading(tpl.name_any()));
        }
        let api: Api<PangeaTemplate> =
            Api::namespaced(self.client.clone(), &tpl.namespace().unwrap_or_default());
        let patch = serde_json::json!({
            "apiVersion": PangeaTemplate::api_version(&()),
            "kind": PangeaTemplate::kind(&()),
            "status": new,
        });
        let params = PatchParams::apply(FIELD_MANAGER).force();
        api.patch_status(&tpl.name_any(), &params, &Patch::Apply(&patch))
            .await
            .map_err(|source| WriteError::Patch {
                name: tpl.name_any(),
                source,
            })?;
        lock(&self.written).insert(uid, new.clone());
        self.metrics.status_written();
        Ok(true)
    }

    /// Forgets a deleted template: its executions, its last written status, its metrics.
    pub async fn forget(&self, tpl: &PangeaTemplate) {
        let uid = tpl.uid().unwrap_or_default();
        self.backend.forget(&uid).await;
        lock(&self.written).remove(&uid);
        self.metrics.template_gone(&uid);
    }

    /// Publishes Events on `tpl`. Failures are logged, not returned: an Event is a courtesy,
    /// the status is the record.
    pub async fn publish(&self, tpl: &PangeaTemplate, emits: &[Emit]) {
        let reference = tpl.object_ref(&());
        for emit in emits {
            let event = Event {
                type_: if emit.warning {
                    EventType::Warning
                } else {
                    EventType::Normal
                },
                reason: emit.reason.to_owned(),
                note: Some(crate::conditions::bound_bytes(
                    &emit.note,
                    crate::conditions::MAX_EVENT_NOTE_BYTES,
                )),
                action: "Reconcile".into(),
                secondary: None,
            };
            if let Err(error) = self.recorder.publish(&event, &reference).await {
                tracing::warn!(%error, reason = emit.reason, "could not publish Event");
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
