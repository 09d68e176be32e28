//! voxguard's configuration: the TOML file (embedded default in
//! `config/voxguard.toml`), environment overrides, timeout profiles and
//! per-service settings, validated into typed structs whose errors name
//! file, line and field.
//!
//! ```
//! let config = voxguard::config::Config::embedded_default().unwrap();
//! let voice = config.resolved_profile("hubspot").unwrap();
//! assert!(voice.worst_case().total <= voice.budget);
//! let guard = config.guard_config("hubspot").unwrap();
//! assert_eq!(guard.retry.max_attempts, voice.max_attempts);
//! ```

mod command;
mod credentials;
pub mod duration;
mod env;
mod error;
mod profile;
pub mod profile_cli;
mod raw;
mod secret;
mod sections;
mod service;
mod spans;
mod speech;
mod validate;
mod voice;

use std::collections::BTreeMap;
use std::path::Path;

use crate::resilience::GuardConfig;

pub use command::{Checked, Command};
pub use credentials::{CredentialForm, CredentialStatus, CredentialUse, CredentialValue, Need};
pub use env::ENV_OVERRIDES;
pub use error::{ConfigError, Problem};
pub use profile::{Profile, ProfileOverrides, WorstCase};
pub use secret::{CredentialRef, Secret};
pub use sections::{
    DevConfig, FleetBackend, FleetConfig, LiveKitConfig, LlmConfig, LogConfig, SessionConfig,
    WorkerConfig,
};
pub use service::{
    BreakerSettings, DEFAULT_BULKHEAD, RetryBudgetSettings, SERVICE_NAMES, ServiceConfig,
};
pub use speech::{
    AbsentProvider, CartesiaSection, DeepgramSection, EspeakSection, OpenAiSttSection,
    OpenAiTtsSection, SPEECH_ENV_OVERRIDES, STT_PROVIDERS, SpeechConfig, TTS_PROVIDERS,
};
pub use voice::VoiceConfig;

/// The largest configuration file read; the shipped one is about 20 KiB.
pub const MAX_CONFIG_BYTES: u64 = 4 * 1024 * 1024;

/// Reads a regular file of at most [`MAX_CONFIG_BYTES`]: a FIFO, a device
/// or an endless file is refused instead of blocking or filling memory.
fn read_bounded(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    // Checked before opening: opening a FIFO waits for a writer.
    if !std::fs::metadata(path)?.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file (a pipe or a device?); give the path of a TOML file",
        ));
    }
    let file = std::fs::File::open(path)?;
    let mut text = String::new();
    file.take(MAX_CONFIG_BYTES + 1).read_to_string(&mut text)?;
    if text.len() as u64 > MAX_CONFIG_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "larger than {} MiB; a configuration is a few KiB of TOML",
                MAX_CONFIG_BYTES / (1024 * 1024)
            ),
        ));
    }
    Ok(text)
}

/// The text at `path` (or the embedded default) and how errors name it.
fn read_source(path: Option<&Path>) -> Result<(String, String), ConfigError> {
    match path {
        None => Ok((DEFAULT_TOML.to_string(), DEFAULT_ORIGIN.to_string())),
        Some(path) => {
            let origin = path.display().to_string();
            match read_bounded(path) {
                Ok(text) => Ok((text, origin)),
                Err(source) => Err(ConfigError::Read {
                    path: origin,
                    source,
                }),
            }
        }
    }
}

/// Parses `text`, applies overrides from `env`, validates the file and,
/// with a `command`, what that command needs; every problem at once.
fn parse(
    text: &str,
    origin: &str,
    env: &dyn Fn(&str) -> Option<String>,
    command: Option<Command>,
) -> Result<Checked, ConfigError> {
    let spans = spans::SpanIndex::parse(text).map_err(|e| {
        let line = e.span().map(|s| spans::line_at(text, s.start));
        ConfigError::Invalid(vec![Problem {
            origin: origin.to_string(),
            line,
            field: String::new(),
            message: format!("invalid TOML: {}", e.message()),
        }])
    })?;
    let raw: raw::RawConfig = toml::from_str(text).map_err(|e| {
        let offset = e.span().map(|s| s.start);
        ConfigError::Invalid(vec![Problem {
            origin: origin.to_string(),
            line: offset.map(|o| spans.line_at(o)),
            field: offset
                .and_then(|o| spans.path_at(o))
                .unwrap_or_default()
                .to_string(),
            message: e.message().to_string(),
        }])
    })?;
    let mut config = raw.into_config(origin);
    let (problems, mut env_fields) = env::apply(&mut config, env);
    speech::apply_env(&mut config.speech, env, &mut env_fields);
    let mut report = validate::Report {
        origin,
        spans: &spans,
        env_fields: &env_fields,
        problems,
        warnings: Vec::new(),
    };
    validate::validate(&config, &mut report);
    if let Some(command) = command {
        command::check(&config, command, env, &mut report);
    }
    if report.problems.is_empty() {
        Ok(Checked {
            config,
            warnings: report.warnings,
        })
    } else {
        Err(ConfigError::Invalid(report.problems))
    }
}

