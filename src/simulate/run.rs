//! Driving simulated calls through the full stack: the CRM simulator with the
//! scenario's fault preset, the loopback LiveKit dispatcher, the production
//! worker, sessions, brain, ToolRunner and Guard — over real sockets.
//!
//! Each call is a scripted caller on the room's transport. The invariants are
//! checked on what the caller heard and on the session's final transcript,
//! not taken from the code under test. Each call is checked as soon as it
//! ends and then forgotten, so a long run holds what its running calls hold,
//! not the history of every call it made.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::time::Instant;

use crate::agent::{Agent, SessionJobHandler, Transports, breaker_name, worker_config};
use crate::config::Config;
use crate::config::profile_cli::{LatencySample, SampleOutcome};
use crate::fleet::{Fleet, FleetConfig};
use crate::resilience::BreakerEvent;
use crate::secret::Secret;
use crate::session::SessionReport;
use crate::worker::Worker;

use super::boundary::{self, Peer, PeerLink};
use super::caller::{CHOICES, Caller};
use super::checks::{CallLog, Checked, Expectations};
use super::measure::{Counted, LagProbe, SessionGauge, rss_bytes};
use super::report::{FleetUse, LatencySummary, SimulationReport};

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

/// The caller's identity in every simulated room.
const CALLER_IDENTITY: &str = "sim-caller";
/// How long a caller that finished waits for its session's report.
const REPORT_WAIT: Duration = Duration::from_secs(10);

/// What one run is asked to do.
#[derive(Debug, Clone)]
pub struct SimulationPlan {
    pub scenario: String,
    pub calls: usize,
    pub concurrency: usize,
    pub seed: u64,
    /// Pause between a caller hearing the agent listen and speaking again.
    pub think_time: Duration,
    /// Call starts are spread evenly over at least this long (a large run
    /// ramps up instead of dialling every call in the same instant).
    pub ramp: Duration,
    /// Where the CRM simulator and the LiveKit stand-in run; in this
    /// process unless asked (`voxguard simulate` runs them in a child).
    pub peer: Peer,
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
        if u32::try_from(calls).is_err() {
            return Err(format!(
                "--calls {calls} is more than one run can make (at most {})",
                u32::MAX
            ));
        }
        Ok(SimulationPlan {
            scenario: scenario.into(),
            calls,
            concurrency,
            seed,
            think_time: Duration::from_millis(20),
            ramp: Duration::ZERO,
            peer: Peer::InProcess,
        })
    }

    /// How long call starts are spread over: the asked ramp, and at least
    /// 16 s for outage-recovery, which needs calls before, during and after
    /// the outage.
    pub fn spread(&self) -> Duration {
        if self.scenario == "outage-recovery" {
            self.ramp.max(Duration::from_secs(16))
        } else {
            self.ramp
        }
    }
}

/// The outcome of a run, with the latency samples for `profile tune`.
pub struct SimulationOutput {
    pub report: SimulationReport,
    pub samples: Vec<LatencySample>,
}

/// Shared by every call of a run.
struct Run {
    peer: PeerLink,
    transports: Transports,
    expectations: Expectations,
    /// Sessions' reports are routed to the call waiting for its room.
    waiting_reports: Mutex<HashMap<String, oneshot::Sender<SessionReport>>>,
    checked: Mutex<Checked>,
    emails: Vec<String>,
    think: Duration,
    trace: bool,
}

/// How long deleting a run's fleet keys may take.
const FLEET_CLEANUP_LIMIT: Duration = Duration::from_secs(10);

/// Run the plan and check every call.
///
/// The run keeps its shared state under a key prefix of its own
/// (`voxguard-sim:<pid>-<random>`), never `[fleet] key_prefix`: runs on one
/// Redis cannot see each other's breakers, and a run pointed at production
/// Redis cannot trip production breakers. Its keys are deleted at the end.
pub async fn run(
    config: &Config,
    plan: &SimulationPlan,
    progress: impl Fn(usize, usize) + Send + Sync + 'static,
) -> Result<SimulationOutput, String> {
    let settings = FleetConfig {
        key_prefix: run_key_prefix(),
        ..config.fleet_settings()
    };
    let mut fleet_use = FleetUse {
        backend: settings.backend,
        key_prefix: settings.key_prefix.clone(),
        ..FleetUse::default()
    };
    let fleet = Fleet::new(settings).map_err(|e| format!("[fleet]: {e}"))?;
    let ran = run_on(config, plan, fleet.clone(), progress).await;
    match fleet.stop_and_purge(FLEET_CLEANUP_LIMIT).await {
        Ok(removed) => fleet_use.keys_removed = removed,
        Err(error) => fleet_use.cleanup_error = Some(error.to_string()),
    }
    ran.map(|mut output| {
        output.report.fleet = fleet_use;
        output
    })
}

