//! Timeout profiles: how long a tool call may take, how it retries, and when
//! the caller hears a filler. Also the worst-case arithmetic that decides
//! whether a profile fits its budget.

use std::fmt;
use std::time::Duration;

use crate::resilience::{BackoffConfig, BackoffKind, RetryConfig};

use super::duration;

/// A named, validated timeout profile.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub name: String,
    /// Hard deadline for the whole call, retries included.
    pub budget: Duration,
    pub attempt_timeout: Duration,
    /// Attempts in total; 1 means no retry.
    pub max_attempts: u32,
    pub backoff: BackoffConfig,
    /// No outcome after this long: speak the first filler.
    pub filler_after: Duration,
    /// Then a "still working" phrase this often...
    pub filler_repeat: Duration,
    /// ...up to this many fillers in total, the first one included.
    pub filler_max: u32,
    /// A successful attempt slower than this counts as slow for the breaker.
    pub slow_call_threshold: Duration,
}

/// The longest a call under a profile can take: every attempt runs to its
/// timeout and every backoff sleep lasts its cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorstCase {
    pub attempts: u32,
    pub attempt_timeout: Duration,
    pub sleeps: u32,
    pub sleep_cap: Duration,
    pub total: Duration,
}

impl fmt::Display for WorstCase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let attempts = if self.attempts == 1 {
            "attempt"
        } else {
            "attempts"
        };
        let sleeps = if self.sleeps == 1 { "sleep" } else { "sleeps" };
        write!(
            f,
            "{} {attempts} × {} + {} backoff {sleeps} ≤ {} = {}",
            self.attempts,
            duration::format(self.attempt_timeout),
            self.sleeps,
            duration::format(self.sleep_cap),
            duration::format(self.total)
        )
    }
}

impl Profile {
    pub fn worst_case(&self) -> WorstCase {
        let sleeps = self.max_attempts.saturating_sub(1);
        let sleep_cap = self.backoff.max_sleep();
        WorstCase {
            attempts: self.max_attempts,
            attempt_timeout: self.attempt_timeout,
            sleeps,
            sleep_cap,
            total: self
                .attempt_timeout
                .saturating_mul(self.max_attempts)
                .saturating_add(sleep_cap.saturating_mul(sleeps)),
        }
    }

    pub fn retry_config(&self) -> RetryConfig {
        RetryConfig {
            max_attempts: self.max_attempts,
            attempt_timeout: self.attempt_timeout,
            backoff: self.backoff,
        }
    }

    pub fn ladder(&self) -> crate::recovery::LadderTiming {
        crate::recovery::LadderTiming {
            filler_after: self.filler_after,
            filler_repeat: self.filler_repeat,
            filler_max: self.filler_max,
            budget: self.budget,
        }
    }
}

/// A service's changes to its profile; `None` keeps the profile's value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProfileOverrides {
    pub budget: Option<Duration>,
    pub attempt_timeout: Option<Duration>,
    pub max_attempts: Option<u32>,
    pub backoff_kind: Option<BackoffKind>,
    pub backoff_base: Option<Duration>,
    pub backoff_cap: Option<Duration>,
    pub filler_after: Option<Duration>,
    pub filler_repeat: Option<Duration>,
    pub filler_max: Option<u32>,
    pub slow_call_threshold: Option<Duration>,
}

impl ProfileOverrides {
    /// The profile with these overrides applied; applying twice changes nothing.
    pub fn apply(&self, profile: &Profile) -> Profile {
        Profile {
            name: profile.name.clone(),
            budget: self.budget.unwrap_or(profile.budget),
            attempt_timeout: self.attempt_timeout.unwrap_or(profile.attempt_timeout),
            max_attempts: self.max_attempts.unwrap_or(profile.max_attempts),
            backoff: BackoffConfig {
                kind: self.backoff_kind.unwrap_or(profile.backoff.kind),
                base: self.backoff_base.unwrap_or(profile.backoff.base),
                cap: self.backoff_cap.unwrap_or(profile.backoff.cap),
            },
            filler_after: self.filler_after.unwrap_or(profile.filler_after),
            filler_repeat: self.filler_repeat.unwrap_or(profile.filler_repeat),
            filler_max: self.filler_max.unwrap_or(profile.filler_max),
            slow_call_threshold: self
                .slow_call_threshold
                .unwrap_or(profile.slow_call_threshold),
        }
    }

    /// Field names (as written in the config) this override set touches.
    pub fn fields(&self) -> Vec<&'static str> {
        let present = [
            ("budget", self.budget.is_some()),
            ("attempt_timeout", self.attempt_timeout.is_some()),
            ("max_attempts", self.max_attempts.is_some()),
            ("backoff.kind", self.backoff_kind.is_some()),
            ("backoff.base", self.backoff_base.is_some()),
            ("backoff.cap", self.backoff_cap.is_some()),
            ("filler_after", self.filler_after.is_some()),
            ("filler_repeat", self.filler_repeat.is_some()),
            ("filler_max", self.filler_max.is_some()),
            ("slow_call_threshold", self.slow_call_threshold.is_some()),
        ];
        present
            .into_iter()
            .filter(|(_, set)| *set)
            .map(|(name, _)| name)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn voice() -> Profile {
        Profile {
            name: "voice".into(),
            budget: Duration::from_millis(3200),
            attempt_timeout: Duration::from_millis(1200),
            max_attempts: 2,
            backoff: BackoffConfig {
                kind: BackoffKind::Full,
                base: Duration::from_millis(100),
                cap: Duration::from_millis(400),
            },
            filler_after: Duration::from_millis(600),
            filler_repeat: Duration::from_millis(1500),
            filler_max: 2,
            slow_call_threshold: Duration::from_secs(1),
        }
    }

    #[test]
    fn worst_case_counts_every_timeout_and_every_capped_sleep() {
        let worst = voice().worst_case();
        assert_eq!(worst.total, Duration::from_millis(2800));
        assert_eq!(
            worst.to_string(),
            "2 attempts × 1.2s + 1 backoff sleep ≤ 400ms = 2.8s"
        );
    }

    #[test]
    fn fillers_stop_at_filler_max_and_at_the_budget() {
        let ladder = voice().ladder();
        let ms = Duration::from_millis;
        assert_eq!(ladder.filler_times(ms(10_000)), vec![ms(600), ms(2100)]);
        assert_eq!(ladder.filler_times(ms(2000)), vec![ms(600)]);
        assert!(
            crate::recovery::LadderTiming {
                filler_max: 0,
                ..ladder
            }
            .filler_times(ms(10_000))
            .is_empty()
        );
    }

    #[test]
    fn overrides_replace_only_the_fields_they_name() {
        let overrides = ProfileOverrides {
            backoff_cap: Some(Duration::from_millis(300)),
            ..Default::default()
        };
        let resolved = overrides.apply(&voice());
        assert_eq!(resolved.backoff.cap, Duration::from_millis(300));
        assert_eq!(resolved.backoff.base, Duration::from_millis(100));
        assert_eq!(overrides.apply(&resolved), resolved);
        assert_eq!(overrides.fields(), vec!["backoff.cap"]);
    }
}
