//! What every session of a process shares: the phrase book, the CRM
//! clients, one guard per service (so breakers see all sessions' calls), the
//! fleet (breakers and retry budgets shared with other workers, saved
//! conversations) and the session settings. Built once from the configuration.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::brain::{CrmChoice, ScriptedConfig};
use crate::config::Config;
use crate::fleet::Fleet;
use crate::recovery::{Bindings, LadderTiming, PhraseBook, ServiceBinding};
use crate::resilience::{BreakerRegistry, Clock, Guard, metrics_listener, tracing_listener};
use crate::services::sim::CrmSimulator;
use crate::services::{
    AmplitudeClient, ChiliPiperClient, HttpLayer, HubSpotClient, SalesforceClient, Secret,
};

use super::brain::LlmSetup;
use super::tools::{CalendarSettings, Toolbox};

/// Shared by all sessions of one process.
#[derive(Clone)]
pub struct SessionEnv {
    pub phrasebook: Arc<PhraseBook>,
    pub toolbox: Toolbox,
    pub bindings: Bindings,
    pub registry: Arc<BreakerRegistry>,
    pub handoff_after: u32,
    pub scripted: ScriptedConfig,
    /// Set when `[llm] enabled`: the model leads, the script is its fallback.
    pub llm: Option<LlmSetup>,
    /// Every service's breaker and retry budget are shared through it;
    /// sessions save their state to it after each turn.
    pub fleet: Fleet,
}

/// Why the session environment could not be built.
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    #[error("service `{0}` is missing from the configuration")]
    MissingService(&'static str),
    #[error("{0}")]
    Guard(String),
    #[error("HTTP client: {0}")]
    Http(String),
    #[error("credentials: {0}")]
    Credentials(String),
    #[error("fleet: {0}")]
    Fleet(String),
}

/// Where the CRM clients point and with what credentials.
pub struct CrmEndpoints {
    pub amplitude: (String, Secret, Secret),
    pub salesforce: (String, Secret, Secret),
    pub hubspot: (String, Secret),
    pub chilipiper: (String, Secret),
    pub calendar: CalendarSettings,
}

impl CrmEndpoints {
    /// The embedded CRM simulator's endpoints and credentials.
    pub fn simulator(sim: &CrmSimulator) -> CrmEndpoints {
        let creds = sim.credentials().clone();
        let fixtures = sim.fixtures();
        CrmEndpoints {
            amplitude: (
                sim.base_url(),
                creds.amplitude_api_key,
                creds.amplitude_secret_key,
            ),
            salesforce: (
                sim.base_url(),
                creds.salesforce_client_id,
                creds.salesforce_client_secret,
            ),
            hubspot: (sim.base_url(), creds.hubspot_token),
            chilipiper: (sim.chilipiper_base_url(), creds.chilipiper_api_key),
            calendar: CalendarSettings {
                host_user_id: fixtures.hosts[0].user_id.clone(),
                meeting_type_id: fixtures.meeting_type_id.clone(),
                window: Duration::from_secs(7 * 86_400),
            },
        }
    }

    /// The configured endpoints; credentials come from the referenced env
    /// vars or files. Amplitude and Salesforce take `id:secret` pairs.
    pub fn from_config(config: &Config) -> Result<CrmEndpoints, EnvError> {
        let service =
            |name: &'static str| config.service(name).ok_or(EnvError::MissingService(name));
        let secret = |name: &'static str| -> Result<Secret, EnvError> {
            let svc = service(name)?;
            match &svc.credentials {
                Some(reference) => reference
                    .resolve(&format!("services.{name}.credentials"))
                    .map(|s| Secret::new(s.expose()))
                    .map_err(|e| EnvError::Credentials(e.to_string())),
                None => Err(EnvError::Credentials(format!(
                    "services.{name}.credentials is not set"
                ))),
            }
        };
        let pair = |name: &'static str| -> Result<(Secret, Secret), EnvError> {
            let joined = secret(name)?;
            let (id, key) = joined.expose().split_once(':').ok_or_else(|| {
                EnvError::Credentials(format!("services.{name}.credentials must hold `id:secret`"))
            })?;
            Ok((Secret::new(id), Secret::new(key)))
        };
        let base = |name: &'static str| -> Result<String, EnvError> {
            Ok(service(name)?.base_url.clone().unwrap_or_default())
        };
        let (amp_key, amp_secret) = pair("amplitude")?;
        let (sf_id, sf_secret) = pair("salesforce")?;
        Ok(CrmEndpoints {
            amplitude: (base("amplitude")?, amp_key, amp_secret),
            salesforce: (base("salesforce")?, sf_id, sf_secret),
            hubspot: (base("hubspot")?, secret("hubspot")?),
            chilipiper: (base("chilipiper")?, secret("chilipiper")?),
            calendar: CalendarSettings {
                host_user_id: std::env::var("VOXGUARD_CALENDAR_HOST").unwrap_or_default(),
                meeting_type_id: std::env::var("VOXGUARD_CALENDAR_MEETING_TYPE")
                    .unwrap_or_default(),
                window: Duration::from_secs(7 * 86_400),
            },
        })
    }
}

