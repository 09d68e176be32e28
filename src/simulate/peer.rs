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
//!   leaves the room;
//! - `POST /voice-calls` with a [`VoiceCallPlan`] → its [`VoiceCallRecord`]
//!   once the call is over (`--media audio` only: the peer then also runs
//!   the speech simulator, and its stand-in carries media).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::testbed::crm::CrmSimulator;
use crate::testbed::livekit::{LoopbackConfig, LoopbackHandle, LoopbackServer};
use crate::testbed::speech::SpeechSimulator;

use super::caller::{CHOICES, script};
use super::voice::{self, SpokenLines, VoiceCallPlan, VoiceCallRecord};

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
    /// The speech simulator's `HOST:PORT` (`--media audio`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speech_addr: Option<String>,
}

/// Text or audio calls.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Media {
    /// The caller's words and the agent's lines travel as text.
    #[default]
    Text,
    /// Callers speak and listen over WebRTC; the agent hears and speaks.
    Audio,
}

impl Media {
    pub fn as_str(self) -> &'static str {
        match self {
            Media::Text => "text",
            Media::Audio => "audio",
        }
    }
}

impl std::str::FromStr for Media {
    type Err = String;
    fn from_str(value: &str) -> Result<Media, String> {
        match value {
            "text" => Ok(Media::Text),
            "audio" => Ok(Media::Audio),
            other => Err(format!("unknown media {other:?}: choose text or audio")),
        }
    }
}

/// How the other side runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PeerOptions {
    pub seed: u64,
    pub media: Media,
    /// Share of the stand-in's forwarded audio packets dropped.
    pub media_loss: f64,
    /// Forwarded audio is delayed by up to this much.
    pub media_jitter: Duration,
}

impl PeerOptions {
    pub fn text(seed: u64) -> PeerOptions {
        PeerOptions {
            seed,
            media: Media::Text,
            media_loss: 0.0,
            media_jitter: Duration::ZERO,
        }
    }
}

/// The other side of every boundary, running.
pub struct OtherSide {
    pub crm: CrmSimulator,
    pub loopback: LoopbackHandle,
    pub speech: Option<SpeechSimulator>,
    /// The callers' lines, spoken (audio only).
    pub lines: Option<Arc<SpokenLines>>,
}

/// Starts the CRM simulator and the stand-in on loopback, and with audio
/// the speech simulator, with every caller line rendered and registered.
pub async fn start_other_side(options: PeerOptions) -> Result<OtherSide, String> {
    let localhost: SocketAddr = ([127, 0, 0, 1], 0).into();
    let crm = CrmSimulator::start(localhost, options.seed)
        .await
        .map_err(|e| e.to_string())?;
    let audio = options.media == Media::Audio;
    let loopback_config = LoopbackConfig {
        keep_history: false,
        media: audio,
        media_loss: options.media_loss,
        media_jitter: options.media_jitter,
        ..LoopbackConfig::default()
    };
    let loopback = LoopbackServer::start_with(localhost, loopback_config)
        .await
        .map_err(|e| format!("could not start the loopback LiveKit stand-in: {e}"))?;
    let (speech, lines) = if audio {
        let speech = SpeechSimulator::start(localhost, options.seed)
            .await
            .map_err(|e| e.to_string())?;
        let mut texts = Vec::new();
        for person in &crm.fixtures().people {
            for choice in CHOICES {
                texts.extend(script(&person.email, choice));
            }
        }
        let lines = SpokenLines::render(&texts, &speech).await?;
        (Some(speech), Some(Arc::new(lines)))
    } else {
        (None, None)
    };
    Ok(OtherSide {
        crm,
        loopback,
        speech,
        lines,
    })
}

impl OtherSide {
    pub async fn shutdown(self) {
        self.crm.shutdown().await;
        if let Some(speech) = self.speech {
            speech.shutdown().await;
        }
    }
}

/// What the control API serves from.
#[derive(Clone)]
struct Control {
    loopback: LoopbackHandle,
    lines: Option<Arc<SpokenLines>>,
}

/// A participant in a room, as the control API takes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RoomParticipant {
    pub room: String,
    pub participant: String,
}

/// Serve until stdin closes or SIGTERM; the ready line goes to stdout.
pub async fn serve(options: PeerOptions) -> Result<(), String> {
    let localhost: SocketAddr = ([127, 0, 0, 1], 0).into();
    let side = start_other_side(options).await?;
    let listener = tokio::net::TcpListener::bind(localhost)
        .await
        .map_err(|e| format!("could not bind the control API: {e}"))?;
    let control_addr = listener
        .local_addr()
        .map_err(|e| format!("control API address: {e}"))?;
    let fixtures = side.crm.fixtures();
    let host = fixtures
        .hosts
        .first()
        .ok_or("the CRM simulator has no calendar host")?;
    let loopback = side.loopback.clone();
    let ready = PeerReady {
        pid: std::process::id(),
        control_url: format!("http://{control_addr}"),
        livekit_url: loopback.url(),
        api_key: loopback.config().api_key.clone(),
        api_secret: loopback.config().api_secret.clone(),
        crm_base_url: side.crm.base_url(),
        chilipiper_base_url: side.crm.chilipiper_base_url(),
        emails: fixtures.people.iter().map(|p| p.email.clone()).collect(),
        host_user_id: host.user_id.clone(),
        meeting_type_id: fixtures.meeting_type_id.clone(),
        speech_addr: side.speech.as_ref().map(|s| s.addr().to_string()),
    };

    let (stop_tx, stop_rx) = oneshot::channel::<&'static str>();
    // A plain thread: a blocking stdin read must not keep the runtime from
    // shutting down when SIGTERM ends the peer first.
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
        let _ = stop_tx.send("stdin closed");
    });
    let app = control_routes().with_state(Control {
        loopback: loopback.clone(),
        lines: side.lines.clone(),
    });
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
    side.shutdown().await;
    Ok(())
}

fn control_routes() -> Router<Control> {
    Router::new()
        .route("/jobs", post(dispatch_job))
        .route("/leaves", post(participant_leaves))
        .route("/voice-calls", post(voice_call))
}

async fn voice_call(
    State(control): State<Control>,
    Json(plan): Json<VoiceCallPlan>,
) -> (StatusCode, Json<serde_json::Value>) {
    let Some(lines) = &control.lines else {
        return (
            StatusCode::CONFLICT,
            Json(serde_json::json!({
                "error": "this peer runs text calls; start it with --media audio for voice calls"
            })),
        );
    };
    let record: VoiceCallRecord = voice::call(&control.loopback, lines, &plan).await;
    (
        StatusCode::OK,
        Json(serde_json::to_value(record).unwrap_or_default()),
    )
}

async fn dispatch_job(
    State(Control { loopback, .. }): State<Control>,
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
    State(Control { loopback, .. }): State<Control>,
    Json(leave): Json<RoomParticipant>,
) -> Json<serde_json::Value> {
    let left = loopback.participant_leaves(&leave.room, &leave.participant);
    Json(serde_json::json!({ "left": left }))
}
