//! The configuration file's shape exactly as written, for serde. Converted
//! into the typed `Config` before validation.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::resilience::{BackoffConfig, BackoffKind};

use super::Config;
use super::duration;
use super::profile::{Profile, ProfileOverrides};
use super::secret::CredentialRef;
use super::sections::{
    DevConfig, FleetConfig, LiveKitConfig, LlmConfig, LogConfig, SessionConfig, WorkerConfig,
};
use super::service::{BreakerSettings, DEFAULT_BULKHEAD, RetryBudgetSettings, ServiceConfig};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    #[serde(default)]
    livekit: LiveKitConfig,
    #[serde(default)]
    worker: WorkerConfig,
    #[serde(default)]
    dev: DevConfig,
    #[serde(default)]
    session: SessionConfig,
    #[serde(default)]
    fleet: FleetConfig,
    #[serde(default)]
    llm: LlmConfig,
    #[serde(default)]
    log: LogConfig,
    #[serde(default)]
    speech: super::SpeechConfig,
    #[serde(default)]
    voice: super::VoiceConfig,
    profiles: BTreeMap<String, RawProfile>,
    #[serde(default)]
    services: RawServices,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    #[serde(deserialize_with = "duration::required")]
    budget: Duration,
    #[serde(deserialize_with = "duration::required")]
    attempt_timeout: Duration,
    max_attempts: u32,
    backoff: RawBackoff,
    #[serde(deserialize_with = "duration::required")]
    filler_after: Duration,
    #[serde(deserialize_with = "duration::required")]
    filler_repeat: Duration,
    filler_max: u32,
    #[serde(deserialize_with = "duration::required")]
    slow_call_threshold: Duration,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBackoff {
    kind: BackoffKind,
    #[serde(deserialize_with = "duration::required")]
    base: Duration,
    #[serde(deserialize_with = "duration::required")]
    cap: Duration,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawBackoffOverride {
    kind: Option<BackoffKind>,
    #[serde(default, deserialize_with = "duration::optional")]
    base: Option<Duration>,
    #[serde(default, deserialize_with = "duration::optional")]
    cap: Option<Duration>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawServices {
    amplitude: Option<RawService>,
    salesforce: Option<RawService>,
    hubspot: Option<RawService>,
    chilipiper: Option<RawService>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    profile: String,
    display_name: String,
    base_url: Option<String>,
    credentials: Option<CredentialRef>,
    #[serde(default = "default_bulkhead")]
    bulkhead: u32,
    #[serde(default)]
    breaker: BreakerSettings,
    #[serde(default)]
    retry_budget: RetryBudgetSettings,
    #[serde(default, deserialize_with = "duration::optional")]
    budget: Option<Duration>,
    #[serde(default, deserialize_with = "duration::optional")]
    attempt_timeout: Option<Duration>,
    max_attempts: Option<u32>,
    backoff: Option<RawBackoffOverride>,
    #[serde(default, deserialize_with = "duration::optional")]
    filler_after: Option<Duration>,
    #[serde(default, deserialize_with = "duration::optional")]
    filler_repeat: Option<Duration>,
    filler_max: Option<u32>,
    #[serde(default, deserialize_with = "duration::optional")]
    slow_call_threshold: Option<Duration>,
}

fn default_bulkhead() -> u32 {
    DEFAULT_BULKHEAD
}

impl RawConfig {
    pub(crate) fn into_config(self, origin: &str) -> Config {
        let profiles = self
            .profiles
            .into_iter()
            .map(|(name, raw)| (name.clone(), raw.into_profile(name)))
            .collect();
        let RawServices {
            amplitude,
            salesforce,
            hubspot,
            chilipiper,
        } = self.services;
        let services = [
            ("amplitude", amplitude),
            ("salesforce", salesforce),
            ("hubspot", hubspot),
            ("chilipiper", chilipiper),
        ]
        .into_iter()
        .filter_map(|(name, raw)| raw.map(|raw| (name.to_string(), raw.into_service(name))))
        .collect();
        Config {
            origin: origin.to_string(),
            livekit: self.livekit,
            worker: self.worker,
            dev: self.dev,
            session: self.session,
            fleet: self.fleet,
            llm: self.llm,
            log: self.log,
            speech: self.speech,
            voice: self.voice,
            profiles,
            services,
        }
    }
}

impl RawProfile {
    fn into_profile(self, name: String) -> Profile {
        Profile {
            name,
            budget: self.budget,
            attempt_timeout: self.attempt_timeout,
            max_attempts: self.max_attempts,
            backoff: BackoffConfig {
                kind: self.backoff.kind,
                base: self.backoff.base,
                cap: self.backoff.cap,
            },
            filler_after: self.filler_after,
            filler_repeat: self.filler_repeat,
            filler_max: self.filler_max,
            slow_call_threshold: self.slow_call_threshold,
        }
    }
}

impl RawService {
    fn into_service(self, name: &str) -> ServiceConfig {
        let backoff = self.backoff.unwrap_or_default();
        ServiceConfig {
            name: name.to_string(),
            profile: self.profile,
            overrides: ProfileOverrides {
                budget: self.budget,
                attempt_timeout: self.attempt_timeout,
                max_attempts: self.max_attempts,
                backoff_kind: backoff.kind,
                backoff_base: backoff.base,
                backoff_cap: backoff.cap,
                filler_after: self.filler_after,
                filler_repeat: self.filler_repeat,
                filler_max: self.filler_max,
                slow_call_threshold: self.slow_call_threshold,
            },
            breaker: self.breaker,
            bulkhead_size: self.bulkhead,
            retry_budget: self.retry_budget,
            base_url: self.base_url,
            display_name: self.display_name,
            credentials: self.credentials,
        }
    }
}
