//! Forcing a breaker's state from outside: an operator, or the fleet backend
//! mirroring a state decided in another process. Forced transitions are
//! events like any other, with reason [`TransitionReason::Forced`].

use std::sync::atomic::Ordering::Acquire;
use std::time::Duration;

use super::breaker::{BreakerState, CircuitBreaker, Target, reopenings_of, state_of};
use super::breaker_events::TransitionReason;

impl CircuitBreaker {
    /// Open now, for the usual open duration (no-op when already open).
    pub fn force_open(&self, reason: impl Into<String>) {
        self.force(BreakerState::Open, None, reason.into());
    }

    /// Open now until `duration` from now, even when already open (e.g. to
    /// mirror a state decided elsewhere in the fleet).
    pub fn force_open_for(&self, duration: Duration, reason: impl Into<String>) {
        self.force(BreakerState::Open, Some(duration), reason.into());
    }

    /// Move to half-open now (no-op when already half-open).
    pub fn force_half_open(&self, reason: impl Into<String>) {
        self.force(BreakerState::HalfOpen, None, reason.into());
    }

    /// Close now, forgetting the window and the re-opening count.
    pub fn force_closed(&self, reason: impl Into<String>) {
        self.force(BreakerState::Closed, None, reason.into());
    }

    fn force(&self, to: BreakerState, open_for: Option<Duration>, reason: String) {
        loop {
            let word = self.state.0.load(Acquire);
            let from = state_of(word);
            if from == to && open_for.is_none() {
                return;
            }
            let target = match to {
                BreakerState::Closed => Target::Closed,
                BreakerState::HalfOpen => Target::HalfOpen,
                BreakerState::Open => {
                    let reopenings =
                        reopenings_of(word) + u32::from(from == BreakerState::HalfOpen);
                    let duration =
                        open_for.unwrap_or_else(|| self.config.open_duration(reopenings));
                    Target::Open {
                        reopenings,
                        until_nanos: self.open_until_nanos(duration),
                    }
                }
            };
            if let Some(event) =
                self.transition(word, target, TransitionReason::Forced(reason.clone()))
            {
                if event.from != event.to {
                    self.listeners.emit(&event);
                }
                return;
            }
        }
    }
}