/// A Redis key prefix no other run uses.
fn run_key_prefix() -> String {
    format!(
        "voxguard-sim:{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    )
}

async fn run_on(
    config: &Config,
    plan: &SimulationPlan,
    fleet: Fleet,
    progress: impl Fn(usize, usize) + Send + Sync + 'static,
) -> Result<SimulationOutput, String> {
    let started = Instant::now();
    let setup = boundary::start(&plan.peer, plan.seed, &plan.scenario).await?;
    let mut holder = setup.holder;
    if setup.emails.is_empty() {
        holder.stop().await;
        return Err("the CRM simulator has no people to call about".into());
    }
    let agent = match Agent::build(config, setup.endpoints, plan.seed, fleet) {
        Ok(agent) => agent,
        Err(err) => {
            holder.stop().await;
            return Err(err.to_string());
        }
    };
    let transitions = record_transitions(&agent);
    let env = agent.sessions.clone();

    let mut worker_config = worker_config(
        config,
        setup.livekit_url,
        setup.api_key,
        Secret::new(setup.api_secret),
    );
    worker_config.agent_name = "voxguard-simulate".into();
    // Headroom over the callers' concurrency: a session still winding down
    // after its caller hung up holds a slot for a moment.
    worker_config.max_sessions =
        u32::try_from(plan.concurrency.saturating_mul(2).saturating_add(8)).unwrap_or(u32::MAX);
    let transports = Transports::default();
    let (reports_tx, reports_rx) = mpsc::unbounded_channel::<(String, SessionReport)>();
    let gauge = Arc::new(SessionGauge::default());
    let handler = Arc::new(Counted {
        inner: SessionJobHandler {
            env: env.clone(),
            transports: transports.clone(),
            reports: Some(reports_tx),
            voice: None,
        },
        gauge: Arc::clone(&gauge),
    });
    let worker = match Worker::new(worker_config, handler) {
        Ok(worker) => worker,
        Err(err) => {
            holder.stop().await;
            return Err(err.to_string());
        }
    };
    let worker_handle = worker.handle();
    let worker_task = tokio::spawn(worker.run());
    let registered = tokio::select! {
        registered = worker_handle.wait_registrations(1, Duration::from_secs(10)) => Ok(registered),
        died = holder.exited() => Err(died),
    };
    if registered != Ok(true) {
        worker_task.abort();
        holder.stop().await;
        return Err(registered
            .err()
            .unwrap_or_else(|| "the worker did not register with the loopback dispatcher".into()));
    }

    let run = Arc::new(Run {
        peer: setup.link,
        transports,
        expectations: Expectations::new(&env.phrasebook, &env.bindings),
        waiting_reports: Mutex::default(),
        checked: Mutex::default(),
        emails: setup.emails,
        think: plan.think_time,
        trace: std::env::var_os("VOXGUARD_SIM_TRACE").is_some(),
    });
    let router = tokio::spawn(route_reports(reports_rx, Arc::clone(&run)));
    let lag = LagProbe::start();
    let driven = tokio::select! {
        driven = drive_calls(plan, &run, started, progress) => driven,
        died = holder.exited() => Err(died),
    };
    let lag_samples = lag.finish().await;
    let rss_peak = rss_bytes().map(|(_, peak)| peak).unwrap_or(0);
    let peer_rss_peak = holder.peer_rss_peak();
    router.abort();
    worker_handle.shutdown_now();
    worker_task.abort();
    holder.stop().await;
    let panics = driven?;

    let checked = std::mem::take(&mut *lock(&run.checked));
    let report = SimulationReport {
        scenario: plan.scenario.clone(),
        calls: plan.calls as u64,
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
        breaker_transitions: lock(&transitions).clone(),
        sessions_peak: gauge.peak() as u64,
        rss_peak_bytes: rss_peak,
        mode: plan.peer.mode().into(),
        peer_rss_peak_bytes: peer_rss_peak,
        seed: plan.seed,
        concurrency: plan.concurrency as u64,
        wall_ms: started.elapsed().as_secs_f64() * 1000.0,
        event_loop_lag_ms: LatencySummary::of(&lag_samples),
        sessions_failed: checked.sessions_missing + panics,
        fleet: FleetUse::default(),
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

/// Dials every call of the plan, at most `concurrency` at once, spread over
/// the plan's ramp; returns how many call tasks panicked.
async fn drive_calls(
    plan: &SimulationPlan,
    run: &Arc<Run>,
    started: Instant,
    progress: impl Fn(usize, usize) + Send + Sync + 'static,
) -> Result<u64, String> {
    let gate = Arc::new(Semaphore::new(plan.concurrency));
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let progress = Arc::new(progress);
    let mut calls = tokio::task::JoinSet::new();
    let spacing = plan
        .spread()
        .checked_div(plan.calls as u32)
        .unwrap_or_default();
    let mut panics = 0u64;
    for index in 0..plan.calls {
        let permit = Arc::clone(&gate)
            .acquire_owned()
            .await
            .map_err(|e| e.to_string())?;
        if !spacing.is_zero() {
            tokio::time::sleep_until(started + spacing * index as u32).await;
        }
        // Reap finished calls as we go so the set stays as small as the load.
        while let Some(finished) = calls.try_join_next() {
            panics += u64::from(finished.is_err_and(|e| e.is_panic()));
        }
        let (run, done, progress) = (Arc::clone(run), Arc::clone(&done), Arc::clone(&progress));
        let room = format!("sim-{}-{index}", plan.scenario);
        let total = plan.calls;
        calls.spawn(async move {
            one_call(&run, room, index).await;
            progress(
                done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1,
                total,
            );
            drop(permit);
        });
    }
    while let Some(finished) = calls.join_next().await {
        panics += u64::from(finished.is_err_and(|e| e.is_panic()));
    }
    Ok(panics)
}

/// One call from dial to checks: the caller talks, leaves the room, and the
/// call is checked against its session's report.
async fn one_call(run: &Run, room: String, index: usize) {
    let (report_tx, report_rx) = oneshot::channel();
    lock(&run.waiting_reports).insert(room.clone(), report_tx);
    let transport = run.transports.attach(&room);
    let caller = Caller {
        email: &run.emails[index % run.emails.len()],
        choice: CHOICES[index % CHOICES.len()],
        think: run.think,
        trace: run.trace,
    };
    let mut log = match run.peer.dispatch_job(&room, CALLER_IDENTITY).await {
        Ok(()) => caller.call(transport, &run.expectations).await,
        Err(err) => {
            run.transports.detach(&room);
            CallLog {
                dispatch_error: Some(err),
                ..CallLog::default()
            }
        }
    };
    log.room = room;
    run.peer
        .participant_leaves(&log.room, CALLER_IDENTITY)
        .await;
    let report = if log.dispatch_error.is_none() {
        tokio::time::timeout(REPORT_WAIT, report_rx)
            .await
            .ok()
            .and_then(Result::ok)
    } else {
        None
    };
    lock(&run.waiting_reports).remove(&log.room);
    if let Some(trace) = &log.trace {
        let mut lines = format!("call {}\n", log.room);
        for heard in trace {
            lines.push_str(&format!(
                "  {:>8.1} ms  {}\n",
                heard.at.as_secs_f64() * 1000.0,
                serde_json::to_string(&heard.event).unwrap_or_default()
            ));
        }
        eprint!("{lines}");
    }
    lock(&run.checked).add_call(&log, report.as_ref(), &run.expectations);
}

/// Hands each session's report to the call waiting for its room.
async fn route_reports(
    mut reports: mpsc::UnboundedReceiver<(String, SessionReport)>,
    run: Arc<Run>,
) {
    while let Some((room, report)) = reports.recv().await {
        if let Some(waiting) = lock(&run.waiting_reports).remove(&room) {
            let _ = waiting.send(report);
        }
    }
}

/// Every breaker transition of the run, per service, starting from the first state.
fn record_transitions(agent: &Agent) -> Arc<Mutex<BTreeMap<String, Vec<String>>>> {
    let transitions: Arc<Mutex<BTreeMap<String, Vec<String>>>> = Arc::default();
    let sink = Arc::clone(&transitions);
    agent
        .registry
        .subscribe(Arc::new(move |event: &BreakerEvent| {
            let mut map = lock(&sink);
            let list = map.entry(event.service.to_string()).or_default();
            if list.is_empty() {
                list.push(breaker_name(event.from).into());
            }
            list.push(breaker_name(event.to).into());
        }));
    transitions
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
