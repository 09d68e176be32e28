//! Cartesia's streaming voice over its WebSocket API (`{base}/tts/websocket`,
//! `X-API-Key` and `Cartesia-Version` headers). One context per sentence:
//! the request names the model, voice, `context_id` and the raw `pcm_s16le`
//! output format at the rate we ask for; the answers are `chunk` messages
//! with base64 audio, then `done`, or an `error` with a status code.
//!
//! Chosen over ElevenLabs' stream-input because every request declares its
//! output rate and encoding explicitly, errors carry HTTP-like status codes
//! we classify with the same rules as every other call, `done` marks the end
//! of each context unambiguously (so "zero audio" is detectable, not a wait),
//! and one socket can multiplex many contexts later without changing the
//! protocol we speak.

use std::time::Duration;

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::{TtsChunk, TtsLimits};
use crate::edge::websocket::{self as close, CloseVerdict};
use crate::resilience::{AttemptCtx, CallError};
use crate::secret::Secret;
use crate::speech::pcm::{AudioFault, PcmAssembler};

/// What one read from the socket takes at most (audio messages are larger
/// and are assembled across reads); not tungstenite's default 128 KiB.
const READ_BUFFER: usize = 16 * 1024;

pub const NAME: &str = "tts.cartesia";
/// The API version voxguard speaks.
pub const CARTESIA_VERSION: &str = "2024-11-13";
/// The largest message accepted from the socket (a chunk is a few KiB).
const MAX_MESSAGE: usize = 1024 * 1024;

#[derive(Debug, Clone, PartialEq)]
pub struct CartesiaSettings {
    /// `wss://api.cartesia.ai` (the path `/tts/websocket` is appended).
    pub base_url: String,
    pub api_key: Secret,
    pub model: String,
    /// A voice id.
    pub voice: String,
    pub language: String,
    pub sample_rate: u32,
}

impl CartesiaSettings {
    pub fn new(base_url: impl Into<String>, api_key: Secret, voice: impl Into<String>) -> Self {
        CartesiaSettings {
            base_url: base_url.into().trim_end_matches('/').to_string(),
            api_key,
            model: "sonic-2".into(),
            voice: voice.into(),
            language: "en".into(),
            sample_rate: 24_000,
        }
    }
}

#[derive(Debug)]
pub struct CartesiaTts {
    settings: CartesiaSettings,
    next_context: std::sync::atomic::AtomicU64,
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

impl CartesiaTts {
    pub fn new(settings: CartesiaSettings) -> Self {
        CartesiaTts {
            settings,
            next_context: std::sync::atomic::AtomicU64::new(1),
        }
    }

    /// What shapes this voice's sound: server, model, voice, language, rate.
    pub fn identity(&self) -> String {
        let s = &self.settings;
        format!(
            "{NAME} {} {} {} {} {}Hz",
            s.base_url, s.model, s.voice, s.language, s.sample_rate
        )
    }

    pub fn settings(&self) -> &CartesiaSettings {
        &self.settings
    }

    pub(super) async fn open(
        &self,
        ctx: &AttemptCtx,
        text: &str,
        limits: TtsLimits,
    ) -> Result<CartesiaStream, CallError> {
        let started = Instant::now();
        let endpoint = format!("{}/tts/websocket", self.settings.base_url);
        let mut request = endpoint
            .into_client_request()
            .map_err(|_| CallError::Connect {
                detail: format!("{NAME}: base_url is not a WebSocket URL"),
                sent: false,
            })?;
        let key = self
            .settings
            .api_key
            .expose()
            .parse()
            .map_err(|_| CallError::Status {
                code: 401,
                detail: Some(format!(
                    "{NAME}: the API key cannot be sent as a header; check CARTESIA_API_KEY"
                )),
            })?;
        request.headers_mut().insert("X-API-Key", key);
        request.headers_mut().insert(
            "Cartesia-Version",
            tungstenite::http::HeaderValue::from_static(CARTESIA_VERSION),
        );
        let config = WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER)
            .max_message_size(Some(MAX_MESSAGE))
            .max_frame_size(Some(MAX_MESSAGE));
        let connecting = tokio_tungstenite::connect_async_with_config(request, Some(config), true);
        let mut socket = match tokio::time::timeout(ctx.timeout, connecting).await {
            Err(_) => return Err(CallError::Timeout { after: ctx.timeout }),
            Ok(Err(error)) => return Err(classify_connect(error)),
            Ok(Ok((socket, _))) => socket,
        };
        let context_id = format!(
            "vg-{}",
            self.next_context
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let message = serde_json::json!({
            "model_id": self.settings.model,
            "transcript": text,
            "voice": {"mode": "id", "id": self.settings.voice},
            "language": self.settings.language,
            "context_id": context_id,
            "output_format": {
                "container": "raw",
                "encoding": "pcm_s16le",
                "sample_rate": self.settings.sample_rate,
            },
            "continue": false,
        });
        socket
            .send(Message::text(message.to_string()))
            .await
            .map_err(|_| CallError::Connect {
                detail: format!("{NAME}: the connection closed before the request was sent"),
                sent: false,
            })?;
        Ok(CartesiaStream {
            socket,
            context_id,
            pcm: PcmAssembler::new(self.settings.sample_rate, limits.max_audio_per_sentence),
            first_until: started + ctx.timeout,
            chunk_stall: limits.chunk_stall,
            done: false,
        })
    }
}

fn classify_connect(error: tungstenite::Error) -> CallError {
    match error {
        tungstenite::Error::Http(response) => {
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| crate::edge::parse_retry_after(v, std::time::SystemTime::now()));
            close::classify_handshake(
                NAME,
                response.status().as_u16(),
                retry_after,
                "CARTESIA_API_KEY",
            )
        }
        tungstenite::Error::Io(_) => CallError::Connect {
            detail: format!("{NAME}: could not connect"),
            sent: false,
        },
        _ => CallError::Connect {
            detail: format!("{NAME}: the WebSocket handshake failed"),
            sent: false,
        },
    }
}

