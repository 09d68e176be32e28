//! Deepgram streaming recognition over WebSocket (`/v1/listen`): linear16
//! at 16 kHz mono in binary frames; `Authorization: Token <key>`; interim
//! results, `endpointing`, `utterance_end_ms` and `vad_events` asked for in
//! the query; `{"type":"KeepAlive"}` while the caller is silent (Deepgram
//! closes a stream idle for ~10 s with 1011 `NET-0001`), `{"type":"Finalize"}`
//! at the end of a turn and `{"type":"CloseStream"}` on hang-up.
//!
//! The wire messages are parsed by [`parse_message`] (plain data in, plain
//! data out); [`DeepgramStream`] is the thin part that owns the socket.

use std::time::Duration;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::edge::websocket::{self as close, CloseVerdict};
use crate::resilience::{AttemptCtx, CallError};
use crate::secret::Secret;
use crate::speech::STT_SAMPLE_RATE;
use crate::speech::pcm::AudioFault;

/// What one read from the socket takes at most (a message may be larger).
const READ_BUFFER: usize = 4 * 1024;

pub const NAME: &str = "stt.deepgram";
const MAX_MESSAGE: usize = 256 * 1024;

#[derive(Debug, Clone, PartialEq)]
pub struct DeepgramSettings {
    /// `wss://api.deepgram.com/v1/listen`.
    pub url: String,
    pub api_key: Secret,
    pub model: String,
    pub language: String,
    /// Silence after speech that ends an utterance (`endpointing`).
    pub endpointing: Duration,
    /// Silence after the last word before an `UtteranceEnd` (`utterance_end_ms`).
    pub utterance_end: Duration,
}

impl DeepgramSettings {
    pub fn new(url: impl Into<String>, api_key: Secret) -> Self {
        DeepgramSettings {
            url: url.into(),
            api_key,
            model: "nova-3".into(),
            language: "en".into(),
            endpointing: Duration::from_millis(300),
            utterance_end: Duration::from_millis(1000),
        }
    }

    /// The full listen URL with every query parameter.
    pub fn listen_url(&self) -> String {
        let separator = if self.url.contains('?') { '&' } else { '?' };
        format!(
            "{}{separator}model={}&language={}&encoding=linear16&sample_rate={STT_SAMPLE_RATE}&channels=1\
             &interim_results=true&endpointing={}&utterance_end_ms={}&vad_events=true\
             &punctuate=true&smart_format=true",
            self.url,
            self.model,
            self.language,
            self.endpointing.as_millis(),
            self.utterance_end.as_millis().max(1000),
        )
    }
}

/// What Deepgram tells a stream.
#[derive(Debug, Clone, PartialEq)]
pub enum DeepgramMessage {
    Results {
        transcript: String,
        is_final: bool,
        speech_final: bool,
        from_finalize: bool,
        /// Seconds from the start of the stream.
        start: f64,
        duration: f64,
    },
    UtteranceEnd {
        last_word_end: f64,
    },
    SpeechStarted {
        timestamp: f64,
    },
    Metadata,
    /// A message type this client does not use.
    Other,
}

#[derive(Deserialize)]
struct Wire {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    is_final: bool,
    #[serde(default)]
    speech_final: bool,
    #[serde(default)]
    from_finalize: bool,
    #[serde(default)]
    start: f64,
    #[serde(default)]
    duration: f64,
    #[serde(default)]
    channel: Option<serde_json::Value>,
    #[serde(default)]
    last_word_end: f64,
    #[serde(default)]
    timestamp: f64,
}

