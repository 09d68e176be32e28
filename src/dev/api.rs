//! The dev page's JSON API: live service cards and fault controls wired to
//! the CRM simulator's admin API.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::resilience::BreakerState;
use crate::testbed::crm::FaultUpdate;

use super::DevState;

/// How many recent tool calls a service card shows.
const RECENT_CALLS: usize = 40;

/// The fault each service is set to from the page.
#[derive(Default)]
pub struct FaultBoard {
    faults: Mutex<BTreeMap<String, String>>,
}

/// Tool calls as the agent lived them, per service: how long the caller
/// waited for each and how it ended. The simulator's own request log cannot
/// say this: a hung request never finishes there, and retries are separate
/// requests.
#[derive(Default)]
pub struct ToolCallBoard {
    services: Mutex<BTreeMap<String, ServiceCalls>>,
}

#[derive(Default)]
struct ServiceCalls {
    total: usize,
    recent: VecDeque<Sample>,
}

impl ToolCallBoard {
    pub fn record(&self, service: &str, elapsed_ms: f64, outcome: &str) {
        let Ok(mut services) = self.services.lock() else {
            return;
        };
        let calls = services.entry(service.to_owned()).or_default();
        calls.total += 1;
        if calls.recent.len() == RECENT_CALLS {
            calls.recent.pop_front();
        }
        calls.recent.push_back(Sample {
            ms: elapsed_ms,
            ok: matches!(outcome, "ok" | "not_found"),
            outcome: outcome.to_owned(),
        });
    }

    fn card_data(&self, service: &str) -> (usize, Vec<Sample>) {
        self.services
            .lock()
            .ok()
            .and_then(|services| {
                services
                    .get(service)
                    .map(|c| (c.total, c.recent.iter().cloned().collect()))
            })
            .unwrap_or_default()
    }
}

#[derive(Clone, Serialize)]
pub struct Sample {
    ms: f64,
    ok: bool,
    outcome: String,
}

#[derive(Serialize)]
pub struct ServiceCard {
    service: String,
    display_name: String,
    breaker: BreakerState,
    fault: String,
    /// Tool calls to this service, with the latency the caller waited.
    calls: usize,
    p50_ms: f64,
    recent_latencies_ms: Vec<Sample>,
    /// HTTP requests the simulator received for this service (retries count).
    requests: usize,
}

pub async fn services(State(state): State<DevState>) -> Json<Vec<ServiceCard>> {
    let requests = state.sim.requests();
    let faults = state
        .faults
        .faults
        .lock()
        .map(|f| f.clone())
        .unwrap_or_default();
    let cards = state
        .agent
        .sessions
        .bindings
        .iter()
        .map(|(service, binding)| {
            let prefix = format!("{service}.");
            let (calls, recent) = state.tool_calls.card_data(service);
            let mut sorted: Vec<f64> = recent.iter().map(|s| s.ms).collect();
            sorted.sort_by(f64::total_cmp);
            ServiceCard {
                service: service.clone(),
                display_name: binding.display_name.clone(),
                breaker: binding.guard.breaker().state(),
                fault: faults
                    .get(service)
                    .cloned()
                    .unwrap_or_else(|| "healthy".into()),
                calls,
                p50_ms: sorted.get(sorted.len() / 2).copied().unwrap_or(0.0),
                recent_latencies_ms: recent,
                requests: requests
                    .iter()
                    .filter(|r| r.endpoint.starts_with(&prefix))
                    .count(),
            }
        })
        .collect();
    Json(cards)
}

#[derive(Deserialize)]
pub struct FaultChoice {
    service: String,
    fault: String,
}

/// The simulator fault spec behind each button on the page.
pub fn fault_spec(fault: &str) -> Option<serde_json::Value> {
    Some(match fault {
        "healthy" => json!({}),
        "slow" => json!({ "latency": { "p50_ms": 900.0, "p99_ms": 2500.0 } }),
        "errors" => json!({ "error_rate": 1.0, "error_status": 503 }),
        "hang" => json!({ "hang_rate": 1.0 }),
        "rate_limited" => json!({ "rate_limit_rate": 1.0, "retry_after_secs": 5 }),
        "outage" => {
            json!({ "outage": { "start_after_ms": 0, "down_for_ms": 20000, "status": 503 } })
        }
        _ => return None,
    })
}

pub async fn set_fault(
    State(state): State<DevState>,
    Json(choice): Json<FaultChoice>,
) -> Result<Json<serde_json::Value>, (StatusCode, Json<serde_json::Value>)> {
    let bad = |message: String| (StatusCode::BAD_REQUEST, Json(json!({ "error": message })));
    if !state.agent.sessions.bindings.contains_key(&choice.service) {
        return Err(bad(format!("unknown service `{}`", choice.service)));
    }
    if fault_spec(&choice.fault).is_none() {
        return Err(bad(format!(
            "unknown fault `{}`; use healthy, slow, errors, hang, rate_limited or outage",
            choice.fault
        )));
    }
    let board = {
        let mut faults = state
            .faults
            .faults
            .lock()
            .map_err(|_| bad("fault board poisoned".into()))?;
        faults.insert(choice.service.clone(), choice.fault.clone());
        faults.clone()
    };
    let services: serde_json::Map<String, serde_json::Value> = board
        .iter()
        .filter_map(|(service, fault)| fault_spec(fault).map(|spec| (service.clone(), spec)))
        .collect();
    let update: FaultUpdate =
        serde_json::from_value(json!({ "preset": "healthy", "services": services }))
            .map_err(|e| bad(e.to_string()))?;
    state.sim.set_faults(update).map_err(bad)?;
    Ok(Json(
        json!({ "service": choice.service, "fault": choice.fault }),
    ))
}
