//! A Cartesia-compatible `/tts/websocket`: `X-API-Key` (or `api_key` in the
//! query) on the handshake; generation requests with a `context_id` and a
//! raw `pcm_s16le` output format are answered with `chunk` messages (base64
//! audio at the requested rate), then `done`; a bad request gets an `error`
//! with a status code. Contexts are served one after another.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::json;

use super::faults::{DropClose, Malformed, SpeechFault};
use super::state::SimState;
use super::voice;
use super::{error_json, refuse};

const CHUNK: Duration = Duration::from_millis(100);
const CHUNK_EVERY: Duration = Duration::from_millis(20);

type Sim = State<Arc<SimState>>;

pub(crate) async fn websocket(
    State(sim): Sim,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    let key = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .or(params.get("api_key").map(String::as_str));
    if key != Some(sim.credentials.cartesia.expose()) {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": "Invalid API key", "status_code": 401})),
        )
            .into_response();
    }
    let Ok(upgrade) = upgrade else {
        return StatusCode::UPGRADE_REQUIRED.into_response();
    };
    let (latency, fault) = sim.draw("cartesia");
    if let Some(refused) = refuse(fault, error_json) {
        return refused;
    }
    upgrade.on_upgrade(move |socket| serve(sim, socket, latency, fault))
}

#[derive(Deserialize)]
struct Request {
    context_id: Option<String>,
    transcript: Option<String>,
    model_id: Option<String>,
    voice: Option<serde_json::Value>,
    output_format: Option<OutputFormat>,
    #[serde(default)]
    cancel: bool,
}

#[derive(Deserialize)]
struct OutputFormat {
    container: String,
    encoding: String,
    sample_rate: u32,
}

async fn serve(sim: Arc<SimState>, mut socket: WebSocket, latency: Duration, fault: SpeechFault) {
    let mut shutdown = sim.shutdown.clone();
    loop {
        let message = tokio::select! {
            message = socket.recv() => message,
            _ = shutdown.wait_for(|down| *down) => return,
        };
        let Some(Ok(message)) = message else { return };
        let text = match message {
            Message::Text(text) => text,
            Message::Close(_) => return,
            _ => continue,
        };
        let Ok(request) = serde_json::from_str::<Request>(&text) else {
            let _ = socket
                .send(Message::Text(
                    error(None, 400, "invalid_request", "could not parse the request").into(),
                ))
                .await;
            continue;
        };
        if request.cancel {
            continue;
        }
        let context_id = request.context_id.clone();
        let format = match validate(&request) {
            Ok(format) => format,
            Err(message) => {
                let _ = socket
                    .send(Message::Text(
                        error(context_id.as_deref(), 400, "invalid_request", message).into(),
                    ))
                    .await;
                continue;
            }
        };
        if fault == SpeechFault::Hang {
            sim.hang().await;
            return;
        }
        tokio::time::sleep(latency).await;
        let sim_voice = super::state::lock(&sim.voice).clone();
        let keep_going = speak(
            &mut socket,
            &sim_voice,
            fault,
            context_id.as_deref(),
            request.transcript.as_deref().unwrap_or_default(),
            format.sample_rate,
        )
        .await;
        if !keep_going {
            return;
        }
    }
}

fn validate(request: &Request) -> Result<&OutputFormat, &'static str> {
    if request.model_id.as_deref().is_none_or(str::is_empty) {
        return Err("model_id is required");
    }
    if request.voice.is_none() {
        return Err("voice is required");
    }
    if request
        .transcript
        .as_deref()
        .is_none_or(|t| t.trim().is_empty())
    {
        return Err("transcript must not be empty");
    }
    let format = request
        .output_format
        .as_ref()
        .ok_or("output_format is required")?;
    if format.container != "raw" || format.encoding != "pcm_s16le" {
        return Err("the simulator speaks raw pcm_s16le only");
    }
    if !(8_000..=48_000).contains(&format.sample_rate) {
        return Err("sample_rate must be between 8000 and 48000");
    }
    Ok(format)
}

fn error(context_id: Option<&str>, status: u16, code: &str, message: &str) -> String {
    json!({"type": "error", "done": true, "status_code": status, "error_code": code, "title": code, "message": message, "context_id": context_id}).to_string()
}

/// Speak one context; `false` when the connection is gone or dropped.
async fn speak(
    socket: &mut WebSocket,
    sim_voice: &voice::SimVoice,
    fault: SpeechFault,
    context_id: Option<&str>,
    transcript: &str,
    sample_rate: u32,
) -> bool {
    match fault {
        SpeechFault::Error { status } | SpeechFault::Outage { status } => {
            let message = error(context_id, status, "internal_error", "synthesis failed");
            return socket.send(Message::Text(message.into())).await.is_ok();
        }
        SpeechFault::Malformed(Malformed::Garbage)
        | SpeechFault::Malformed(Malformed::WrongRate) => {
            return socket
                .send(Message::Text("{\"type\": \"chunk\", \"data\": ".into()))
                .await
                .is_ok();
        }
        _ => {}
    }
    let mut bytes: Vec<u8> = if fault == SpeechFault::ZeroAudio {
        Vec::new()
    } else {
        match voice::render(sim_voice, transcript, sample_rate).await {
            Ok(audio) => audio.iter().flat_map(|s| s.to_le_bytes()).collect(),
            Err(message) => {
                let message = error(context_id, 500, "internal_error", &message);
                return socket.send(Message::Text(message.into())).await.is_ok();
            }
        }
    };
    if fault == SpeechFault::Malformed(Malformed::OddBytes) {
        bytes.pop();
    }
    let chunk = ((CHUNK.as_secs_f64() * f64::from(sample_rate)) as usize * 2).max(2);
    let mut sent = 0;
    for piece in bytes.chunks(chunk) {
        if let SpeechFault::Drop { close, after } = fault
            && sent as f64 >= after.as_secs_f64() * f64::from(sample_rate) * 2.0
        {
            if close == DropClose::ServerError1011 {
                let _ = socket
                    .send(Message::Close(Some(CloseFrame {
                        code: 1011,
                        reason: "internal error".into(),
                    })))
                    .await;
            }
            return false;
        }
        let message = json!({
            "type": "chunk",
            "data": base64::engine::general_purpose::STANDARD.encode(piece),
            "done": false,
            "status_code": 206,
            "step_time": 12.5,
            "context_id": context_id,
        });
        if socket
            .send(Message::Text(message.to_string().into()))
            .await
            .is_err()
        {
            return false;
        }
        sent += piece.len();
        tokio::time::sleep(CHUNK_EVERY).await;
    }
    let done = json!({"type": "done", "done": true, "status_code": 206, "context_id": context_id});
    socket
        .send(Message::Text(done.to_string().into()))
        .await
        .is_ok()
}
