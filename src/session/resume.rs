//! Resumable conversations. After each committed turn a session hands a
//! [`SavedSession`] to its [`SessionSaver`], which writes it to the fleet in
//! the background with a TTL — the latest state wins and the caller's turn
//! never waits on the store. A job for the same room, on whichever worker,
//! loads it and carries on instead of greeting the caller again.
//!
//! The saved state is forgotten when the call ends normally (the caller
//! left, the agent closed, a hand-off) and kept when the session is stopped
//! (shutdown, redeploy, lost room connection) or dies.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use std::time::Duration;
//! use voxguard::fleet::{Fleet, FleetConfig};
//! use voxguard::session::resume::{SavedSession, SessionSaver, load};
//! let fleet = Fleet::new(FleetConfig::default()).expect("the memory backend needs no URL");
//! let saver = SessionSaver::start(fleet.clone(), "room-7", Duration::from_secs(300));
//! saver.save(SavedSession::fresh(7));
//! drop(saver); // the session died: its last state stays
//! # tokio::time::sleep(Duration::from_millis(10)).await;
//! assert_eq!(load(&fleet, "room-7").await.map(|s| s.turns), Some(0));
//! # }
//! ```

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::EndReason;
use crate::brain::ScriptedState;
use crate::brain::llm::ChatMessage;
use crate::fleet::Fleet;
use crate::recovery::{ConversationState, Entry, FailurePolicy, SpeechKind};

/// Bumped when [`SavedSession`] changes shape; other versions are not resumed.
pub const SAVED_SESSION_VERSION: u32 = 1;

/// What a session needs to carry on: the conversation (stage, signals,
/// notes, transcript), the scripted brain's memory, the turn count and the
/// failures so far (so a resumed call hands off to a person after the same
/// number of failures in a row as one that never moved).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedSession {
    pub version: u32,
    pub state: ConversationState,
    pub brain: ScriptedState,
    pub turns: u64,
    /// Absent in states saved before it was kept: the count starts afresh.
    #[serde(default)]
    pub failures: Option<FailurePolicy>,
    /// The model's conversation when a model was leading the call; the
    /// resumed session lets it lead again (where a model is configured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<Vec<ChatMessage>>,
}

impl SavedSession {
    /// A conversation that has not started yet (for tests and examples).
    pub fn fresh(seed: u64) -> SavedSession {
        SavedSession {
            version: SAVED_SESSION_VERSION,
            state: ConversationState::new(),
            brain: ScriptedState::new(seed),
            turns: 0,
            failures: None,
            model: None,
        }
    }

    /// Whether a new session should pick this conversation up: the same
    /// version, and the agent had not closed it.
    pub fn is_resumable(&self) -> bool {
        self.version == SAVED_SESSION_VERSION && !self.brain.ended
    }

    /// What the agent says when it picks the call up again: an apology that
    /// owns the gap, then the last thing it said, so the caller's next words
    /// answer what the brain is waiting for.
    pub fn resume_line(&self, seed: u64) -> String {
        const OPENERS: [&str; 3] = [
            "Sorry about that, I dropped off for a moment on my end.",
            "Apologies, I lost the line for a second on my side.",
            "Sorry, that was a glitch on my end.",
        ];
        let opener = OPENERS[(seed % OPENERS.len() as u64) as usize];
        let last_said = self
            .state
            .transcript
            .iter()
            .filter_map(|entry| match entry {
                Entry::Agent {
                    text,
                    kind: SpeechKind::Answer,
                } => Some(text.as_str()),
                _ => None,
            })
            .last();
        match last_said {
            Some(text) => format!("{opener} Where were we: {text}"),
            None => format!("{opener} Where were we?"),
        }
    }
}

/// The room's saved conversation, if there is one worth resuming. Takes at
/// most the fleet's `redis_timeout`; an unreadable or stale state is logged
/// and ignored (the call starts afresh).
pub async fn load(fleet: &Fleet, room: &str) -> Option<SavedSession> {
    let json = fleet.load_session_json(room).await?;
    match serde_json::from_str::<SavedSession>(&json) {
        Ok(saved) if saved.is_resumable() => Some(saved),
        Ok(saved) => {
            tracing::info!(
                room,
                version = saved.version,
                "saved conversation not resumed (ended or another version)"
            );
            None
        }
        Err(error) => {
            tracing::warn!(room, %error, "saved conversation unreadable; starting afresh");
            None
        }
    }
}

