//! Resumable conversations on a real Redis (required; see `fleet_support.rs`):
//! a call whose worker is shut down, or whose session dies, continues on a
//! new session with a new fleet instance on the same key prefix — no second
//! greeting, the signals already given remembered, the transcript carried
//! on with every tool call paired. And while Redis hangs mid-call, every
//! turn still completes within its profile; the state lands once Redis is back.

#[path = "fleet_support.rs"]
mod support;

use std::time::Duration;

use support::*;
use tokio::sync::mpsc;
use tokio::time::Instant;
use voxguard::agent::{Agent, SessionJobHandler, Transports};
use voxguard::brain::understanding::Integration;
use voxguard::config::Config;
use voxguard::fleet::{BackendKind, Fleet, FleetConfig};
use voxguard::recovery::{Entry, check_pairing};
use voxguard::session::resume::{self, SavedSession, SessionSaver};
use voxguard::session::{
    AgentEvent, AgentState, EndReason, Session, SessionEnv, SessionReport, TransportIo, io,
};
use voxguard::testbed::crm::CrmSimulator;
use voxguard::testbed::livekit::{LoopbackHandle, LoopbackServer};
use voxguard::worker::{Worker, WorkerConfig, WorkerHandle};

const MS: Duration = Duration::from_millis(1);

/// Discovery first (team size, volume, tools), then the lines that lead to a booking.
const DISCOVERY: [&str; 3] = [
    "Hi, we're a law firm, about eight people",
    "twelve hundred docs a month",
    "we use HubSpot",
];
const TO_BOOKING: [&str; 5] = [
    "this month ideally",
    "yes, that sounds great",
    "sure, it's {email}",
    "yes please",
    "the first one",
];

/// What the agent says when it opens a call, and when it asks what the
/// caller already answered in discovery.
const GREETINGS: [&str; 3] = ["thanks for trying", "welcome to your", "great to have you"];
const DISCOVERY_QUESTIONS: [&str; 6] = [
    "How many people on your team",
    "How big is the team",
    "how many documents do you process",
    "monthly document volume",
    "Which tools would you want it connected to",
    "What systems should the extracted data end up in",
];

async fn simulator() -> CrmSimulator {
    CrmSimulator::start(([127, 0, 0, 1], 0).into(), 7)
        .await
        .expect("simulator starts")
}

fn redis_fleet(prefix: &str) -> Fleet {
    Fleet::new(config(BackendKind::Redis, prefix)).expect("valid URL")
}

fn env(sim: &CrmSimulator, fleet: Fleet, seed: u64) -> SessionEnv {
    let config = Config::embedded_default().expect("embedded config");
    Agent::build(&config, sim.crm_endpoints(), seed, fleet)
        .expect("env")
        .sessions
}

fn booking_lines(sim: &CrmSimulator) -> Vec<String> {
    let email = &sim.fixtures().people[0].email;
    TO_BOOKING
        .iter()
        .map(|line| line.replace("{email}", email))
        .collect()
}

/// A scripted caller on a session's transport: speaks only once the agent
/// listens, and keeps everything it heard.
struct Caller {
    io: TransportIo,
    heard: Vec<AgentEvent>,
    /// The agent listens and has not been spoken to since.
    listening: bool,
}

impl Caller {
    fn new(io: TransportIo) -> Caller {
        Caller {
            io,
            heard: Vec::new(),
            listening: false,
        }
    }

    /// Wait until the agent listens (true) or the session ends (false).
    async fn until_listening(&mut self) -> bool {
        if self.listening {
            return true;
        }
        loop {
            let event = tokio::time::timeout(Duration::from_secs(30), self.io.from_session.recv())
                .await
                .expect("the agent answers within 30 s");
            let Some(event) = event else { return false };
            let listening = matches!(&event, AgentEvent::State { agent_state, .. } if *agent_state == AgentState::Listening);
            let ended = matches!(&event, AgentEvent::SessionEnded { .. });
            self.heard.push(event);
            if ended {
                return false;
            }
            if listening {
                self.listening = true;
                return true;
            }
        }
    }

