//! Wiring of the PangeaTemplate controller: a watch filtered to changes that matter (spec
//! generation, deletion, finalizers, the pause/approve annotations — never our own status
//! writes), executions finishing as extra triggers, bounded reconcile concurrency, graceful
//! shutdown.

use std::{
    hash::{DefaultHasher, Hash, Hasher},
    sync::Arc,
};

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{
    Api, Resource, ResourceExt,
    runtime::{
        Controller, WatchStreamExt,
        controller::Config as ControllerConfig,
        reflector::{self, ObjectRef, Store},
        utils::PredicateConfig,
        watcher,
    },
};
use pangea_api::PangeaTemplate;
use tokio::sync::mpsc;
use tokio_stream_shim::ReceiverStream;

use crate::{
    context::Context,
    http::Readiness,
    reconcile::{APPROVE_ANNOTATION, PAUSE_ANNOTATION, error_policy, reconcile},
};

/// What a reconcile reacts to. Status is absent on purpose: writing it must not wake us.
fn trigger_hash(tpl: &PangeaTemplate) -> Option<u64> {
    let meta = tpl.meta();
    let mut h = DefaultHasher::new();
    meta.generation.hash(&mut h);
    meta.deletion_timestamp
        .as_ref()
        .map(|t| t.0.as_second())
        .hash(&mut h);
    meta.finalizers.hash(&mut h);
    let annotations = tpl.annotations();
    annotations.get(PAUSE_ANNOTATION).hash(&mut h);
    annotations.get(APPROVE_ANNOTATION).hash(&mut h);
    Some(h.finish())
}

/// Templates that read `cm`: as their source or through `variablesFrom`. Editing such a
/// ConfigMap changes what the template evaluates to, without a new generation.
fn readers_of(cm: &ConfigMap, templates: &Store<PangeaTemplate>) -> Vec<ObjectRef<PangeaTemplate>> {
    let (ns, name) = (cm.namespace(), cm.name_any());
    templates
        .state()
        .into_iter()
        .filter(|t| t.namespace() == ns)
        .filter(|t| {
            let spec = &t.spec;
            spec.source
                .config_map
                .as_ref()
                .is_some_and(|c| c.name == name)
                || spec
                    .pangea
                    .variables_from
                    .iter()
                    .any(|v| v.config_map_ref.as_ref().is_some_and(|c| c.name == name))
        })
        .map(|t| ObjectRef::from_obj(&*t))
        .collect()
}

/// What one controller watches: templates (and the ConfigMaps they read) in one scope.
pub struct Watched {
    /// Templates, in one namespace or all.
    pub templates: Api<PangeaTemplate>,
    /// ConfigMaps of the same scope.
    pub configmaps: Api<ConfigMap>,
    /// Label selector and other watch settings for templates.
    pub config: watcher::Config,
}

/// Runs the controller for `watched` until `shutdown` resolves; reports `ready` once its
/// cache has synced.
pub async fn run(
    watched: Watched,
    ctx: Arc<Context>,
    finished: mpsc::UnboundedReceiver<ObjectRef<PangeaTemplate>>,
    concurrency: u16,
    ready: Arc<Readiness>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let (reader, writer) = reflector::store();
    // Ready after the first complete list. (`Store::wait_until_ready` cannot be awaited
    // beside the controller's own wait: only one of two waiters is woken.)
    let mut synced = false;
    let report_synced = move |event: &Result<watcher::Event<PangeaTemplate>, watcher::Error>| {
        if !synced && matches!(event, Ok(watcher::Event::InitDone)) {
            synced = true;
            tracing::debug!("template cache synced");
            ready.done();
        }
    };
    let Watched {
        templates: api,
        configmaps,
        config,
    } = watched;
    let stream = watcher(api, config)
        .default_backoff()
        .reflect(writer)
        .inspect(report_synced)
        .applied_objects()
        .predicate_filter(trigger_hash, PredicateConfig::default());
    let templates = reader.clone();
    Controller::for_stream(stream, reader)
        .watches(configmaps, watcher::Config::default(), move |cm| {
            readers_of(&cm, &templates)
        })
        .with_config(ControllerConfig::default().concurrency(concurrency))
        .reconcile_on(ReceiverStream::new(finished))
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            match result {
                // A failing watch (RBAC, a removed CRD) stops every template: say so loudly.
                Err(kube::runtime::controller::Error::QueueError(error)) => {
                    tracing::warn!(%error, "watch failed; retrying with backoff");
                }
                // Reconcile failures were logged by `error_policy` already.
                Err(error) => tracing::debug!(%error, "reconcile loop"),
                Ok(_) => {}
            }
        })
        .await;
}

/// `tokio::sync::mpsc` as a `Stream` without another dependency.
mod tokio_stream_shim {
    use std::{
        pin::Pin,
        task::{Context, Poll},
    };

    use tokio::sync::mpsc::UnboundedReceiver;

    pub struct ReceiverStream<T>(UnboundedReceiver<T>);

    impl<T> ReceiverStream<T> {
        pub fn new(rx: UnboundedReceiver<T>) -> Self {
            Self(rx)
        }
    }

    impl<T> futures::Stream for ReceiverStream<T> {
        type Item = T;

        fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
            self.0.poll_recv(cx)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tpl(yaml: &str) -> PangeaTemplate {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn status_changes_do_not_trigger_but_spec_and_annotations_do() {
        let base = "apiVersion: pangea.io/v1alpha1\nkind: PangeaTemplate\nmetadata: {name: t, generation: 1}\nspec: {source: {inline: x}}\n";
        let a = tpl(base);
        let with_status = tpl(&format!("{base}status: {{observedGeneration: 1}}\n"));
        assert_eq!(trigger_hash(&a), trigger_hash(&with_status));
        let newer = tpl(&base.replace("generation: 1", "generation: 2"));
        assert_ne!(trigger_hash(&a), trigger_hash(&newer));
        let paused = tpl(&base.replace(
            "generation: 1}",
            "generation: 1, annotations: {pangea.io/pause: \"true\"}}",
        ));
        assert_ne!(trigger_hash(&a), trigger_hash(&paused));
    }
}
