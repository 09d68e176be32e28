//! `SessionIo`: how a conversation hears the caller and speaks back,
//! independent of the transport (console, WebSocket JSON, LiveKit room,
//! scripted callers).
//!
//! A transport owns the other ends of two channels: it feeds [`CallerEvent`]s
//! in and renders [`AgentEvent`]s out. The session never knows which one it is.

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::recovery::{HeardLine, SpeechKind};

/// What the caller did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CallerEvent {
    /// A finished user utterance (speech-to-text output or typed text).
    User { text: String },
    /// The caller started talking over the agent (barge-in). `heard` says,
    /// when the transport knows it (a voice pipeline does), how much of the
    /// agent's lines still playing or queued the caller actually heard.
    Interrupt {
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        heard: Vec<HeardLine>,
    },
    /// The caller left.
    Hangup,
    /// Lines of the agent that a voice pipeline withdrew before any of
    /// them played (fillers whose wait was over first). Never on the wire:
    /// only an in-process voice pipeline knows it.
    #[serde(skip)]
    Unplayed { lines: Vec<String> },
}

/// What the agent did, for the caller and for observers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AgentEvent {
    Speech {
        text: String,
        /// Why it is said (the greeting is an `answer`).
        kind: SpeechKind,
        interruptible: bool,
    },
    /// Boxed (as is `ToolFinished`): every queue between a session and
    /// its caller is sized by the largest variant, and speech is the common
    /// event.
    ToolStarted(Box<ToolStarted>),
    ToolFinished(Box<ToolFinished>),
    State {
        stage: String,
        agent_state: AgentState,
    },
    SessionEnded {
        reason: String,
    },
    Error {
        message: String,
    },
}

/// What the agent is doing, as the caller's front end shows it (LiveKit's
/// `lk.agent.state` values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentState {
    Initializing,
    Listening,
    Thinking,
    Speaking,
}

impl AgentState {
    pub fn as_str(self) -> &'static str {
        match self {
            AgentState::Initializing => "initializing",
            AgentState::Listening => "listening",
            AgentState::Thinking => "thinking",
            AgentState::Speaking => "speaking",
        }
    }
}

/// A tool call began.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolStarted {
    pub call_id: String,
    pub tool: String,
    pub service: String,
}

/// A tool call ended, one way or another.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolFinished {
    pub call_id: String,
    pub tool: String,
    /// ok | not_found | fallback | unknown_outcome | cancelled
    pub outcome: String,
    pub elapsed_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The session's side of a transport.
pub struct SessionIo {
    pub inbound: mpsc::Receiver<CallerEvent>,
    pub outbound: mpsc::Sender<AgentEvent>,
    /// Lets whoever runs the session add to the caller's line (a hang-up
    /// the room reported) without keeping the line open: once the transport
    /// lets go, the session still sees the line close.
    pub line: mpsc::WeakSender<CallerEvent>,
}

/// The transport's side of a session.
pub struct TransportIo {
    pub to_session: mpsc::Sender<CallerEvent>,
    pub from_session: mpsc::Receiver<AgentEvent>,
}

/// A connected pair of ends with bounded queues.
pub fn channel(capacity: usize) -> (SessionIo, TransportIo) {
    let (to_session, inbound) = mpsc::channel(capacity);
    let (outbound, from_session) = mpsc::channel(capacity);
    let line = to_session.downgrade();
    (
        SessionIo {
            inbound,
            outbound,
            line,
        },
        TransportIo {
            to_session,
            from_session,
        },
    )
}

/// The largest caller frame of the WebSocket JSON protocol: one utterance
/// fits many times over.
pub const MAX_CALLER_FRAME_BYTES: usize = 16 * 1024;

/// Parse one client frame of the WebSocket JSON protocol, with an error that
/// says what a valid frame looks like.
pub fn parse_caller_frame(frame: &str) -> Result<CallerEvent, String> {
    if frame.len() > MAX_CALLER_FRAME_BYTES {
        return Err(format!(
            "frame of {} bytes is over the 16 KiB limit",
            frame.len()
        ));
    }
    serde_json::from_str(frame).map_err(|e| {
        format!(
            "invalid frame ({e}); expected {{\"type\":\"user\",\"text\":\"...\"}}, {{\"type\":\"interrupt\"}} or {{\"type\":\"hangup\"}}"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_frames_parse_from_the_documented_shape() {
        assert_eq!(
            parse_caller_frame(r#"{"type":"user","text":"hi there"}"#).unwrap(),
            CallerEvent::User {
                text: "hi there".into()
            }
        );
        assert_eq!(
            parse_caller_frame(r#"{"type":"interrupt"}"#).unwrap(),
            CallerEvent::Interrupt { heard: vec![] }
        );
    }

    #[test]
    fn bad_frames_get_an_error_that_shows_a_valid_one() {
        let err = parse_caller_frame(r#"{"type":"shout"}"#).unwrap_err();
        assert!(err.contains(r#"{"type":"user","text":"...""#), "{err}");
        let err = parse_caller_frame(&"x".repeat(20_000)).unwrap_err();
        assert!(err.contains("16 KiB"), "{err}");
    }

    #[test]
    fn boxed_tool_events_keep_their_flat_wire_shape() {
        let event = AgentEvent::ToolFinished(Box::new(ToolFinished {
            call_id: "salesforce_lookup-1".into(),
            tool: "salesforce_lookup".into(),
            outcome: "fallback".into(),
            elapsed_ms: 812.5,
            error: None,
        }));
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"type": "tool_finished", "call_id": "salesforce_lookup-1",
                "tool": "salesforce_lookup", "outcome": "fallback", "elapsed_ms": 812.5})
        );
        let back: AgentEvent = serde_json::from_value(json).unwrap();
        assert_eq!(back, event);
        assert!(std::mem::size_of::<AgentEvent>() <= 64);
    }

    #[test]
    fn agent_events_serialize_with_a_type_tag() {
        let json = serde_json::to_value(AgentEvent::Speech {
            text: "One moment.".into(),
            kind: SpeechKind::Filler,
            interruptible: true,
        })
        .unwrap();
        assert_eq!(json["type"], "speech");
        assert_eq!(json["kind"], "filler");
    }
}