    /// Say `line` once the agent listens; returns how long the agent took
    /// from the line to listening again (or to ending the call).
    async fn say(&mut self, line: &str) -> Duration {
        assert!(
            self.until_listening().await,
            "the call ended before {line:?}"
        );
        self.listening = false;
        let start = Instant::now();
        self.io
            .to_session
            .send(voxguard::session::CallerEvent::User { text: line.into() })
            .await
            .expect("the session hears the caller");
        self.until_listening().await;
        start.elapsed()
    }

    /// Every spoken line heard, as (kind, text).
    fn spoken(&self) -> Vec<(String, String)> {
        self.heard
            .iter()
            .filter_map(|event| match event {
                AgentEvent::Speech { text, kind, .. } => {
                    Some((kind.as_str().to_string(), text.clone()))
                }
                _ => None,
            })
            .collect()
    }
}

/// The room's saved turn count as another worker would load it.
async fn saved_turns(fleet: &Fleet, room: &str) -> Option<u64> {
    resume::load(fleet, room).await.map(|saved| saved.turns)
}

/// Poll until the room's saved state has `turns` turns (at most `limit`).
async fn until_saved(fleet: &Fleet, room: &str, turns: u64, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if saved_turns(fleet, room).await == Some(turns) {
            return true;
        }
        tokio::time::sleep(10 * MS).await;
    }
    false
}

async fn until_forgotten(fleet: &Fleet, room: &str, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if fleet.load_session(room).await.is_none() {
            return true;
        }
        tokio::time::sleep(10 * MS).await;
    }
    false
}

/// A production worker on the loopback dispatcher, with its own fleet
/// instance on the shared prefix.
struct FleetWorker {
    handle: WorkerHandle,
    task: tokio::task::JoinHandle<Result<(), voxguard::worker::WorkerError>>,
    transports: Transports,
    reports: mpsc::UnboundedReceiver<(String, SessionReport)>,
}

impl FleetWorker {
    async fn start(loopback: &LoopbackHandle, env: SessionEnv) -> FleetWorker {
        let lk = loopback.config();
        let mut worker_config =
            WorkerConfig::new(loopback.url(), lk.api_key.clone(), lk.api_secret.clone());
        worker_config.agent_name = "voxguard-resume".into();
        let transports = Transports::default();
        let (reports_tx, reports) = mpsc::unbounded_channel();
        let fleet = env.fleet.clone();
        let handler = std::sync::Arc::new(SessionJobHandler {
            env,
            transports: transports.clone(),
            reports: Some(reports_tx),
            voice: None,
        });
        let worker = Worker::new(worker_config, handler).expect("worker config");
        let handle = worker.handle();
        handle.attach_fleet(fleet);
        let registrations = handle.registrations();
        let task = tokio::spawn(worker.run());
        assert!(
            handle
                .wait_registrations(registrations + 1, Duration::from_secs(10))
                .await,
            "the worker registers with the loopback dispatcher"
        );
        FleetWorker {
            handle,
            task,
            transports,
            reports,
        }
    }
}

