//! `voxguard start`: the production worker, from configuration to a
//! registered LiveKit worker that drains on SIGTERM. Also the worker
//! settings every command derives from `[worker]`.

use std::sync::Arc;

use crate::config::{Config, ConfigError};
use crate::fleet::Fleet;
use crate::secret::Secret;
use crate::worker::{self, Worker, WorkerConfig, WorkerError};

use super::job::SessionJobHandler;
use super::voice::VoiceStack;
use super::wiring::{Agent, AgentError, CrmEndpoints};
use crate::room::rtc::loopback_for_server;

/// Why `voxguard start` stopped or could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Settings that must be fixed before the worker can run (exit code 2).
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("[worker]: {0}")]
    Worker(#[from] worker::ConfigError),
    #[error(transparent)]
    Agent(#[from] AgentError),
    /// The worker ran and failed (exit code 1).
    #[error(transparent)]
    Run(#[from] WorkerError),
}

impl StartError {
    /// Whether the configuration is at fault (rather than the run).
    pub fn is_config(&self) -> bool {
        match self {
            StartError::Config(_) | StartError::Worker(_) => true,
            StartError::Agent(AgentError::Http(_) | AgentError::LlmHttp(_)) => false,
            StartError::Agent(_) => true,
            StartError::Run(WorkerError::Config(_)) => true,
            StartError::Run(_) => false,
        }
    }
}

/// The worker's settings from `[worker]`, for the LiveKit server at `url`.
pub fn worker_config(
    config: &Config,
    url: impl Into<String>,
    api_key: impl Into<String>,
    api_secret: Secret,
) -> WorkerConfig {
    let mut worker = WorkerConfig::new(url, api_key, api_secret.expose());
    let section = &config.worker;
    worker.agent_name = section.agent_name.clone();
    worker.max_sessions = section.max_sessions;
    worker.load_full_threshold = section.load_full_threshold as f32;
    worker.drain_timeout = section.drain_timeout;
    worker.ping_interval = section.ping_interval;
    worker.ping_timeout = section.ping_timeout;
    worker.status_interval = section.status_interval;
    worker.reconnect.max_retries = match section.reconnect_max_retries {
        0 => None,
        n => Some(n),
    };
    worker
}

/// Everything `voxguard start` runs, built and validated but not connected.
pub struct Production {
    pub worker: Worker,
    pub agent: Agent,
    pub fleet: Fleet,
    pub voice: Arc<VoiceStack>,
}

impl Production {
    /// Build the worker the configuration describes: the LiveKit server from
    /// `[livekit]`, the health server, the fleet, every service (those
    /// without credentials are left out), the job handler. `config` comes
    /// from [`Config::load_for`] with [`Command::Start`](crate::config::Command::Start),
    /// whose warnings say which services are left out and how to add them.
    /// Must be called inside a tokio runtime.
    pub fn build(config: &Config, seed: u64) -> Result<Production, StartError> {
        let secret = config.livekit.api_secret.resolve("livekit.api_secret")?;
        let mut worker_config = worker_config(
            config,
            config.livekit.url.clone(),
            config.livekit.api_key.clone(),
            secret,
        );
        worker_config.health_addr = Some(config.worker.health_addr);
        worker_config.validate()?;
        let endpoints = CrmEndpoints::from_config(config)?;
        let fleet = Fleet::new(config.fleet_settings()).map_err(AgentError::Fleet)?;
        let settings = fleet.config();
        tracing::info!(
            backend = ?settings.backend,
            key_prefix = %settings.key_prefix,
            sync_interval = %humantime::format_duration(settings.sync_interval),
            "fleet state backend"
        );
        let agent = Agent::build(config, endpoints, seed, fleet.clone())?;
        let mut voice = VoiceStack::build(
            config,
            &agent.registry,
            &agent.sessions.phrasebook,
            &agent.display_names(),
        )?;
        voice.media.loopback = loopback_for_server(&config.livekit.url);
        let voice = Arc::new(voice);
        voice.log_hearing();
        let handler = Arc::new(SessionJobHandler {
            env: agent.sessions.clone(),
            transports: Default::default(),
            reports: None,
            voice: Some(voice.clone()),
        });
        let worker = Worker::new(worker_config, handler)?;
        let handle = worker.handle();
        handle.attach_fleet(fleet.clone());
        handle.attach_services(agent.service_report_with(&voice.unconfigured));
        let cache = voice.clone();
        handle.attach_report(
            "phrase_cache",
            Arc::new(move || serde_json::to_value(cache.cache_report()).unwrap_or_default()),
        );
        Ok(Production {
            worker,
            agent,
            fleet,
            voice,
        })
    }

    /// Run until a stop signal: the first drains, a second stops at once.
    pub async fn run_until_signal(self) -> Result<(), StartError> {
        worker::run_until_signal(self.worker).await?;
        Ok(())
    }
}
