//! The page's speech and model cards: each recognizer, voice and the
//! model, with its breaker, its recent latencies (the worker's own
//! summaries, over about the last minute: a recognizer's first result, a
//! voice's first audio) and, for providers the speech simulator serves,
//! fault buttons that set the simulator's faults for that provider.

use std::collections::BTreeMap;
use std::sync::Mutex;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::testbed::speech::{FaultSpec, FaultUpdate, Latency, Outage};
use crate::worker::ServiceStatus;

use super::DevState;

/// Faults a speech card offers, as the page labels them.
pub const SPEECH_FAULTS: [&str; 6] = ["healthy", "slow", "errors", "hang", "drop", "outage"];

/// How long the "outage" button takes a provider down.
const OUTAGE: std::time::Duration = std::time::Duration::from_secs(20);

/// The fault each simulated speech provider is set to from the page.
#[derive(Default)]
pub struct SpeechFaultBoard {
    faults: Mutex<BTreeMap<&'static str, String>>,
}

#[derive(Serialize)]
pub struct SpeechCard {
    /// The breaker's name: `stt.deepgram`, `tts.espeak`, `llm`.
    name: String,
    /// `recognizer`, `voice` or `model`.
    kind: &'static str,
    configured: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    breaker: Option<&'static str>,
    /// What to set to configure it, when it is not.
    #[serde(skip_serializing_if = "Option::is_none")]
    fix: Option<String>,
    /// What the latency figures measure.
    measures: &'static str,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
    /// How many measurements the worker has made since it started.
    count: u64,
    /// The fault set from the page; faults are offered only when the speech
    /// simulator serves this provider.
    fault: String,
    faults: Vec<&'static str>,
    /// Served by the speech simulator in this process, not the real service.
    simulated: bool,
}

/// The speech simulator's name for the provider behind a breaker.
fn simulated(breaker: &str) -> Option<&'static str> {
    match breaker {
        "stt.deepgram" => Some("deepgram"),
        "stt.openai" => Some("openai_stt"),
        "tts.openai" => Some("openai_tts"),
        "tts.cartesia" => Some("cartesia"),
        _ => None,
    }
}

fn kind_of(name: &str) -> Option<(&'static str, &'static str, &'static str)> {
    if name.starts_with("stt.") {
        Some((
            "recognizer",
            "first result after the caller's audio",
            "voxguard_stt_first_result_seconds",
        ))
    } else if name.starts_with("tts.") {
        Some((
            "voice",
            "first audio of a sentence",
            "voxguard_tts_first_audio_seconds",
        ))
    } else if name == "llm" {
        Some(("model", "", ""))
    } else {
        None
    }
}

pub async fn speech(State(state): State<DevState>) -> Json<Vec<SpeechCard>> {
    let report = match &state.voice_stack {
        Some(voice) => state.agent.service_report_with(&voice.unconfigured),
        None => state.agent.service_report(),
    };
    let rendered = crate::worker::metrics::prometheus().render();
    let faults = state
        .speech_faults
        .faults
        .lock()
        .map(|f| f.clone())
        .unwrap_or_default();
    let mut services = report();
    if !services.iter().any(|s| s.name == "llm") {
        // The model is off: the scripted policy leads every call.
        services.push(ServiceStatus {
            name: "llm".into(),
            configured: false,
            breaker: None,
            fix: Some(
                "off: the scripted policy leads each call; VOXGUARD_LLM=on with OPENAI_API_KEY lets a model lead".into(),
            ),
        });
    }
    let cards = services
        .into_iter()
        .filter_map(|service| {
            let (kind, measures, metric) = kind_of(&service.name)?;
            let summary = Summary::read(&rendered, metric, &service.name);
            let sim = simulated(&service.name).filter(|_| state.speech_sim.is_some());
            Some(SpeechCard {
                kind,
                configured: service.configured,
                breaker: service.breaker,
                fix: service.fix,
                measures,
                p50_ms: summary.p50_ms,
                p99_ms: summary.p99_ms,
                count: summary.count,
                fault: sim
                    .and_then(|p| faults.get(p).cloned())
                    .unwrap_or_else(|| "healthy".into()),
                faults: if sim.is_some() && service.configured {
                    SPEECH_FAULTS.to_vec()
                } else {
                    Vec::new()
                },
                simulated: sim.is_some() && service.configured,
                name: service.name,
            })
        })
        .collect();
    Json(cards)
}

/// One provider's latency summary, read from the Prometheus text.
#[derive(Debug, Default, PartialEq)]
struct Summary {
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
    count: u64,
}

