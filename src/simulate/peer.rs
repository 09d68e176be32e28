//! `voxguard sim-peer`: the other side of `voxguard simulate`'s boundaries in
//! a process of its own — the CRM simulator and the loopback LiveKit
//! stand-in (which holds the server end of every room's signal socket) —
//! so the worker's process holds only the worker's side of each call.
//!
//! It prints one [`PeerReady`] JSON line on stdout once it serves, and exits
//! when its stdin closes (its parent went away) or on SIGTERM. Besides the
//! simulator's own admin API (`/_sim/faults`, …) it serves a thin control
//! API on loopback for what simulate does to rooms:
//! - `POST /jobs` `{"room", "participant"}` → `{"job_id"}`: the participant
//!   is in the room and a job for it goes to the registered worker
//!   (503 `{"error"}` when it cannot be dispatched);
//! - `POST /leaves` `{"room", "participant"}` → `{"left"}`: the participant
//!   leaves the room.

use std::net::SocketAddr;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::testbed::crm::CrmSimulator;
use crate::testbed::livekit::{LoopbackConfig, LoopbackHandle, LoopbackServer};

/// What the peer prints on stdout when it is ready: where everything is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerReady {
    pub pid: u32,
    /// The control API (`/jobs`, `/leaves`).
    pub control_url: String,
    /// The loopback LiveKit stand-in and the keys it accepts.
    pub livekit_url: String,
    pub api_key: String,
    pub api_secret: String,
    /// The CRM simulator (Amplitude, Salesforce, HubSpot and its admin API).
    pub crm_base_url: String,
    pub chilipiper_base_url: String,
    /// The seeded people's emails, for the callers to ask about.
    pub emails: Vec<String>,
    pub host_user_id: String,
    pub meeting_type_id: String,
}

/// A participant in a room, as the control API takes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RoomParticipant {
    pub room: String,
    pub participant: String,
}

/// Serve until stdin closes or SIGTERM; the ready line goes to stdout.
pub async fn serve(seed: u64) -> Result<(), String> {
    let localhost: SocketAddr = ([127, 0, 0, 1], 0).into();
    let sim = CrmSimulator::start(localhost, seed)
        .await
        .map_err(|e| e.to_string())?;
    let loopback_config = LoopbackConfig {
        keep_history: false,
        media: false,
        ..LoopbackConfig::default()
    };
    let loopback = LoopbackServer::start_with(localhost, loopback_config)
        .await
        .map_err(|e| format!("could not start the loopback LiveKit stand-in: {e}"))?;
    let listener = tokio::net::TcpListener::bind(localhost)
        .await
        .map_err(|e| format!("could not bind the control API: {e}"))?;
    let control_addr = listener
        .local_addr()
        .map_err(|e| format!("control API address: {e}"))?;
    let fixtures = sim.fixtures();
    let host = fixtures
        .hosts
        .first()
        .ok_or("the CRM simulator has no calendar host")?;
    let ready = PeerReady {
        pid: std::process::id(),
        control_url: format!("http://{control_addr}"),
        livekit_url: loopback.url(),
        api_key: loopback.config().api_key.clone(),
        api_secret: loopback.config().api_secret.clone(),
        crm_base_url: sim.base_url(),
        chilipiper_base_url: sim.chilipiper_base_url(),
        emails: fixtures.people.iter().map(|p| p.email.clone()).collect(),
        host_user_id: host.user_id.clone(),
        meeting_type_id: fixtures.meeting_type_id.clone(),
    };

    let (stop_tx, stop_rx) = oneshot::channel::<&'static str>();
    // A plain thread: a blocking stdin read must not keep the runtime from
    // shutting down when SIGTERM ends the peer first.
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
        let _ = stop_tx.send("stdin closed");
    });
    let app = control_routes().with_state(loopback.clone());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    println!(
        "{}",
        serde_json::to_string(&ready).map_err(|e| e.to_string())?
    );
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| format!("cannot watch SIGTERM: {e}"))?;
    let why = tokio::select! {
        why = stop_rx => why.unwrap_or("stdin closed"),
        _ = term.recv() => "SIGTERM",
        served = server => {
            return Err(format!("the control API stopped: {served:?}"));
        }
    };
    tracing::info!(why, "simulator peer stopping");
    sim.shutdown().await;
    drop(loopback);
    Ok(())
}

fn control_routes() -> Router<LoopbackHandle> {
    Router::new()
        .route("/jobs", post(dispatch_job))
        .route("/leaves", post(participant_leaves))
}

async fn dispatch_job(
    State(loopback): State<LoopbackHandle>,
    Json(job): Json<RoomParticipant>,
) -> (StatusCode, Json<serde_json::Value>) {
    match loopback.dispatch_job(&job.room, &job.participant).await {
        Ok(dispatched) => (
            StatusCode::OK,
            Json(serde_json::json!({ "job_id": dispatched.job_id })),
        ),
        Err(err) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({ "error": err.to_string() })),
        ),
    }
}

async fn participant_leaves(
    State(loopback): State<LoopbackHandle>,
    Json(leave): Json<RoomParticipant>,
) -> Json<serde_json::Value> {
    let left = loopback.participant_leaves(&leave.room, &leave.participant);
    Json(serde_json::json!({ "left": left }))
}
