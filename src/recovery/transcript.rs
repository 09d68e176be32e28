//! The conversation transcript: user turns, agent speech, tool calls and
//! their results. Every tool call is paired with exactly one result; the
//! transcript refuses entries that would break that, and
//! [`Transcript::cancel_unpaired`] closes whatever is still open.
//!
//! Storage is an append-only log of sealed, `Arc`-shared chunks plus a short
//! open tail, so a clone (a snapshot) copies a few pointers and at most one
//! chunk of entries, whatever the transcript's length.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::speech::SpeechKind;
use crate::resilience::ErrorKind;

/// Entries per sealed chunk.
const CHUNK: usize = 32;

/// Identifies one tool call within a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ToolCallId(pub u64);

impl std::fmt::Display for ToolCallId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "call-{}", self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCallRecord {
    pub id: ToolCallId,
    pub tool: String,
    pub service: String,
    pub arguments: serde_json::Value,
    /// Present for writes; the same key goes with every attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
}

/// Why a tool call ended without an answer of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CancelReason {
    /// The caller spoke over the agent.
    BargeIn,
    /// The session ended.
    Shutdown,
    /// The task running the call went away without resolving it.
    Abandoned,
}

/// The one result every tool call gets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ToolResult {
    Ok {
        value: serde_json::Value,
    },
    /// The lookup worked and found nothing.
    NotFound,
    Error {
        error: ErrorKind,
        message: String,
    },
    /// The tool's code panicked; the message is the panic payload if it was text.
    Panicked {
        message: String,
    },
    TimedOut {
        after_ms: u64,
    },
    /// A write failed ambiguously: it may have taken effect.
    UnknownOutcome {
        error: Option<ErrorKind>,
        message: String,
    },
    /// `maybe_applied` is true for a write whose request may already have been sent.
    Cancelled {
        reason: CancelReason,
        maybe_applied: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Entry {
    User {
        text: String,
    },
    Agent {
        text: String,
        kind: SpeechKind,
    },
    /// Boxed: a call record is twice the size of the other entries, and
    /// every entry of a transcript is sized by the largest.
    ToolCall(Box<ToolCallRecord>),
    ToolResult {
        id: ToolCallId,
        result: ToolResult,
    },
    /// The caller cut in: of the agent's lines still playing or queued,
    /// only these words were heard. The lines stay as said; this records
    /// what reached the caller (see [`Transcript::heard`]).
    Interrupted {
        heard: Vec<HeardLine>,
    },
    /// Lines the agent's voice withdrew before any of their audio played
    /// (a filler whose wait was over before its turn to play came): the
    /// caller heard none of them.
    Unplayed {
        lines: Vec<String>,
    },
}

/// How much of one of the agent's lines the caller heard before cutting in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeardLine {
    /// The line as the agent said it.
    pub spoken: String,
    /// The words that were played before the cut (empty: none).
    pub heard: String,
}

/// Why an entry was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PairingError {
    #[error("{0} already has a result")]
    AlreadyAnswered(ToolCallId),
    #[error("{0} was never called")]
    UnknownCall(ToolCallId),
    #[error("{0} is not a fresh tool call id")]
    ReusedId(ToolCallId),
}

#[derive(Debug, Clone, Default)]
pub struct Transcript {
    /// Full chunks of exactly `CHUNK` entries, shared between snapshots.
    sealed: Vec<Arc<[Entry]>>,
    tail: Vec<Entry>,
    pending: BTreeSet<ToolCallId>,
    next_call_id: u64,
}

impl Transcript {
    pub fn new() -> Transcript {
        Transcript::default()
    }

    pub fn len(&self) -> usize {
        self.sealed.len() * CHUNK + self.tail.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.sealed
            .iter()
            .flat_map(|c| c.iter())
            .chain(self.tail.iter())
    }

    /// Entries from position `from` on.
    pub fn entries_since(&self, from: usize) -> Vec<Entry> {
        self.iter().skip(from).cloned().collect()
    }

    pub fn push_user(&mut self, text: impl Into<String>) {
        self.push_unchecked(Entry::User { text: text.into() });
    }

    pub fn push_agent(&mut self, text: impl Into<String>, kind: SpeechKind) {
        self.push_unchecked(Entry::Agent {
            text: text.into(),
            kind,
        });
    }

