//! The plain configuration sections: LiveKit connection, worker, dev server,
//! session policy, fleet state backend, LLM and logging.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

use super::duration;
use super::secret::CredentialRef;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LiveKitConfig {
    /// `LIVEKIT_URL` overrides.
    pub url: String,
    /// API key id (not secret); `LIVEKIT_API_KEY` overrides.
    pub api_key: String,
    /// Defaults to `{ env = "LIVEKIT_API_SECRET" }`.
    pub api_secret: CredentialRef,
}

impl Default for LiveKitConfig {
    fn default() -> Self {
        LiveKitConfig {
            url: "ws://127.0.0.1:7880".into(),
            api_key: "devkey".into(),
            api_secret: CredentialRef::Env("LIVEKIT_API_SECRET".into()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkerConfig {
    /// `LIVEKIT_AGENT_NAME` overrides; empty means automatic dispatch.
    pub agent_name: String,
    pub max_sessions: u32,
    /// Load at or above which the worker reports itself full (0 < x ≤ 1).
    pub load_full_threshold: f64,
    #[serde(deserialize_with = "duration::required")]
    pub drain_timeout: Duration,
    pub health_addr: SocketAddr,
    #[serde(deserialize_with = "duration::required")]
    pub ping_interval: Duration,
    #[serde(deserialize_with = "duration::required")]
    pub ping_timeout: Duration,
    #[serde(deserialize_with = "duration::required")]
    pub status_interval: Duration,
    /// Reconnect attempts after losing the server; 0 means unlimited.
    pub reconnect_max_retries: u32,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            agent_name: "voxguard".into(),
            max_sessions: 50,
            load_full_threshold: 0.9,
            drain_timeout: Duration::from_secs(60),
            health_addr: SocketAddr::from(([0, 0, 0, 0], 8081)),
            ping_interval: Duration::from_secs(5),
            ping_timeout: Duration::from_secs(15),
            status_interval: Duration::from_millis(2500),
            reconnect_max_retries: 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DevConfig {
    pub addr: SocketAddr,
    /// A `/ws` connection that sends no frame for this long after it opens
    /// is closed, so sockets that say nothing do not hold session slots.
    #[serde(deserialize_with = "duration::required")]
    pub first_frame_timeout: Duration,
    /// `/ws` connections one peer address may hold open at once.
    pub max_connections_per_address: u32,
}

impl Default for DevConfig {
    fn default() -> Self {
        DevConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 8089)),
            first_frame_timeout: Duration::from_secs(30),
            max_connections_per_address: 8,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionConfig {
    /// Failed tool calls in a row before the agent stops trying tools.
    pub max_consecutive_failures: u32,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            max_consecutive_failures: 3,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FleetBackend {
    Memory,
    Redis,
}

/// The `[fleet]` section; [`Config::fleet_settings`](super::Config::fleet_settings)
/// maps it onto [`crate::fleet::FleetConfig`].
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FleetConfig {
    pub backend: FleetBackend,
    /// Required for `redis`.
    pub url: Option<String>,
    /// Prefix of every Redis key, so several fleets can share one server.
    pub key_prefix: String,
    /// Shared breaker state and saved conversations expire after this long
    /// without a write.
    #[serde(deserialize_with = "duration::required")]
    pub state_ttl: Duration,
    /// How often a worker publishes and pulls shared state; ≤ 50ms keeps a
    /// trip's reach across the fleet under 100 ms.
    #[serde(deserialize_with = "duration::required")]
    pub sync_interval: Duration,
    /// The longest any single Redis call may take.
    #[serde(deserialize_with = "duration::required")]
    pub redis_timeout: Duration,
}

impl Default for FleetConfig {
    fn default() -> Self {
        FleetConfig {
            backend: FleetBackend::Memory,
            url: None,
            key_prefix: "voxguard".into(),
            state_ttl: Duration::from_secs(300),
            sync_interval: Duration::from_millis(50),
            redis_timeout: Duration::from_millis(50),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LlmConfig {
    /// Let the model lead the conversation (with the scripted policy as its
    /// fallback). Off: the scripted policy alone.
    pub enabled: bool,
    pub base_url: String,
    pub model: String,
    pub api_key: Option<CredentialRef>,
    /// Timeout profile for LLM calls.
    pub profile: String,
}

impl Default for LlmConfig {
    fn default() -> Self {
        LlmConfig {
            enabled: false,
            base_url: "https://api.openai.com/v1".into(),
            model: "gpt-4o-mini".into(),
            api_key: Some(CredentialRef::Env("OPENAI_API_KEY".into())),
            profile: "chat".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// tracing env-filter directives; `VOXGUARD_LOG` overrides.
    pub filter: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            filter: "info".into(),
        }
    }
}
