//! voxguard's own LiveKit signal connection for a room, over tokio-tungstenite
//! and the `livekit-protocol` messages: join over `/rtc` with the assignment
//! token, wait for the JoinResponse, then one task per room reads participant
//! updates, sends the agent's requests, pings, and leaves. Also the pieces
//! every LiveKit socket shares: the WebSocket form of a LiveKit URL and the
//! bearer-token upgrade request.
//!
//! Why not the SDK's `SignalClient`: it opens its socket with tungstenite's
//! default buffers (a 128 KiB read buffer that is zero-filled on the first
//! read) and runs four tasks per room. An agent worker holds one signal
//! connection per session, and signal messages are small, so that was most of
//! a session's memory. Here a room costs one task and a few KiB of buffers.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use livekit_protocol as proto;
use prost::Message as _;
use proto::signal_request::Message as SignalRequest;
use proto::signal_response::Message as SignalResponse;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub(super) type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The signal protocol version announced on join (what the SDK announces).
const PROTOCOL_VERSION: u32 = 18;
/// Signal messages are small: participant updates, pongs, metadata acks.
/// Larger frames grow the buffer for as long as they need it. (tungstenite
/// keeps the handshake's 4 KiB buffer as the socket's first read buffer, so
/// a smaller setting here saves nothing.)
const READ_BUFFER: usize = 4 * 1024;
/// A JoinResponse for a very large room is the biggest message we expect.
const MAX_MESSAGE: usize = 4 * 1024 * 1024;

/// Milliseconds since the Unix epoch (LiveKit's ping and join timestamps).
pub fn unix_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Why an authorized WebSocket upgrade request could not be built.
#[derive(Debug)]
pub enum UpgradeRequestError {
    /// The endpoint is not a valid URL (the text says why).
    Url(String),
    /// The token cannot be sent as a header value.
    Token,
}

/// The upgrade request for `endpoint`, carrying `token` as a bearer token:
/// how both the worker socket and a room's signal socket authenticate.
pub fn upgrade_request(
    endpoint: &str,
    token: &str,
) -> Result<tokio_tungstenite::tungstenite::handshake::client::Request, UpgradeRequestError> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
    let mut request = endpoint
        .into_client_request()
        .map_err(|e| UpgradeRequestError::Url(e.to_string()))?;
    let bearer = format!("Bearer {token}")
        .parse()
        .map_err(|_| UpgradeRequestError::Token)?;
    request.headers_mut().insert("Authorization", bearer);
    Ok(request)
}

/// The URL with its scheme turned into a WebSocket scheme and no trailing slash.
pub fn websocket_base(url: &str) -> Result<String, String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("{url:?} has no scheme"))?;
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "http" | "ws" => "ws",
        "https" | "wss" => "wss",
        other => {
            return Err(format!(
                "unsupported scheme {other:?} (use http, https, ws or wss)"
            ));
        }
    };
    let rest = rest.trim_end_matches('/');
    if rest.is_empty() {
        return Err(format!("{url:?} has no host"));
    }
    Ok(format!("{scheme}://{rest}"))
}

/// `ws(s)://host/rtc?…` for `url` (an http, https, ws or wss base URL).
pub(super) fn rtc_endpoint(url: &str) -> Result<String, String> {
    let base = websocket_base(url)?;
    Ok(format!(
        "{base}/rtc?sdk=rust&protocol={PROTOCOL_VERSION}&auto_subscribe=1&adaptive_stream=0"
    ))
}

/// The socket settings for one room: small buffers, frames written at once.
pub(super) fn socket_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        .max_write_buffer_size(MAX_MESSAGE)
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE))
}

/// Why a join failed.
#[derive(Debug, thiserror::Error)]
pub(super) enum JoinFailure {
    #[error("invalid LiveKit URL: {0}")]
    Url(String),
    #[error("the server refused the room token (HTTP {0})")]
    Refused(u16),
    #[error("signal connection failed: {0}")]
    Connect(String),
    #[error("the server closed the signal connection before the JoinResponse")]
    ClosedBeforeJoin,
    #[error("the server asked the agent to leave before it joined")]
    LeftBeforeJoin,
}

