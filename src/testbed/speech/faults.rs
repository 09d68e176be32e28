//! What can go wrong in the speech simulator, per provider, and how often:
//! the same shape as the CRM simulator's fault model (rates per request or
//! stream, latency, outage windows, named presets), with the failures speech
//! providers really have: a stream dropped mid-utterance (1006 without a
//! close frame, or 1011), a voice answering 200 with no audio, malformed
//! audio or JSON on the socket.

use std::collections::BTreeMap;
use std::time::Duration;

use rand::Rng;
use rand::rngs::SmallRng;
use serde::{Deserialize, Serialize};

pub use crate::testbed::crm::{Latency, Outage};

/// Every provider the simulator speaks for (`llm`: OpenAI-compatible chat
/// completions, the model a voice agent thinks with).
pub const PROVIDERS: [&str; 5] = ["deepgram", "openai_stt", "openai_tts", "cartesia", "llm"];

/// How a dropped stream ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum DropClose {
    /// The connection vanishes without a close frame (seen as 1006).
    #[default]
    #[serde(rename = "abnormal_1006")]
    Abnormal1006,
    /// A close frame 1011 (Deepgram's `NET-0001`).
    #[serde(rename = "server_error_1011")]
    ServerError1011,
}

/// Which malformed answer a voice gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Malformed {
    /// Audio whose byte count is odd: cut mid-sample.
    OddBytes,
    /// A WAV header declaring a rate other than the protocol's.
    WrongRate,
    /// Text that is not the protocol's JSON (or JSON where audio belongs).
    Garbage,
}

/// The faults of one provider. Rates are probabilities per request (HTTP)
/// or per stream (WebSocket) and must sum to at most 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultSpec {
    /// Time to first byte of an answer (STT: delay of each result).
    pub latency: Latency,
    pub error_rate: f64,
    pub error_status: u16,
    /// Never answer: an HTTP request hangs; a stream accepts audio and never
    /// sends a result; a voice socket never sends audio.
    pub hang_rate: f64,
    pub rate_limit_rate: f64,
    pub retry_after_secs: u64,
    /// Drop the stream after `drop_after_ms` of audio (heard or spoken).
    pub drop_rate: f64,
    pub drop_close: DropClose,
    pub drop_after_ms: u64,
    /// A voice answers without audio; a recognizer hears nothing.
    pub zero_audio_rate: f64,
    pub malformed_rate: f64,
    /// Which malformed answer; `None` cycles through them.
    pub malformed: Option<Malformed>,
    pub outage: Option<Outage>,
    /// The faults apply only to the first `times` requests after they were
    /// set, then the provider is healthy (for "fails once, then recovers").
    pub times: Option<u32>,
}

impl Default for FaultSpec {
    fn default() -> Self {
        FaultSpec {
            latency: Latency::default(),
            error_rate: 0.0,
            error_status: 503,
            hang_rate: 0.0,
            rate_limit_rate: 0.0,
            retry_after_secs: 1,
            drop_rate: 0.0,
            drop_close: DropClose::default(),
            drop_after_ms: 1_000,
            zero_audio_rate: 0.0,
            malformed_rate: 0.0,
            malformed: None,
            outage: None,
            times: None,
        }
    }
}

/// One request's fate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpeechFault {
    None,
    Outage { status: u16 },
    Error { status: u16 },
    RateLimited { retry_after_secs: u64 },
    Hang,
    Drop { close: DropClose, after: Duration },
    ZeroAudio,
    Malformed(Malformed),
}

impl SpeechFault {
    pub fn name(&self) -> &'static str {
        match self {
            SpeechFault::None => "none",
            SpeechFault::Outage { .. } => "outage",
            SpeechFault::Error { .. } => "error",
            SpeechFault::RateLimited { .. } => "rate_limited",
            SpeechFault::Hang => "hang",
            SpeechFault::Drop {
                close: DropClose::Abnormal1006,
                ..
            } => "drop_1006",
            SpeechFault::Drop { .. } => "drop_1011",
            SpeechFault::ZeroAudio => "zero_audio",
            SpeechFault::Malformed(_) => "malformed",
        }
    }
}

impl FaultSpec {
    fn validate(&self, at: &str) -> Result<(), String> {
        let rates = self.rates();
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
        if let Latency::LogNormal { p50_ms, p99_ms } = self.latency
            && !(p50_ms > 0.0 && p99_ms >= p50_ms)
        {
            return Err(format!("{at}.latency needs 0 < p50_ms <= p99_ms"));
        }
        Ok(())
    }

