//! Breaker transitions as events, and the subscribers that turn them into
//! tracing events and metrics.
//!
//! Every state change of a [`CircuitBreaker`](super::CircuitBreaker) is one
//! [`BreakerEvent`] delivered to every listener attached to it (or to its
//! [`BreakerRegistry`](super::BreakerRegistry)).

use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use super::breaker::BreakerState;

/// Why a breaker changed state.
#[derive(Debug, Clone, PartialEq)]
pub enum TransitionReason {
    /// This many failures in a row while closed.
    ConsecutiveFailures(u32),
    /// The window's failure rate reached the threshold.
    FailureRate { failures: u32, calls: u32 },
    /// The window's slow-call rate reached the threshold.
    SlowCallRate { slow: u32, calls: u32 },
    /// The open duration elapsed; probes may go through.
    OpenElapsed,
    /// A half-open probe failed (or was slow).
    ProbeFailed,
    /// Every half-open probe succeeded.
    ProbesSucceeded,
    /// An external source (an operator, the fleet backend) set the state.
    Forced(String),
}

impl TransitionReason {
    pub fn is_forced(&self) -> bool {
        matches!(self, TransitionReason::Forced(_))
    }

    /// A short label for metrics.
    pub fn as_str(&self) -> &'static str {
        match self {
            TransitionReason::ConsecutiveFailures(_) => "consecutive_failures",
            TransitionReason::FailureRate { .. } => "failure_rate",
            TransitionReason::SlowCallRate { .. } => "slow_call_rate",
            TransitionReason::OpenElapsed => "open_elapsed",
            TransitionReason::ProbeFailed => "probe_failed",
            TransitionReason::ProbesSucceeded => "probes_succeeded",
            TransitionReason::Forced(_) => "forced",
        }
    }
}

impl fmt::Display for TransitionReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransitionReason::ConsecutiveFailures(n) => write!(f, "{n} consecutive failures"),
            TransitionReason::FailureRate { failures, calls } => {
                write!(f, "{failures} of the last {calls} calls failed")
            }
            TransitionReason::SlowCallRate { slow, calls } => {
                write!(f, "{slow} of the last {calls} calls were slow")
            }
            TransitionReason::OpenElapsed => f.write_str("open period elapsed"),
            TransitionReason::ProbeFailed => f.write_str("a probe call failed"),
            TransitionReason::ProbesSucceeded => f.write_str("all probe calls succeeded"),
            TransitionReason::Forced(why) => write!(f, "forced: {why}"),
        }
    }
}

impl BreakerState {
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }

    /// Whether `from → to` is a transition a breaker makes on its own
    /// (forced transitions may go anywhere).
    pub fn can_move_to(self, to: BreakerState) -> bool {
        use BreakerState::*;
        matches!(
            (self, to),
            (Closed, Open) | (Open, HalfOpen) | (HalfOpen, Closed) | (HalfOpen, Open)
        )
    }
}

/// One state change of one service's breaker.
#[derive(Debug, Clone, PartialEq)]
pub struct BreakerEvent {
    pub service: Arc<str>,
    pub from: BreakerState,
    pub to: BreakerState,
    pub reason: TransitionReason,
    /// When, on the breaker's clock (time since its origin).
    pub at: Duration,
}

/// A subscriber to breaker events. It runs on the thread that made the
/// transition, so it must be quick and must not block.
pub type BreakerListener = Arc<dyn Fn(&BreakerEvent) + Send + Sync>;

/// A shared, growable list of listeners.
#[derive(Default)]
pub struct Listeners {
    list: RwLock<Vec<BreakerListener>>,
}

impl Listeners {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    pub fn subscribe(&self, listener: BreakerListener) {
        self.list
            .write()
            .unwrap_or_else(|poison| poison.into_inner())
            .push(listener);
    }

    pub(crate) fn emit(&self, event: &BreakerEvent) {
        // Copy the list out so a listener may subscribe others without deadlocking.
        let listeners = self
            .list
            .read()
            .unwrap_or_else(|poison| poison.into_inner())
            .clone();
        for listener in listeners {
            listener(event);
        }
    }
}

impl fmt::Debug for Listeners {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.list.read().map(|l| l.len()).unwrap_or_default();
        f.debug_struct("Listeners").field("count", &count).finish()
    }
}

/// Logs every transition: opening at `warn`, the rest at `info`.
pub fn tracing_listener() -> BreakerListener {
    Arc::new(|event: &BreakerEvent| {
        let (service, from, to, reason) = (
            &*event.service,
            event.from.as_str(),
            event.to.as_str(),
            &event.reason,
        );
        if event.to == BreakerState::Open {
            tracing::warn!(service, from, to, %reason, "circuit breaker opened");
        } else {
            tracing::info!(service, from, to, %reason, "circuit breaker changed state");
        }
    })
}

/// Counts transitions in `voxguard_breaker_transitions_total{service,from,to,reason}`
/// and sets `voxguard_breaker_state{service}` (0 closed, 1 half-open, 2 open).
pub fn metrics_listener() -> BreakerListener {
    Arc::new(|event: &BreakerEvent| {
        let service = event.service.to_string();
        metrics::counter!(
            "voxguard_breaker_transitions_total",
            "service" => service.clone(),
            "from" => event.from.as_str(),
            "to" => event.to.as_str(),
            "reason" => event.reason.as_str(),
        )
        .increment(1);
        let level = match event.to {
            BreakerState::Closed => 0.0,
            BreakerState::HalfOpen => 1.0,
            BreakerState::Open => 2.0,
        };
        metrics::gauge!("voxguard_breaker_state", "service" => service).set(level);
    })
}

/// Forwards events into a tokio broadcast channel (for async consumers such
/// as a fleet sync task). Events are dropped when nobody is receiving.
pub fn broadcast_listener(sender: tokio::sync::broadcast::Sender<BreakerEvent>) -> BreakerListener {
    Arc::new(move |event: &BreakerEvent| {
        let _ = sender.send(event.clone());
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_four_natural_transitions_are_valid() {
        use BreakerState::*;
        let all = [Closed, Open, HalfOpen];
        let valid: Vec<_> = all
            .iter()
            .flat_map(|f| all.iter().map(move |t| (*f, *t)))
            .filter(|(f, t)| f.can_move_to(*t))
            .collect();
        assert_eq!(
            valid,
            vec![
                (Closed, Open),
                (Open, HalfOpen),
                (HalfOpen, Closed),
                (HalfOpen, Open)
            ]
        );
    }
}
