//! The worker's HTTP face for orchestrators: liveness, readiness (registered
//! and not draining), a JSON view of the worker, and Prometheus metrics.

use std::net::SocketAddr;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::task::JoinHandle;

use super::metrics;
use super::runner::WorkerHandle;

/// A running health server; dropping it stops the server.
pub struct HealthServer {
    local_addr: SocketAddr,
    task: JoinHandle<()>,
}

impl HealthServer {
    /// Binds `addr` (port 0 picks a free port) and serves in the background.
    pub async fn start(addr: SocketAddr, worker: WorkerHandle) -> std::io::Result<Self> {
        metrics::prometheus();
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        let app = router(worker);
        let task = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                tracing::error!(%error, "health server stopped");
            }
        });
        tracing::info!(%local_addr, "health server listening");
        Ok(Self { local_addr, task })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
}

impl Drop for HealthServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The health routes, for embedding in another server.
///
/// Unlike the dev server, these routes do not check `Host`: Prometheus,
/// kubelet probes and load balancers reach them under pod IPs, service names
/// and node addresses that the process cannot know, so a Host allow-list
/// would fail scrapes and restart healthy pods. Nothing here changes state
/// or speaks for a caller, and `/worker` and `/metrics` carry no secrets, so
/// a DNS-rebinding page gains nothing a scraper does not already see.
pub fn router(worker: WorkerHandle) -> Router {
    Router::new()
        .route("/", get(live))
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
        .route("/worker", get(worker_view))
        .route("/metrics", get(prometheus_text))
        .with_state(worker)
}

async fn live() -> &'static str {
    "ok"
}

async fn ready(State(worker): State<WorkerHandle>) -> impl IntoResponse {
    let snapshot = worker.snapshot();
    if !snapshot.connected {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not registered with LiveKit",
        )
    } else if snapshot.draining {
        (StatusCode::SERVICE_UNAVAILABLE, "draining")
    } else {
        (StatusCode::OK, "ready")
    }
}

async fn worker_view(State(worker): State<WorkerHandle>) -> impl IntoResponse {
    Json(worker.snapshot())
}

async fn prometheus_text(State(worker): State<WorkerHandle>) -> impl IntoResponse {
    let handle = metrics::prometheus();
    let snapshot = worker.snapshot();
    if let Some(fleet) = &snapshot.fleet {
        metrics::fleet_health(fleet);
    }
    metrics::services(&snapshot.services);
    handle.run_upkeep();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        handle.render(),
    )
}