    /// Record a new tool call; it stays unpaired until [`Transcript::record_result`].
    pub fn record_tool_call(
        &mut self,
        tool: impl Into<String>,
        service: impl Into<String>,
        arguments: serde_json::Value,
        idempotency_key: Option<String>,
    ) -> ToolCallId {
        let id = ToolCallId(self.next_call_id);
        let record = ToolCallRecord {
            id,
            tool: tool.into(),
            service: service.into(),
            arguments,
            idempotency_key,
        };
        self.push_unchecked(Entry::ToolCall(Box::new(record)));
        id
    }

    pub fn record_result(
        &mut self,
        id: ToolCallId,
        result: ToolResult,
    ) -> Result<(), PairingError> {
        self.append(Entry::ToolResult { id, result })
    }

    /// Append any entry, refusing one that would break pairing.
    pub fn append(&mut self, entry: Entry) -> Result<(), PairingError> {
        match &entry {
            Entry::ToolCall(record) if record.id.0 < self.next_call_id => {
                return Err(PairingError::ReusedId(record.id));
            }
            Entry::ToolResult { id, .. } if !self.pending.contains(id) => {
                return Err(if id.0 < self.next_call_id {
                    PairingError::AlreadyAnswered(*id)
                } else {
                    PairingError::UnknownCall(*id)
                });
            }
            _ => {}
        }
        self.push_unchecked(entry);
        Ok(())
    }

    fn push_unchecked(&mut self, entry: Entry) {
        match &entry {
            Entry::ToolCall(record) => {
                self.pending.insert(record.id);
                self.next_call_id = self.next_call_id.max(record.id.0 + 1);
            }
            Entry::ToolResult { id, .. } => {
                self.pending.remove(id);
            }
            _ => {}
        }
        self.tail.push(entry);
        if self.tail.len() == CHUNK {
            self.sealed.push(Arc::from(std::mem::take(&mut self.tail)));
        }
    }

    /// Tool calls still waiting for their result, oldest first.
    pub fn unpaired_tool_calls(&self) -> Vec<ToolCallId> {
        self.pending.iter().copied().collect()
    }

    /// Pair every open tool call with a `cancelled` result; returns how many.
    /// The session calls this on barge-in cleanup and on shutdown.
    pub fn cancel_unpaired(&mut self, reason: CancelReason) -> usize {
        let open = self.unpaired_tool_calls();
        for id in &open {
            let maybe_applied = self.call(*id).is_some_and(|c| c.idempotency_key.is_some());
            self.push_unchecked(Entry::ToolResult {
                id: *id,
                result: ToolResult::Cancelled {
                    reason,
                    maybe_applied,
                },
            });
        }
        open.len()
    }

    pub fn call(&self, id: ToolCallId) -> Option<&ToolCallRecord> {
        self.iter().find_map(|e| match e {
            Entry::ToolCall(record) if record.id == id => Some(&**record),
            _ => None,
        })
    }

    pub fn result(&self, id: ToolCallId) -> Option<&ToolResult> {
        self.iter().find_map(|e| match e {
            Entry::ToolResult { id: rid, result } if *rid == id => Some(result),
            _ => None,
        })
    }

    /// Record that the caller cut in and heard only `heard` of the agent's
    /// last lines.
    pub fn push_interrupted(&mut self, heard: Vec<HeardLine>) {
        if !heard.is_empty() {
            self.push_unchecked(Entry::Interrupted { heard });
        }
    }

    /// Record that these lines of the agent never played.
    pub fn push_unplayed(&mut self, lines: Vec<String>) {
        if !lines.is_empty() {
            self.push_unchecked(Entry::Unplayed { lines });
        }
    }

    /// Every agent line with what the caller heard of it: the whole line,
    /// unless a later interruption says only some of its words were played
    /// (or none, for a line withdrawn before it played).
    pub fn heard(&self) -> Vec<(&str, &str)> {
        let entries: Vec<&Entry> = self.iter().collect();
        let mut lines = Vec::new();
        for (at, entry) in entries.iter().enumerate() {
            let Entry::Agent { text, .. } = entry else {
                continue;
            };
            // The first interruption after the line that names it decides.
            let heard = entries[at + 1..]
                .iter()
                .find_map(|later| match later {
                    Entry::Interrupted { heard } => heard
                        .iter()
                        .find(|h| h.spoken == *text)
                        .map(|h| h.heard.as_str()),
                    Entry::Unplayed { lines } => lines.iter().any(|l| l == text).then_some(""),
                    Entry::User { .. } => Some(text.as_str()),
                    _ => None,
                })
                .unwrap_or(text.as_str());
            lines.push((text.as_str(), heard));
        }
        lines
    }

