//! What can go wrong in the simulator, and how often: per-service and
//! per-endpoint fault specs, the named presets matching `simulate` scenarios,
//! and the seeded draw that picks one request's fate.

use std::collections::BTreeMap;
use std::time::Duration;

use rand::Rng;
use rand::rngs::SmallRng;
use serde::{Deserialize, Serialize};

/// Every endpoint the simulator serves, named `service.endpoint`.
pub const ENDPOINTS: [&str; 9] = [
    "amplitude.usersearch",
    "amplitude.useractivity",
    "salesforce.token",
    "salesforce.query",
    "hubspot.contacts_search",
    "hubspot.owners",
    "hubspot.deals_search",
    "chilipiper.slots",
    "chilipiper.book",
];
pub use super::presets::{PRESETS, preset};

pub const SERVICES: [&str; 4] = ["amplitude", "salesforce", "hubspot", "chilipiper"];

/// Response latency: `{"base_ms", "jitter_ms"}` (uniform jitter on top of a base)
/// or `{"p50_ms", "p99_ms"}` (log-normal with those percentiles).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
pub enum Latency {
    Uniform { base_ms: u64, jitter_ms: u64 },
    LogNormal { p50_ms: f64, p99_ms: f64 },
}

impl Default for Latency {
    fn default() -> Self {
        Latency::Uniform {
            base_ms: 0,
            jitter_ms: 0,
        }
    }
}

/// How a 429 says when to come back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RetryAfterFormat {
    #[default]
    Seconds,
    HttpDate,
    /// No `Retry-After` header (vendor headers only).
    Omit,
}

/// A window during which every request fails with `status`: from
/// `start_after_ms` after the faults were set, for `down_for_ms`; repeating
/// every `period_ms` when given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outage {
    #[serde(default)]
    pub start_after_ms: u64,
    pub down_for_ms: u64,
    #[serde(default)]
    pub period_ms: Option<u64>,
    #[serde(default = "default_outage_status")]
    pub status: u16,
}

fn default_outage_status() -> u16 {
    503
}

impl Outage {
    pub fn is_down(&self, since_set: Duration) -> bool {
        let since = since_set.as_millis() as u64;
        let Some(t) = since.checked_sub(self.start_after_ms) else {
            return false;
        };
        match self.period_ms {
            Some(period) if period > 0 => t % period < self.down_for_ms,
            _ => t < self.down_for_ms,
        }
    }
}

/// The faults of one service or endpoint. Rates are probabilities per request
/// and must sum to at most 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultSpec {
    pub latency: Latency,
    pub error_rate: f64,
    pub error_status: u16,
    /// Never answer (until the simulator shuts down).
    pub hang_rate: f64,
    /// Drop the connection in the middle of the response.
    pub reset_rate: f64,
    pub rate_limit_rate: f64,
    pub retry_after_secs: u64,
    pub retry_after_format: RetryAfterFormat,
    /// A 200 with a truncated JSON body.
    pub malformed_rate: f64,
    /// A 200 with a body of several MiB.
    pub oversized_rate: f64,
    pub outage: Option<Outage>,
}

impl Default for FaultSpec {
    fn default() -> Self {
        FaultSpec {
            latency: Latency::default(),
            error_rate: 0.0,
            error_status: 503,
            hang_rate: 0.0,
            reset_rate: 0.0,
            rate_limit_rate: 0.0,
            retry_after_secs: 1,
            retry_after_format: RetryAfterFormat::Seconds,
            malformed_rate: 0.0,
            oversized_rate: 0.0,
            outage: None,
        }
    }
}

/// One request's fate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    None,
    Outage {
        status: u16,
    },
    Error {
        status: u16,
    },
    RateLimited {
        retry_after_secs: u64,
        format: RetryAfterFormat,
    },
    Hang,
    Reset,
    Malformed,
    Oversized,
}

impl Fault {
    pub fn name(&self) -> &'static str {
        match self {
            Fault::None => "none",
            Fault::Outage { .. } => "outage",
            Fault::Error { .. } => "error",
            Fault::RateLimited { .. } => "rate_limited",
            Fault::Hang => "hang",
            Fault::Reset => "reset",
            Fault::Malformed => "malformed",
            Fault::Oversized => "oversized",
        }
    }
}

