//! Deadline-aware retries.

use std::time::Duration;

use super::backoff::BackoffConfig;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryConfig {
    pub max_attempts: u32,
    pub attempt_timeout: Duration,
    pub backoff: BackoffConfig,
}
