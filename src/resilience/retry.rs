//! Deadline-aware retry decisions.
//!
//! [`RetryPolicy`] answers two questions for the [`Guard`](super::Guard): how
//! long may the next attempt run, and after a failure, may we retry and after
//! how long a sleep. It never allows an attempt or a sleep that cannot finish
//! before the deadline.
//!
//! *Minimal useful attempt*: `min(attempt_timeout, useful_floor)` (floor 100 ms
//! by default). An attempt is only started if at least that much time is left,
//! and a sleep only if the sleep plus a minimal useful attempt still fits.

use std::time::Duration;

use super::backoff::BackoffConfig;
use super::error::CallError;
use super::guard::Retryability;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryConfig {
    pub max_attempts: u32,
    pub attempt_timeout: Duration,
    pub backoff: BackoffConfig,
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryDecision {
    /// Sleep this long, then make another attempt.
    RetryAfter(Duration),
    /// Stop and return the attempt's error.
    GiveUp(GiveUpReason),
}

/// Why no further attempt is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GiveUpReason {
    /// The error is permanent, or ambiguous where only unambiguous errors may be retried.
    NotRetryable,
    /// `max_attempts` attempts were made.
    AttemptsExhausted,
    /// The backoff sleep plus a minimal useful attempt does not fit in the deadline.
    DeadlineTooClose,
    /// The service's Retry-After plus a minimal useful attempt does not fit.
    RetryAfterTooLong,
}

impl GiveUpReason {
    pub fn as_str(self) -> &'static str {
        match self {
            GiveUpReason::NotRetryable => "not_retryable",
            GiveUpReason::AttemptsExhausted => "attempts_exhausted",
            GiveUpReason::DeadlineTooClose => "deadline_too_close",
            GiveUpReason::RetryAfterTooLong => "retry_after_too_long",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    config: RetryConfig,
    useful_floor: Duration,
}

impl RetryPolicy {
    /// The default floor of a minimal useful attempt.
    pub const DEFAULT_USEFUL_FLOOR: Duration = Duration::from_millis(100);

    pub fn new(config: RetryConfig) -> Self {
        RetryPolicy {
            config,
            useful_floor: Self::DEFAULT_USEFUL_FLOOR,
        }
    }

    /// Change the floor of a minimal useful attempt.
    pub fn with_useful_floor(mut self, floor: Duration) -> Self {
        self.useful_floor = floor;
        self
    }

    pub fn config(&self) -> &RetryConfig {
        &self.config
    }

    /// `min(attempt_timeout, useful_floor)`: the least time worth giving an attempt.
    pub fn min_useful_attempt(&self) -> Duration {
        self.config.attempt_timeout.min(self.useful_floor)
    }

    /// The timeout of an attempt starting with `remaining` time left before
    /// the deadline, or `None` when not even a minimal useful attempt fits.
    pub fn attempt_timeout(&self, remaining: Duration) -> Option<Duration> {
        let min_useful = self.min_useful_attempt();
        (remaining >= min_useful && !remaining.is_zero())
            .then(|| self.config.attempt_timeout.min(remaining))
    }

    /// Whether `error` may be retried at all under `retryability`.
    pub fn is_retryable(retryability: Retryability, error: &CallError) -> bool {
        match retryability {
            Retryability::Transient => error.is_transient(),
            Retryability::Unambiguous => error.is_transient() && !error.is_ambiguous(),
            Retryability::Never => false,
        }
    }

