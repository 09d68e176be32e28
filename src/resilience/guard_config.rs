//! Guard configuration: voice-ready defaults and validation.
//!
//! A valid configuration makes it impossible for one request's own retries to
//! open its breaker: `consecutive_failures` and `min_calls` both exceed
//! `max_attempts`.

use std::time::Duration;

use super::backoff::{BackoffConfig, BackoffKind};
use super::breaker::{BreakerConfig, MAX_WINDOW_SIZE};
use super::budget::BudgetConfig;
use super::guard::GuardConfig;
use super::retry::RetryConfig;

/// A configuration field that cannot work, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("guard for {service:?}: `{field}` {problem}")]
pub struct GuardConfigError {
    pub service: String,
    /// The field's path, e.g. `breaker.min_calls`.
    pub field: &'static str,
    pub problem: String,
}

impl GuardConfig {
    /// Voice defaults: two 1 s attempts with full jitter (100–400 ms); breaker
    /// opens on 5 failures in a row, 50% of 20 calls (judged from 10), or 80%
    /// slower than 2 s, stays open 5 s doubling up to 60 s, 2 probes;
    /// bulkhead 32; retry budget 20% plus 5/s over 10 s.
    pub fn for_service(service: impl Into<String>) -> Self {
        const MS: Duration = Duration::from_millis(1);
        GuardConfig {
            service: service.into(),
            retry: RetryConfig {
                max_attempts: 2,
                attempt_timeout: 1000 * MS,
                backoff: BackoffConfig {
                    kind: BackoffKind::Full,
                    base: 100 * MS,
                    cap: 400 * MS,
                },
            },
            breaker: BreakerConfig {
                consecutive_failures: 5,
                window_size: 20,
                min_calls: 10,
                failure_rate: 0.5,
                slow_call_threshold: 2000 * MS,
                slow_call_rate: 0.8,
                open_base: Duration::from_secs(5),
                open_cap: Duration::from_secs(60),
                half_open_probes: 2,
            },
            bulkhead_size: 32,
            budget: BudgetConfig {
                retry_ratio: 0.2,
                min_retries_per_sec: 5,
                window: Duration::from_secs(10),
            },
        }
    }

    /// Check every field; the first problem found is returned.
    pub fn validate(&self) -> Result<(), GuardConfigError> {
        let (retry, breaker, budget) = (&self.retry, &self.breaker, &self.budget);
        let rate_ok = |r: f64| r > 0.0 && r <= 1.0;
        let checks: [(bool, &'static str, String); 16] = [
            (
                !self.service.is_empty(),
                "service",
                "must not be empty".into(),
            ),
            (
                retry.max_attempts >= 1,
                "retry.max_attempts",
                "must be at least 1".into(),
            ),
            (
                !retry.attempt_timeout.is_zero(),
                "retry.attempt_timeout",
                "must be positive".into(),
            ),
            (
                retry.backoff.base <= retry.backoff.cap,
                "retry.backoff.base",
                "must not exceed retry.backoff.cap".into(),
            ),
            (
                breaker.consecutive_failures > retry.max_attempts,
                "breaker.consecutive_failures",
                format!(
                    "must exceed retry.max_attempts ({}) so one request cannot open the breaker",
                    retry.max_attempts
                ),
            ),
            (
                breaker.min_calls > retry.max_attempts,
                "breaker.min_calls",
                format!(
                    "must exceed retry.max_attempts ({}) so one request cannot open the breaker",
                    retry.max_attempts
                ),
            ),
            (
                breaker.window_size >= breaker.min_calls,
                "breaker.window_size",
                "must be at least breaker.min_calls".into(),
            ),
            (
                breaker.window_size <= MAX_WINDOW_SIZE,
                "breaker.window_size",
                format!("must be at most {MAX_WINDOW_SIZE}"),
            ),
            (
                rate_ok(breaker.failure_rate),
                "breaker.failure_rate",
                "must be in (0, 1]".into(),
            ),
            (
                rate_ok(breaker.slow_call_rate),
                "breaker.slow_call_rate",
                "must be in (0, 1]".into(),
            ),
            (
                !breaker.open_base.is_zero(),
                "breaker.open_base",
                "must be positive".into(),
            ),
            (
                breaker.open_base <= breaker.open_cap,
                "breaker.open_base",
                "must not exceed breaker.open_cap".into(),
            ),
            (
                breaker.half_open_probes >= 1,
                "breaker.half_open_probes",
                "must be at least 1".into(),
            ),
            (
                self.bulkhead_size >= 1,
                "bulkhead_size",
                "must be at least 1".into(),
            ),
            (
                budget.retry_ratio.is_finite() && budget.retry_ratio >= 0.0,
                "budget.retry_ratio",
                "must be a non-negative number".into(),
            ),
            (
                !budget.window.is_zero(),
                "budget.window",
                "must be positive".into(),
            ),
        ];
        match checks.into_iter().find(|(ok, _, _)| !ok) {
            None => Ok(()),
            Some((_, field, problem)) => Err(GuardConfigError {
                service: self.service.clone(),
                field,
                problem,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_voice_defaults_are_valid() {
        assert_eq!(GuardConfig::for_service("crm").validate(), Ok(()));
    }

    #[test]
    fn a_breaker_that_one_request_could_open_is_rejected() {
        let mut config = GuardConfig::for_service("crm");
        config.breaker.consecutive_failures = 2;
        assert_eq!(
            config.validate().unwrap_err().field,
            "breaker.consecutive_failures"
        );
        let mut config = GuardConfig::for_service("crm");
        config.breaker.min_calls = 2;
        assert_eq!(config.validate().unwrap_err().field, "breaker.min_calls");
    }

    #[test]
    fn a_window_too_large_to_allocate_is_rejected() {
        let mut config = GuardConfig::for_service("crm");
        config.breaker.window_size = MAX_WINDOW_SIZE;
        assert_eq!(config.validate(), Ok(()));
        config.breaker.window_size = 4_000_000_000;
        let error = config.validate().unwrap_err();
        assert_eq!(error.field, "breaker.window_size");
        assert!(error.problem.contains("at most 100000"), "{error}");
    }

    #[test]
    fn the_error_names_the_field_and_what_to_do() {
        let mut config = GuardConfig::for_service("crm");
        config.breaker.failure_rate = 1.5;
        let message = config.validate().unwrap_err().to_string();
        assert_eq!(
            message,
            "guard for \"crm\": `breaker.failure_rate` must be in (0, 1]"
        );
    }
}