    fn rates(&self) -> [(&'static str, f64); 6] {
        [
            ("hang_rate", self.hang_rate),
            ("drop_rate", self.drop_rate),
            ("rate_limit_rate", self.rate_limit_rate),
            ("error_rate", self.error_rate),
            ("zero_audio_rate", self.zero_audio_rate),
            ("malformed_rate", self.malformed_rate),
        ]
    }

    /// Draw one request's latency and fault. `seq` is the provider's request
    /// number since the faults were set (for `times` and cycling).
    pub fn draw(
        &self,
        rng: &mut SmallRng,
        since_set: Duration,
        seq: u64,
    ) -> (Duration, SpeechFault) {
        let latency = sample_latency(self.latency, rng);
        if self.times.is_some_and(|times| seq >= u64::from(times)) {
            return (latency, SpeechFault::None);
        }
        if let Some(outage) = &self.outage
            && outage.is_down(since_set)
        {
            return (
                latency,
                SpeechFault::Outage {
                    status: outage.status,
                },
            );
        }
        let malformed = self.malformed.unwrap_or(match seq % 3 {
            0 => Malformed::OddBytes,
            1 => Malformed::WrongRate,
            _ => Malformed::Garbage,
        });
        let ladder = [
            SpeechFault::Hang,
            SpeechFault::Drop {
                close: self.drop_close,
                after: Duration::from_millis(self.drop_after_ms),
            },
            SpeechFault::RateLimited {
                retry_after_secs: self.retry_after_secs,
            },
            SpeechFault::Error {
                status: self.error_status,
            },
            SpeechFault::ZeroAudio,
            SpeechFault::Malformed(malformed),
        ];
        let roll: f64 = rng.random();
        let mut edge = 0.0;
        for ((_, rate), fault) in self.rates().into_iter().zip(ladder) {
            edge += rate;
            if roll < edge {
                return (latency, fault);
            }
        }
        (latency, SpeechFault::None)
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
            let sigma = (p99_ms / p50_ms).ln() / 2.326;
            let u1: f64 = rng.random_range(f64::EPSILON..1.0);
            let u2: f64 = rng.random();
            let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
            let ms = (p50_ms.ln() + sigma * z).exp().min(p99_ms * 20.0);
            Duration::from_micros((ms * 1000.0) as u64)
        }
    }
}

/// The active faults (what `GET /_sim/faults` returns).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FaultConfig {
    #[serde(default)]
    pub preset: Option<String>,
    #[serde(default)]
    pub default: FaultSpec,
    /// Per-provider overrides: `deepgram`, `openai_stt`, `openai_tts`, `cartesia`, `llm`.
    #[serde(default)]
    pub providers: BTreeMap<String, FaultSpec>,
}

impl FaultConfig {
    pub fn spec_for(&self, provider: &str) -> &FaultSpec {
        self.providers.get(provider).unwrap_or(&self.default)
    }
}

/// A `PUT /_sim/faults` body: an optional preset, then overrides on top.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FaultUpdate {
    #[serde(default)]
    pub preset: Option<String>,
    #[serde(default)]
    pub default: Option<FaultSpec>,
    #[serde(default)]
    pub providers: BTreeMap<String, FaultSpec>,
}

impl FaultUpdate {
    pub fn preset(name: &str) -> Self {
        FaultUpdate {
            preset: Some(name.into()),
            ..FaultUpdate::default()
        }
    }

    /// Everything on one provider, the rest healthy.
    pub fn provider(provider: &str, spec: FaultSpec) -> Self {
        FaultUpdate {
            providers: BTreeMap::from([(provider.to_string(), spec)]),
            ..FaultUpdate::default()
        }
    }

    pub fn resolve(self) -> Result<FaultConfig, String> {
        let mut config = match &self.preset {
            Some(name) => preset(name)
                .ok_or_else(|| format!("unknown preset {name:?}; known: {}", PRESETS.join(", ")))?,
            None => FaultConfig::default(),
        };
        if let Some(default) = self.default {
            config.default = default;
        }
        for (provider, spec) in self.providers {
            if !PROVIDERS.contains(&provider.as_str()) {
                return Err(format!(
                    "unknown provider {provider:?}; known: {}",
                    PROVIDERS.join(", ")
                ));
            }
            config.providers.insert(provider, spec);
        }
        config.default.validate("default")?;
        for (name, spec) in &config.providers {
            spec.validate(name)?;
        }
        Ok(config)
    }
}

/// Names accepted in `{"preset": ...}`: the CRM scenarios' generic ones and
/// the `simulate` voice scenarios.
pub const PRESETS: [&str; 14] = [
    "healthy",
    "slow",
    "errors",
    "hang",
    "rate-limited",
    "malformed",
    "outage-recovery",
    "zero-audio",
    "stt-drop",
    "stt-down",
    "tts-slow",
    "tts-hang",
    "tts-down",
    "llm-hang",
];