/// What Cartesia sends about one context.
#[derive(Deserialize)]
struct Reply {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    data: Option<String>,
    #[serde(default)]
    done: bool,
    #[serde(default)]
    status_code: Option<u16>,
    #[serde(default)]
    error_code: Option<String>,
    #[serde(default)]
    context_id: Option<String>,
}

/// One sentence's audio arriving on its socket.
#[derive(Debug)]
pub struct CartesiaStream {
    socket: Socket,
    context_id: String,
    pcm: PcmAssembler,
    first_until: Instant,
    chunk_stall: Duration,
    done: bool,
}

impl CartesiaStream {
    pub(super) async fn next(&mut self) -> Result<Option<TtsChunk>, CallError> {
        loop {
            if self.done {
                return Ok(None);
            }
            let stall = if self.pcm.produced() == 0 {
                self.first_until.saturating_duration_since(Instant::now())
            } else {
                self.chunk_stall
            };
            let message = match tokio::time::timeout(stall, self.socket.next()).await {
                Err(_) => return Err(CallError::Timeout { after: stall }),
                Ok(None) => return Err(dropped()),
                Ok(Some(Err(error))) => return Err(socket_error(error)),
                Ok(Some(Ok(message))) => message,
            };
            let text = match message {
                Message::Text(text) => text,
                Message::Close(frame) => {
                    let (code, reason) = frame
                        .map(|f| (u16::from(f.code), f.reason.to_string()))
                        .unwrap_or((close::ABNORMAL, String::new()));
                    return Err(match close::classify_close(NAME, code, &reason) {
                        CloseVerdict::Normal => close::ended_early(NAME),
                        CloseVerdict::Failed(error) => error,
                    });
                }
                Message::Binary(_) => {
                    return Err(AudioFault::Garbage("a binary message".into()).into_error(NAME));
                }
                _ => continue,
            };
            let reply: Reply = serde_json::from_str(&text).map_err(|_| {
                AudioFault::Garbage("a message that is not JSON of the expected shape".into())
                    .into_error(NAME)
            })?;
            if reply
                .context_id
                .as_deref()
                .is_some_and(|id| id != self.context_id)
            {
                continue;
            }
            match reply.kind.as_str() {
                "chunk" => {
                    let Some(data) = reply.data else { continue };
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(data.as_bytes())
                        .map_err(|_| {
                            AudioFault::Garbage("a chunk whose audio is not base64".into())
                                .into_error(NAME)
                        })?;
                    if bytes.len() % 2 == 1 {
                        return Err(AudioFault::Truncated.into_error(NAME));
                    }
                    let mut samples = Vec::with_capacity(bytes.len() / 2);
                    self.pcm
                        .push(&bytes, &mut samples)
                        .map_err(|f| f.into_error(NAME))?;
                    if reply.done {
                        self.finish().await?;
                    }
                    if !samples.is_empty() {
                        return Ok(Some(TtsChunk {
                            sample_rate: self.pcm.sample_rate(),
                            samples,
                        }));
                    }
                }
                "done" => {
                    self.finish().await?;
                    return Ok(None);
                }
                "error" => {
                    self.done = true;
                    let code = reply.status_code.unwrap_or(500);
                    let detail = match reply.error_code {
                        Some(error_code) => format!(
                            "{NAME}: {}",
                            error_code
                                .chars()
                                .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
                                .take(64)
                                .collect::<String>()
                        ),
                        None => format!("{NAME}: error {code}"),
                    };
                    return Err(CallError::from_status(code, None, Some(detail)));
                }
                _ if reply.done => {
                    self.finish().await?;
                    return Ok(None);
                }
                _ => {}
            }
        }
    }

    async fn finish(&mut self) -> Result<(), CallError> {
        self.done = true;
        let _ = tokio::time::timeout(Duration::from_millis(200), self.socket.close(None)).await;
        self.pcm.finish().map_err(|f| f.into_error(NAME))
    }
}

fn dropped() -> CallError {
    CallError::Connect {
        detail: format!("{NAME}: the connection dropped without a close frame (1006)"),
        sent: true,
    }
}

fn socket_error(error: tungstenite::Error) -> CallError {
    match error {
        tungstenite::Error::Capacity(_) => {
            AudioFault::Garbage("a message larger than 1 MiB".into()).into_error(NAME)
        }
        tungstenite::Error::Protocol(
            tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
        )
        | tungstenite::Error::ConnectionClosed
        | tungstenite::Error::AlreadyClosed => dropped(),
        tungstenite::Error::Protocol(_) | tungstenite::Error::Utf8(_) => {
            AudioFault::Garbage("a frame that breaks the WebSocket protocol".into())
                .into_error(NAME)
        }
        _ => dropped(),
    }
}
