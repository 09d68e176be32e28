//! Capped exponential backoff with full or decorrelated jitter.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackoffKind {
    /// sleep = random(0, min(cap, base × 2^n))
    Full,
    /// sleep = min(cap, random(base, previous × 3))
    Decorrelated,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BackoffConfig {
    pub kind: BackoffKind,
    pub base: Duration,
    pub cap: Duration,
}

impl BackoffConfig {
    /// The longest any single sleep can be. Both kinds are bounded by `cap`.
    pub fn max_sleep(&self) -> Duration {
        self.cap
    }
}
