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

use crate::agent::{
    Agent, CallObserver, SessionJobHandler, Transports, VoiceStack, breaker_name, worker_config,
};
use crate::config::Config;
use crate::config::CredentialRef;
use crate::config::profile_cli::{LatencySample, SampleOutcome};
use crate::fleet::{Fleet, FleetConfig};
use crate::resilience::BreakerEvent;
use crate::secret::Secret;
use crate::session::{AgentEvent, SessionReport};
use crate::testbed::speech::SpeechSimCredentials;
use crate::voice::call::VoiceReport;
use crate::worker::Worker;

use super::audio::{AudioCall, AudioChecked};
use super::boundary::{self, Peer, PeerLink};
use super::caller::{CHOICES, Caller, script};
use super::checks::{CallCheck, CallLog, Checked, Expectations};
use super::measure::{Counted, LagProbe, SessionGauge, cpu_seconds_of, rss_bytes};
use super::peer::{Media, PeerOptions};
use super::report::{AudioFigures, FleetUse, LatencySummary, SimulationReport};
use super::voice::{BargeIn, VoiceCallPlan, unix_us};

/// The scenarios `voxguard simulate --scenario` accepts: faults in the
/// CRMs (text or audio), then faults in speech, the model and the network
/// (audio only).
pub const SCENARIOS: [&str; 17] = [
    "healthy",
    "slow",
    "errors",
    "hang",
    "flaky",
    "rate-limited",
    "malformed",
    "outage-recovery",
    "mixed",
    "stt-drop",
    "stt-down",
    "tts-slow",
    "tts-hang",
    "tts-down",
    "llm-hang",
    "packet-loss",
    "barge-in",
];

/// The scenarios that break something only a spoken call has.
pub const VOICE_SCENARIOS: [&str; 8] = [
    "stt-drop",
    "stt-down",
    "tts-slow",
    "tts-hang",
    "tts-down",
    "llm-hang",
    "packet-loss",
    "barge-in",
];

/// The CRM simulator's preset for `scenario` (voice scenarios keep the CRMs healthy).
fn crm_preset(scenario: &str) -> &str {
    if VOICE_SCENARIOS.contains(&scenario) {
        "healthy"
    } else {
        scenario
    }
}

