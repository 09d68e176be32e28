//! The one place that turns a configuration into what sessions run with:
//! one breaker and guard per service (registered so `/worker`, `/metrics` and
//! the dev page see them, shared through the fleet), the CRM clients behind
//! the session's [`Tools`](crate::session::Tools), the model when it leads,
//! and the phrase book. `start`, `dev`, `console` and `simulate` all build
//! their agent here.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::brain::llm::LlmConfig;
use crate::brain::{CrmChoice, ScriptedConfig};
use crate::config::{Config, ConfigError, CredentialStatus, CredentialValue};
use crate::fleet::{Fleet, FleetError};
use crate::recovery::{PhraseBook, ServiceBinding};
use crate::resilience::{
    BreakerRegistry, BreakerState, Clock, Guard, GuardConfigError, metrics_listener,
    tracing_listener,
};
use crate::secret::Secret;
use crate::services::{
    AmplitudeClient, ChiliPiperClient, HttpLayer, HttpSetupError, HubSpotClient, SalesforceClient,
};
use crate::session::{LlmSetup, SessionEnv};
use crate::worker::{ServiceReport, ServiceStatus};

use super::tools::{CalendarSettings, Toolbox};

/// The CRM services voxguard calls, in the order they are wired.
pub const CRM_SERVICES: [&str; 4] = ["amplitude", "salesforce", "hubspot", "chilipiper"];

