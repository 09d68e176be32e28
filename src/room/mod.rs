//! A LiveKit participant, like the official SDK's `Room`: the signal client
//! (join with a token, participant updates, keepalive, leave), the room
//! connection an agent job holds, the WebRTC transport of a room (the
//! subscriber and publisher peer connections, over UDP, in pure Rust) and
//! LiveKit's data packets and text streams carried on its data channels. It
//! knows LiveKit, not speech providers or the session.
//!
//! The transport and the data codecs are sans-IO cores driven with time
//! passed in; [`rtc::driver`] is the one thin tokio task that owns the
//! sockets and the clock.

mod connection;
pub mod data;
pub mod media;
pub mod rtc;
pub mod signal;

pub use connection::{AGENT_STATE_ATTRIBUTE, RoomConnection, RoomError, RoomEvent};
pub use media::{MediaDrops, MediaError, MediaInbound, MediaOptions, RemoteAudio, RoomOptions};
pub use signal::{UpgradeRequestError, unix_millis, upgrade_request, websocket_base};
