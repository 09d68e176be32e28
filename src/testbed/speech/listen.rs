//! A Deepgram-compatible `/v1/listen`: the WebSocket handshake checks
//! `Authorization: Token <key>` and the query (linear16, mono, a usable
//! rate), then binary audio frames are recognized by the [`Listener`] and
//! answered with Deepgram's JSON (`Results`, `SpeechStarted`,
//! `UtteranceEnd`, `Metadata`); `KeepAlive`, `Finalize` and `CloseStream`
//! behave as documented, and a stream idle for 10 s is closed with 1011
//! `NET-0001`. Faults drawn per stream: a refused handshake (outage, error,
//! 429 with `Retry-After`), a stream that never answers, a drop after some
//! audio (1006 or 1011), a deaf recognizer, garbage on the socket.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::faults::{DropClose, SpeechFault};
use super::recognize::{Heard, Listener};
use super::state::SimState;
use super::{error_json, refuse};

/// Deepgram closes a stream that got no audio or KeepAlive for this long
/// (the simulator's default; [`SpeechSimulator::set_idle_close`](super::SpeechSimulator::set_idle_close) changes it).
pub const IDLE_CLOSE: Duration = Duration::from_secs(10);

type Sim = State<Arc<SimState>>;

pub(crate) async fn listen(
    State(sim): Sim,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    let expected = format!("Token {}", sim.credentials.deepgram.expose());
    let authorized = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == expected);
    if !authorized {
        return dg_error(
            StatusCode::UNAUTHORIZED,
            "INVALID_AUTH",
            "Invalid credentials.",
        );
    }
    let Ok(upgrade) = upgrade else {
        return dg_error(
            StatusCode::UPGRADE_REQUIRED,
            "BAD_REQUEST",
            "Expected a WebSocket upgrade.",
        );
    };
    let options = match Options::from_query(&params) {
        Ok(options) => options,
        Err(message) => {
            return dg_error(StatusCode::BAD_REQUEST, "INVALID_QUERY_PARAMETER", &message);
        }
    };
    let (latency, fault) = sim.draw("deepgram");
    if let Some(refused) = refuse(fault, error_json) {
        return refused;
    }
    upgrade
        .read_buffer_size(8 * 1024)
        .max_message_size(1024 * 1024)
        .on_upgrade(move |socket| serve(sim, socket, options, latency, fault))
}

fn dg_error(status: StatusCode, code: &str, message: &str) -> Response {
    let mut response = (
        status,
        axum::Json(json!({"err_code": code, "err_msg": message, "request_id": "sim"})),
    )
        .into_response();
    if let Ok(value) = message.parse() {
        response.headers_mut().insert("dg-error", value);
    }
    response
}

struct Options {
    sample_rate: u32,
    endpointing: Option<u64>,
    utterance_end: Option<u64>,
    vad_events: bool,
    interim_results: bool,
}

impl Options {
    fn from_query(params: &HashMap<String, String>) -> Result<Options, String> {
        let get = |name: &str| params.get(name).map(String::as_str);
        match get("encoding") {
            Some("linear16") => {}
            Some(other) => return Err(format!("the simulator decodes linear16 only, not {other}")),
            None => return Err("raw audio needs encoding=linear16 and sample_rate".into()),
        }
        let sample_rate: u32 = get("sample_rate")
            .and_then(|v| v.parse().ok())
            .filter(|r| (8_000..=48_000).contains(r))
            .ok_or("sample_rate must be a rate between 8000 and 48000")?;
        if get("channels").is_some_and(|c| c != "1") {
            return Err("the simulator hears mono audio only (channels=1)".into());
        }
        let flag = |name: &str| get(name) == Some("true");
        let endpointing = match get("endpointing") {
            Some("false") => None,
            Some(ms) => Some(
                ms.parse()
                    .map_err(|_| "endpointing must be milliseconds or false")?,
            ),
            None => Some(10),
        };
        let utterance_end = match get("utterance_end_ms") {
            Some(ms) => {
                let ms: u64 = ms
                    .parse()
                    .map_err(|_| "utterance_end_ms must be milliseconds")?;
                if ms < 1000 {
                    return Err("utterance_end_ms must be at least 1000".into());
                }
                if !flag("interim_results") {
                    return Err("utterance_end_ms requires interim_results=true".into());
                }
                Some(ms)
            }
            None => None,
        };
        Ok(Options {
            sample_rate,
            endpointing,
            utterance_end,
            vad_events: flag("vad_events"),
            interim_results: flag("interim_results"),
        })
    }
}

