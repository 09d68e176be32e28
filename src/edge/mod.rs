//! The edge: where a failure from the outside world becomes a
//! [`CallError`](crate::resilience::CallError), once, so every client (the
//! CRMs, the model, the speech providers) classifies the same way — HTTP
//! statuses and `Retry-After`, transport errors, bodies that are too large
//! or cut short, WebSocket close codes. Details name the service and what
//! went wrong, never a URL, header, token or body content.

pub mod http;
pub mod websocket;

pub use http::{
    classify_status, classify_transport, decode_json, parse_retry_after, read_limited,
    retry_after_of,
};
pub use websocket::{CloseVerdict, classify_close, classify_handshake};
