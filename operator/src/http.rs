//! `/metrics` (Prometheus text), `/healthz` (the process serves), `/readyz` (the CRDs are
//! established and every controller's cache has synced) on the metrics address.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use axum::{Router, extract::State, http::StatusCode, routing::get};

use crate::metrics::Metrics;

/// Readiness as a count of things still starting (the CRD check, each controller's cache).
#[derive(Debug)]
pub struct Readiness(AtomicUsize);

impl Readiness {
    /// Not ready until `pending` things reported [`Readiness::done`].
    pub fn new(pending: usize) -> Self {
        Self(AtomicUsize::new(pending))
    }

    /// `count` more things must start before ready (say, one per controller).
    pub fn add(&self, count: usize) {
        self.0.fetch_add(count, Ordering::SeqCst);
    }

    /// One thing has started.
    pub fn done(&self) {
        let _ = self
            .0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
    }

    /// Everything has started.
    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::SeqCst) == 0
    }
}

#[derive(Clone)]
struct Shared {
    metrics: Arc<Metrics>,
    ready: Arc<Readiness>,
}

/// Serves on `listener` (bound by the caller, so a bind failure stops start-up) until
/// `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
    ready: Arc<Readiness>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = Router::new()
        .route(
            "/metrics",
            get(|State(s): State<Shared>| async move { s.metrics.render() }),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(|State(s): State<Shared>| async move {
                if s.ready.is_ready() {
                    (StatusCode::OK, "ok")
                } else {
                    (StatusCode::SERVICE_UNAVAILABLE, "starting")
                }
            }),
        )
        .with_state(Shared { metrics, ready });
    tracing::info!(addr = %listener.local_addr()?, "serving /metrics, /healthz, /readyz");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