impl SessionEnv {
    /// Build the clients and one guard per configured service, sharing them
    /// through the fleet the config's `[fleet]` section asks for. Must be
    /// called inside a tokio runtime (the fleet runs a sync task).
    pub fn build(
        config: &Config,
        endpoints: CrmEndpoints,
        seed: u64,
    ) -> Result<SessionEnv, EnvError> {
        let fleet =
            Fleet::new(config.fleet_settings()).map_err(|e| EnvError::Fleet(e.to_string()))?;
        SessionEnv::build_with_fleet(config, endpoints, seed, fleet)
    }

    /// Like [`SessionEnv::build`], on an existing fleet: each service's
    /// breaker is shared with it and each guard spends retries from the
    /// fleet's budget for that service. Calls never wait on the fleet: the
    /// breakers and budgets are local and the fleet syncs them in the
    /// background.
    pub fn build_with_fleet(
        config: &Config,
        endpoints: CrmEndpoints,
        seed: u64,
        fleet: Fleet,
    ) -> Result<SessionEnv, EnvError> {
        let http = HttpLayer::new().map_err(|e| EnvError::Http(e.to_string()))?;
        let toolbox = Toolbox {
            amplitude: Arc::new(AmplitudeClient::new(
                http.clone(),
                &endpoints.amplitude.0,
                endpoints.amplitude.1,
                endpoints.amplitude.2,
            )),
            salesforce: Arc::new(SalesforceClient::new(
                http.clone(),
                &endpoints.salesforce.0,
                endpoints.salesforce.1,
                endpoints.salesforce.2,
            )),
            hubspot: Arc::new(HubSpotClient::new(
                http.clone(),
                &endpoints.hubspot.0,
                endpoints.hubspot.1,
            )),
            chilipiper: Arc::new(ChiliPiperClient::new(
                http,
                &endpoints.chilipiper.0,
                endpoints.chilipiper.1,
            )),
            calendar: endpoints.calendar,
        };
        let registry = Arc::new(BreakerRegistry::new(Clock::tokio()));
        registry.subscribe(tracing_listener());
        registry.subscribe(metrics_listener());
        let mut bindings = BTreeMap::new();
        for (index, name) in ["amplitude", "salesforce", "hubspot", "chilipiper"]
            .into_iter()
            .enumerate()
        {
            let service = config.service(name).ok_or(EnvError::MissingService(name))?;
            let guard_config = config
                .guard_config(name)
                .ok_or(EnvError::MissingService(name))?;
            let breaker = registry.get_or_register(name, guard_config.breaker.clone());
            fleet.share_breaker(breaker.clone());
            let budget = fleet.retry_budget(name, guard_config.budget);
            let guard: Arc<Guard> = Guard::builder(guard_config)
                .breaker(breaker)
                .retry_budget(budget)
                .seed(seed.wrapping_add(index as u64))
                .build()
                .map_err(|e| EnvError::Guard(e.to_string()))?;
            let timing: LadderTiming = config
                .ladder_timing(name)
                .ok_or(EnvError::MissingService(name))?
                .into();
            bindings.insert(
                name.to_string(),
                ServiceBinding::new(guard, service.display_name.clone(), timing),
            );
        }
        let llm = LlmSetup::from_config(config, &registry, CrmChoice::Salesforce, seed)?;
        // The model's breaker too, when there is one: a provider outage seen
        // by one worker reaches them all.
        fleet.share_registry(&registry);
        Ok(SessionEnv {
            llm,
            phrasebook: PhraseBook::embedded(),
            toolbox,
            bindings: Arc::new(bindings),
            registry,
            handoff_after: config.session.max_consecutive_failures,
            scripted: ScriptedConfig {
                crm: CrmChoice::Salesforce,
                seed,
                ..ScriptedConfig::default()
            },
            fleet,
        })
    }
}
