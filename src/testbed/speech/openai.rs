//! OpenAI-compatible `/v1/audio/transcriptions` (multipart: `file` as WAV,
//! `model`, `response_format`; `{"text": ...}` back) and `/v1/audio/speech`
//! (`{"model", "input", "voice", "response_format": "pcm"}`; raw s16le mono
//! 24 kHz, streamed in chunks), and `/v1/chat/completions` (`{"model",
//! "messages", "stream"}`: a `chat.completion` object, or with `stream`
//! server-sent `chat.completion.chunk` events ending in `[DONE]`), all behind
//! `Authorization: Bearer <key>`.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::faults::{Malformed, SpeechFault};
use super::recognize;
use super::state::{SimState, lock};
use super::voice;
use super::{error_json, refuse};
use crate::media::wav;

/// The rate of OpenAI's `pcm` format.
pub const PCM_RATE: u32 = 24_000;
/// Audio per streamed chunk, and the pause between chunks (5× real time).
const CHUNK: Duration = Duration::from_millis(100);
const CHUNK_EVERY: Duration = Duration::from_millis(20);
/// OpenAI refuses longer input.
const MAX_INPUT: usize = 4_096;

type Sim = State<Arc<SimState>>;

fn authorized(sim: &SimState, headers: &HeaderMap) -> bool {
    let expected = format!("Bearer {}", sim.credentials.openai.expose());
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == expected)
}

fn invalid(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": {"message": message, "type": "invalid_request_error", "param": null, "code": code}})),
    )
        .into_response()
}

fn unauthorized() -> Response {
    invalid(
        StatusCode::UNAUTHORIZED,
        "invalid_api_key",
        "Incorrect API key provided.",
    )
}

pub(crate) async fn transcriptions(State(sim): Sim, headers: HeaderMap, body: Bytes) -> Response {
    if !authorized(&sim, &headers) {
        return unauthorized();
    }
    let Some(boundary) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split("boundary=").nth(1))
        .map(|b| b.trim_matches('"').to_string())
    else {
        return invalid(
            StatusCode::BAD_REQUEST,
            "invalid_content_type",
            "Expected multipart/form-data.",
        );
    };
    let parts = parse_multipart(&body, &boundary);
    let field = |name: &str| {
        parts
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    };
    if field("model").is_none_or(<[u8]>::is_empty) {
        return invalid(
            StatusCode::BAD_REQUEST,
            "missing_model",
            "you must provide a model parameter",
        );
    }
    let Some(file) = field("file") else {
        return invalid(
            StatusCode::BAD_REQUEST,
            "missing_file",
            "you must provide a file",
        );
    };
    let pcm = match wav::parse(file) {
        Ok(pcm) => pcm,
        Err(_) => {
            return invalid(
                StatusCode::BAD_REQUEST,
                "invalid_file_format",
                "Invalid file format.",
            );
        }
    };
    let fault = match answer_after_fault(&sim, "openai_stt").await {
        Ok(fault) => fault,
        Err(refused) => return refused,
    };
    let text = match fault {
        SpeechFault::ZeroAudio => String::new(),
        _ => recognize::transcribe(&pcm.samples, pcm.sample_rate, &sim.utterances(), 300),
    };
    let body = json!({ "text": text }).to_string();
    match fault {
        SpeechFault::Malformed(_) => (StatusCode::OK, "{\"txet\": 4").into_response(),
        SpeechFault::Drop { .. } => truncated_body(body.into_bytes()),
        _ => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
    }
}

/// Draws `provider`'s fault for one HTTP request and plays it out: a
/// refusal is the answer (`Err`), a hang never answers, otherwise the
/// drawn latency passes and the fault is the caller's to apply.
async fn answer_after_fault(sim: &SimState, provider: &str) -> Result<SpeechFault, Response> {
    let (latency, fault) = sim.draw(provider);
    if let Some(refused) = refuse(fault, error_json) {
        return Err(refused);
    }
    if fault == SpeechFault::Hang {
        sim.hang().await;
        return Err(StatusCode::SERVICE_UNAVAILABLE.into_response());
    }
    tokio::time::sleep(latency).await;
    Ok(fault)
}