/// The default configuration, compiled in.
pub const DEFAULT_TOML: &str = include_str!("../../config/voxguard.toml");
/// How errors in the embedded default name their file.
pub const DEFAULT_ORIGIN: &str = "config/voxguard.toml (embedded)";

/// A complete, validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Where it was loaded from (a path, or [`DEFAULT_ORIGIN`]).
    pub origin: String,
    pub livekit: LiveKitConfig,
    pub worker: WorkerConfig,
    pub dev: DevConfig,
    pub session: SessionConfig,
    pub fleet: FleetConfig,
    pub llm: LlmConfig,
    pub log: LogConfig,
    pub speech: SpeechConfig,
    pub voice: VoiceConfig,
    pub profiles: BTreeMap<String, Profile>,
    pub services: BTreeMap<String, ServiceConfig>,
}

impl Config {
    /// Loads `path` (or the embedded default when `None`) and applies the
    /// process environment: the file's own validation, for reading its
    /// profiles (`profile explain`, `profile tune`). Commands that run the
    /// agent call [`Config::load_for`].
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let env = |name: &str| std::env::var(name).ok();
        let (text, origin) = read_source(path)?;
        Config::from_toml_with_env(&text, &origin, &env)
    }

    /// The embedded default, without environment overrides.
    pub fn embedded_default() -> Result<Config, ConfigError> {
        Config::from_toml(DEFAULT_TOML, DEFAULT_ORIGIN)
    }

    /// Parses and validates `text`, without environment overrides. `origin`
    /// names the file in error messages.
    pub fn from_toml(text: &str, origin: &str) -> Result<Config, ConfigError> {
        Config::from_toml_with_env(text, origin, &|_| None)
    }

    /// Parses `text`, applies overrides from `env`, validates.
    pub fn from_toml_with_env(
        text: &str,
        origin: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        parse(text, origin, env, None).map(|checked| checked.config)
    }

    pub fn profile(&self, name: &str) -> Option<&Profile> {
        self.profiles.get(name)
    }

    pub fn service(&self, name: &str) -> Option<&ServiceConfig> {
        self.services.get(name)
    }

    /// The profile `service` runs under, with its overrides applied.
    /// `None` when no such service is configured.
    pub fn resolved_profile(&self, service: &str) -> Option<Profile> {
        let service = self.services.get(service)?;
        Some(service.resolve(self.profiles.get(&service.profile)?))
    }

    /// The resilience engine's configuration for `service`.
    pub fn guard_config(&self, service: &str) -> Option<GuardConfig> {
        let profile = self.resolved_profile(service)?;
        Some(self.services.get(service)?.guard_config(&profile))
    }

    /// Guard configurations for every configured service, by name.
    pub fn guard_configs(&self) -> Vec<GuardConfig> {
        self.services
            .keys()
            .filter_map(|name| self.guard_config(name))
            .collect()
    }

    /// The latency ladder timing for tool calls to `service`.
    pub fn ladder_timing(&self, service: &str) -> Option<crate::recovery::LadderTiming> {
        self.resolved_profile(service).map(|p| p.ladder())
    }

    /// The resilience engine's configuration for model requests: the `llm`
    /// breaker with the service defaults, retries and slow-call threshold
    /// from `llm.profile`, and room for every session to think at once.
    pub fn llm_guard_config(&self) -> Option<GuardConfig> {
        let profile = self.profiles.get(&self.llm.profile)?;
        let mut guard = GuardConfig::for_service("llm");
        guard.retry = profile.retry_config();
        guard.breaker.slow_call_threshold = profile.slow_call_threshold;
        guard.bulkhead_size = self.worker.max_sessions.max(1);
        Some(guard)
    }

    /// The latency ladder timing while the model thinks.
    pub fn llm_ladder_timing(&self) -> Option<crate::recovery::LadderTiming> {
        self.profiles.get(&self.llm.profile).map(|p| p.ladder())
    }

    /// The fleet's settings from `[fleet]`: the keys a deployment sets, with
    /// the fleet's own defaults for the rest.
    pub fn fleet_settings(&self) -> crate::fleet::FleetConfig {
        let section = &self.fleet;
        let defaults = crate::fleet::FleetConfig::default();
        crate::fleet::FleetConfig {
            backend: match section.backend {
                FleetBackend::Memory => crate::fleet::BackendKind::Memory,
                FleetBackend::Redis => crate::fleet::BackendKind::Redis,
            },
            url: section.url.clone().unwrap_or(defaults.url),
            key_prefix: section.key_prefix.clone(),
            state_ttl: section.state_ttl,
            sync_interval: section.sync_interval,
            redis_timeout: section.redis_timeout,
            ..defaults
        }
    }
}
