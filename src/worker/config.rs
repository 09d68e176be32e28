//! What the worker needs to know to talk to LiveKit: where, as whom, how many
//! sessions it may carry, and the timings of its liveness and reconnect loops.
//! The config layer maps the TOML file and the environment onto [`WorkerConfig`].

use std::net::SocketAddr;
use std::time::Duration;

pub use crate::secret::Secret;

/// How reconnect attempts are spaced: the first retry comes after `first`,
/// later ones grow exponentially from `base` up to `cap`, each with full jitter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReconnectPolicy {
    /// `None` retries forever (the default: a production worker never gives up).
    pub max_retries: Option<u32>,
    pub first: Duration,
    pub base: Duration,
    pub cap: Duration,
    /// Seed for the jitter; `None` draws one at start.
    pub seed: Option<u64>,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        Self {
            max_retries: None,
            first: Duration::from_millis(100),
            base: Duration::from_millis(500),
            cap: Duration::from_secs(30),
            seed: None,
        }
    }
}

/// Everything [`crate::worker::Worker`] reads. Build it with
/// [`WorkerConfig::new`] and adjust fields; the defaults suit production.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerConfig {
    /// `LIVEKIT_URL`: `http(s)://` or `ws(s)://`; the worker dials `<url>/agent`.
    pub url: String,
    /// `LIVEKIT_API_KEY`.
    pub api_key: String,
    /// `LIVEKIT_API_SECRET`.
    pub api_secret: Secret,
    /// `LIVEKIT_AGENT_NAME`: empty means automatic dispatch to every room.
    pub agent_name: String,
    /// The worker's own version, reported on registration.
    pub version: String,
    /// Concurrent sessions this worker accepts.
    pub max_sessions: u32,
    /// Load (active / max_sessions) at which the worker reports FULL.
    pub load_full_threshold: f32,
    /// How long running sessions may continue after a drain starts.
    pub drain_timeout: Duration,
    /// Application-level ping interval on the worker socket.
    pub ping_interval: Duration,
    /// With no message at all from the server for this long, the link is dead.
    pub ping_timeout: Duration,
    /// How often the worker reports its load.
    pub status_interval: Duration,
    /// How long an accepted job may wait for its assignment before the slot is freed.
    pub assignment_timeout: Duration,
    /// How long a session gets to end after its cancel signal before it is aborted.
    pub session_stop_grace: Duration,
    /// Largest server frame accepted; larger frames end the connection.
    pub max_frame_bytes: usize,
    pub reconnect: ReconnectPolicy,
    /// Where the health server listens; `None` runs no health server.
    pub health_addr: Option<SocketAddr>,
}

impl WorkerConfig {
    pub fn new(
        url: impl Into<String>,
        api_key: impl Into<String>,
        api_secret: impl Into<String>,
    ) -> Self {
        Self {
            url: url.into(),
            api_key: api_key.into(),
            api_secret: Secret::new(api_secret),
            agent_name: String::new(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            max_sessions: 8,
            load_full_threshold: 1.0,
            drain_timeout: Duration::from_secs(60),
            ping_interval: Duration::from_secs(5),
            ping_timeout: Duration::from_secs(15),
            status_interval: Duration::from_millis(2500),
            assignment_timeout: Duration::from_secs(10),
            session_stop_grace: Duration::from_secs(5),
            max_frame_bytes: 1 << 20,
            reconnect: ReconnectPolicy::default(),
            health_addr: None,
        }
    }

    /// Reads `LIVEKIT_URL`, `LIVEKIT_API_KEY`, `LIVEKIT_API_SECRET` and the
    /// optional `LIVEKIT_AGENT_NAME`; names the first missing variable.
    pub fn from_env() -> Result<Self, ConfigError> {
        let var =
            |name: &'static str| std::env::var(name).map_err(|_| ConfigError::MissingEnv(name));
        let mut config = Self::new(
            var("LIVEKIT_URL")?,
            var("LIVEKIT_API_KEY")?,
            var("LIVEKIT_API_SECRET")?,
        );
        if let Ok(name) = std::env::var("LIVEKIT_AGENT_NAME") {
            config.agent_name = name;
        }
        config.validate()?;
        Ok(config)
    }

    /// Rejects settings the worker cannot run with, naming the field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.api_key.is_empty() {
            return Err(ConfigError::Invalid("api_key", "must not be empty".into()));
        }
        if self.api_secret.is_empty() {
            return Err(ConfigError::Invalid(
                "api_secret",
                "must not be empty".into(),
            ));
        }
        agent_endpoint(&self.url).map_err(|e| ConfigError::Invalid("url", e))?;
        if self.max_sessions == 0 {
            return Err(ConfigError::Invalid(
                "max_sessions",
                "must be at least 1".into(),
            ));
        }
        if !(self.load_full_threshold > 0.0 && self.load_full_threshold <= 1.0) {
            return Err(ConfigError::Invalid(
                "load_full_threshold",
                "must be in (0, 1]".into(),
            ));
        }
        for (field, value) in [
            ("ping_interval", self.ping_interval),
            ("ping_timeout", self.ping_timeout),
            ("status_interval", self.status_interval),
        ] {
            if value.is_zero() {
                return Err(ConfigError::Invalid(
                    field,
                    "must be greater than zero".into(),
                ));
            }
        }
        if self.ping_timeout <= self.ping_interval {
            return Err(ConfigError::Invalid(
                "ping_timeout",
                "must be longer than ping_interval".into(),
            ));
        }
        Ok(())
    }

    pub fn agent_endpoint(&self) -> Result<String, String> {
        agent_endpoint(&self.url)
    }
}

/// `<url>/agent` with `http` → `ws` and `https` → `wss`.
pub fn agent_endpoint(url: &str) -> Result<String, String> {
    crate::room::websocket_base(url).map(|base| format!("{base}/agent"))
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is not set")]
    MissingEnv(&'static str),
    #[error("worker config field `{0}`: {1}")]
    Invalid(&'static str, String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_endpoint_maps_http_schemes_to_websocket_schemes() {
        assert_eq!(
            agent_endpoint("http://lk:7880").unwrap(),
            "ws://lk:7880/agent"
        );
        assert_eq!(
            agent_endpoint("https://x.livekit.cloud/").unwrap(),
            "wss://x.livekit.cloud/agent"
        );
        assert_eq!(agent_endpoint("wss://x").unwrap(), "wss://x/agent");
        assert!(agent_endpoint("ftp://x").is_err());
        assert!(agent_endpoint("no-scheme").is_err());
    }

    #[test]
    fn debug_output_never_shows_the_api_secret() {
        let config = WorkerConfig::new("ws://lk", "key", "very-secret-value");
        let shown = format!("{config:?}");
        assert!(!shown.contains("very-secret-value"));
        assert!(shown.contains("Secret(***)"));
    }

    #[test]
    fn validate_names_the_offending_field() {
        let mut config = WorkerConfig::new("ws://lk", "key", "secret");
        config.max_sessions = 0;
        assert_eq!(
            config.validate(),
            Err(ConfigError::Invalid(
                "max_sessions",
                "must be at least 1".into()
            ))
        );
        config.max_sessions = 1;
        config.ping_timeout = config.ping_interval;
        assert!(matches!(
            config.validate(),
            Err(ConfigError::Invalid("ping_timeout", _))
        ));
    }
}