    /// Whether `self` is `earlier` with entries appended (sealed chunks are
    /// compared by pointer first, so this is cheap for snapshots of `self`).
    pub fn extends(&self, earlier: &Transcript) -> bool {
        if self.len() < earlier.len() {
            return false;
        }
        let shared = earlier.sealed.len();
        let sealed_match = self.sealed[..shared]
            .iter()
            .zip(&earlier.sealed)
            .all(|(a, b)| Arc::ptr_eq(a, b) || a[..] == b[..]);
        sealed_match
            && self
                .iter()
                .skip(shared * CHUNK)
                .zip(earlier.tail.iter())
                .all(|(a, b)| a == b)
    }
}

impl PartialEq for Transcript {
    fn eq(&self, other: &Transcript) -> bool {
        self.next_call_id == other.next_call_id
            && self.len() == other.len()
            && self.iter().eq(other.iter())
    }
}

/// What a transcript breaks, found by a full scan.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PairingViolation {
    #[error("{0} has no result")]
    Unanswered(ToolCallId),
    #[error("{0} has more than one result")]
    AnsweredTwice(ToolCallId),
    #[error("a result for {0} comes before (or without) its call")]
    Orphan(ToolCallId),
    #[error("{0} is called twice")]
    DuplicateCall(ToolCallId),
}

/// Check the pairing invariant from scratch, independent of the
/// transcript's own bookkeeping: every call has exactly one result after it.
pub fn check_pairing(transcript: &Transcript) -> Result<(), PairingViolation> {
    let mut open = BTreeSet::new();
    let mut closed = BTreeSet::new();
    for entry in transcript.iter() {
        match entry {
            Entry::ToolCall(record) => {
                if open.contains(&record.id) || closed.contains(&record.id) {
                    return Err(PairingViolation::DuplicateCall(record.id));
                }
                open.insert(record.id);
            }
            Entry::ToolResult { id, .. } => {
                if closed.contains(id) {
                    return Err(PairingViolation::AnsweredTwice(*id));
                }
                if !open.remove(id) {
                    return Err(PairingViolation::Orphan(*id));
                }
                closed.insert(*id);
            }
            _ => {}
        }
    }
    match open.into_iter().next() {
        Some(id) => Err(PairingViolation::Unanswered(id)),
        None => Ok(()),
    }
}

#[derive(Serialize, Deserialize)]
struct TranscriptRepr {
    entries: Vec<Entry>,
}

impl Serialize for Transcript {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut s = serializer.serialize_struct("Transcript", 1)?;
        s.serialize_field("entries", &SerializeEntries(self))?;
        s.end()
    }
}

struct SerializeEntries<'a>(&'a Transcript);

impl Serialize for SerializeEntries<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter())
    }
}

impl<'de> Deserialize<'de> for Transcript {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Transcript, D::Error> {
        let repr = TranscriptRepr::deserialize(deserializer)?;
        let mut transcript = Transcript::new();
        for entry in repr.entries {
            transcript.append(entry).map_err(serde::de::Error::custom)?;
        }
        Ok(transcript)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interruption_records_what_was_heard_and_keeps_the_lines_as_said() {
        let mut transcript = Transcript::new();
        transcript.push_agent("Hi, thanks for calling.", SpeechKind::Answer);
        transcript.push_user("hello");
        transcript.push_agent(
            "Your plan renews next month and includes ten seats.",
            SpeechKind::Answer,
        );
        transcript.push_agent("Anything else?", SpeechKind::Answer);
        transcript.push_interrupted(vec![
            HeardLine {
                spoken: "Your plan renews next month and includes ten seats.".into(),
                heard: "Your plan renews next month".into(),
            },
            HeardLine {
                spoken: "Anything else?".into(),
                heard: String::new(),
            },
        ]);
        assert_eq!(
            transcript.heard(),
            vec![
                ("Hi, thanks for calling.", "Hi, thanks for calling."),
                (
                    "Your plan renews next month and includes ten seats.",
                    "Your plan renews next month"
                ),
                ("Anything else?", ""),
            ]
        );
        assert_eq!(check_pairing(&transcript), Ok(()));
    }