/// Parse one text message from the stream.
pub fn parse_message(text: &str) -> Result<DeepgramMessage, AudioFault> {
    let wire: Wire = serde_json::from_str(text)
        .map_err(|_| AudioFault::Garbage("a message that is not Deepgram's JSON".into()))?;
    Ok(match wire.kind.as_str() {
        "Results" => {
            let transcript = wire
                .channel
                .as_ref()
                .and_then(|c| c.get("alternatives"))
                .and_then(|a| a.get(0))
                .and_then(|a| a.get("transcript"))
                .and_then(|t| t.as_str())
                .ok_or_else(|| {
                    AudioFault::Garbage("Results without channel.alternatives[0].transcript".into())
                })?;
            if !(wire.start.is_finite() && wire.duration.is_finite())
                || wire.start < 0.0
                || wire.duration < 0.0
            {
                return Err(AudioFault::Garbage("Results with a negative time".into()));
            }
            DeepgramMessage::Results {
                transcript: transcript.to_string(),
                is_final: wire.is_final,
                speech_final: wire.speech_final,
                from_finalize: wire.from_finalize,
                start: wire.start,
                duration: wire.duration,
            }
        }
        "UtteranceEnd" => DeepgramMessage::UtteranceEnd {
            last_word_end: wire.last_word_end,
        },
        "SpeechStarted" => DeepgramMessage::SpeechStarted {
            timestamp: wire.timestamp,
        },
        "Metadata" => DeepgramMessage::Metadata,
        _ => DeepgramMessage::Other,
    })
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

#[derive(Debug)]
pub struct DeepgramStt {
    settings: DeepgramSettings,
}

impl DeepgramStt {
    pub fn new(settings: DeepgramSettings) -> Self {
        DeepgramStt { settings }
    }

    pub fn settings(&self) -> &DeepgramSettings {
        &self.settings
    }

    /// Open a stream within the attempt's time.
    pub async fn connect(&self, ctx: &AttemptCtx) -> Result<DeepgramStream, CallError> {
        let mut request = self
            .settings
            .listen_url()
            .into_client_request()
            .map_err(|_| CallError::Connect {
                detail: format!("{NAME}: url is not a WebSocket URL"),
                sent: false,
            })?;
        let token = format!("Token {}", self.settings.api_key.expose())
            .parse()
            .map_err(|_| CallError::Status {
                code: 401,
                detail: Some(format!(
                    "{NAME}: the API key cannot be sent as a header; check DEEPGRAM_API_KEY"
                )),
            })?;
        request.headers_mut().insert("Authorization", token);
        // Results are small JSON: tungstenite's default 128 KiB read buffer
        // would be most of a call's memory.
        let config = WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER)
            .max_message_size(Some(MAX_MESSAGE))
            .max_frame_size(Some(MAX_MESSAGE));
        let connecting = tokio_tungstenite::connect_async_with_config(request, Some(config), true);
        let socket = match tokio::time::timeout(ctx.timeout, connecting).await {
            Err(_) => return Err(CallError::Timeout { after: ctx.timeout }),
            Ok(Err(error)) => return Err(classify_connect(error)),
            Ok(Ok((socket, _))) => socket,
        };
        let (sink, source) = socket.split();
        Ok(DeepgramStream {
            sink,
            source,
            bytes: Vec::with_capacity(3_200),
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
                "DEEPGRAM_API_KEY",
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

/// An open recognition stream. Sending and receiving are separate halves,
/// so a driver can wait for results while audio goes out.
#[derive(Debug)]
pub struct DeepgramStream {
    sink: SplitSink<Socket, Message>,
    source: SplitStream<Socket>,
    /// Reused encoding buffer.
    bytes: Vec<u8>,
}

impl DeepgramStream {
    /// Send 16 kHz samples as one binary message.
    pub async fn send_audio(&mut self, samples: &[i16]) -> Result<(), CallError> {
        self.bytes.clear();
        for sample in samples {
            self.bytes.extend_from_slice(&sample.to_le_bytes());
        }
        let message = Message::binary(bytes::Bytes::copy_from_slice(&self.bytes));
        self.sink.send(message).await.map_err(send_error)
    }

    pub async fn keep_alive(&mut self) -> Result<(), CallError> {
        self.control(r#"{"type":"KeepAlive"}"#).await
    }

    /// Ask for the final result of what has been sent (ends the turn).
    pub async fn finalize(&mut self) -> Result<(), CallError> {
        self.control(r#"{"type":"Finalize"}"#).await
    }

    /// Tell Deepgram no more audio will come; it sends what is left and closes.
    pub async fn close_stream(&mut self) -> Result<(), CallError> {
        self.control(r#"{"type":"CloseStream"}"#).await
    }

    async fn control(&mut self, json: &'static str) -> Result<(), CallError> {
        self.sink
            .send(Message::text(json))
            .await
            .map_err(send_error)
    }

    /// The next message; `Ok(None)` when Deepgram closed the stream normally.
    pub async fn next_message(&mut self) -> Result<Option<DeepgramMessage>, CallError> {
        loop {
            let message = match self.source.next().await {
                None => return Err(dropped()),
                Some(Err(error)) => return Err(receive_error(error)),
                Some(Ok(message)) => message,
            };
            match message {
                Message::Text(text) => {
                    return parse_message(&text)
                        .map(Some)
                        .map_err(|fault| fault.into_error(NAME));
                }
                Message::Close(frame) => {
                    let (code, reason) = frame
                        .map(|f| (u16::from(f.code), f.reason.to_string()))
                        .unwrap_or((close::ABNORMAL, String::new()));
                    return match close::classify_close(NAME, code, &reason) {
                        CloseVerdict::Normal => Ok(None),
                        CloseVerdict::Failed(error) => Err(error),
                    };
                }
                Message::Binary(_) => {
                    return Err(AudioFault::Garbage("a binary message".into()).into_error(NAME));
                }
                _ => continue,
            }
        }
    }
}

fn dropped() -> CallError {
    CallError::Connect {
        detail: format!("{NAME}: the connection dropped without a close frame (1006)"),
        sent: true,
    }
}

fn send_error(_: tungstenite::Error) -> CallError {
    CallError::Connect {
        detail: format!("{NAME}: the stream closed while audio was being sent"),
        sent: true,
    }
}

fn receive_error(error: tungstenite::Error) -> CallError {
    match error {
        tungstenite::Error::Capacity(_) => {
            AudioFault::Garbage("a message larger than 256 KiB".into()).into_error(NAME)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_final_result_is_read_with_its_times_and_flags() {
        let text = r#"{"type":"Results","channel_index":[0,1],"duration":1.5,"start":2.25,
            "is_final":true,"speech_final":true,"from_finalize":false,
            "channel":{"alternatives":[{"transcript":"book a demo","confidence":0.98,"words":[]}]},
            "metadata":{"request_id":"x"}}"#;
        assert_eq!(
            parse_message(text).unwrap(),
            DeepgramMessage::Results {
                transcript: "book a demo".into(),
                is_final: true,
                speech_final: true,
                from_finalize: false,
                start: 2.25,
                duration: 1.5,
            }
        );
    }

    #[test]
    fn utterance_end_speech_started_and_unknown_types_are_recognized() {
        assert_eq!(
            parse_message(r#"{"type":"UtteranceEnd","channel":[0,1],"last_word_end":3.1}"#)
                .unwrap(),
            DeepgramMessage::UtteranceEnd { last_word_end: 3.1 }
        );
        assert_eq!(
            parse_message(r#"{"type":"SpeechStarted","channel":[0],"timestamp":0.5}"#).unwrap(),
            DeepgramMessage::SpeechStarted { timestamp: 0.5 }
        );
        assert_eq!(
            parse_message(r#"{"type":"Warning"}"#).unwrap(),
            DeepgramMessage::Other
        );
    }

    #[test]
    fn garbage_and_results_without_a_transcript_are_typed_faults() {
        assert!(matches!(
            parse_message("{not json"),
            Err(AudioFault::Garbage(_))
        ));
        assert!(matches!(
            parse_message(r#"{"type":"Results","channel":{}}"#),
            Err(AudioFault::Garbage(_))
        ));
    }

    #[test]
    fn the_listen_url_asks_for_everything_the_chain_relies_on() {
        let url = DeepgramSettings::new("wss://api.deepgram.com/v1/listen", Secret::new("k"))
            .listen_url();
        for part in [
            "encoding=linear16",
            "sample_rate=16000",
            "channels=1",
            "interim_results=true",
            "endpointing=300",
            "utterance_end_ms=1000",
            "vad_events=true",
        ] {
            assert!(url.contains(part), "{url} lacks {part}");
        }
    }
}
