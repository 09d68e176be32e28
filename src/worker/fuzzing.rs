//! Entry point for the fuzz targets in `fuzz/`, not a public API: server
//! frames through the same path a registered connection takes them (size
//! limit, protobuf decode, [`server_action`]) against a real ledger, without
//! a socket.

use std::sync::Arc;

use livekit_protocol as proto;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use super::config::WorkerConfig;
use super::link::{ServerAction, read_frame, server_action};
use super::protocol::ConnectError;
use super::sessions::{WorkerSnapshot, WorkerState};

/// A worker ledger fed server frames one at a time.
pub struct ServerFrames {
    state: Arc<WorkerState>,
    _outbound: mpsc::UnboundedReceiver<proto::worker_message::Message>,
}

impl ServerFrames {
    pub fn new(max_sessions: u32, max_frame_bytes: usize) -> ServerFrames {
        let mut config = WorkerConfig::new("ws://127.0.0.1:7880", "devkey", "secret");
        config.agent_name = "voxguard".into();
        config.max_sessions = max_sessions;
        config.max_frame_bytes = max_frame_bytes;
        let (state, outbound) = WorkerState::new(config);
        ServerFrames {
            state,
            _outbound: outbound,
        }
    }

    /// One binary frame: `Err` ends the connection, as it would in the serve loop.
    pub fn binary_frame(&self, bytes: &[u8]) -> Result<ServerAction, ConnectError> {
        let frame = Some(Ok(Message::Binary(bytes.to_vec().into())));
        match read_frame(frame, self.state.config.max_frame_bytes)? {
            Some(message) => Ok(server_action(&self.state, message)),
            None => Ok(ServerAction::Nothing),
        }
    }

    /// Starts draining, as SIGTERM would.
    pub fn drain(&self) {
        self.state.start_draining();
    }

    pub fn snapshot(&self) -> WorkerSnapshot {
        self.state.snapshot()
    }

    pub fn max_sessions(&self) -> u32 {
        self.state.config.max_sessions
    }

    pub fn max_frame_bytes(&self) -> usize {
        self.state.config.max_frame_bytes
    }
}