/// A 200 whose body breaks off halfway: the connection closes mid-answer.
fn truncated_body(mut body: Vec<u8>) -> Response {
    body.truncate(body.len() / 2);
    let stream = futures_util::stream::iter([
        Ok::<_, std::io::Error>(Bytes::from(body)),
        Err(std::io::Error::other("dropped")),
    ]);
    Response::new(Body::from_stream(stream))
}

/// `(name, value)` of each part of a multipart/form-data body.
pub fn parse_multipart(body: &[u8], boundary: &str) -> Vec<(String, Vec<u8>)> {
    let delimiter = format!("--{boundary}").into_bytes();
    let mut parts = Vec::new();
    let mut rest = body;
    while let Some(at) = find(rest, &delimiter) {
        rest = &rest[at + delimiter.len()..];
        if rest.starts_with(b"--") {
            break;
        }
        let Some(head_end) = find(rest, b"\r\n\r\n") else {
            break;
        };
        let head = String::from_utf8_lossy(&rest[..head_end]).to_string();
        let content = &rest[head_end + 4..];
        let Some(end) = find(content, &delimiter) else {
            break;
        };
        let value = content[..end]
            .strip_suffix(b"\r\n")
            .unwrap_or(&content[..end]);
        if let Some(name) = head
            .split(';')
            .find_map(|p| p.trim().strip_prefix("name=\""))
            .and_then(|n| n.split('"').next())
        {
            parts.push((name.to_string(), value.to_vec()));
        }
        rest = &content[end..];
    }
    parts
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[derive(Deserialize)]
struct SpeechRequest {
    model: Option<String>,
    input: Option<String>,
    voice: Option<String>,
    #[serde(default)]
    response_format: Option<String>,
}

pub(crate) async fn speech(State(sim): Sim, headers: HeaderMap, body: Bytes) -> Response {
    if !authorized(&sim, &headers) {
        return unauthorized();
    }
    let Ok(request) = serde_json::from_slice::<SpeechRequest>(&body) else {
        return invalid(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            "We could not parse the JSON body.",
        );
    };
    let (Some(_model), Some(input), Some(_voice)) = (request.model, request.input, request.voice)
    else {
        return invalid(
            StatusCode::BAD_REQUEST,
            "missing_required_parameter",
            "model, input and voice are required",
        );
    };
    if input.trim().is_empty() || input.chars().count() > MAX_INPUT {
        return invalid(
            StatusCode::BAD_REQUEST,
            "invalid_value",
            "input must be 1 to 4096 characters",
        );
    }
    let wav_format = match request.response_format.as_deref().unwrap_or("mp3") {
        "pcm" => false,
        "wav" => true,
        _ => {
            return invalid(
                StatusCode::BAD_REQUEST,
                "unsupported_format",
                "the simulator speaks pcm and wav only",
            );
        }
    };
    let fault = match answer_after_fault(&sim, "openai_tts").await {
        Ok(fault) => fault,
        Err(refused) => return refused,
    };
    let mut bytes: Vec<u8> = match fault {
        SpeechFault::ZeroAudio => Vec::new(),
        SpeechFault::Malformed(Malformed::WrongRate) => {
            wav::write(16_000, &voice::synthesize(&input, 16_000))
        }
        SpeechFault::Malformed(Malformed::Garbage) => {
            return (
                [(header::CONTENT_TYPE, "application/json")],
                r#"{"object":"not audio"}"#,
            )
                .into_response();
        }
        _ => {
            let sim_voice = lock(&sim.voice).clone();
            let audio = match voice::render(&sim_voice, &input, PCM_RATE).await {
                Ok(audio) => audio,
                Err(message) => {
                    return invalid(StatusCode::INTERNAL_SERVER_ERROR, "server_error", &message);
                }
            };
            if wav_format {
                wav::write(PCM_RATE, &audio)
            } else {
                audio.iter().flat_map(|s| s.to_le_bytes()).collect()
            }
        }
    };
    if fault == SpeechFault::Malformed(Malformed::OddBytes) {
        bytes.pop();
    }
    let drop_at = match fault {
        SpeechFault::Drop { after, .. } => {
            Some((after.as_secs_f64() * f64::from(PCM_RATE) * 2.0) as usize)
        }
        _ => None,
    };
    let chunk = (CHUNK.as_secs_f64() * f64::from(PCM_RATE) * 2.0) as usize;
    let stream = async_stream(bytes, chunk, drop_at);
    let content_type = if wav_format { "audio/wav" } else { "audio/pcm" };
    (
        [(header::CONTENT_TYPE, content_type)],
        Body::from_stream(stream),
    )
        .into_response()
}

/// The body in chunks, one every [`CHUNK_EVERY`]; broken off at `drop_at` bytes.
fn async_stream(
    bytes: Vec<u8>,
    chunk: usize,
    drop_at: Option<usize>,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> {
    let bytes = Bytes::from(bytes);
    futures_util::stream::unfold(
        (bytes, 0usize, false),
        move |(bytes, sent, done)| async move {
            if done || sent >= bytes.len() {
                return None;
            }
            if sent > 0 {
                tokio::time::sleep(CHUNK_EVERY).await;
            }
            if drop_at.is_some_and(|at| sent >= at) {
                return Some((Err(std::io::Error::other("dropped")), (bytes, sent, true)));
            }
            let end = (sent + chunk).min(bytes.len());
            Some((Ok(bytes.slice(sent..end)), (bytes, end, false)))
        },
    )
}

/// What the simulated model says: it keeps the caller talking.
const MODEL_ANSWER: &str =
    "Thanks, that helps. Could you tell me a little more about how your team works today?";

#[derive(Deserialize)]
struct ChatRequest {
    model: Option<String>,
    messages: Option<Vec<serde_json::Value>>,
    #[serde(default)]
    stream: bool,
}

pub(crate) async fn chat_completions(State(sim): Sim, headers: HeaderMap, body: Bytes) -> Response {
    if !authorized(&sim, &headers) {
        return unauthorized();
    }
    let Ok(request) = serde_json::from_slice::<ChatRequest>(&body) else {
        return invalid(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            "We could not parse the JSON body of your request.",
        );
    };
    let Some(model) = request.model.filter(|m| !m.is_empty()) else {
        return invalid(
            StatusCode::BAD_REQUEST,
            "missing_required_parameter",
            "you must provide a model parameter",
        );
    };
    if request.messages.as_ref().is_none_or(Vec::is_empty) {
        return invalid(
            StatusCode::BAD_REQUEST,
            "missing_required_parameter",
            "messages must be a non-empty array",
        );
    }
    let fault = match answer_after_fault(&sim, "llm").await {
        Ok(fault) => fault,
        Err(refused) => return refused,
    };
    let id = format!("chatcmpl-sim{:08x}", rand::random::<u32>());
    let created = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    if matches!(fault, SpeechFault::Malformed(_)) {
        return (
            [(header::CONTENT_TYPE, "application/json")],
            "{\"choices\": [{\"mess",
        )
            .into_response();
    }
    if !request.stream {
        let body = json!({
            "id": id, "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": MODEL_ANSWER}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
        });
        return axum::Json(body).into_response();
    }
    let chunk = |delta: serde_json::Value, finish: Option<&str>| {
        format!(
            "data: {}\n\n",
            json!({
                "id": id, "object": "chat.completion.chunk", "created": created, "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]
            })
        )
    };
    let mut events = vec![chunk(json!({"role": "assistant", "content": ""}), None)];
    for word in MODEL_ANSWER.split_inclusive(' ') {
        events.push(chunk(json!({"content": word}), None));
    }
    events.push(chunk(json!({}), Some("stop")));
    events.push("data: [DONE]\n\n".to_owned());
    let bytes: Vec<u8> = events.concat().into_bytes();
    let drop_at = match fault {
        SpeechFault::Drop { .. } => Some(bytes.len() / 2),
        _ => None,
    };
    (
        [(header::CONTENT_TYPE, "text/event-stream")],
        Body::from_stream(async_stream(bytes, 64, drop_at)),
    )
        .into_response()
}