/// The speech simulator's preset for `scenario`.
fn speech_preset(scenario: &str) -> &str {
    match scenario {
        "stt-drop" | "stt-down" | "tts-slow" | "tts-hang" | "tts-down" | "llm-hang" => scenario,
        _ => "healthy",
    }
}

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
    /// Text calls, or callers that speak and listen over WebRTC.
    pub media: Media,
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
            media: Media::Text,
        })
    }

    /// The plan with `media`; a voice scenario needs audio.
    pub fn with_media(mut self, media: Media) -> Result<SimulationPlan, String> {
        if media == Media::Text && VOICE_SCENARIOS.contains(&self.scenario.as_str()) {
            return Err(format!(
                "scenario `{}` breaks speech, which text calls do not have: add --media audio",
                self.scenario
            ));
        }
        self.media = media;
        Ok(self)
    }

    /// How the other side runs for this plan: `packet-loss` drops 5 % of
    /// the forwarded audio and delays it by up to 40 ms.
    fn peer_options(&self) -> PeerOptions {
        let lossy = self.media == Media::Audio && self.scenario == "packet-loss";
        PeerOptions {
            seed: self.seed,
            media: self.media,
            media_loss: if lossy { 0.05 } else { 0.0 },
            media_jitter: if lossy {
                Duration::from_millis(40)
            } else {
                Duration::ZERO
            },
        }
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
    /// Spoken calls: what the agent's side saw of each, and the audio checks.
    audio: Option<Arc<AudioCalls>>,
    audio_checked: Mutex<AudioChecked>,
    barge_in: bool,
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
    let setup =
        boundary::start(&plan.peer, plan.peer_options(), crm_preset(&plan.scenario)).await?;
    let mut holder = setup.holder;
    if setup.emails.is_empty() {
        holder.stop().await;
        return Err("the CRM simulator has no people to call about".into());
    }
    // llm-hang: the model leads, on the speech simulator's chat completions.
    let model_key = match (plan.scenario.as_str(), &setup.speech_addr) {
        ("llm-hang", Some(speech)) => match ModelKey::write() {
            Ok(key) => Some((key, speech.clone())),
            Err(err) => {
                holder.stop().await;
                return Err(err);
            }
        },
        _ => None,
    };
    let led = model_key.as_ref().map(|(key, speech)| {
        let mut led = config.clone();
        led.llm.enabled = true;
        led.llm.base_url = format!("http://{speech}/v1");
        led.llm.api_key = Some(CredentialRef::File(key.path.clone()));
        led
    });
    let agent = match Agent::build(
        led.as_ref().unwrap_or(config),
        setup.endpoints,
        plan.seed,
        fleet,
    ) {
        Ok(agent) => agent,
        Err(err) => {
            holder.stop().await;
            return Err(err.to_string());
        }
    };
    let transitions = record_transitions(&agent);
    let env = agent.sessions.clone();
    let expectations = Expectations::new(&env.phrasebook, &env.bindings);
    let (voice, audio) = match (plan.media, &setup.speech_addr) {
        (Media::Text, _) => (None, None),
        (Media::Audio, None) => {
            holder.stop().await;
            return Err("the simulator peer runs no speech simulator".into());
        }
        (Media::Audio, Some(speech)) => {
            let observer = Arc::new(AudioCalls {
                expectations: expectations.clone(),
                calls: Mutex::default(),
            });
            // A run long enough for its CPU figure to matter starts once
            // every voice has every line (rendering is not the calls' cost);
            // a short one once the first voice has them.
            let whole_cache = plan.calls >= WHOLE_CACHE_CALLS;
            match speaking_agent(
                config,
                &agent,
                speech,
                &plan.scenario,
                observer.clone(),
                whole_cache,
            )
            .await
            {
                Ok(voice) => (Some(voice), Some(observer)),
                Err(err) => {
                    holder.stop().await;
                    return Err(err);
                }
            }
        }
    };

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
            voice: voice.clone(),
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
        expectations,
        waiting_reports: Mutex::default(),
        checked: Mutex::default(),
        emails: setup.emails,
        think: plan.think_time,
        trace: std::env::var_os("VOXGUARD_SIM_TRACE").is_some(),
        audio,
        audio_checked: Mutex::default(),
        barge_in: plan.scenario == "barge-in",
    });
    let router = tokio::spawn(route_reports(reports_rx, Arc::clone(&run)));
    let cpu_before = cpu_seconds_of("self");
    let peer_cpu_before = holder.peer_cpu_seconds();
    let lag = LagProbe::start();
    let driven = tokio::select! {
        driven = drive_calls(plan, &run, started, progress) => driven,
        died = holder.exited() => Err(died),
    };
    let lag_samples = lag.finish().await;
    let cpu_used = cpu_seconds_of("self")
        .zip(cpu_before)
        .map(|(after, before)| after - before);
    let peer_cpu_used = holder
        .peer_cpu_seconds()
        .zip(peer_cpu_before)
        .map(|(after, before)| after - before);
    let rss_peak = rss_bytes().map(|(_, peak)| peak).unwrap_or(0);
    let peer_rss_peak = holder.peer_rss_peak();
    router.abort();
    worker_handle.shutdown_now();
    worker_task.abort();
    holder.stop().await;
    let panics = driven?;

    let checked = std::mem::take(&mut *lock(&run.checked));
    let audio = (plan.media == Media::Audio).then(|| {
        let heard = std::mem::take(&mut *lock(&run.audio_checked));
        AudioFigures::of(&heard, cpu_used, peer_cpu_used, voice.as_deref())
    });
    drop(voice);
    let report = SimulationReport {
        media: plan.media.as_str().into(),
        audio,
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
    if let Some(audio) = &run.audio {
        return one_spoken_call(run, audio, room, index).await;
    }
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

/// One spoken call: the caller (in the peer) joins, says its lines and
/// leaves; the call is checked on what it heard, on what the agent's side
/// saw (tool calls, lines) and on the session's and voice's reports.
async fn one_spoken_call(run: &Run, audio: &AudioCalls, room: String, index: usize) {
    let (report_tx, report_rx) = oneshot::channel();
    lock(&run.waiting_reports).insert(room.clone(), report_tx);
    let (voice_tx, voice_rx) = oneshot::channel();
    lock(&audio.calls).insert(
        room.clone(),
        AudioWatch {
            started: Instant::now(),
            check: CallCheck::default(),
            tool_starts: Vec::new(),
            voice: None,
            done: Some(voice_tx),
        },
    );
    let barge_in = run.barge_in.then(|| {
        // Half the callers really interrupt; the other half hum over the agent.
        if index % 2 == 0 {
            BargeIn::Real { line: 1 }
        } else {
            BargeIn::False { line: 1 }
        }
    });
    let plan = VoiceCallPlan {
        room: room.clone(),
        identity: CALLER_IDENTITY.into(),
        lines: script(
            &run.emails[index % run.emails.len()],
            CHOICES[index % CHOICES.len()],
        ),
        think_ms: run.think.max(SPOKEN_THINK).as_millis() as u64,
        barge_in,
    };
    let record = run.peer.voice_call(&plan).await;
    let report = if record.error.is_none() || record.dispatched_us > 0 {
        tokio::time::timeout(REPORT_WAIT, report_rx)
            .await
            .ok()
            .and_then(Result::ok)
    } else {
        None
    };
    lock(&run.waiting_reports).remove(&room);
    // The voice ends soon after the session does.
    let _ = tokio::time::timeout(REPORT_WAIT, voice_rx).await;
    let watch = lock(&audio.calls).remove(&room);
    let (check, tool_starts, voice) = match watch {
        Some(watch) => (watch.check, watch.tool_starts, watch.voice),
        None => (CallCheck::default(), Vec::new(), None),
    };
    if let Some(error) = &record.error {
        tracing::warn!(room = %room, error = %error, "spoken call failed");
    }
    if run.trace {
        let heard: Vec<&str> = report
            .iter()
            .flat_map(|r| r.state.transcript.iter())
            .filter_map(|entry| match entry {
                crate::recovery::Entry::User { text } => Some(text.as_str()),
                _ => None,
            })
            .collect();
        eprintln!(
            "call {room}: caller {}\n  tool starts {tool_starts:?}\n  the session heard {heard:?}",
            serde_json::to_string(&record).unwrap_or_default()
        );
    }
    let log = CallLog {
        room,
        heard: check,
        trace: None,
        timed_out: record.timed_out,
        dispatch_error: record.error.clone(),
    };
    lock(&run.checked).add_call(&log, report.as_ref(), &run.expectations);
    lock(&run.audio_checked).add(AudioCall {
        record: &record,
        tool_starts: &tool_starts,
        session: report.as_ref(),
        voice: voice.as_ref(),
    });
}

/// The shortest pause before a spoken line (people take a breath).
const SPOKEN_THINK: Duration = Duration::from_millis(250);

/// What the agent's side saw of the spoken calls in progress, by room.
struct AudioCalls {
    expectations: Expectations,
    calls: Mutex<HashMap<String, AudioWatch>>,
}

struct AudioWatch {
    started: Instant,
    check: CallCheck,
    tool_starts: Vec<u64>,
    voice: Option<VoiceReport>,
    done: Option<oneshot::Sender<()>>,
}

impl CallObserver for AudioCalls {
    fn event(&self, room: &str, event: &AgentEvent) {
        let mut calls = lock(&self.calls);
        let Some(watch) = calls.get_mut(room) else {
            return;
        };
        if matches!(event, AgentEvent::ToolStarted(_)) {
            watch.tool_starts.push(unix_us());
        }
        let at = watch.started.elapsed();
        watch.check.hear(event, at, &self.expectations);
    }

    fn finished(&self, room: &str, report: Option<VoiceReport>) {
        let mut calls = lock(&self.calls);
        if let Some(watch) = calls.get_mut(room) {
            watch.voice = report;
            if let Some(done) = watch.done.take() {
                let _ = done.send(());
            }
        }
    }
}

/// The speech simulator's key for its chat completions, in a file of its
/// own for the run (`[llm] api_key` takes a variable or a file); removed
/// when the run ends.
struct ModelKey {
    path: std::path::PathBuf,
}

impl ModelKey {
    fn write() -> Result<ModelKey, String> {
        let path = std::env::temp_dir().join(format!(
            "voxguard-simulate-{}-{:08x}.key",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::write(&path, SpeechSimCredentials::default().openai.expose()).map_err(|e| {
            format!(
                "cannot write the simulated model's key to {}: {e}",
                path.display()
            )
        })?;
        Ok(ModelKey { path })
    }
}

impl Drop for ModelKey {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Spoken runs of at least this many calls wait for the whole phrase cache.
const WHOLE_CACHE_CALLS: usize = 20;

/// How long the phrase cache may take to render before a spoken run starts.
const PHRASE_CACHE_LIMIT: Duration = Duration::from_secs(120);

/// The agent's speech for a spoken run: recognizers and voices on the
/// speech simulator at `speech` (espeak-ng as the last voice, except when
/// every voice is to fail), each call watched by `observer`. Returns once
/// the phrase cache has rendered, with the scenario's speech faults on.
async fn speaking_agent(
    config: &Config,
    agent: &Agent,
    speech: &str,
    scenario: &str,
    observer: Arc<AudioCalls>,
    whole_cache: bool,
) -> Result<Arc<VoiceStack>, String> {
    const DEEPGRAM: &str = "VOXGUARD_SIM_DEEPGRAM_KEY";
    const OPENAI: &str = "VOXGUARD_SIM_OPENAI_KEY";
    const CARTESIA: &str = "VOXGUARD_SIM_CARTESIA_KEY";
    let mut config = config.clone();
    let s = &mut config.speech;
    s.stt = vec!["deepgram".into(), "openai".into()];
    s.tts = vec!["openai".into(), "cartesia".into()];
    if scenario != "tts-down" {
        s.tts.push("espeak".into());
    }
    s.deepgram.url = format!("ws://{speech}/v1/listen");
    s.deepgram.credentials = CredentialRef::Env(DEEPGRAM.into());
    s.openai_stt.base_url = format!("http://{speech}/v1");
    s.openai_stt.credentials = CredentialRef::Env(OPENAI.into());
    s.openai_tts.base_url = format!("http://{speech}/v1");
    s.openai_tts.credentials = CredentialRef::Env(OPENAI.into());
    s.cartesia.base_url = format!("ws://{speech}");
    s.cartesia.credentials = CredentialRef::Env(CARTESIA.into());
    let keys = SpeechSimCredentials::default();
    let env = |name: &str| match name {
        DEEPGRAM => Some(keys.deepgram.expose().to_owned()),
        OPENAI => Some(keys.openai.expose().to_owned()),
        CARTESIA => Some(keys.cartesia.expose().to_owned()),
        _ => None,
    };
    // The simulator's voices sound the same whatever port it is on: their
    // saved lines serve every run.
    let (mut settings, absent) = config.speech_settings_with(&env);
    settings.phrase_store = settings
        .phrase_store
        .map(|store| store.alias(speech, "speech-simulator"));
    let mut stack = VoiceStack::from_settings(
        &config,
        settings,
        absent,
        &agent.registry,
        &agent.sessions.phrasebook,
        &agent.display_names(),
    )
    .map_err(|e| e.to_string())?;
    stack.media.loopback = crate::room::rtc::Loopback::Include;
    stack.observer = Some(observer);
    // Calls start once the first voice has every line (a voice outage then
    // finds the recovery lines cached), and once every voice has them if
    // that comes within the limit.
    let deadline = Instant::now() + PHRASE_CACHE_LIMIT;
    let first_voice_done = |report: crate::speech::CacheReport| {
        report.complete
            || report
                .rendered
                .first()
                .is_some_and(|(_, done)| *done >= report.phrases)
    };
    // Better every voice, so the run's CPU is the calls' and not the cache's.
    while !stack.cache_report().complete {
        if (!whole_cache || Instant::now() >= deadline) && first_voice_done(stack.cache_report()) {
            break;
        }
        if Instant::now() >= deadline + PHRASE_CACHE_LIMIT {
            return Err(format!(
                "the phrase cache did not render within {PHRASE_CACHE_LIMIT:?}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let faults = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| e.to_string())?
        .put(format!("http://{speech}/_sim/faults"))
        .json(&serde_json::json!({ "preset": speech_preset(scenario) }))
        .send()
        .await
        .map_err(|e| format!("the speech simulator did not take the faults: {e}"))?;
    if !faults.status().is_success() {
        return Err(format!(
            "the speech simulator refused the `{}` faults: {}",
            speech_preset(scenario),
            faults.text().await.unwrap_or_default()
        ));
    }
    Ok(Arc::new(stack))
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