impl FaultSpec {
    fn validate(&self, at: &str) -> Result<(), String> {
        let rates = [
            ("error_rate", self.error_rate),
            ("hang_rate", self.hang_rate),
            ("reset_rate", self.reset_rate),
            ("rate_limit_rate", self.rate_limit_rate),
            ("malformed_rate", self.malformed_rate),
            ("oversized_rate", self.oversized_rate),
        ];
        for (name, rate) in rates {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("{at}.{name} must be between 0 and 1, got {rate}"));
            }
        }
        let total: f64 = rates.iter().map(|(_, r)| r).sum();
        if total > 1.0 + 1e-9 {
            return Err(format!("{at}: fault rates sum to {total}, more than 1"));
        }
        if !(400..=599).contains(&self.error_status) {
            return Err(format!(
                "{at}.error_status must be a 4xx or 5xx status, got {}",
                self.error_status
            ));
        }
        if let Some(outage) = &self.outage
            && !(400..=599).contains(&outage.status)
        {
            return Err(format!(
                "{at}.outage.status must be a 4xx or 5xx status, got {}",
                outage.status
            ));
        }
        if let Latency::LogNormal { p50_ms, p99_ms } = self.latency
            && !(p50_ms > 0.0 && p99_ms >= p50_ms)
        {
            return Err(format!("{at}.latency needs 0 < p50_ms <= p99_ms"));
        }
        Ok(())
    }

    /// Draw this request's latency and fault.
    pub fn draw(&self, rng: &mut SmallRng, since_set: Duration) -> (Duration, Fault) {
        let latency = sample_latency(self.latency, rng);
        if let Some(outage) = &self.outage
            && outage.is_down(since_set)
        {
            return (
                latency,
                Fault::Outage {
                    status: outage.status,
                },
            );
        }
        let roll: f64 = rng.random();
        let ladder = [
            (self.hang_rate, Fault::Hang),
            (self.reset_rate, Fault::Reset),
            (
                self.rate_limit_rate,
                Fault::RateLimited {
                    retry_after_secs: self.retry_after_secs,
                    format: self.retry_after_format,
                },
            ),
            (
                self.error_rate,
                Fault::Error {
                    status: self.error_status,
                },
            ),
            (self.malformed_rate, Fault::Malformed),
            (self.oversized_rate, Fault::Oversized),
        ];
        let mut edge = 0.0;
        for (rate, fault) in ladder {
            edge += rate;
            if roll < edge {
                return (latency, fault);
            }
        }
        (latency, Fault::None)
    }
}

fn sample_latency(latency: Latency, rng: &mut SmallRng) -> Duration {
    match latency {
        Latency::Uniform { base_ms, jitter_ms } => {
            let jitter = if jitter_ms == 0 {
                0
            } else {
                rng.random_range(0..=jitter_ms)
            };
            Duration::from_millis(base_ms + jitter)
        }
        Latency::LogNormal { p50_ms, p99_ms } => {
            // z(0.99) = 2.326; Box-Muller for a standard normal draw.
            let sigma = (p99_ms / p50_ms).ln() / 2.326;
            let u1: f64 = rng.random_range(f64::EPSILON..1.0);
            let u2: f64 = rng.random();
            let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
            let ms = (p50_ms.ln() + sigma * z).exp().min(p99_ms * 20.0);
            Duration::from_micros((ms * 1000.0) as u64)
        }
    }
}

/// The active fault configuration (what `GET /_sim/faults` returns).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FaultConfig {
    /// The preset this configuration started from, if any.
    #[serde(default)]
    pub preset: Option<String>,
    #[serde(default)]
    pub default: FaultSpec,
    /// Per-service overrides, keyed `amplitude`, `salesforce`, `hubspot`, `chilipiper`.
    #[serde(default)]
    pub services: BTreeMap<String, FaultSpec>,
    /// Per-endpoint overrides, keyed like `hubspot.contacts_search`.
    #[serde(default)]
    pub endpoints: BTreeMap<String, FaultSpec>,
}

/// A `PUT /_sim/faults` body: an optional preset, then overrides on top of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FaultUpdate {
    #[serde(default)]
    pub preset: Option<String>,
    #[serde(default)]
    pub default: Option<FaultSpec>,
    #[serde(default)]
    pub services: BTreeMap<String, FaultSpec>,
    #[serde(default)]
    pub endpoints: BTreeMap<String, FaultSpec>,
}

impl FaultUpdate {
    pub fn preset(name: &str) -> Self {
        FaultUpdate {
            preset: Some(name.to_string()),
            ..FaultUpdate::default()
        }
    }

    /// Everything on one service.
    pub fn service(service: &str, spec: FaultSpec) -> Self {
        FaultUpdate {
            services: BTreeMap::from([(service.to_string(), spec)]),
            ..FaultUpdate::default()
        }
    }