fn assert_resumed_without_greeting(caller: &Caller, report: &SessionReport) {
    let spoken = caller.spoken();
    let (kind, first) = spoken.first().expect("the agent spoke");
    assert_eq!(
        kind, "recovered",
        "it opens with the resume line: {spoken:?}"
    );
    assert!(
        first.contains("on my end") || first.contains("on my side"),
        "the resume line owns the gap: {first}"
    );
    assert!(
        first.contains("Where were we"),
        "and picks up the thread: {first}"
    );
    for (_, text) in &spoken {
        assert!(
            !GREETINGS.iter().any(|g| text.contains(g)),
            "greeted again: {text}"
        );
        assert!(
            !DISCOVERY_QUESTIONS.iter().any(|q| text.contains(q)),
            "asked again what the caller already said: {text}"
        );
    }
    let signals = &report.state.signals;
    assert_eq!(signals.team_size, Some(8), "{signals:?}");
    assert_eq!(signals.monthly_volume, Some(1200), "{signals:?}");
    assert!(
        signals
            .integrations
            .as_ref()
            .is_some_and(|known| known.contains(&Integration::HubSpot)),
        "{signals:?}"
    );
    let first_user = report.state.transcript.iter().find_map(|e| match e {
        Entry::User { text } => Some(text.as_str()),
        _ => None,
    });
    assert_eq!(
        first_user,
        Some(DISCOVERY[0]),
        "the transcript carries on from the first session"
    );
    assert_eq!(check_pairing(&report.state.transcript), Ok(()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_cut_off_by_a_worker_shutdown_resumes_on_the_next_worker_without_greeting_again() {
    let prefix = unique_prefix("resume-worker");
    require_redis().await;
    let sim = simulator().await;
    let loopback = LoopbackServer::start(([127, 0, 0, 1], 0).into())
        .await
        .expect("loopback starts");
    let room = format!("call-{:08x}", rand::random::<u32>());
    let probe = redis_fleet(&prefix);

    let first = FleetWorker::start(&loopback, env(&sim, redis_fleet(&prefix), 1)).await;
    let mut caller = Caller::new(first.transports.attach(&room));
    loopback
        .dispatch_job(&room, "caller")
        .await
        .expect("dispatched to the first worker");
    for line in DISCOVERY {
        caller.say(line).await;
    }
    assert!(
        until_saved(&probe, &room, 3, Duration::from_secs(2)).await,
        "three turns saved to Redis, got {:?}",
        saved_turns(&probe, &room).await
    );
    let greeted = caller.spoken();
    assert!(
        greeted
            .iter()
            .any(|(_, text)| GREETINGS.iter().any(|g| text.contains(g))),
        "the first session greets: {greeted:?}"
    );

    // A redeploy: the worker stops at once, mid-call, its sessions aborted.
    first.handle.shutdown_now();
    tokio::time::timeout(Duration::from_secs(10), first.task)
        .await
        .expect("the first worker stops")
        .expect("worker task")
        .expect("worker stops cleanly");
    tokio::time::sleep(200 * MS).await;
    assert_eq!(
        saved_turns(&probe, &room).await,
        Some(3),
        "a stopped call keeps its state"
    );

    let mut second = FleetWorker::start(&loopback, env(&sim, redis_fleet(&prefix), 2)).await;
    let only_second = async {
        while loopback.connected_workers().len() != 1 {
            tokio::time::sleep(10 * MS).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), only_second)
        .await
        .expect("only the second worker is connected");
    let mut caller = Caller::new(second.transports.attach(&room));
    loopback
        .dispatch_job(&room, "caller")
        .await
        .expect("dispatched to the second worker");
    for line in booking_lines(&sim) {
        caller.say(&line).await;
    }
    caller.until_listening().await;
    let (reported_room, report) =
        tokio::time::timeout(Duration::from_secs(10), second.reports.recv())
            .await
            .expect("the second session reports")
            .expect("report");
    assert_eq!(reported_room, room);

    assert_resumed_without_greeting(&caller, &report);
    assert_eq!(report.ended, EndReason::AgentClosed, "{report:?}");
    assert_eq!(
        report.turns, 8,
        "three turns before the shutdown, five after"
    );
    assert_eq!(sim.bookings().len(), 1, "exactly one meeting booked");
    assert!(
        until_forgotten(&probe, &room, Duration::from_secs(2)).await,
        "a call that ended normally leaves no saved state"
    );
    second.handle.shutdown_now();
    cleanup(&prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_that_dies_mid_call_resumes_from_its_last_committed_turn() {
    let prefix = unique_prefix("resume-crash");
    require_redis().await;
    let sim = simulator().await;
    let room = "room-crash";

    let fleet_a = redis_fleet(&prefix);
    let env_a = env(&sim, fleet_a.clone(), 3);
    let ttl = fleet_a.config().state_ttl;
    let (session_io, transport) = io::channel(256);
    let first = tokio::spawn(
        Session::new(env_a, session_io.outbound, 3)
            .saving_to(SessionSaver::start(fleet_a, room, ttl))
            .run(session_io.inbound),
    );
    let mut caller = Caller::new(transport);
    for line in DISCOVERY {
        caller.say(line).await;
    }
    let probe = redis_fleet(&prefix);
    assert!(until_saved(&probe, room, 3, Duration::from_secs(2)).await);
    first.abort();
    assert!(first.await.unwrap_err().is_cancelled());

    let fleet_b = redis_fleet(&prefix);
    let saved: SavedSession = resume::load(&fleet_b, room)
        .await
        .expect("the dead session's state is in Redis");
    assert_eq!(saved.turns, 3);
    assert_eq!(saved.state.signals.team_size, Some(8));
    let env_b = env(&sim, fleet_b.clone(), 4);
    let (session_io, transport) = io::channel(256);
    let second = tokio::spawn(
        Session::resume(env_b, session_io.outbound, 4, saved)
            .saving_to(SessionSaver::start(fleet_b, room, ttl))
            .run(session_io.inbound),
    );
    let mut caller = Caller::new(transport);
    for line in booking_lines(&sim) {
        caller.say(&line).await;
    }
    caller.until_listening().await;
    let report = tokio::time::timeout(Duration::from_secs(10), second)
        .await
        .expect("the resumed session ends")
        .expect("no panic");

    assert_resumed_without_greeting(&caller, &report);
    assert_eq!(report.ended, EndReason::AgentClosed);
    assert_eq!(report.turns, 8);
    assert!(
        report
            .tool_calls
            .iter()
            .any(|t| t.tool == "chilipiper_book" && t.outcome == "ok"),
        "{:?}",
        report.tool_calls
    );
    assert!(until_forgotten(&probe, room, Duration::from_secs(2)).await);
    cleanup(&prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_redis_hangs_mid_call_every_turn_completes_within_its_profile_and_the_state_lands_once_it_is_back()
 {
    let prefix = unique_prefix("resume-outage");
    require_redis().await;
    let sim = simulator().await;
    let proxy = RedisProxy::start().await;
    let room = "room-outage";
    // A long Redis timeout makes any Redis wait on a turn's path show: a
    // turn that waited on a hung Redis would take a second.
    let fleet = Fleet::new(FleetConfig {
        url: proxy.url.clone(),
        redis_timeout: 1000 * MS,
        ..config(BackendKind::Redis, &prefix)
    })
    .expect("valid URL");
    fleet
        .sync_now()
        .await
        .expect("the fleet is reachable at first");
    let env = env(&sim, fleet.clone(), 5);
    let budgets: std::collections::HashMap<String, Duration> = env
        .bindings
        .iter()
        .map(|(service, binding)| (service.clone(), binding.timing.budget))
        .collect();
    let salesforce = env.bindings["salesforce"].guard.breaker().clone();
    let (session_io, transport) = io::channel(256);
    let ttl = fleet.config().state_ttl;
    let session = tokio::spawn(
        Session::new(env, session_io.outbound, 5)
            .saving_to(SessionSaver::start(fleet.clone(), room, ttl))
            .run(session_io.inbound),
    );
    let mut caller = Caller::new(transport);
    let probe = redis_fleet(&prefix);
    caller.say(DISCOVERY[0]).await;
    assert!(until_saved(&probe, room, 1, Duration::from_secs(2)).await);

    proxy.set(ProxyMode::Stall);
    let mut turns = Vec::new();
    for line in DISCOVERY[1..].iter().map(|l| l.to_string()).chain(
        booking_lines(&sim)[..4].iter().cloned(), // up to the slots, with the lookups
    ) {
        let heard_before = caller.heard.len();
        let took = caller.say(&line).await;
        let tools = caller.heard[heard_before..]
            .iter()
            .filter(|e| matches!(e, AgentEvent::ToolStarted(_)))
            .count();
        turns.push((line, took, tools));
    }
    for (line, took, tools) in &turns {
        if *tools == 0 {
            assert!(
                *took < 300 * MS,
                "a turn without tools took {took:?} while Redis hung: {line:?}"
            );
        }
    }
    assert!(
        turns.iter().any(|(_, _, tools)| *tools > 0),
        "tools ran while Redis hung: {turns:?}"
    );
    assert_eq!(
        saved_turns(&probe, room).await,
        Some(1),
        "nothing reached Redis while it hung"
    );

    proxy.set(ProxyMode::Pass);
    let rejoined = within(Duration::from_secs(10), || fleet.health().connected).await;
    assert!(
        rejoined.is_some(),
        "the fleet never reconnected: {:?}",
        fleet.health()
    );
    assert!(
        until_saved(&probe, room, 7, Duration::from_secs(5)).await,
        "the latest state lands once Redis is back, got {:?}",
        saved_turns(&probe, room).await
    );
    // Shared breakers work again: an operator's open on this worker reaches another.
    let other = breaker("salesforce", 5000 * MS);
    probe.share_breaker(other.clone());
    probe.sync_now().await.expect("probe joins");
    salesforce.force_open("test: salesforce is down");
    let took = within(1000 * MS, || other.try_acquire().is_err())
        .await
        .expect("the open reaches the other worker");
    assert!(
        took < 100 * MS,
        "the other worker failed fast only after {took:?}"
    );
    salesforce.force_closed("test: done");

    caller
        .io
        .to_session
        .send(voxguard::session::CallerEvent::Hangup)
        .await
        .expect("hang up");
    let report = tokio::time::timeout(Duration::from_secs(10), session)
        .await
        .expect("the session ends")
        .expect("no panic");
    assert_eq!(report.ended, EndReason::CallerLeft);
    assert!(!report.tool_calls.is_empty());
    for call in &report.tool_calls {
        let budget = budgets[&call.service];
        assert!(
            call.resolved <= budget + 50 * MS,
            "{} resolved after {:?} (budget {budget:?})",
            call.tool,
            call.resolved
        );
        assert!(
            call.first_heard <= 750 * MS,
            "{} first heard after {:?}",
            call.tool,
            call.first_heard
        );
    }
    assert_eq!(check_pairing(&report.state.transcript), Ok(()));
    assert!(
        until_forgotten(&probe, room, Duration::from_secs(2)).await,
        "the caller left: the state is forgotten"
    );
    cleanup(&prefix).await;
}

#[tokio::test]
async fn a_resumed_call_keeps_its_failures_in_a_row_and_takes_this_workers_threshold() {
    let sim = simulator().await;
    let fleet = Fleet::new(FleetConfig::default()).expect("memory fleet");
    let env = env(&sim, fleet, 5);
    let threshold = env.handoff_after;
    assert!(
        threshold >= 2,
        "the embedded config hands off after several failures"
    );

    let mut saved = SavedSession::fresh(5);
    let mut failures = voxguard::recovery::FailurePolicy::new(threshold + 10);
    for _ in 0..threshold - 1 {
        failures.record_failure("salesforce");
    }
    saved.failures = Some(failures);

    let (session_io, _transport) = io::channel(16);
    let resumed = Session::resume(env, session_io.outbound, 5, saved).snapshot();
    let carried = resumed
        .failures
        .expect("the failures are part of the saved state");
    assert_eq!(carried.consecutive_failures(), threshold - 1);
    assert_eq!(carried.service("salesforce").total_failures, threshold - 1);
    assert_eq!(
        carried.handoff_after(),
        threshold,
        "this worker's threshold"
    );
    let mut next = carried.clone();
    assert_eq!(
        next.record_failure("salesforce"),
        voxguard::recovery::SessionAction::HandOff,
        "one more failure after the resume hands the caller to a person"
    );
    sim.shutdown().await;
}
