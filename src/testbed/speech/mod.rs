//! The speech simulator: the other side of the speech providers' boundary,
//! speaking their real protocols on one local server with the CRM
//! simulator's fault model:
//!
//! - Deepgram-compatible `GET /v1/listen` (WebSocket streaming recognition);
//! - OpenAI-compatible `POST /v1/audio/transcriptions` and `POST /v1/audio/speech`,
//!   and `POST /v1/chat/completions` (a model that answers with one short,
//!   friendly question, streamed or not; its faults are the `llm` provider's);
//! - Cartesia-compatible `GET /tts/websocket`.
//!
//! It needs no recognition model: scripted callers register each utterance
//! they will say (its words and its audio) and the recognizer answers with
//! the words of the registered utterance whose level, hiss and spectral
//! balance best match what it heard (see [`recognize`]). Its voice is deterministic, speech-like audio (~65 ms a
//! character) at the protocol's rate.
//!
//! Admin API (JSON):
//! - `GET /_sim/faults` → the active [`FaultConfig`]; `PUT /_sim/faults` with a
//!   [`FaultUpdate`], e.g. `{"preset": "stt-drop"}` or
//!   `{"providers": {"deepgram": {"drop_rate": 1.0, "drop_close": "server_error_1011"}}}`;
//! - `POST /_sim/utterances` with `{"text": ..., "wav_base64": ...}` registers
//!   an utterance; `GET` lists them; `DELETE` forgets them all;
//! - `GET /_sim/requests` → every request or stream seen; `DELETE` clears.
//!
//! ```no_run
//! # async fn demo() -> Result<(), voxguard::testbed::speech::SpeechSimError> {
//! use voxguard::testbed::speech::{FaultUpdate, SpeechSimulator};
//! let sim = SpeechSimulator::start("127.0.0.1:0".parse().unwrap(), 42).await?;
//! sim.set_faults(FaultUpdate::preset("stt-drop")).expect("known preset");
//! println!("Deepgram at {}, OpenAI at {}", sim.deepgram_url(), sim.openai_base_url());
//! sim.shutdown().await;
//! # Ok(()) }
//! ```

pub mod cartesia;
pub mod faults;
pub mod listen;
pub mod openai;
pub mod recognize;
mod state;
pub mod voice;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use faults::{
    DropClose, FaultConfig, FaultSpec, FaultUpdate, Latency, Malformed, Outage, SpeechFault,
};
pub use state::{RequestRecord, SpeechSimCredentials};
pub use voice::SimVoice;

use crate::media::{Pcm, wav};
use state::{SimState, lock};

/// The seed `voxguard speech-sim` uses.
pub const DEFAULT_SEED: u64 = 42;

#[derive(Debug, thiserror::Error)]
pub enum SpeechSimError {
    #[error("invalid simulator address {0:?}: expected HOST:PORT")]
    Address(String),
    #[error("could not bind the speech simulator to {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("the speech simulator stopped: {0}")]
    Serve(std::io::Error),
}

/// A running simulator. Dropping it stops the server.
pub struct SpeechSimulator {
    state: Arc<SimState>,
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    server: Option<JoinHandle<Result<(), std::io::Error>>>,
}

