//! The fleet's settings, errors and health report: plain data the config
//! layer, `/worker` and `/metrics` read.

use std::time::Duration;

use crate::resilience::BreakerState;

/// Which store holds the fleet's shared state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// In this process only (dev, console, simulate).
    #[default]
    Memory,
    Redis,
}

/// The fleet's settings (the `[fleet]` section of the config maps onto this).
#[derive(Debug, Clone, PartialEq)]
pub struct FleetConfig {
    pub backend: BackendKind,
    /// Redis URL, e.g. `redis://127.0.0.1:6379`.
    pub url: String,
    /// Prefix of every Redis key, so fleets (and tests) can share a server.
    pub key_prefix: String,
    /// Shared breaker, window and budget keys expire after this long unused.
    pub state_ttl: Duration,
    /// How often the sync task runs; keep ≤ 50 ms for a < 100 ms open bound.
    pub sync_interval: Duration,
    /// Limit of any single Redis call, including those on a caller's turn.
    pub redis_timeout: Duration,
    /// The time window of the fleet's summed breaker counts.
    pub window: Duration,
    /// How long a worker holds the half-open probe lease.
    pub probe_lease: Duration,
    /// Session writes kept while Redis is out of reach.
    pub session_queue: usize,
}

impl Default for FleetConfig {
    fn default() -> Self {
        FleetConfig {
            backend: BackendKind::Memory,
            url: "redis://127.0.0.1:6379".into(),
            key_prefix: "voxguard".into(),
            state_ttl: Duration::from_secs(600),
            sync_interval: Duration::from_millis(50),
            redis_timeout: Duration::from_millis(50),
            window: Duration::from_secs(10),
            probe_lease: Duration::from_secs(2),
            session_queue: 256,
        }
    }
}

impl FleetConfig {
    /// The defaults, backed by Redis at `url`.
    pub fn redis(url: impl Into<String>) -> Self {
        FleetConfig {
            backend: BackendKind::Redis,
            url: url.into(),
            ..FleetConfig::default()
        }
    }

    /// Refuse settings that cannot keep the fleet's promises, naming the field.
    pub fn validate(&self) -> Result<(), FleetConfigError> {
        let refuse = |field: &'static str, problem: &str| {
            Err(FleetConfigError {
                field,
                problem: problem.to_string(),
            })
        };
        const MS: Duration = Duration::from_millis(1);
        if self.sync_interval.is_zero() || self.sync_interval > 1000 * MS {
            return refuse(
                "sync_interval",
                "must be between 1ms and 1s (≤ 50ms for a < 100 ms open bound)",
            );
        }
        if self.redis_timeout.is_zero() || self.redis_timeout > 1000 * MS {
            return refuse(
                "redis_timeout",
                "must be between 1ms and 1s: it bounds a caller's turn",
            );
        }
        if self.key_prefix.is_empty() {
            return refuse("key_prefix", "must not be empty");
        }
        if self.window < 100 * MS {
            return refuse("window", "must be at least 100ms");
        }
        if self.probe_lease.is_zero() {
            return refuse("probe_lease", "must be positive");
        }
        if self.state_ttl < self.window {
            return refuse("state_ttl", "must be at least `window`");
        }
        if self.backend == BackendKind::Redis
            && let Err(error) = redis::Client::open(self.url.as_str())
        {
            return refuse("url", &format!("is not a Redis URL ({error})"));
        }
        Ok(())
    }
}

/// A `[fleet]` setting that cannot work, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("fleet: `{field}` {problem}")]
pub struct FleetConfigError {
    pub field: &'static str,
    pub problem: String,
}

/// Why a backend call did not complete. The fleet handles these itself
/// (falling back to local state); they surface only in health and logs.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FleetError {
    #[error("invalid Redis URL: {0}")]
    BadUrl(String),
    #[error("Redis unavailable (its circuit breaker is open)")]
    Unavailable,
    #[error("Redis did not answer within {}", humantime::format_duration(*.0))]
    Timeout(Duration),
    #[error("Redis error: {0}")]
    Redis(String),
    #[error("unexpected Redis reply: {0}")]
    Protocol(String),
    /// The sync reached Redis only after its deadline and changed nothing
    /// (this worker's estimate of Redis time was off; the next round has a
    /// fresh one).
    #[error("Redis ran the sync after its deadline; it changed nothing")]
    Late,
}

impl From<redis::RedisError> for FleetError {
    fn from(error: redis::RedisError) -> Self {
        FleetError::Redis(error.to_string())
    }
}

/// The fleet layer's health, for `/worker` and `/metrics`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FleetHealth {
    pub backend: BackendKind,
    /// The last sync round reached the backend.
    pub connected: bool,
    /// The breaker guarding Redis (always closed for the memory backend).
    pub redis_breaker: BreakerState,
    /// Since the last successful sync round; `None` before the first.
    pub last_sync_age_ms: Option<u64>,
    /// Failed backend calls since start.
    pub errors: u64,
    /// Session writes waiting for Redis.
    pub queued_sessions: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid_and_a_slow_sync_is_refused_by_name() {
        assert_eq!(FleetConfig::default().validate(), Ok(()));
        assert_eq!(
            FleetConfig::redis("redis://10.0.0.5:6379").validate(),
            Ok(())
        );
        let slow = FleetConfig {
            sync_interval: Duration::from_secs(5),
            ..FleetConfig::default()
        };
        assert_eq!(slow.validate().unwrap_err().field, "sync_interval");
        assert_eq!(
            FleetConfig::redis("http://nope")
                .validate()
                .unwrap_err()
                .field,
            "url"
        );
    }
}
