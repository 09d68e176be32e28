//! Per-service settings: which profile a service uses and how, its breaker,
//! bulkhead and retry budget, and how the agent names it aloud. Maps them
//! onto the resilience engine's `GuardConfig`.

use std::time::Duration;

use serde::Deserialize;

use crate::resilience::{BreakerConfig, BudgetConfig, GuardConfig};

use super::duration;
use super::profile::{Profile, ProfileOverrides};
use super::secret::CredentialRef;

/// The services voxguard knows how to call.
pub const SERVICE_NAMES: [&str; 4] = ["amplitude", "salesforce", "hubspot", "chilipiper"];

#[derive(Debug, Clone, PartialEq)]
pub struct ServiceConfig {
    pub name: String,
    /// Name of the profile in `[profiles.*]`.
    pub profile: String,
    pub overrides: ProfileOverrides,
    pub breaker: BreakerSettings,
    pub bulkhead_size: u32,
    pub retry_budget: RetryBudgetSettings,
    pub base_url: Option<String>,
    /// How the agent names the service aloud: "the calendar".
    pub display_name: String,
    pub credentials: Option<CredentialRef>,
}

/// Breaker thresholds as written in `[services.NAME.breaker]`; the slow-call
/// threshold comes from the service's profile.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BreakerSettings {
    pub consecutive_failures: u32,
    pub window_size: u32,
    pub min_calls: u32,
    pub failure_rate: f64,
    pub slow_call_rate: f64,
    #[serde(deserialize_with = "duration::required")]
    pub open_base: Duration,
    #[serde(deserialize_with = "duration::required")]
    pub open_cap: Duration,
    pub half_open_probes: u32,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        BreakerSettings {
            consecutive_failures: 5,
            window_size: 20,
            min_calls: 10,
            failure_rate: 0.5,
            slow_call_rate: 0.8,
            open_base: Duration::from_secs(5),
            open_cap: Duration::from_secs(60),
            half_open_probes: 2,
        }
    }
}

/// Retry budget as written in `[services.NAME.retry_budget]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryBudgetSettings {
    pub ratio: f64,
    pub min_per_sec: u32,
    #[serde(deserialize_with = "duration::required")]
    pub window: Duration,
}

impl Default for RetryBudgetSettings {
    fn default() -> Self {
        RetryBudgetSettings {
            ratio: 0.2,
            min_per_sec: 5,
            window: Duration::from_secs(10),
        }
    }
}

/// Calls in flight to one service at once, unless configured.
pub const DEFAULT_BULKHEAD: u32 = 32;

impl ServiceConfig {
    /// This service's profile: `profile` with the service's overrides applied
    /// (idempotent, so an already resolved profile may be passed).
    pub fn resolve(&self, profile: &Profile) -> Profile {
        self.overrides.apply(profile)
    }

    /// The resilience engine's configuration for this service. `profile` is
    /// the service's profile, resolved or not (overrides are applied here).
    pub fn guard_config(&self, profile: &Profile) -> GuardConfig {
        let profile = self.resolve(profile);
        let b = &self.breaker;
        GuardConfig {
            service: self.name.clone(),
            retry: profile.retry_config(),
            breaker: BreakerConfig {
                consecutive_failures: b.consecutive_failures,
                window_size: b.window_size,
                min_calls: b.min_calls,
                failure_rate: b.failure_rate,
                slow_call_threshold: profile.slow_call_threshold,
                slow_call_rate: b.slow_call_rate,
                open_base: b.open_base,
                open_cap: b.open_cap,
                half_open_probes: b.half_open_probes,
            },
            bulkhead_size: self.bulkhead_size,
            budget: BudgetConfig {
                retry_ratio: self.retry_budget.ratio,
                min_retries_per_sec: self.retry_budget.min_per_sec,
                window: self.retry_budget.window,
            },
        }
    }
}
