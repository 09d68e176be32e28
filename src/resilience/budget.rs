//! Retry budget.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BudgetConfig {
    /// Retries allowed as a fraction of recent first attempts (e.g. 0.2).
    pub retry_ratio: f64,
    /// Retries always allowed per second, whatever the traffic.
    pub min_retries_per_sec: u32,
    /// How far back "recent" reaches.
    pub window: Duration,
}