/// What the writer has still to do.
#[derive(Default)]
struct Pending {
    save: Option<Box<SavedSession>>,
    /// The call ended normally: delete the saved state, then stop.
    forget: bool,
    /// The job was stopped, not ended: never forget.
    keep: bool,
    /// No more writes will come.
    closed: bool,
}

struct Shared {
    pending: Mutex<Pending>,
    wake: Notify,
}

impl Shared {
    fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Writes one room's conversation state to the fleet from a task of its
/// own; clones share it. Dropping the last clone without [`SessionSaver::end`]
/// (the session died) keeps the last state saved.
#[derive(Clone)]
pub struct SessionSaver {
    handle: Arc<SaverHandle>,
}

struct SaverHandle {
    shared: Arc<Shared>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for SaverHandle {
    fn drop(&mut self) {
        self.shared.pending().closed = true;
        self.shared.wake.notify_one();
    }
}

impl SessionSaver {
    /// Start the writer for `room`; states are kept for `ttl` after their
    /// last write. Must be called inside a tokio runtime.
    pub fn start(fleet: Fleet, room: impl Into<String>, ttl: Duration) -> SessionSaver {
        let shared = Arc::new(Shared {
            pending: Mutex::default(),
            wake: Notify::new(),
        });
        let writer = tokio::spawn(write_loop(fleet, room.into(), ttl, shared.clone()));
        SessionSaver {
            handle: Arc::new(SaverHandle {
                shared,
                writer: Mutex::new(Some(writer)),
            }),
        }
    }

    /// Queue `saved` for writing; replaces a state not written yet. Never waits.
    pub fn save(&self, saved: SavedSession) {
        let shared = &self.handle.shared;
        shared.pending().save = Some(Box::new(saved));
        shared.wake.notify_one();
    }

    /// The session was stopped rather than ended (shutdown, redeploy, lost
    /// room connection): keep its state for the next worker. Too late once
    /// [`SessionSaver::end`] ran: the call's fate is decided there.
    pub fn keep_on_end(&self) {
        self.handle.shared.pending().keep = true;
    }

    /// The session ended for `reason`: forget its state if the call is over,
    /// after writing whatever is queued. No more saves follow.
    pub fn end(&self, reason: EndReason) {
        let shared = &self.handle.shared;
        {
            let mut pending = shared.pending();
            let over = matches!(
                reason,
                EndReason::CallerLeft | EndReason::AgentClosed | EndReason::HandedOff
            );
            pending.forget = over && !pending.keep;
            pending.closed = true;
        }
        shared.wake.notify_one();
    }