enum Out {
    Send(Instant, Message),
    Abort,
}

async fn serve(
    sim: Arc<SimState>,
    socket: WebSocket,
    options: Options,
    latency: Duration,
    fault: SpeechFault,
) {
    let (mut sink, mut source) = socket.split();
    let (tx, mut rx) = mpsc::channel::<Out>(1024);
    let writer = tokio::spawn(async move {
        while let Some(out) = rx.recv().await {
            match out {
                Out::Abort => return false,
                Out::Send(at, message) => {
                    tokio::time::sleep_until(at).await;
                    let closing = matches!(message, Message::Close(_));
                    if sink.send(message).await.is_err() || closing {
                        return true;
                    }
                }
            }
        }
        true
    });
    let request_id = format!("sim-{:08x}", rand::random::<u32>());
    let mut known_version = sim
        .utterances_version
        .load(std::sync::atomic::Ordering::Acquire);
    let mut listener = Listener::new(
        sim.utterances(),
        options.sample_rate,
        options.endpointing,
        options.utterance_end,
        options.vad_events,
        options.interim_results,
        fault == SpeechFault::ZeroAudio,
    );
    let mut heard = Vec::new();
    let mut samples = Vec::new();
    let mut carry: Option<u8> = None;
    let mut garbage_sent = false;
    let send = |message: Message| {
        let _ = tx.try_send(Out::Send(Instant::now() + latency, message));
    };
    let close = |code: u16, reason: &'static str| {
        let _ = tx.try_send(Out::Send(
            Instant::now(),
            Message::Close(Some(CloseFrame {
                code,
                reason: reason.into(),
            })),
        ));
    };
    let mut shutdown = sim.shutdown.clone();
    let idle_close = *super::state::lock(&sim.idle_close);
    let mut closing = true;
    loop {
        let next = tokio::select! {
            next = tokio::time::timeout(idle_close, source.next()) => next,
            _ = shutdown.wait_for(|down| *down) => { close(1001, ""); break; }
        };
        let message = match next {
            Err(_) => {
                close(1011, "NET-0001");
                break;
            }
            Ok(None) | Ok(Some(Err(_))) => {
                closing = false;
                break;
            }
            Ok(Some(Ok(message))) => message,
        };
        match message {
            Message::Binary(data) => {
                samples.clear();
                let mut bytes: &[u8] = &data;
                if let Some(low) = carry.take()
                    && let Some((&high, rest)) = bytes.split_first()
                {
                    samples.push(i16::from_le_bytes([low, high]));
                    bytes = rest;
                }
                let pairs = bytes.chunks_exact(2);
                if let [odd] = pairs.remainder() {
                    carry = Some(*odd);
                }
                samples.extend(pairs.map(|b| i16::from_le_bytes([b[0], b[1]])));
                if fault == SpeechFault::Hang {
                    continue;
                }
                if let SpeechFault::Malformed(_) = fault
                    && !garbage_sent
                {
                    garbage_sent = true;
                    send(Message::Text(
                        r#"{"type":"Results","channel":{"alternatives":[{"tra"#.into(),
                    ));
                }
                heard.clear();
                let version = sim
                    .utterances_version
                    .load(std::sync::atomic::Ordering::Acquire);
                if version != known_version {
                    known_version = version;
                    listener.set_utterances(sim.utterances());
                }
                listener.feed(&samples, &mut heard);
                for event in heard.drain(..) {
                    send(Message::Text(to_json(&event, &request_id).into()));
                }
                if let SpeechFault::Drop { close: how, after } = fault
                    && listener.heard_seconds() >= after.as_secs_f64()
                {
                    match how {
                        DropClose::ServerError1011 => close(1011, "NET-0001"),
                        DropClose::Abnormal1006 => {
                            closing = false;
                            let _ = tx.try_send(Out::Abort);
                        }
                    }
                    break;
                }
            }
            Message::Text(text) => {
                let kind = serde_json::from_str::<serde_json::Value>(&text)
                    .ok()
                    .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_string));
                heard.clear();
                match kind.as_deref() {
                    Some("KeepAlive") => {}
                    Some("Finalize") if fault != SpeechFault::Hang => listener.finalize(&mut heard),
                    Some("CloseStream") => {
                        if fault != SpeechFault::Hang {
                            listener.close(&mut heard);
                        }
                        for event in heard.drain(..) {
                            send(Message::Text(to_json(&event, &request_id).into()));
                        }
                        send(Message::Text(
                            metadata(&request_id, listener.heard_seconds()).into(),
                        ));
                        let _ = tx.try_send(Out::Send(
                            Instant::now() + latency,
                            Message::Close(Some(CloseFrame {
                                code: 1000,
                                reason: "".into(),
                            })),
                        ));
                        break;
                    }
                    Some(_) => {}
                    None => {
                        close(1008, "DATA-0000");
                        break;
                    }
                }
                for event in heard.drain(..) {
                    send(Message::Text(to_json(&event, &request_id).into()));
                }
            }
            Message::Close(_) => {
                closing = false;
                break;
            }
            _ => {}
        }
    }
    drop(tx);
    if closing {
        // The closing handshake: read (and discard) until the client's
        // close, so unread audio does not turn our close into a reset.
        let drain = async {
            while let Some(Ok(message)) = source.next().await {
                if matches!(message, Message::Close(_)) {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(15), async {
            let _ = tokio::join!(writer, drain);
        })
        .await;
    } else {
        let _ = tokio::time::timeout(Duration::from_secs(15), writer).await;
    }
}

fn to_json(event: &Heard, request_id: &str) -> String {
    match event {
        Heard::SpeechStarted { at } => {
            json!({"type": "SpeechStarted", "channel": [0], "timestamp": at}).to_string()
        }
        Heard::UtteranceEnd { last_word_end } => {
            json!({"type": "UtteranceEnd", "channel": [0, 1], "last_word_end": last_word_end})
                .to_string()
        }
        Heard::Result {
            transcript,
            is_final,
            speech_final,
            from_finalize,
            start,
            duration,
        } => {
            let words: Vec<_> = transcript
                .split_whitespace()
                .map(
                    |w| json!({"word": w.to_lowercase(), "punctuated_word": w, "confidence": 0.99}),
                )
                .collect();
            json!({
                "type": "Results",
                "channel_index": [0, 1],
                "duration": duration,
                "start": start,
                "is_final": is_final,
                "speech_final": speech_final,
                "from_finalize": from_finalize,
                "channel": {"alternatives": [{"transcript": transcript, "confidence": if transcript.is_empty() { 0.0 } else { 0.99 }, "words": words}]},
                "metadata": {"request_id": request_id, "model_info": {"name": "voxguard-sim", "version": "1", "arch": "envelope"}, "model_uuid": "00000000-0000-0000-0000-000000000000"}
            })
            .to_string()
        }
    }
}

fn metadata(request_id: &str, duration: f64) -> String {
    json!({
        "type": "Metadata",
        "transaction_key": "deprecated",
        "request_id": request_id,
        "sha256": "",
        "created": "1970-01-01T00:00:00.000Z",
        "duration": duration,
        "channels": 1,
        "models": ["00000000-0000-0000-0000-000000000000"],
        "model_info": {}
    })
    .to_string()
}