impl Summary {
    fn read(rendered: &str, metric: &str, provider: &str) -> Summary {
        let mut summary = Summary::default();
        if metric.is_empty() {
            return summary;
        }
        let label = format!("provider=\"{provider}\"");
        for line in rendered.lines() {
            let Some(rest) = line.strip_prefix(metric) else {
                continue;
            };
            let Some((labels, value)) = rest.split_once(' ') else {
                continue;
            };
            if !labels.contains(&label) {
                continue;
            }
            let Ok(value) = value.trim().parse::<f64>() else {
                continue;
            };
            if labels.starts_with("_count") {
                summary.count = value as u64;
            } else if labels.contains("quantile=\"0.5\"") && value.is_finite() {
                summary.p50_ms = Some(value * 1000.0);
            } else if labels.contains("quantile=\"0.99\"") && value.is_finite() {
                summary.p99_ms = Some(value * 1000.0);
            }
        }
        summary
    }
}

#[derive(Deserialize)]
pub struct SpeechFaultChoice {
    provider: String,
    fault: String,
}

/// The simulator fault behind each button of a speech card.
fn fault_spec(fault: &str) -> Option<FaultSpec> {
    let spec = FaultSpec::default();
    Some(match fault {
        "healthy" => spec,
        "slow" => FaultSpec {
            latency: Latency::LogNormal {
                p50_ms: 900.0,
                p99_ms: 2500.0,
            },
            ..spec
        },
        "errors" => FaultSpec {
            error_rate: 1.0,
            ..spec
        },
        "hang" => FaultSpec {
            hang_rate: 1.0,
            ..spec
        },
        "drop" => FaultSpec {
            drop_rate: 1.0,
            ..spec
        },
        "outage" => FaultSpec {
            outage: Some(Outage {
                start_after_ms: 0,
                down_for_ms: OUTAGE.as_millis() as u64,
                period_ms: None,
                status: 503,
            }),
            ..spec
        },
        _ => return None,
    })
}

pub async fn set_speech_fault(
    State(state): State<DevState>,
    Json(choice): Json<SpeechFaultChoice>,
) -> Result<Json<serde_json::Value>, (StatusCode, Json<serde_json::Value>)> {
    let bad = |message: String| (StatusCode::BAD_REQUEST, Json(json!({ "error": message })));
    let Some(sim) = &state.speech_sim else {
        return Err(bad(
            "no speech simulator serves this stack's speech providers".into(),
        ));
    };
    let Some(provider) = simulated(&choice.provider) else {
        return Err(bad(format!(
            "`{}` is not served by the speech simulator; use stt.deepgram, stt.openai, tts.openai or tts.cartesia",
            choice.provider
        )));
    };
    if fault_spec(&choice.fault).is_none() {
        return Err(bad(format!(
            "unknown fault `{}`; use {}",
            choice.fault,
            SPEECH_FAULTS.join(", ")
        )));
    }
    let board = {
        let mut faults = state
            .speech_faults
            .faults
            .lock()
            .map_err(|_| bad("fault board poisoned".into()))?;
        faults.insert(provider, choice.fault.clone());
        faults.clone()
    };
    let update = FaultUpdate {
        providers: board
            .iter()
            .filter_map(|(provider, fault)| fault_spec(fault).map(|s| (provider.to_string(), s)))
            .collect(),
        ..FaultUpdate::default()
    };
    sim.set_faults(update).map_err(bad)?;
    Ok(Json(
        json!({ "provider": choice.provider, "fault": choice.fault }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const RENDERED: &str = "\
# TYPE voxguard_tts_first_audio_seconds summary
voxguard_tts_first_audio_seconds{provider=\"tts.espeak\",quantile=\"0\"} 0.01
voxguard_tts_first_audio_seconds{provider=\"tts.espeak\",quantile=\"0.5\"} 0.042
voxguard_tts_first_audio_seconds{provider=\"tts.espeak\",quantile=\"0.99\"} 0.12
voxguard_tts_first_audio_seconds_sum{provider=\"tts.espeak\"} 0.5
voxguard_tts_first_audio_seconds_count{provider=\"tts.espeak\"} 9
voxguard_tts_first_audio_seconds{provider=\"tts.openai\",quantile=\"0.5\"} 0.3
";

    #[test]
    fn a_providers_summary_is_read_from_the_workers_metrics() {
        let summary = Summary::read(RENDERED, "voxguard_tts_first_audio_seconds", "tts.espeak");
        assert_eq!(summary.count, 9);
        assert!((summary.p50_ms.unwrap() - 42.0).abs() < 1e-9);
        assert!((summary.p99_ms.unwrap() - 120.0).abs() < 1e-9);
    }

    #[test]
    fn a_provider_never_measured_has_no_figures() {
        let summary = Summary::read(
            RENDERED,
            "voxguard_stt_first_result_seconds",
            "stt.deepgram",
        );
        assert_eq!(summary, Summary::default());
    }

    #[test]
    fn only_simulated_providers_take_faults() {
        assert_eq!(simulated("stt.deepgram"), Some("deepgram"));
        assert_eq!(
            simulated("tts.espeak"),
            None,
            "the local voice has no simulator"
        );
        assert!(SPEECH_FAULTS.iter().all(|f| fault_spec(f).is_some()));
    }
}
