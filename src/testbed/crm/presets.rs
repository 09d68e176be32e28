//! The named fault presets, one per `simulate` scenario: healthy, slow,
//! errors, hang, flaky, rate-limited, malformed, outage-recovery, mixed.

use std::collections::BTreeMap;

use super::faults::{FaultConfig, FaultSpec, Latency, Outage};

/// Names accepted in `{"preset": ...}`.
pub const PRESETS: [&str; 9] = [
    "healthy",
    "slow",
    "errors",
    "hang",
    "flaky",
    "rate-limited",
    "malformed",
    "outage-recovery",
    "mixed",
];

fn healthy_latency() -> Latency {
    Latency::Uniform {
        base_ms: 5,
        jitter_ms: 15,
    }
}

/// A named preset, matching the `simulate` scenarios.
pub fn preset(name: &str) -> Option<FaultConfig> {
    let base = FaultSpec {
        latency: healthy_latency(),
        ..FaultSpec::default()
    };
    let spec = match name {
        "healthy" => base.clone(),
        "slow" => FaultSpec {
            latency: Latency::LogNormal {
                p50_ms: 400.0,
                p99_ms: 2500.0,
            },
            ..base.clone()
        },
        "errors" => FaultSpec {
            error_rate: 0.3,
            error_status: 503,
            ..base.clone()
        },
        "hang" => FaultSpec {
            hang_rate: 0.3,
            ..base.clone()
        },
        "flaky" => FaultSpec {
            latency: Latency::Uniform {
                base_ms: 20,
                jitter_ms: 200,
            },
            error_rate: 0.15,
            error_status: 502,
            reset_rate: 0.1,
            ..base.clone()
        },
        "rate-limited" => FaultSpec {
            rate_limit_rate: 0.4,
            retry_after_secs: 1,
            ..base.clone()
        },
        "malformed" => FaultSpec {
            malformed_rate: 0.25,
            oversized_rate: 0.05,
            ..base.clone()
        },
        "outage-recovery" => FaultSpec {
            outage: Some(Outage {
                start_after_ms: 0,
                down_for_ms: 5_000,
                period_ms: None,
                status: 503,
            }),
            ..base.clone()
        },
        "mixed" => {
            let services = BTreeMap::from([
                (
                    "amplitude".to_string(),
                    FaultSpec {
                        latency: Latency::LogNormal {
                            p50_ms: 250.0,
                            p99_ms: 1800.0,
                        },
                        ..base.clone()
                    },
                ),
                (
                    "salesforce".to_string(),
                    FaultSpec {
                        error_rate: 0.1,
                        error_status: 503,
                        reset_rate: 0.05,
                        ..base.clone()
                    },
                ),
                (
                    "hubspot".to_string(),
                    FaultSpec {
                        rate_limit_rate: 0.2,
                        ..base.clone()
                    },
                ),
                (
                    "chilipiper".to_string(),
                    FaultSpec {
                        hang_rate: 0.1,
                        malformed_rate: 0.05,
                        ..base.clone()
                    },
                ),
            ]);
            return Some(FaultConfig {
                preset: Some(name.into()),
                default: base,
                services,
                endpoints: BTreeMap::new(),
            });
        }
        _ => return None,
    };
    Some(FaultConfig {
        preset: Some(name.into()),
        default: spec,
        ..FaultConfig::default()
    })
}
