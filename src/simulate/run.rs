//! Driving simulated calls through the full stack: the CRM simulator with the
//! scenario's fault preset, the loopback LiveKit dispatcher, the production
//! worker, sessions, brain, ToolRunner and Guard — over real sockets.
//!
//! Each call is a scripted caller on the room's transport. The invariants are
//! checked afterwards on what the caller heard and on the sessions' final
//! transcripts, not taken from the code under test.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;

use crate::config::Config;
use crate::config::profile_cli::{LatencySample, SampleOutcome};
use crate::resilience::BreakerEvent;
use crate::services::sim::{CrmSimulator, FaultUpdate};
use crate::session::room::{SessionJobHandler, Transports};
use crate::session::{AgentEvent, CallerEvent, CrmEndpoints, SessionEnv, SessionReport};
use crate::worker::loopback::LoopbackServer;
use crate::worker::{Worker, WorkerConfig};

use super::checks::{self, CallLog, HeardEvent};
use super::report::{LatencySummary, SimulationReport};

/// The scenarios `voxguard simulate --scenario` accepts.
pub const SCENARIOS: [&str; 9] = [
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

/// What one run is asked to do.
#[derive(Debug, Clone)]
pub struct SimulationPlan {
    pub scenario: String,
    pub calls: usize,
    pub concurrency: usize,
    pub seed: u64,
    /// Pause between a caller hearing the agent listen and speaking again.
    pub think_time: Duration,
    /// Call starts are spread over at least this long (outage-recovery needs
    /// calls before, during and after the outage).
    pub spread: Duration,
}

impl SimulationPlan {
    pub fn new(
        scenario: &str,
        calls: usize,
        concurrency: usize,
        seed: u64,
    ) -> Result<SimulationPlan, String> {
        if !SCENARIOS.contains(&scenario) {
            return Err(format!(
                "unknown scenario `{scenario}`; choose one of {}",
                SCENARIOS.join(", ")
            ));
        }
        if calls == 0 || concurrency == 0 {
            return Err("--calls and --concurrency must be at least 1".into());
        }
        let spread = if scenario == "outage-recovery" {
            Duration::from_secs(16)
        } else {
            Duration::ZERO
        };
        Ok(SimulationPlan {
            scenario: scenario.into(),
            calls,
            concurrency,
            seed,
            think_time: Duration::from_millis(20),
            spread,
        })
    }
}

/// The caller's lines: discovery, the email that triggers the lookups, slots, a booking.
const CALLER: [&str; 8] = [
    "Hi, we're a law firm, about eight people",
    "twelve hundred docs a month",
    "we use HubSpot",
    "this month ideally",
    "yes, that sounds great",
    "sure, it's {email}",
    "yes please",
    "{choice}",
];

/// Callers spread their picks so concurrent callers rarely want the same slot.
const CHOICES: [&str; 3] = ["the first one", "the second one", "the third one"];

/// The outcome of a run, with the latency samples for `profile tune`.
pub struct SimulationOutput {
    pub report: SimulationReport,
    pub samples: Vec<LatencySample>,
}

/// Run the plan and check every call.
pub async fn run(
    config: &Config,
    plan: &SimulationPlan,
    progress: impl Fn(usize, usize) + Send + Sync + 'static,
) -> Result<SimulationOutput, String> {
    let started = Instant::now();
    let sim = CrmSimulator::start(([127, 0, 0, 1], 0).into(), plan.seed)
        .await
        .map_err(|e| e.to_string())?;
    let preset: FaultUpdate =
        serde_json::from_value(serde_json::json!({ "preset": plan.scenario }))
            .map_err(|e| e.to_string())?;
    sim.set_faults(preset)?;
    let emails: Vec<String> = sim
        .fixtures()
        .people
        .iter()
        .map(|p| p.email.clone())
        .collect();
    let env = SessionEnv::build(config, CrmEndpoints::simulator(&sim), plan.seed)
        .map_err(|e| e.to_string())?;

    let transitions: Arc<Mutex<BTreeMap<String, Vec<String>>>> = Arc::default();
    {
        let transitions = transitions.clone();
        env.registry
            .subscribe(Arc::new(move |event: &BreakerEvent| {
                if let Ok(mut map) = transitions.lock() {
                    let list = map.entry(event.service.to_string()).or_default();
                    if list.is_empty() {
                        list.push(state_name(event.from).into());
                    }
                    list.push(state_name(event.to).into());
                }
            }));
    }

    let loopback = LoopbackServer::start(([127, 0, 0, 1], 0).into())
        .await
        .map_err(|e| e.to_string())?;
    let lk = loopback.config();
    let mut worker_config =
        WorkerConfig::new(loopback.url(), lk.api_key.clone(), lk.api_secret.clone());
    worker_config.agent_name = "voxguard-simulate".into();
    // Headroom over the callers' concurrency: a session still winding down
    // after its caller hung up holds a slot for a moment.
    worker_config.max_sessions =
        u32::try_from(plan.concurrency.saturating_mul(2).saturating_add(8)).unwrap_or(u32::MAX);
    let transports = Transports::default();
    let (reports_tx, mut reports_rx) = mpsc::unbounded_channel::<(String, SessionReport)>();
    let handler = Arc::new(SessionJobHandler {
        env: env.clone(),
        transports: transports.clone(),
        reports: Some(reports_tx),
    });
    let worker = Worker::new(worker_config, handler).map_err(|e| e.to_string())?;
    let worker_handle = worker.handle();
    let worker_task = tokio::spawn(worker.run());
    if !worker_handle
        .wait_registrations(1, Duration::from_secs(10))
        .await
    {
        return Err("the worker did not register with the loopback dispatcher".into());
    }

    let lag = tokio::spawn(measure_lag());
    let gate = Arc::new(Semaphore::new(plan.concurrency));
    let active = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let peak = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let progress = Arc::new(progress);
    let mut calls = Vec::with_capacity(plan.calls);
    let spacing = plan
        .spread
        .checked_div(plan.calls as u32)
        .unwrap_or_default();
    for index in 0..plan.calls {
        let permit = gate
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| e.to_string())?;
        if !spacing.is_zero() {
            tokio::time::sleep_until(started + spacing * index as u32).await;
        }
        let room = format!("sim-{}-{index}", plan.scenario);
        let transport = transports.attach(&room);
        let loopback = loopback.clone();
        let email = emails[index % emails.len()].clone();
        let (active, peak, done, progress) =
            (active.clone(), peak.clone(), done.clone(), progress.clone());
        let think = plan.think_time;
        let total = plan.calls;
        calls.push(tokio::spawn(async move {
            let now_active = active.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            peak.fetch_max(now_active, std::sync::atomic::Ordering::Relaxed);
            let log = match loopback.dispatch_job(&room, "sim-caller").await {
                Ok(_) => call(transport, &email, CHOICES[index % CHOICES.len()], think).await,
                Err(err) => CallLog {
                    room: room.clone(),
                    dispatch_error: Some(err.to_string()),
                    ..CallLog::default()
                },
            };
            active.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            progress(
                done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1,
                total,
            );
            drop(permit);
            CallLog { room, ..log }
        }));
    }
    let mut logs = Vec::with_capacity(calls.len());
    let mut panics = 0u64;
    for call in calls {
        match call.await {
            Ok(log) => logs.push(log),
            Err(err) if err.is_panic() => panics += 1,
            Err(_) => {}
        }
    }
    // Every session reports once its job ends; wait for them (bounded).
    let mut reports: HashMap<String, SessionReport> = HashMap::new();
    let wait_until = Instant::now() + Duration::from_secs(10);
    let dispatched = logs
        .iter()
        .filter(|log| log.dispatch_error.is_none())
        .count();
    while reports.len() < dispatched {
        match tokio::time::timeout_at(wait_until, reports_rx.recv()).await {
            Ok(Some((room, report))) => {
                reports.insert(room, report);
            }
            _ => break,
        }
    }
    lag.abort();
    let lag_samples = LAG.lock().map(|l| l.clone()).unwrap_or_default();
    worker_handle.shutdown_now();
    worker_task.abort();

    let budget_of: HashMap<String, Duration> = env
        .bindings
        .iter()
        .map(|(service, binding)| (service.clone(), binding.timing.budget))
        .collect();
    if std::env::var_os("VOXGUARD_SIM_TRACE").is_some() {
        for log in &logs {
            eprintln!("call {}", log.room);
            for heard in &log.heard {
                eprintln!(
                    "  {:>8.1} ms  {}",
                    heard.at.as_secs_f64() * 1000.0,
                    serde_json::to_string(&heard.event).unwrap_or_default()
                );
            }
        }
    }
    let checked = checks::check(&logs, &reports, &env.phrasebook, &env.bindings, &budget_of);
    let report = SimulationReport {
        scenario: plan.scenario.clone(),
        calls: logs.len() as u64,
        turns: checked.turns,
        tool_calls: checked.tool_calls,
        first_speech_ms: LatencySummary::of(&checked.first_speech_ms),
        resolution_ms: LatencySummary::of(&checked.resolution_ms),
        budget_overruns: checked.budget_overruns,
        unpaired_tool_calls: checked.unpaired_tool_calls,
        state_violations: checked.state_violations,
        immediate_repeats: checked.immediate_repeats,
        false_promises: checked.false_promises,
        panics: panics + checked.panics,
        outcomes: checked.outcomes,
        breaker_transitions: transitions.lock().map(|t| t.clone()).unwrap_or_default(),
        sessions_peak: peak.load(std::sync::atomic::Ordering::Relaxed) as u64,
        rss_peak_bytes: super::report::rss_peak_bytes(),
        seed: plan.seed,
        concurrency: plan.concurrency as u64,
        wall_ms: started.elapsed().as_secs_f64() * 1000.0,
        event_loop_lag_ms: LatencySummary::of(&lag_samples),
        sessions_failed: checked.sessions_missing,
    };
    let samples = checked
        .samples
        .into_iter()
        .map(|(service, ms, outcome)| LatencySample {
            service,
            latency_ms: ms,
            outcome: match outcome {
                "ok" | "not_found" => SampleOutcome::Ok,
                "timeout" => SampleOutcome::Timeout,
                _ => SampleOutcome::Error,
            },
        })
        .collect();
    Ok(SimulationOutput { report, samples })
}

