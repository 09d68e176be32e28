//! How a tool call is resolved once the wait is over: commit and pair a
//! success, roll back and explain a failure or an unknown outcome, roll back
//! a barge-in. Everything here is synchronous, so it cannot be cut in half.

use super::binding::ServiceBinding;
use super::classify::{category_for, failure_result};
use super::phrases::{Category, Level, Promise, PromiseSet};
use super::policy::SessionAction;
use super::runner::ToolRunner;
use super::speech::SpeechKind;
use super::state::{ConversationState, Snapshot};
use super::tool::{OutcomeKind, SpokenLine, ToolAnswer, ToolFailure, ToolOutcome, ToolSpec};
use super::transcript::{CancelReason, Entry, ToolCallId, ToolResult};
use crate::resilience::{AttemptRecord, BreakerState, CallError, Rejection};
use tokio::time::Instant;

/// What the runner tracks while one call is in flight.
pub(super) struct Flight {
    pub(super) spec: ToolSpec,
    pub(super) binding: ServiceBinding,
    pub(super) call_id: ToolCallId,
    pub(super) started: Instant,
    pub(super) snapshot: Snapshot,
    /// Entries the runner itself appended since the snapshot, replayed after a rollback.
    pub(super) during: Vec<Entry>,
    pub(super) spoken: Vec<SpokenLine>,
    pub(super) alternative_available: bool,
    pub(super) attempts: Vec<AttemptRecord>,
    pub(super) attempts_started: u32,
}

impl ToolRunner {
    pub(super) fn succeed<T>(
        &mut self,
        state: &mut ConversationState,
        mut flight: Flight,
        answer: ToolAnswer<T>,
        value: serde_json::Value,
    ) -> ToolOutcome<T> {
        let result = match answer {
            ToolAnswer::Found(_) => ToolResult::Ok { value },
            ToolAnswer::NotFound => ToolResult::NotFound,
        };
        self.record_result(state, flight.call_id, result);
        if self.policy.record_success(&flight.spec.service) {
            self.say(
                state,
                &mut flight,
                Category::Recovered,
                SpeechKind::Recovered,
                Level::First,
                PromiseSet::NONE_ONLY,
            );
        }
        if matches!(answer, ToolAnswer::NotFound) {
            let allowed = failure_promises(&flight);
            self.say(
                state,
                &mut flight,
                Category::DataNotFound,
                SpeechKind::NotFound,
                Level::First,
                allowed,
            );
        }
        finish(
            flight,
            OutcomeKind::Ok,
            Some(answer),
            None,
            SessionAction::Continue,
        )
    }

    pub(super) fn fail<T>(
        &mut self,
        state: &mut ConversationState,
        mut flight: Flight,
        failure: ToolFailure,
    ) -> ToolOutcome<T> {
        self.roll_back(state, &mut flight);
        let ambiguous = match &failure {
            ToolFailure::Call(err) => err.is_ambiguous(),
            ToolFailure::Panicked(_) => true,
        };
        let unknown = flight.spec.side_effect.writes() && flight.attempts_started > 0 && ambiguous;
        let elapsed = flight.started.elapsed();
        self.record_result(
            state,
            flight.call_id,
            failure_result(&failure, unknown, elapsed),
        );

        let category = match &failure {
            ToolFailure::Call(err) => category_for(err),
            ToolFailure::Panicked(_) => Category::Generic,
        };
        let breaker = match &failure {
            ToolFailure::Call(CallError::Rejected(Rejection::BreakerOpen)) => BreakerState::Open,
            _ => (flight.binding.breaker_state)(),
        };
        let level = self.policy.level(&flight.spec.service, breaker);
        let allowed = failure_promises(&flight);
        let not_found = category == Category::DataNotFound;
        if unknown {
            self.say(
                state,
                &mut flight,
                Category::UnknownOutcome,
                SpeechKind::UnknownOutcome,
                level,
                allowed,
            );
        } else if not_found {
            self.say(
                state,
                &mut flight,
                category,
                SpeechKind::NotFound,
                level,
                allowed,
            );
        } else {
            self.say(
                state,
                &mut flight,
                category,
                SpeechKind::Failure,
                level,
                allowed,
            );
        }
        // A 404 says the service works and the thing is absent: not a failure to escalate.
        let action = if not_found {
            SessionAction::Continue
        } else {
            self.policy.record_failure(&flight.spec.service)
        };
        if action == SessionAction::HandOff {
            self.say(
                state,
                &mut flight,
                Category::Handoff,
                SpeechKind::Handoff,
                level,
                PromiseSet::NONE_ONLY,
            );
        }
        let kind = if unknown {
            OutcomeKind::UnknownOutcome
        } else {
            OutcomeKind::Fallback
        };
        finish(flight, kind, None, Some(failure), action)
    }

    pub(super) fn cancel<T>(
        &mut self,
        state: &mut ConversationState,
        mut flight: Flight,
    ) -> ToolOutcome<T> {
        self.roll_back(state, &mut flight);
        let maybe_applied = flight.spec.side_effect.writes() && flight.attempts_started > 0;
        let result = ToolResult::Cancelled {
            reason: CancelReason::BargeIn,
            maybe_applied,
        };
        self.record_result(state, flight.call_id, result);
        finish(
            flight,
            OutcomeKind::Cancelled,
            None,
            None,
            SessionAction::Continue,
        )
    }

    /// Restore the pre-call state exactly, then replay what the runner itself
    /// recorded during the call (the call and any ladder lines) so the
    /// transcript stays truthful about what the caller heard.
    fn roll_back(&mut self, state: &mut ConversationState, flight: &mut Flight) {
        state.restore(&flight.snapshot);
        for entry in std::mem::take(&mut flight.during) {
            if let Err(err) = state.transcript.append(entry) {
                tracing::error!(error = %err, "replaying a tool call after rollback broke pairing");
            }
        }
    }

    fn record_result(
        &mut self,
        state: &mut ConversationState,
        call_id: ToolCallId,
        result: ToolResult,
    ) {
        if let Err(err) = state.transcript.record_result(call_id, result) {
            tracing::error!(error = %err, "tool result could not be paired");
        }
    }
}

/// After the final failure nothing will retry, so no retry promises; an
/// alternative only when the caller said one exists.
fn failure_promises(flight: &Flight) -> PromiseSet {
    if flight.alternative_available {
        PromiseSet::NONE_ONLY.with(Promise::Alternative)
    } else {
        PromiseSet::NONE_ONLY
    }
}

fn finish<T>(
    flight: Flight,
    kind: OutcomeKind,
    value: Option<ToolAnswer<T>>,
    error: Option<ToolFailure>,
    action: SessionAction,
) -> ToolOutcome<T> {
    ToolOutcome {
        call_id: flight.call_id,
        kind,
        value,
        error,
        first_speech_at: flight.spoken.first().map(|line| line.at),
        resolved_at: flight.started.elapsed(),
        attempts: flight.attempts,
        attempts_started: flight.attempts_started,
        spoken: flight.spoken,
        action,
    }
}