    /// Wait (at most `limit`) for the writer to finish after [`SessionSaver::end`];
    /// returns whether it did.
    pub async fn flushed(&self, limit: Duration) -> bool {
        let writer = self
            .handle
            .writer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        match writer {
            Some(writer) => tokio::time::timeout(limit, writer).await.is_ok(),
            None => true,
        }
    }
}

/// One write at a time, latest state first; each takes at most the fleet's
/// `redis_timeout` (or is queued by the fleet while Redis is out of reach).
async fn write_loop(fleet: Fleet, room: String, ttl: Duration, shared: Arc<Shared>) {
    loop {
        let (save, forget, closed) = {
            let mut pending = shared.pending();
            (pending.save.take(), pending.forget, pending.closed)
        };
        // The call is over: a state still waiting would only be deleted.
        // The fleet's calls are boxed while they run: with Redis they are
        // KiBs of future, and an idle writer (one per running call) should
        // not carry them.
        if forget {
            Box::pin(fleet.delete_session(&room)).await;
            return;
        }
        if let Some(saved) = save {
            match serde_json::to_string(&*saved) {
                Ok(json) => {
                    Box::pin(fleet.save_session_json(&room, json, ttl)).await;
                }
                Err(error) => {
                    tracing::warn!(room, %error, "conversation state not saved");
                }
            }
            continue;
        }
        if closed {
            return;
        }
        shared.wake.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::brain::Stage as BrainStage;
    use crate::fleet::FleetConfig;
    use crate::recovery::{Stage, ToolResult};

    fn mid_call() -> SavedSession {
        let mut saved = SavedSession::fresh(3);
        let state = &mut saved.state;
        state.move_to(Stage::Discovery).unwrap();
        state.signals.team_size = Some(8);
        state.note("law firm");
        state.transcript.push_user("we're about eight people");
        let id = state.transcript.record_tool_call(
            "salesforce_lookup",
            "salesforce",
            serde_json::json!({"email": "a@b.example"}),
            None,
        );
        state
            .transcript
            .record_result(id, ToolResult::NotFound)
            .unwrap();
        state
            .transcript
            .push_agent("How many documents a month?", SpeechKind::Answer);
        state
            .transcript
            .push_agent("One moment.", SpeechKind::Filler);
        saved.brain.stage = BrainStage::Discovery;
        saved.brain.signals.team_size = Some(8);
        saved.turns = 2;
        let mut failures = FailurePolicy::new(3);
        failures.record_failure("salesforce");
        saved.failures = Some(failures);
        saved
    }

    #[test]
    fn a_state_saved_without_failures_still_resumes() {
        let mut value = serde_json::to_value(mid_call()).unwrap();
        value.as_object_mut().unwrap().remove("failures");
        let back: SavedSession = serde_json::from_value(value).unwrap();
        assert_eq!(back.failures, None);
        assert!(back.is_resumable());
    }

    #[test]
    fn a_saved_session_round_trips_through_json_exactly() {
        let saved = mid_call();
        let json = serde_json::to_string(&saved).unwrap();
        let back: SavedSession = serde_json::from_str(&json).unwrap();
        assert_eq!(back, saved);
        assert!(back.state.transcript.unpaired_tool_calls().is_empty());
    }

    #[test]
    fn the_resume_line_owns_the_gap_and_repeats_the_last_answer() {
        let line = mid_call().resume_line(0);
        assert!(line.contains("on my end"), "{line}");
        assert!(
            line.ends_with("Where were we: How many documents a month?"),
            "{line}"
        );
        let nothing_said = SavedSession::fresh(1).resume_line(1);
        assert!(nothing_said.ends_with("Where were we?"), "{nothing_said}");
    }

    #[test]
    fn ended_or_foreign_states_are_not_resumed() {
        let mut ended = mid_call();
        ended.brain.ended = true;
        assert!(!ended.is_resumable());
        let mut other = mid_call();
        other.version = SAVED_SESSION_VERSION + 1;
        assert!(!other.is_resumable());
        assert!(mid_call().is_resumable());
    }

    #[tokio::test]
    async fn a_normal_end_forgets_the_state_after_writing_what_was_queued() {
        let fleet = Fleet::new(FleetConfig::default()).unwrap();
        let saver = SessionSaver::start(fleet.clone(), "room-a", Duration::from_secs(60));
        saver.save(mid_call());
        saver.end(EndReason::CallerLeft);
        assert!(saver.flushed(Duration::from_secs(1)).await);
        assert_eq!(load(&fleet, "room-a").await, None);
    }

    #[tokio::test]
    async fn a_stopped_session_keeps_its_last_state() {
        let fleet = Fleet::new(FleetConfig::default()).unwrap();
        let saver = SessionSaver::start(fleet.clone(), "room-b", Duration::from_secs(60));
        saver.save(SavedSession::fresh(1));
        saver.save(mid_call());
        saver.keep_on_end();
        saver.end(EndReason::CallerLeft);
        assert!(saver.flushed(Duration::from_secs(1)).await);
        assert_eq!(load(&fleet, "room-b").await, Some(mid_call()));

        let saver = SessionSaver::start(fleet.clone(), "room-c", Duration::from_secs(60));
        saver.save(mid_call());
        saver.end(EndReason::Shutdown);
        assert!(saver.flushed(Duration::from_secs(1)).await);
        assert_eq!(load(&fleet, "room-c").await, Some(mid_call()));
    }
}