fn state_name(state: crate::resilience::BreakerState) -> &'static str {
    match state {
        crate::resilience::BreakerState::Closed => "closed",
        crate::resilience::BreakerState::Open => "open",
        crate::resilience::BreakerState::HalfOpen => "half_open",
    }
}

/// One scripted caller: speaks each line once the agent listens, records
/// what it heard and when.
async fn call(
    mut transport: crate::session::TransportIo,
    email: &str,
    choice: &str,
    think: Duration,
) -> CallLog {
    let start = Instant::now();
    let mut log = CallLog::default();
    let mut lines = CALLER.iter();
    let deadline = start + Duration::from_secs(120);
    loop {
        let event = match tokio::time::timeout_at(deadline, transport.from_session.recv()).await {
            Ok(Some(event)) => event,
            Ok(None) => break,
            Err(_) => {
                log.timed_out = true;
                break;
            }
        };
        let at = start.elapsed();
        let listening =
            matches!(&event, AgentEvent::State { agent_state, .. } if agent_state == "listening");
        let ended = matches!(&event, AgentEvent::SessionEnded { .. });
        log.heard.push(HeardEvent { at, event });
        if ended {
            break;
        }
        if listening {
            if !think.is_zero() {
                tokio::time::sleep(think).await;
            }
            let next = match lines.next() {
                Some(line) => CallerEvent::User {
                    text: line.replace("{email}", email).replace("{choice}", choice),
                },
                None => CallerEvent::Hangup,
            };
            if transport.to_session.send(next).await.is_err() {
                break;
            }
        }
    }
    log
}

static LAG: Mutex<Vec<f64>> = Mutex::new(Vec::new());

/// Event-loop lag: how late a 10 ms timer fires, sampled for the whole run.
async fn measure_lag() {
    if let Ok(mut lag) = LAG.lock() {
        lag.clear();
    }
    let period = Duration::from_millis(10);
    loop {
        let asked = Instant::now();
        tokio::time::sleep(period).await;
        let late = asked.elapsed().saturating_sub(period).as_secs_f64() * 1000.0;
        if let Ok(mut lag) = LAG.lock() {
            lag.push(late);
        }
    }
}