    /// Decide after attempt number `attempts_made` failed with `error`, with
    /// `remaining` time left. `next_backoff` is only called when a backoff
    /// sleep is needed (not for permanent errors nor when Retry-After applies).
    pub fn after_failure(
        &self,
        attempts_made: u32,
        error: &CallError,
        retryability: Retryability,
        remaining: Duration,
        next_backoff: impl FnOnce() -> Duration,
    ) -> RetryDecision {
        if !Self::is_retryable(retryability, error) {
            return RetryDecision::GiveUp(GiveUpReason::NotRetryable);
        }
        if attempts_made >= self.config.max_attempts {
            return RetryDecision::GiveUp(GiveUpReason::AttemptsExhausted);
        }
        let fits = |sleep: Duration| sleep.saturating_add(self.min_useful_attempt()) <= remaining;
        if let Some(retry_after) = error.retry_after() {
            return if fits(retry_after) {
                RetryDecision::RetryAfter(retry_after)
            } else {
                RetryDecision::GiveUp(GiveUpReason::RetryAfterTooLong)
            };
        }
        let sleep = next_backoff();
        if fits(sleep) {
            RetryDecision::RetryAfter(sleep)
        } else {
            RetryDecision::GiveUp(GiveUpReason::DeadlineTooClose)
        }
    }
}

impl From<RetryConfig> for RetryPolicy {
    fn from(config: RetryConfig) -> Self {
        RetryPolicy::new(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resilience::backoff::BackoffKind;

    const MS: Duration = Duration::from_millis(1);

    fn policy(max_attempts: u32) -> RetryPolicy {
        RetryPolicy::new(RetryConfig {
            max_attempts,
            attempt_timeout: 1000 * MS,
            backoff: BackoffConfig {
                kind: BackoffKind::Full,
                base: 100 * MS,
                cap: 400 * MS,
            },
        })
    }

    fn timeout() -> CallError {
        CallError::Timeout { after: 1000 * MS }
    }

    fn refused() -> CallError {
        CallError::Connect {
            detail: "refused".into(),
            sent: false,
        }
    }

    #[test]
    fn an_attempt_timeout_is_clamped_to_the_remaining_deadline() {
        assert_eq!(policy(2).attempt_timeout(3000 * MS), Some(1000 * MS));
        assert_eq!(policy(2).attempt_timeout(400 * MS), Some(400 * MS));
    }

    #[test]
    fn no_attempt_starts_when_less_than_a_minimal_useful_attempt_is_left() {
        assert_eq!(policy(2).min_useful_attempt(), 100 * MS);
        assert_eq!(policy(2).attempt_timeout(99 * MS), None);
        assert_eq!(policy(2).attempt_timeout(100 * MS), Some(100 * MS));
    }

    #[test]
    fn a_sleep_is_only_allowed_when_sleep_plus_a_minimal_attempt_fits() {
        let p = policy(3);
        let decide = |remaining, sleep| {
            p.after_failure(1, &timeout(), Retryability::Transient, remaining, || sleep)
        };
        assert_eq!(
            decide(500 * MS, 400 * MS),
            RetryDecision::RetryAfter(400 * MS)
        );
        assert_eq!(
            decide(499 * MS, 400 * MS),
            RetryDecision::GiveUp(GiveUpReason::DeadlineTooClose)
        );
    }

    #[test]
    fn permanent_errors_are_never_retried_and_draw_no_backoff() {
        for error in [
            CallError::Decode { detail: "x".into() },
            CallError::from_status(404, None, None),
        ] {
            let decision = policy(3).after_failure(
                1,
                &error,
                Retryability::Transient,
                3000 * MS,
                || unreachable!(),
            );
            assert_eq!(decision, RetryDecision::GiveUp(GiveUpReason::NotRetryable));
        }
    }

    #[test]
    fn unambiguous_retryability_retries_only_errors_that_provably_did_not_take_effect() {
        let p = policy(3);
        let decide =
            |e: &CallError| p.after_failure(1, e, Retryability::Unambiguous, 3000 * MS, || 10 * MS);
        assert_eq!(decide(&refused()), RetryDecision::RetryAfter(10 * MS));
        assert_eq!(
            decide(&CallError::from_status(503, None, None)),
            RetryDecision::RetryAfter(10 * MS)
        );
        assert_eq!(
            decide(&timeout()),
            RetryDecision::GiveUp(GiveUpReason::NotRetryable)
        );
        assert_eq!(
            decide(&CallError::from_status(502, None, None)),
            RetryDecision::GiveUp(GiveUpReason::NotRetryable)
        );
    }

    #[test]
    fn never_retryability_never_retries() {
        let decision =
            policy(3).after_failure(1, &refused(), Retryability::Never, 3000 * MS, || 10 * MS);
        assert_eq!(decision, RetryDecision::GiveUp(GiveUpReason::NotRetryable));
    }

    #[test]
    fn attempts_stop_at_max_attempts() {
        let decision =
            policy(2).after_failure(2, &timeout(), Retryability::Transient, 3000 * MS, || {
                10 * MS
            });
        assert_eq!(
            decision,
            RetryDecision::GiveUp(GiveUpReason::AttemptsExhausted)
        );
    }

    #[test]
    fn retry_after_replaces_the_backoff_when_it_fits_and_gives_up_when_it_does_not() {
        let limited = CallError::RateLimited {
            retry_after: Some(700 * MS),
        };
        let p = policy(3);
        let fits = p.after_failure(
            1,
            &limited,
            Retryability::Transient,
            800 * MS,
            || unreachable!(),
        );
        assert_eq!(fits, RetryDecision::RetryAfter(700 * MS));
        let too_long = p.after_failure(
            1,
            &limited,
            Retryability::Transient,
            799 * MS,
            || unreachable!(),
        );
        assert_eq!(
            too_long,
            RetryDecision::GiveUp(GiveUpReason::RetryAfterTooLong)
        );
    }
}
