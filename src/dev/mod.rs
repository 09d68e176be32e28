//! `voxguard dev`: the embedded default. It starts the CRM simulator, a
//! loopback LiveKit dispatcher, the production worker against it, and a page
//! on which a person talks to the agent and breaks services on purpose.
//!
//! Each browser WebSocket becomes a room: the dev server registers the
//! socket as the room's transport, then asks the loopback server to dispatch
//! a job, so the conversation runs through the real worker code path.

mod api;
mod call;
pub mod console;
pub mod origin;
mod peers;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use axum::Router;
use axum::response::Html;
use axum::routing::{get, put};

use crate::agent::{Agent, AgentError, SessionJobHandler, Transports, worker_config};
use crate::config::Config;
use crate::secret::Secret;
use crate::testbed::crm::{CrmSimulator, SimError};
use crate::testbed::livekit::{LoopbackHandle, LoopbackServer};
use crate::worker::{Worker, WorkerError, WorkerHandle};

const PAGE: &str = include_str!("static/dev.html");

/// Everything `voxguard dev` runs, for the HTTP handlers.
#[derive(Clone)]
pub struct DevState {
    pub sim: Arc<CrmSimulator>,
    pub loopback: LoopbackHandle,
    pub transports: Transports,
    pub agent: Agent,
    pub worker: WorkerHandle,
    pub faults: Arc<api::FaultBoard>,
    pub tool_calls: Arc<api::ToolCallBoard>,
    next_room: Arc<AtomicU64>,
    peers: Arc<peers::PeerConnections>,
    first_frame_timeout: Duration,
}

/// A running dev stack.
pub struct DevStack {
    pub state: DevState,
    pub addr: SocketAddr,
    pub worker_task: tokio::task::JoinHandle<()>,
    pub http_task: tokio::task::JoinHandle<()>,
}

#[derive(Debug, thiserror::Error)]
pub enum DevError {
    #[error("the CRM simulator could not start")]
    Simulator(#[from] SimError),
    #[error("the loopback LiveKit server could not start")]
    Loopback(#[source] std::io::Error),
    #[error("the agent could not be built")]
    Agent(#[from] AgentError),
    #[error("the worker could not start")]
    Worker(#[from] WorkerError),
    #[error("cannot listen on {addr} (set [dev] addr or VOXGUARD_DEV_ADDR)")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Start the whole embedded stack; the page listens on `addr`.
pub async fn start(config: &Config, addr: SocketAddr, seed: u64) -> Result<DevStack, DevError> {
    let loopback_addr: SocketAddr = ([127, 0, 0, 1], 0).into();
    let sim = CrmSimulator::start(loopback_addr, seed).await?;
    let agent = Agent::from_config(config, sim.crm_endpoints(), seed)?;
    let loopback = LoopbackServer::start(loopback_addr)
        .await
        .map_err(DevError::Loopback)?;
    let transports = Transports::default();

    let lk = loopback.config();
    let worker_config = worker_config(
        config,
        loopback.url(),
        lk.api_key.clone(),
        Secret::new(lk.api_secret.clone()),
    );
    let handler = Arc::new(SessionJobHandler {
        env: agent.sessions.clone(),
        transports: transports.clone(),
        reports: None,
        voice: None,
    });
    let worker = Worker::new(worker_config, handler)?;
    let worker_handle = worker.handle();
    worker_handle.attach_fleet(agent.sessions.fleet.clone());
    worker_handle.attach_services(agent.service_report());
    let worker_task = tokio::spawn(async move {
        if let Err(err) = worker.run().await {
            tracing::error!(error = %err, "dev worker stopped");
        }
    });
    worker_handle
        .wait_registrations(1, std::time::Duration::from_secs(10))
        .await;

    let state = DevState {
        sim: Arc::new(sim),
        loopback,
        transports,
        agent,
        worker: worker_handle,
        faults: Arc::new(api::FaultBoard::default()),
        tool_calls: Arc::new(api::ToolCallBoard::default()),
        next_room: Arc::new(AtomicU64::new(1)),
        peers: peers::PeerConnections::new(config.dev.max_connections_per_address),
        first_frame_timeout: config.dev.first_frame_timeout,
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| DevError::Bind { addr, source })?;
    let addr = listener
        .local_addr()
        .map_err(|source| DevError::Bind { addr, source })?;
    let app = Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .route("/ws", get(call::ws_upgrade))
        .route("/api/services", get(api::services))
        .route("/api/faults", put(api::set_fault))
        .with_state(state.clone())
        .layer(axum::middleware::from_fn_with_state(
            origin::ServedAddresses::for_bound(addr),
            origin::only_this_server,
        ));
    let http_task = tokio::spawn(async move {
        let app = app.into_make_service_with_connect_info::<SocketAddr>();
        if let Err(err) = axum::serve(listener, app).await {
            tracing::error!(error = %err, "dev page server stopped");
        }
    });
    Ok(DevStack {
        state,
        addr,
        worker_task,
        http_task,
    })
}