    /// Everything on one endpoint (`service.endpoint`).
    pub fn endpoint(endpoint: &str, spec: FaultSpec) -> Self {
        FaultUpdate {
            endpoints: BTreeMap::from([(endpoint.to_string(), spec)]),
            ..FaultUpdate::default()
        }
    }

    /// The configuration this update produces, or why it is invalid.
    pub fn resolve(self) -> Result<FaultConfig, String> {
        let mut config = match &self.preset {
            Some(name) => preset(name)
                .ok_or_else(|| format!("unknown preset {name:?}; known: {}", PRESETS.join(", ")))?,
            None => FaultConfig::default(),
        };
        if let Some(default) = self.default {
            config.default = default;
        }
        for (service, spec) in self.services {
            if !SERVICES.contains(&service.as_str()) {
                return Err(format!(
                    "unknown service {service:?}; known: {}",
                    SERVICES.join(", ")
                ));
            }
            config.services.insert(service, spec);
        }
        for (endpoint, spec) in self.endpoints {
            if !ENDPOINTS.contains(&endpoint.as_str()) {
                return Err(format!(
                    "unknown endpoint {endpoint:?}; known: {}",
                    ENDPOINTS.join(", ")
                ));
            }
            config.endpoints.insert(endpoint, spec);
        }
        config.default.validate("default")?;
        for (name, spec) in config.services.iter().chain(config.endpoints.iter()) {
            spec.validate(name)?;
        }
        Ok(config)
    }
}

impl FaultConfig {
    /// The spec governing an endpoint: endpoint override, else service override, else default.
    pub fn spec_for(&self, endpoint: &str) -> &FaultSpec {
        let service = endpoint.split('.').next().unwrap_or(endpoint);
        self.endpoints
            .get(endpoint)
            .or_else(|| self.services.get(service))
            .unwrap_or(&self.default)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn every_preset_resolves_and_validates() {
        for name in PRESETS {
            let config = FaultUpdate::preset(name)
                .resolve()
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(config.preset.as_deref(), Some(name));
        }
    }

    #[test]
    fn endpoint_overrides_beat_service_overrides_beat_the_default() {
        let mut update = FaultUpdate::service(
            "hubspot",
            FaultSpec {
                error_rate: 1.0,
                ..FaultSpec::default()
            },
        );
        update.endpoints.insert(
            "hubspot.owners".into(),
            FaultSpec {
                hang_rate: 1.0,
                ..FaultSpec::default()
            },
        );
        let config = update.resolve().unwrap();
        assert_eq!(config.spec_for("hubspot.owners").hang_rate, 1.0);
        assert_eq!(config.spec_for("hubspot.contacts_search").error_rate, 1.0);
        assert_eq!(config.spec_for("salesforce.query").error_rate, 0.0);
    }

    #[test]
    fn rates_summing_over_one_are_rejected() {
        let spec = FaultSpec {
            error_rate: 0.7,
            hang_rate: 0.7,
            ..FaultSpec::default()
        };
        let err = FaultUpdate::service("amplitude", spec)
            .resolve()
            .unwrap_err();
        assert!(err.contains("sum"), "{err}");
        assert!(
            FaultUpdate::service("nope", FaultSpec::default())
                .resolve()
                .is_err()
        );
    }

    #[test]
    fn the_same_seed_draws_the_same_faults() {
        let spec = FaultSpec {
            error_rate: 0.3,
            hang_rate: 0.2,
            latency: Latency::LogNormal {
                p50_ms: 50.0,
                p99_ms: 400.0,
            },
            ..FaultSpec::default()
        };
        let draws = |seed| {
            let mut rng = SmallRng::seed_from_u64(seed);
            (0..50)
                .map(|_| spec.draw(&mut rng, Duration::ZERO))
                .collect::<Vec<_>>()
        };
        assert_eq!(draws(7), draws(7));
        assert_ne!(draws(7), draws(8));
    }

    #[test]
    fn a_periodic_outage_is_down_only_inside_its_windows() {
        let outage = Outage {
            start_after_ms: 100,
            down_for_ms: 50,
            period_ms: Some(1000),
            status: 503,
        };
        assert!(!outage.is_down(Duration::from_millis(99)));
        assert!(outage.is_down(Duration::from_millis(120)));
        assert!(!outage.is_down(Duration::from_millis(151)));
        assert!(outage.is_down(Duration::from_millis(1_120)));
    }
}