/// Opens the signal socket with `token` and reads until the JoinResponse.
/// Unbounded by itself: the caller puts a deadline on it.
pub(super) async fn join(
    url: &str,
    token: &str,
) -> Result<(Socket, proto::JoinResponse), JoinFailure> {
    let endpoint = rtc_endpoint(url).map_err(JoinFailure::Url)?;
    let request = upgrade_request(&endpoint, token).map_err(|e| match e {
        UpgradeRequestError::Url(error) => JoinFailure::Url(error),
        UpgradeRequestError::Token => {
            JoinFailure::Connect("the room token is not a valid header".into())
        }
    })?;
    let (mut socket, _) =
        tokio_tungstenite::connect_async_with_config(request, Some(socket_config()), true)
            .await
            .map_err(|error| match error {
                tungstenite::Error::Http(response) => {
                    JoinFailure::Refused(response.status().as_u16())
                }
                other => JoinFailure::Connect(other.to_string()),
            })?;
    loop {
        match next_response(&mut socket).await {
            Incoming::Message(message) => match *message {
                SignalResponse::Join(join) => return Ok((socket, join)),
                SignalResponse::Leave(_) => return Err(JoinFailure::LeftBeforeJoin),
                _ => {}
            },
            Incoming::Other => {}
            Incoming::Closed(_) => return Err(JoinFailure::ClosedBeforeJoin),
        }
    }
}

/// One read from the socket, classified.
pub(super) enum Incoming {
    /// Boxed: the message enum is large and most reads are small.
    Message(Box<SignalResponse>),
    /// A frame that is not a signal message (ping, pong, undecodable bytes).
    Other,
    /// The connection is over, with the reason.
    Closed(String),
}

pub(super) async fn next_response(socket: &mut Socket) -> Incoming {
    match socket.next().await {
        Some(Ok(Message::Binary(bytes))) => match proto::SignalResponse::decode(bytes.as_ref()) {
            Ok(proto::SignalResponse {
                message: Some(message),
            }) => Incoming::Message(Box::new(message)),
            Ok(_) => Incoming::Other,
            Err(error) => {
                tracing::warn!(%error, "undecodable signal message ignored");
                Incoming::Other
            }
        },
        Some(Ok(Message::Close(frame))) => Incoming::Closed(
            frame
                .map(|f| format!("server closed the signal connection: {}", f.reason))
                .unwrap_or_else(|| "server closed the signal connection".into()),
        ),
        Some(Ok(_)) => Incoming::Other,
        Some(Err(error)) => Incoming::Closed(format!("signal connection failed: {error}")),
        None => Incoming::Closed("signal connection closed".into()),
    }
}

/// Sends one request; `false` when the socket is gone.
pub(super) async fn send(socket: &mut Socket, request: SignalRequest) -> bool {
    let bytes = proto::SignalRequest {
        message: Some(request),
    }
    .encode_to_vec();
    socket.send(Message::Binary(bytes.into())).await.is_ok()
}

/// The keepalive the server asked for in its JoinResponse: a ping every
/// `interval`; no message at all within `timeout` means the link is dead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Keepalive {
    pub interval: Duration,
    pub timeout: Duration,
}

impl Keepalive {
    /// LiveKit's own defaults stand in for zero values.
    pub fn of(join: &proto::JoinResponse) -> Keepalive {
        let seconds = |value: i32, default: u64| {
            Duration::from_secs(
                u64::try_from(value)
                    .ok()
                    .filter(|s| *s > 0)
                    .unwrap_or(default),
            )
        };
        Keepalive {
            interval: seconds(join.ping_interval, 5),
            timeout: seconds(join.ping_timeout, 15),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rtc_endpoint_uses_websocket_schemes_and_names_the_protocol() {
        assert_eq!(
            rtc_endpoint("https://x.livekit.cloud/").unwrap(),
            "wss://x.livekit.cloud/rtc?sdk=rust&protocol=18&auto_subscribe=1&adaptive_stream=0"
        );
        assert!(
            rtc_endpoint("http://lk:7880")
                .unwrap()
                .starts_with("ws://lk:7880/rtc?")
        );
        assert!(rtc_endpoint("ftp://lk").is_err());
    }

    #[test]
    fn keepalive_follows_the_join_response_and_defaults_zero_values() {
        let join = proto::JoinResponse {
            ping_interval: 2,
            ping_timeout: 0,
            ..Default::default()
        };
        assert_eq!(
            Keepalive::of(&join),
            Keepalive {
                interval: Duration::from_secs(2),
                timeout: Duration::from_secs(15)
            }
        );
    }
}