impl SpeechSimulator {
    /// Bind `addr` (port 0 picks a free port) with healthy providers.
    pub async fn start(addr: SocketAddr, seed: u64) -> Result<Self, SpeechSimError> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| SpeechSimError::Bind {
                addr: addr.to_string(),
                source,
            })?;
        let addr = listener
            .local_addr()
            .map_err(|source| SpeechSimError::Bind {
                addr: addr.to_string(),
                source,
            })?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let healthy = FaultUpdate::preset("healthy").resolve().unwrap_or_default();
        let state = Arc::new(SimState::new(
            seed,
            SpeechSimCredentials::default(),
            healthy,
            shutdown_rx.clone(),
        ));
        let app = Router::new()
            .route("/v1/listen", get(listen::listen))
            .route("/v1/audio/transcriptions", post(openai::transcriptions))
            .route("/v1/audio/speech", post(openai::speech))
            .route("/v1/chat/completions", post(openai::chat_completions))
            .route("/tts/websocket", get(cartesia::websocket))
            .route("/_sim/faults", get(get_faults).put(put_faults))
            .route(
                "/_sim/utterances",
                get(get_utterances)
                    .post(post_utterance)
                    .delete(delete_utterances),
            )
            .route("/_sim/requests", get(get_requests).delete(delete_requests))
            .layer(axum::extract::DefaultBodyLimit::max(16 * 1024 * 1024))
            .with_state(state.clone());
        let mut stop = shutdown_rx;
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|down| *down).await;
                })
                .await
        });
        tracing::info!(%addr, seed, "speech simulator listening");
        Ok(SpeechSimulator {
            state,
            addr,
            shutdown,
            server: Some(server),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `ws://…/v1/listen`, the Deepgram streaming URL.
    pub fn deepgram_url(&self) -> String {
        format!("ws://{}/v1/listen", self.addr)
    }

    /// `http://…/v1`, the OpenAI-compatible base URL (STT and TTS).
    pub fn openai_base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// `ws://…`, the Cartesia base URL (`/tts/websocket` is appended).
    pub fn cartesia_base_url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// `http://…`, where the admin API lives.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn credentials(&self) -> &SpeechSimCredentials {
        &self.state.credentials
    }

    /// Speak with `voice` from now on (the synthetic voice by default).
    pub fn set_voice(&self, voice: SimVoice) {
        *lock(&self.state.voice) = voice;
    }

    /// Replace the active faults (outage windows and `times` start now).
    pub fn set_faults(&self, update: FaultUpdate) -> Result<FaultConfig, String> {
        set_faults(&self.state, update)
    }

    pub fn faults(&self) -> FaultConfig {
        lock(&self.state.faults).config.clone()
    }

    /// Register what a scripted caller will say; returns its id.
    pub fn register_utterance(&self, text: &str, audio: &Pcm) -> u64 {
        self.state
            .register(text, &audio.samples, audio.sample_rate)
            .id
    }

    pub fn requests(&self) -> Vec<RequestRecord> {
        self.state.requests()
    }

    /// How long a `/v1/listen` stream may go without audio or KeepAlive
    /// before it is closed with 1011 `NET-0001` (Deepgram: about 10 s), for
    /// streams opened from now on.
    pub fn set_idle_close(&self, after: Duration) {
        *lock(&self.state.idle_close) = after;
    }

    /// Requests to one provider (`deepgram`, `openai_stt`, `openai_tts`, `cartesia`).
    pub fn requests_to(&self, provider: &str) -> Vec<RequestRecord> {
        self.state
            .requests()
            .into_iter()
            .filter(|r| r.provider == provider)
            .collect()
    }

    pub fn clear_requests(&self) {
        self.state.clear_requests();
    }

    /// Stop serving: release hung requests and streams, wait (bounded) for the server.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(mut server) = self.server.take()
            && tokio::time::timeout(Duration::from_secs(5), &mut server)
                .await
                .is_err()
        {
            server.abort();
        }
    }
}

impl Drop for SpeechSimulator {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

fn set_faults(state: &SimState, update: FaultUpdate) -> Result<FaultConfig, String> {
    let config = update.resolve()?;
    let mut faults = lock(&state.faults);
    faults.config = config.clone();
    faults.set_at = tokio::time::Instant::now();
    faults.counts.clear();
    tracing::info!(
        preset = config.preset.as_deref().unwrap_or("custom"),
        "speech simulator faults set"
    );
    Ok(config)
}

/// The handshake answer for a fault that refuses a request, if it does.
pub(crate) fn refuse(fault: SpeechFault, body: fn(u16) -> serde_json::Value) -> Option<Response> {
    match fault {
        SpeechFault::Outage { status } | SpeechFault::Error { status } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            Some((status, axum::Json(body(status.as_u16()))).into_response())
        }
        SpeechFault::RateLimited { retry_after_secs } => Some(
            (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, retry_after_secs.to_string())],
                axum::Json(body(429)),
            )
                .into_response(),
        ),
        _ => None,
    }
}

