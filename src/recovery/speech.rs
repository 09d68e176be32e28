//! What the recovery layer says, and where it goes: [`Speech`] items sent to
//! a [`SpeechSink`] (the session's text-to-speech queue).

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Why a line is being spoken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpeechKind {
    /// The first latency-ladder line ("one sec").
    Filler,
    /// Later latency-ladder lines ("still on it").
    StillWorking,
    /// The answer to what the caller asked.
    Answer,
    /// The lookup worked and found nothing.
    NotFound,
    /// The call failed; nothing changed.
    Failure,
    /// A write may or may not have happened.
    UnknownOutcome,
    /// The session is handing the caller to a person.
    Handoff,
    /// A service that had failed works again.
    Recovered,
}

impl SpeechKind {
    /// The wire name (`filler`, `still_working`, `answer`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            SpeechKind::Filler => "filler",
            SpeechKind::StillWorking => "still_working",
            SpeechKind::Answer => "answer",
            SpeechKind::NotFound => "not_found",
            SpeechKind::Failure => "failure",
            SpeechKind::UnknownOutcome => "unknown_outcome",
            SpeechKind::Handoff => "handoff",
            SpeechKind::Recovered => "recovered",
        }
    }
}

impl std::fmt::Display for SpeechKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One line for the caller to hear.
#[derive(Debug, Clone, PartialEq)]
pub struct Speech {
    pub text: String,
    pub kind: SpeechKind,
    /// Whether the caller may talk over it (barge-in stops it).
    pub interruptible: bool,
    /// When it was handed to the sink (tokio clock).
    pub at: Instant,
}

impl Speech {
    pub fn new(text: impl Into<String>, kind: SpeechKind) -> Speech {
        // Lines that carry news the caller must hear in full are not interruptible.
        let interruptible = !matches!(kind, SpeechKind::UnknownOutcome | SpeechKind::Handoff);
        Speech {
            text: text.into(),
            kind,
            interruptible,
            at: Instant::now(),
        }
    }
}

/// Where speech goes. Never blocks: a speaker that cannot keep up loses lines
/// rather than stalling the tool call.
pub trait SpeechSink: Send + Sync {
    /// Returns false when the line could not be queued.
    fn speak(&self, speech: Speech) -> bool;
}

impl SpeechSink for mpsc::UnboundedSender<Speech> {
    fn speak(&self, speech: Speech) -> bool {
        self.send(speech).is_ok()
    }
}

impl SpeechSink for mpsc::Sender<Speech> {
    fn speak(&self, speech: Speech) -> bool {
        match self.try_send(speech) {
            Ok(()) => true,
            Err(err) => {
                tracing::warn!(error = %err, "speech queue full or closed; line dropped");
                false
            }
        }
    }
}