pub fn preset(name: &str) -> Option<FaultConfig> {
    let healthy = FaultSpec {
        latency: Latency::Uniform {
            base_ms: 20,
            jitter_ms: 30,
        },
        ..FaultSpec::default()
    };
    let on = |providers: &[&str], spec: FaultSpec| {
        providers
            .iter()
            .map(|p| (p.to_string(), spec.clone()))
            .collect::<BTreeMap<_, _>>()
    };
    const STT: [&str; 2] = ["deepgram", "openai_stt"];
    const TTS: [&str; 2] = ["openai_tts", "cartesia"];
    let (default, providers) = match name {
        "healthy" => (healthy.clone(), BTreeMap::new()),
        "slow" => (
            FaultSpec {
                latency: Latency::LogNormal {
                    p50_ms: 300.0,
                    p99_ms: 1500.0,
                },
                ..healthy.clone()
            },
            BTreeMap::new(),
        ),
        "errors" => (
            FaultSpec {
                error_rate: 0.3,
                ..healthy.clone()
            },
            BTreeMap::new(),
        ),
        "hang" => (
            FaultSpec {
                hang_rate: 0.3,
                ..healthy.clone()
            },
            BTreeMap::new(),
        ),
        "rate-limited" => (
            FaultSpec {
                rate_limit_rate: 0.4,
                ..healthy.clone()
            },
            BTreeMap::new(),
        ),
        "malformed" => (
            FaultSpec {
                malformed_rate: 0.25,
                ..healthy.clone()
            },
            BTreeMap::new(),
        ),
        "outage-recovery" => (
            FaultSpec {
                outage: Some(Outage {
                    start_after_ms: 0,
                    down_for_ms: 5_000,
                    period_ms: None,
                    status: 503,
                }),
                ..healthy.clone()
            },
            BTreeMap::new(),
        ),
        "zero-audio" => (
            healthy.clone(),
            on(
                &TTS,
                FaultSpec {
                    zero_audio_rate: 1.0,
                    ..healthy.clone()
                },
            ),
        ),
        "stt-drop" => (
            healthy.clone(),
            on(
                &["deepgram"],
                FaultSpec {
                    drop_rate: 0.5,
                    drop_close: DropClose::ServerError1011,
                    drop_after_ms: 1_500,
                    ..healthy.clone()
                },
            ),
        ),
        "stt-down" => (
            healthy.clone(),
            on(
                &STT,
                FaultSpec {
                    error_rate: 1.0,
                    ..healthy.clone()
                },
            ),
        ),
        "tts-slow" => (
            healthy.clone(),
            on(
                &TTS,
                FaultSpec {
                    latency: Latency::LogNormal {
                        p50_ms: 600.0,
                        p99_ms: 2000.0,
                    },
                    ..healthy.clone()
                },
            ),
        ),
        "tts-hang" => (
            healthy.clone(),
            on(
                &TTS,
                FaultSpec {
                    hang_rate: 1.0,
                    ..healthy.clone()
                },
            ),
        ),
        "tts-down" => (
            healthy.clone(),
            on(
                &TTS,
                FaultSpec {
                    error_rate: 1.0,
                    ..healthy.clone()
                },
            ),
        ),
        "llm-hang" => (
            healthy.clone(),
            on(
                &["llm"],
                FaultSpec {
                    hang_rate: 1.0,
                    ..healthy.clone()
                },
            ),
        ),
        _ => return None,
    };
    Some(FaultConfig {
        preset: Some(name.to_string()),
        default,
        providers,
    })
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
    fn a_fault_limited_in_times_stops_after_that_many_requests() {
        let spec = FaultSpec {
            error_rate: 1.0,
            times: Some(2),
            ..FaultSpec::default()
        };
        let mut rng = SmallRng::seed_from_u64(1);
        let fates: Vec<_> = (0..4)
            .map(|seq| spec.draw(&mut rng, Duration::ZERO, seq).1.name())
            .collect();
        assert_eq!(fates, ["error", "error", "none", "none"]);
    }

    #[test]
    fn unknown_providers_and_rates_over_one_are_refused() {
        assert!(
            FaultUpdate::provider("whisper", FaultSpec::default())
                .resolve()
                .is_err()
        );
        let spec = FaultSpec {
            drop_rate: 0.6,
            hang_rate: 0.6,
            ..FaultSpec::default()
        };
        let err = FaultUpdate::provider("deepgram", spec)
            .resolve()
            .unwrap_err();
        assert!(err.contains("sum"), "{err}");
    }
}