/// An OpenAI-style error body for `status`.
pub(crate) fn error_json(status: u16) -> serde_json::Value {
    let (kind, code) = match status {
        429 => ("requests", "rate_limit_exceeded"),
        500..=599 => ("server_error", "server_error"),
        _ => ("invalid_request_error", "invalid_request"),
    };
    json!({"error": {"message": "simulated failure", "type": kind, "param": null, "code": code}})
}

type Sim = State<Arc<SimState>>;

fn bad_request(message: String) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({"error": message})),
    )
        .into_response()
}

async fn get_faults(State(sim): Sim) -> Response {
    axum::Json(lock(&sim.faults).config.clone()).into_response()
}

async fn put_faults(State(sim): Sim, body: Bytes) -> Response {
    let update: FaultUpdate = match serde_json::from_slice(&body) {
        Ok(update) => update,
        Err(e) => return bad_request(format!("invalid fault update: {e}")),
    };
    match set_faults(&sim, update) {
        Ok(config) => axum::Json(config).into_response(),
        Err(e) => bad_request(e),
    }
}

/// A `POST /_sim/utterances` body.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUtterance {
    pub text: String,
    /// The audio as a base64 WAV file (16-bit PCM, any rate).
    pub wav_base64: String,
}

/// One registered utterance, as `GET /_sim/utterances` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UtteranceInfo {
    pub id: u64,
    pub text: String,
    pub speech_ms: u64,
}

async fn post_utterance(State(sim): Sim, body: Bytes) -> Response {
    let new: NewUtterance = match serde_json::from_slice(&body) {
        Ok(new) => new,
        Err(e) => return bad_request(format!("invalid utterance: {e}")),
    };
    if new.text.trim().is_empty() {
        return bad_request("text must not be empty".into());
    }
    let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(new.wav_base64.as_bytes())
    else {
        return bad_request("wav_base64 is not base64".into());
    };
    let pcm = match wav::parse(&bytes) {
        Ok(pcm) => pcm,
        Err(e) => return bad_request(format!("wav_base64 is not a usable WAV file: {e}")),
    };
    let utterance = sim.register(&new.text, &pcm.samples, pcm.sample_rate);
    if utterance.envelope.is_empty() {
        return bad_request("the audio holds no speech (it is silent)".into());
    }
    (
        StatusCode::CREATED,
        axum::Json(UtteranceInfo {
            id: utterance.id,
            text: utterance.text.clone(),
            speech_ms: utterance.duration_ms(),
        }),
    )
        .into_response()
}

async fn get_utterances(State(sim): Sim) -> Response {
    let list: Vec<UtteranceInfo> = sim
        .utterances()
        .iter()
        .map(|u| UtteranceInfo {
            id: u.id,
            text: u.text.clone(),
            speech_ms: u.duration_ms(),
        })
        .collect();
    axum::Json(list).into_response()
}

async fn delete_utterances(State(sim): Sim) -> StatusCode {
    sim.utterances
        .write()
        .unwrap_or_else(|p| p.into_inner())
        .clear();
    sim.utterances_version
        .fetch_add(1, std::sync::atomic::Ordering::Release);
    StatusCode::NO_CONTENT
}

async fn get_requests(State(sim): Sim) -> Response {
    axum::Json(sim.requests()).into_response()
}

async fn delete_requests(State(sim): Sim) -> StatusCode {
    sim.clear_requests();
    StatusCode::NO_CONTENT
}

/// Run the simulator on `addr` until Ctrl-C (the `voxguard speech-sim` command).
pub async fn run_standalone(addr: &str) -> Result<(), SpeechSimError> {
    let socket = tokio::net::lookup_host(addr)
        .await
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| SpeechSimError::Address(addr.to_string()))?;
    let sim = SpeechSimulator::start(socket, DEFAULT_SEED).await?;
    tracing::info!(
        deepgram = %sim.deepgram_url(),
        openai = %sim.openai_base_url(),
        cartesia = %sim.cartesia_base_url(),
        "speech simulator ready; admin API at /_sim/faults, /_sim/utterances, /_sim/requests"
    );
    let stopped = tokio::signal::ctrl_c().await;
    sim.shutdown().await;
    stopped.map_err(SpeechSimError::Serve)
}