/// Why the agent could not be built. Each says what to change.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("service `{0}` is missing from the configuration (add a [services.{0}] section)")]
    MissingService(&'static str),
    #[error("the guard for `{service}` is invalid: {source}")]
    Guard {
        service: String,
        #[source]
        source: GuardConfigError,
    },
    #[error("llm.profile `{0}` is not a profile; name one of [profiles.*]")]
    UnknownLlmProfile(String),
    #[error(transparent)]
    Http(#[from] HttpSetupError),
    #[error("the model's HTTP client: {0}")]
    LlmHttp(#[source] reqwest::Error),
    #[error(transparent)]
    Credentials(#[from] ConfigError),
    #[error("[fleet]: {0}")]
    Fleet(#[from] FleetError),
}

/// Where one CRM lives and the credentials it takes.
#[derive(Debug, Clone)]
pub struct CrmAccess {
    pub base_url: String,
    pub credentials: CrmCredentials,
}

/// A CRM's credentials: a token, or an id and secret pair.
#[derive(Debug, Clone)]
pub enum CrmCredentials {
    Token(Secret),
    Pair(Secret, Secret),
}

/// A CRM service left out because it has no credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unconfigured {
    pub service: &'static str,
    /// What to set to configure it: the variable and the form of its value.
    pub fix: String,
}

/// Where the CRM clients point. A service without access is not configured:
/// its tools answer at once that they cannot be used, and the call goes on.
#[derive(Debug, Clone, Default)]
pub struct CrmEndpoints {
    pub access: BTreeMap<&'static str, CrmAccess>,
    pub unconfigured: Vec<Unconfigured>,
    pub calendar: CalendarSettings,
}

impl CrmEndpoints {
    /// The configured endpoints; credentials come from the referenced
    /// environment variables or files, read and checked the way
    /// [`Config::load_for`] checked them for `start`. A service whose
    /// credentials are not set is listed in `unconfigured`; credentials that
    /// are set but unusable (an unreadable file, a pair without its `:`) are
    /// errors.
    pub fn from_config(config: &Config) -> Result<CrmEndpoints, AgentError> {
        let env = |name: &str| std::env::var(name).ok();
        let mut endpoints = CrmEndpoints {
            calendar: CalendarSettings {
                host_user_id: env("VOXGUARD_CALENDAR_HOST").unwrap_or_default(),
                meeting_type_id: env("VOXGUARD_CALENDAR_MEETING_TYPE").unwrap_or_default(),
                window: Duration::from_secs(7 * 86_400),
            },
            ..CrmEndpoints::default()
        };
        for name in CRM_SERVICES {
            let service = config
                .service(name)
                .ok_or(AgentError::MissingService(name))?;
            let credentials = match config.service_credentials(name, &env) {
                CredentialStatus::Ready(CredentialValue::Token(token)) => {
                    CrmCredentials::Token(token)
                }
                CredentialStatus::Ready(CredentialValue::Pair(id, secret)) => {
                    CrmCredentials::Pair(id, secret)
                }
                CredentialStatus::Absent(fix) => {
                    endpoints
                        .unconfigured
                        .push(Unconfigured { service: name, fix });
                    continue;
                }
                CredentialStatus::Unusable(reason) => {
                    return Err(AgentError::Credentials(ConfigError::Credential {
                        field: format!("services.{name}.credentials"),
                        reason,
                    }));
                }
            };
            endpoints.access.insert(
                name,
                CrmAccess {
                    base_url: service.base_url.clone().unwrap_or_default(),
                    credentials,
                },
            );
        }
        Ok(endpoints)
    }
}

/// Everything the calls of one process run with.
#[derive(Clone)]
pub struct Agent {
    pub sessions: SessionEnv,
    /// Every breaker (each CRM service, and `llm` when a model leads).
    pub registry: Arc<BreakerRegistry>,
    /// CRM services left out for want of credentials.
    pub unconfigured: Vec<Unconfigured>,
}

impl Agent {
    /// Build the clients and one guard per service, sharing each breaker and
    /// retry budget through `fleet`. Calls never wait on the fleet: breakers
    /// and budgets are local and the fleet syncs them in the background.
    /// Must be called inside a tokio runtime (the fleet runs a sync task).
    pub fn build(
        config: &Config,
        endpoints: CrmEndpoints,
        seed: u64,
        fleet: Fleet,
    ) -> Result<Agent, AgentError> {
        let http = HttpLayer::new()?;
        let client = |name: &str| endpoints.access.get(name);
        let token = |access: &CrmAccess| match &access.credentials {
            CrmCredentials::Token(token) => token.clone(),
            CrmCredentials::Pair(id, _) => id.clone(),
        };
        let pair = |access: &CrmAccess| match &access.credentials {
            CrmCredentials::Pair(id, secret) => (id.clone(), secret.clone()),
            CrmCredentials::Token(token) => (token.clone(), Secret::new("")),
        };
        let toolbox = Toolbox {
            amplitude: client("amplitude").map(|a| {
                let (key, secret) = pair(a);
                Arc::new(AmplitudeClient::new(http.clone(), &a.base_url, key, secret))
            }),
            salesforce: client("salesforce").map(|a| {
                let (id, secret) = pair(a);
                Arc::new(SalesforceClient::new(http.clone(), &a.base_url, id, secret))
            }),
            hubspot: client("hubspot")
                .map(|a| Arc::new(HubSpotClient::new(http.clone(), &a.base_url, token(a)))),
            chilipiper: client("chilipiper")
                .map(|a| Arc::new(ChiliPiperClient::new(http.clone(), &a.base_url, token(a)))),
            calendar: endpoints.calendar.clone(),
        };
        let registry = Arc::new(BreakerRegistry::new(Clock::tokio()));
        registry.subscribe(tracing_listener());
        registry.subscribe(metrics_listener());
        let mut bindings = BTreeMap::new();
        for (index, name) in CRM_SERVICES.into_iter().enumerate() {
            let service = config
                .service(name)
                .ok_or(AgentError::MissingService(name))?;
            let guard_config = config
                .guard_config(name)
                .ok_or(AgentError::MissingService(name))?;
            let breaker = registry.get_or_register(name, guard_config.breaker.clone());
            fleet.share_breaker(breaker.clone());
            let budget = fleet.retry_budget(name, guard_config.budget);
            let guard: Arc<Guard> = Guard::builder(guard_config)
                .breaker(breaker)
                .retry_budget(budget)
                .seed(seed.wrapping_add(index as u64))
                .build()
                .map_err(|source| AgentError::Guard {
                    service: name.into(),
                    source,
                })?;
            let timing = config
                .ladder_timing(name)
                .ok_or(AgentError::MissingService(name))?;
            bindings.insert(
                name.to_string(),
                ServiceBinding::new(guard, service.display_name.clone(), timing),
            );
        }
        let llm = llm_setup(config, &registry, CrmChoice::Salesforce, seed)?;
        // The model's breaker too, when there is one: a provider outage seen
        // by one worker reaches them all.
        fleet.share_registry(&registry);
        Ok(Agent {
            sessions: SessionEnv {
                llm,
                phrasebook: PhraseBook::embedded(),
                tools: Arc::new(toolbox),
                bindings: Arc::new(bindings),
                handoff_after: config.session.max_consecutive_failures,
                scripted: ScriptedConfig {
                    crm: CrmChoice::Salesforce,
                    seed,
                    ..ScriptedConfig::default()
                },
                fleet,
            },
            registry,
            unconfigured: endpoints.unconfigured,
        })
    }

    /// Build with the fleet the configuration's `[fleet]` asks for.
    pub fn from_config(
        config: &Config,
        endpoints: CrmEndpoints,
        seed: u64,
    ) -> Result<Agent, AgentError> {
        let fleet = Fleet::new(config.fleet_settings())?;
        Agent::build(config, endpoints, seed, fleet)
    }

    /// The services' status for `/worker` and `/metrics`: every breaker in
    /// the registry, and the services left out for want of credentials.
    pub fn service_report(&self) -> ServiceReport {
        self.service_report_with(&[])
    }

    /// [`Agent::service_report`], with `also` left out (speech providers).
    pub fn service_report_with(&self, also: &[Unconfigured]) -> ServiceReport {
        let registry = Arc::clone(&self.registry);
        let mut unconfigured = self.unconfigured.clone();
        unconfigured.extend_from_slice(also);
        Arc::new(move || {
            let mut services: Vec<ServiceStatus> = registry
                .states()
                .into_iter()
                .map(|(name, state)| {
                    let missing = unconfigured.iter().find(|m| m.service == name);
                    ServiceStatus {
                        configured: missing.is_none(),
                        breaker: Some(breaker_name(state)),
                        fix: missing.map(|m| m.fix.clone()),
                        name,
                    }
                })
                .collect();
            // Left out entirely (no breaker was ever registered for them).
            for missing in &unconfigured {
                if !services.iter().any(|s| s.name == missing.service) {
                    services.push(ServiceStatus {
                        name: missing.service.to_string(),
                        configured: false,
                        breaker: None,
                        fix: Some(missing.fix.clone()),
                    });
                }
            }
            services.sort_by(|a, b| a.name.cmp(&b.name));
            services
        })
    }

    /// How the agent names each service aloud (for `{service}` in phrases).
    pub fn display_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .sessions
            .bindings
            .values()
            .map(|b| b.display_name.as_str())
            .collect();
        names.sort();
        names.dedup();
        names
    }
}

/// The model's client and guard from `[llm]`, or `None` when the model is
/// off. The guard's breaker is registered as `llm` in `registry`, so it
/// shows on `/worker`, `/metrics` and the dev page like any service.
fn llm_setup(
    config: &Config,
    registry: &BreakerRegistry,
    crm: CrmChoice,
    seed: u64,
) -> Result<Option<LlmSetup>, AgentError> {
    let llm = &config.llm;
    if !llm.enabled {
        return Ok(None);
    }
    let api_key = match &llm.api_key {
        Some(reference) => Some(reference.resolve("llm.api_key")?),
        None => None,
    };
    let unknown_profile = || AgentError::UnknownLlmProfile(llm.profile.clone());
    let guard_config = config.llm_guard_config().ok_or_else(unknown_profile)?;
    let timing = config.llm_ladder_timing().ok_or_else(unknown_profile)?;
    let breaker = registry.get_or_register("llm", guard_config.breaker.clone());
    let guard = Guard::builder(guard_config.clone())
        .breaker(breaker)
        .seed(seed ^ 0x11a)
        .build()
        .map_err(|source| AgentError::Guard {
            service: "llm".into(),
            source,
        })?;
    let http = reqwest::Client::builder()
        .build()
        .map_err(AgentError::LlmHttp)?;
    let mut brain_config = LlmConfig::new(llm.base_url.clone(), llm.model.clone());
    brain_config.api_key = api_key;
    brain_config.attempt_timeout = guard_config.retry.attempt_timeout;
    brain_config.crm = crm;
    Ok(Some(LlmSetup {
        config: brain_config,
        http,
        guard,
        timing,
    }))
}

/// A breaker state as `/worker`, the dev page and reports name it.
pub fn breaker_name(state: BreakerState) -> &'static str {
    match state {
        BreakerState::Closed => "closed",
        BreakerState::Open => "open",
        BreakerState::HalfOpen => "half_open",
    }
}
