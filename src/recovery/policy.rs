//! The session's error policy: counts failures per service (so phrases can
//! escalate from a first failure, to a repeat, to a breaker that is open) and
//! in a row (so the session hands the caller to a person instead of failing
//! forever), and notices when a failing service recovers.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::phrases::Level;
use crate::resilience::BreakerState;

/// What the session should do after a tool call resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionAction {
    Continue,
    /// Too many failures in a row: transfer the caller to a person.
    HandOff,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceRecord {
    pub consecutive_failures: u32,
    pub total_failures: u32,
}

/// Failure bookkeeping for one conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailurePolicy {
    handoff_after: u32,
    consecutive: u32,
    services: BTreeMap<String, ServiceRecord>,
}

impl Default for FailurePolicy {
    fn default() -> Self {
        FailurePolicy::new(FailurePolicy::DEFAULT_HANDOFF_AFTER)
    }
}

impl FailurePolicy {
    pub const DEFAULT_HANDOFF_AFTER: u32 = 3;

    /// Hand off after `handoff_after` unrecoverable failures in a row (at least 1).
    pub fn new(handoff_after: u32) -> FailurePolicy {
        FailurePolicy {
            handoff_after: handoff_after.max(1),
            consecutive: 0,
            services: BTreeMap::new(),
        }
    }

    pub fn handoff_after(&self) -> u32 {
        self.handoff_after
    }

    /// The same counts with another threshold (at least 1).
    pub fn with_handoff_after(mut self, handoff_after: u32) -> FailurePolicy {
        self.handoff_after = handoff_after.max(1);
        self
    }

    /// Unrecoverable failures in a row, across services.
    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive
    }

    pub fn service(&self, service: &str) -> ServiceRecord {
        self.services.get(service).copied().unwrap_or_default()
    }

    /// How a failure of `service` should sound right now, before it is recorded.
    pub fn level(&self, service: &str, breaker: BreakerState) -> Level {
        match breaker {
            BreakerState::Open => Level::Open,
            _ if self.service(service).consecutive_failures > 0 => Level::Repeat,
            BreakerState::HalfOpen => Level::Repeat,
            BreakerState::Closed => Level::First,
        }
    }

    /// Record an unrecoverable failure; says whether it is time to hand off.
    /// Once the threshold is reached every further failure hands off too: the
    /// session is never left failing silently.
    pub fn record_failure(&mut self, service: &str) -> SessionAction {
        let record = self.services.entry(service.to_string()).or_default();
        record.consecutive_failures += 1;
        record.total_failures += 1;
        self.consecutive += 1;
        if self.consecutive >= self.handoff_after {
            SessionAction::HandOff
        } else {
            SessionAction::Continue
        }
    }

    /// Record a success; returns true when `service` had been failing (the
    /// caller heard about it) and now works again.
    pub fn record_success(&mut self, service: &str) -> bool {
        self.consecutive = 0;
        match self.services.get_mut(service) {
            Some(record) if record.consecutive_failures > 0 => {
                record.consecutive_failures = 0;
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escalation_goes_first_then_repeat_and_open_wins() {
        let mut policy = FailurePolicy::default();
        assert_eq!(policy.level("calendar", BreakerState::Closed), Level::First);
        policy.record_failure("calendar");
        assert_eq!(
            policy.level("calendar", BreakerState::Closed),
            Level::Repeat
        );
        assert_eq!(policy.level("calendar", BreakerState::Open), Level::Open);
        assert_eq!(policy.level("crm", BreakerState::Closed), Level::First);
    }

    #[test]
    fn the_third_failure_in_a_row_hands_off_and_a_success_resets_the_count() {
        let mut policy = FailurePolicy::new(3);
        assert_eq!(policy.record_failure("a"), SessionAction::Continue);
        assert_eq!(policy.record_failure("b"), SessionAction::Continue);
        assert!(!policy.record_success("c"));
        assert_eq!(policy.record_failure("a"), SessionAction::Continue);
        assert_eq!(policy.record_failure("a"), SessionAction::Continue);
        assert_eq!(policy.record_failure("a"), SessionAction::HandOff);
        assert_eq!(policy.record_failure("a"), SessionAction::HandOff);
    }

    #[test]
    fn a_service_that_failed_reports_recovery_once() {
        let mut policy = FailurePolicy::default();
        policy.record_failure("calendar");
        assert!(policy.record_success("calendar"));
        assert!(!policy.record_success("calendar"));
        assert_eq!(policy.service("calendar").total_failures, 1);
    }
}
