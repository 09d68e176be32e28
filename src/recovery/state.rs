//! Conversation state: where the call is (the brain's [`Stage`] machine),
//! what the caller told us (the brain's [`Signals`]), notes and the
//! transcript, with exact [`Snapshot`]s so a failed tool call can be rolled
//! back to precisely what was there before.

use serde::{Deserialize, Serialize};

use super::transcript::Transcript;
use crate::brain::Stage;
use crate::brain::understanding::Signals;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cannot move from {from:?} to {to:?}")]
pub struct StageError {
    pub from: Stage,
    pub to: Stage,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Note {
    pub stage: Stage,
    pub text: String,
}

/// Everything one conversation knows. Serialisable so the fleet can persist it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationState {
    stage: Stage,
    pub signals: Signals,
    pub notes: Vec<Note>,
    pub transcript: Transcript,
}

impl Default for ConversationState {
    fn default() -> Self {
        ConversationState::new()
    }
}

/// An exact copy of a [`ConversationState`] at one moment.
///
/// Cheap: the transcript's sealed chunks are shared, so the cost is the
/// signals, notes and at most one transcript chunk, whatever the call length.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot(ConversationState);

impl Snapshot {
    pub fn state(&self) -> &ConversationState {
        &self.0
    }
}

impl ConversationState {
    pub fn new() -> ConversationState {
        ConversationState {
            stage: Stage::Greeting,
            signals: Signals::default(),
            notes: Vec::new(),
            transcript: Transcript::new(),
        }
    }

    pub fn stage(&self) -> Stage {
        self.stage
    }

    /// Move to `next` if the stage machine allows it (staying put is a no-op).
    pub fn move_to(&mut self, next: Stage) -> Result<(), StageError> {
        if !self.stage.can_transition_to(next) {
            return Err(StageError {
                from: self.stage,
                to: next,
            });
        }
        self.stage = next;
        Ok(())
    }

    pub fn note(&mut self, text: impl Into<String>) {
        self.notes.push(Note {
            stage: self.stage,
            text: text.into(),
        });
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot(self.clone())
    }

    /// Roll back to exactly `snapshot`: afterwards `self == snapshot.state()`.
    /// Nothing done since is kept — this is a rollback, not a merge.
    pub fn restore(&mut self, snapshot: &Snapshot) {
        self.clone_from(&snapshot.0);
    }

    /// Whether `self` equals `snapshot` except for transcript entries
    /// appended since (how a failed call leaves the state: rolled back, with
    /// the call and its error on record).
    pub fn rolled_back_to(&self, snapshot: &Snapshot) -> bool {
        let s = &snapshot.0;
        self.stage == s.stage
            && self.signals == s.signals
            && self.notes == s.notes
            && self.transcript.extends(&s.transcript)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::brain::understanding::{Industry, Integration, Urgency};

    #[test]
    fn closing_is_final_and_rescue_is_reachable_from_every_live_stage() {
        for stage in Stage::ALL {
            if stage != Stage::Closing {
                assert!(!Stage::Closing.can_transition_to(stage));
                assert!(stage.can_transition_to(Stage::FrictionRescue), "{stage:?}");
            }
        }
    }

    #[test]
    fn an_invalid_move_is_an_error_and_changes_nothing() {
        let mut state = ConversationState::new();
        assert_eq!(
            state.move_to(Stage::NextSteps),
            Err(StageError {
                from: Stage::Greeting,
                to: Stage::NextSteps
            })
        );
        assert_eq!(state.stage(), Stage::Greeting);
        state.move_to(Stage::Discovery).unwrap();
        assert_eq!(state.stage(), Stage::Discovery);
    }

    #[test]
    fn restore_is_a_rollback_not_a_merge() {
        let mut state = ConversationState::new();
        state.signals.team_size = Some(12);
        let snapshot = state.snapshot();
        state.signals.team_size = None;
        state.signals.industry = Some(Industry::Logistics);
        state.note("mentions Q3 launch");
        state.move_to(Stage::Discovery).unwrap();
        state.transcript.push_user("hello");
        state.restore(&snapshot);
        assert_eq!(&state, snapshot.state());
    }

    #[test]
    fn state_round_trips_through_json() {
        let mut state = ConversationState::new();
        state.signals.integrations = Some(vec![Integration::Zapier]);
        state.signals.urgency = Some(Urgency::NextQuarter);
        state.transcript.push_user("hi");
        let json = serde_json::to_string(&state).unwrap();
        assert!(json.contains("\"GREETING\""));
        let back: ConversationState = serde_json::from_str(&json).unwrap();
        assert_eq!(back, state);
    }
}