    #[test]
    fn a_withdrawn_filler_is_recorded_as_unheard_and_the_rest_as_heard() {
        let mut transcript = Transcript::new();
        transcript.push_agent("Let me check.", SpeechKind::Answer);
        transcript.push_agent("Give me just a moment.", SpeechKind::Filler);
        transcript.push_agent("You're on the Pro plan.", SpeechKind::Answer);
        transcript.push_unplayed(vec!["Give me just a moment.".into()]);
        transcript.push_user("thanks");
        transcript.push_agent("Give me just a moment.", SpeechKind::Filler);
        assert_eq!(
            transcript.heard(),
            vec![
                ("Let me check.", "Let me check."),
                ("Give me just a moment.", ""),
                ("You're on the Pro plan.", "You're on the Pro plan."),
                ("Give me just a moment.", "Give me just a moment."),
            ]
        );
        let json = serde_json::to_string(&transcript).unwrap();
        let back: Transcript = serde_json::from_str(&json).unwrap();
        assert_eq!(back.heard(), transcript.heard(), "{json}");
    }

    #[test]
    fn a_result_closes_exactly_one_call_and_a_second_is_refused() {
        let mut t = Transcript::new();
        let id = t.record_tool_call("crm_lookup", "salesforce", serde_json::json!({}), None);
        assert_eq!(t.unpaired_tool_calls(), vec![id]);
        t.record_result(id, ToolResult::NotFound).unwrap();
        assert!(t.unpaired_tool_calls().is_empty());
        assert_eq!(
            t.record_result(id, ToolResult::NotFound),
            Err(PairingError::AlreadyAnswered(id))
        );
        assert_eq!(check_pairing(&t), Ok(()));
    }

    #[test]
    fn cancelling_pairs_every_open_call() {
        let mut t = Transcript::new();
        let a = t.record_tool_call("a", "s", serde_json::Value::Null, None);
        let b = t.record_tool_call("b", "s", serde_json::Value::Null, Some("k".into()));
        assert_eq!(check_pairing(&t), Err(PairingViolation::Unanswered(a)));
        assert_eq!(t.cancel_unpaired(CancelReason::Shutdown), 2);
        assert_eq!(check_pairing(&t), Ok(()));
        assert_eq!(
            t.result(b),
            Some(&ToolResult::Cancelled {
                reason: CancelReason::Shutdown,
                maybe_applied: true
            })
        );
    }

    #[test]
    fn a_long_transcript_round_trips_through_json_across_chunks() {
        let mut t = Transcript::new();
        for i in 0..100 {
            t.push_user(format!("turn {i}"));
            let id = t.record_tool_call("t", "s", serde_json::json!({ "i": i }), None);
            t.record_result(
                id,
                ToolResult::Ok {
                    value: serde_json::json!(i),
                },
            )
            .unwrap();
        }
        let json = serde_json::to_string(&t).unwrap();
        let back: Transcript = serde_json::from_str(&json).unwrap();
        assert_eq!(back, t);
        assert_eq!(back.len(), 300);
    }

    #[test]
    fn a_persisted_transcript_that_breaks_pairing_is_refused() {
        let json = r#"{"entries":[{"type":"tool_result","id":3,"result":{"status":"not_found"}}]}"#;
        let err = serde_json::from_str::<Transcript>(json).unwrap_err();
        assert!(err.to_string().contains("call-3 was never called"), "{err}");
    }

    #[test]
    fn a_snapshot_clone_shares_sealed_chunks_and_extends_detects_divergence() {
        let mut t = Transcript::new();
        for i in 0..70 {
            t.push_user(format!("{i}"));
        }
        let snapshot = t.clone();
        assert!(Arc::ptr_eq(&snapshot.sealed[0], &t.sealed[0]));
        t.push_agent("ok", SpeechKind::Answer);
        assert!(t.extends(&snapshot));
        assert!(!snapshot.extends(&t));
        let mut other = snapshot.clone();
        other.tail[0] = Entry::User {
            text: "changed".into(),
        };
        assert!(!t.extends(&other));
    }
}
