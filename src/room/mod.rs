//! A LiveKit participant, like the official SDK's `Room`: the signal client
//! (join with a token, participant updates, keepalive, leave) and the room
//! connection an agent job holds. It knows LiveKit, not speech providers or
//! the session.

mod connection;
pub mod signal;

pub use connection::{AGENT_STATE_ATTRIBUTE, RoomConnection, RoomError, RoomEvent};
pub use signal::{UpgradeRequestError, unix_millis, upgrade_request, websocket_base};
