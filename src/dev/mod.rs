//! `voxguard dev`: the embedded default. It starts the CRM simulator, a
//! loopback LiveKit dispatcher, the production worker against it, and a page
//! on which a person talks to the agent and breaks services on purpose.
//!
//! Each browser WebSocket becomes a room: the dev server registers the
//! socket as the room's transport, then asks the loopback server to dispatch
//! a job, so the conversation runs through the real worker code path.

mod api;
pub mod console;
pub mod origin;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::response::{Html, IntoResponse};
use axum::routing::{get, put};

use crate::agent::{Agent, AgentError, SessionJobHandler, Transports, worker_config};
use crate::config::Config;
use crate::secret::Secret;
use crate::session::io::parse_caller_frame;
use crate::session::{AgentEvent, CallerEvent};
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
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| DevError::Bind { addr, source })?;
    let addr = listener
        .local_addr()
        .map_err(|source| DevError::Bind { addr, source })?;
    let app = Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .route("/ws", get(ws_upgrade))
        .route("/api/services", get(api::services))
        .route("/api/faults", put(api::set_fault))
        .with_state(state.clone())
        .layer(axum::middleware::from_fn_with_state(
            origin::ServedAddresses::for_bound(addr),
            origin::only_this_server,
        ));
    let http_task = tokio::spawn(async move {
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

async fn ws_upgrade(ws: WebSocketUpgrade, State(state): State<DevState>) -> impl IntoResponse {
    ws.on_upgrade(move |socket| converse(socket, state))
}

/// One browser conversation: a room, a job, and frames pumped both ways.
async fn converse(mut socket: WebSocket, state: DevState) {
    let room = format!(
        "dev-room-{}",
        state.next_room.fetch_add(1, Ordering::Relaxed)
    );
    let caller = "browser-caller";
    let mut transport = state.transports.attach(&room);
    if let Err(err) = state.loopback.dispatch_job(&room, caller).await {
        let frame = AgentEvent::Error {
            message: format!("could not start the agent: {err}"),
        };
        let _ = send_event(&mut socket, &frame).await;
        return;
    }
    let mut tally = ToolTally::default();
    loop {
        tokio::select! {
            event = transport.from_session.recv() => match event {
                Some(event) => {
                    tally.observe(&event, &state.tool_calls);
                    let ended = matches!(event, AgentEvent::SessionEnded { .. });
                    if send_event(&mut socket, &event).await.is_err() {
                        break;
                    }
                    if ended {
                        // A closing handshake, so the browser sees a clean end
                        // of call rather than a dropped connection.
                        let _ = socket.send(Message::Close(Some(CloseFrame {
                            code: close_code::NORMAL,
                            reason: "call ended".into(),
                        }))).await;
                        break;
                    }
                }
                None => break,
            },
            frame = socket.recv() => match frame {
                Some(Ok(Message::Text(text))) => match parse_caller_frame(&text) {
                    Ok(event) => {
                        if transport.to_session.send(event).await.is_err() {
                            break;
                        }
                    }
                    Err(message) => {
                        let _ = send_event(&mut socket, &AgentEvent::Error { message }).await;
                    }
                },
                Some(Ok(Message::Binary(_))) => {
                    let message = "binary frames are not part of the protocol; send JSON text frames such as {\"type\":\"user\",\"text\":\"...\"}".to_owned();
                    let _ = send_event(&mut socket, &AgentEvent::Error { message }).await;
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            },
        }
    }
    let _ = transport.to_session.send(CallerEvent::Hangup).await;
    state.loopback.participant_leaves(&room, caller);
}

async fn send_event(socket: &mut WebSocket, event: &AgentEvent) -> Result<(), axum::Error> {
    let text = serde_json::to_string(event).unwrap_or_default();
    socket.send(Message::Text(text.into())).await
}

/// Pairs a call's `tool_finished` with the service its `tool_started` named,
/// for the service cards.
#[derive(Default)]
struct ToolTally {
    in_flight: HashMap<String, String>,
}

impl ToolTally {
    fn observe(&mut self, event: &AgentEvent, board: &api::ToolCallBoard) {
        match event {
            AgentEvent::ToolStarted(started) => {
                self.in_flight
                    .insert(started.call_id.clone(), started.service.clone());
            }
            AgentEvent::ToolFinished(finished) => {
                if let Some(service) = self.in_flight.remove(&finished.call_id) {
                    board.record(&service, finished.elapsed_ms, &finished.outcome);
                }
            }
            _ => {}
        }
    }
}
