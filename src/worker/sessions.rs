//! The worker's local truth: which jobs it promised to take, which sessions
//! run, whether it is registered or draining. Availability is decided from
//! here in one short lock, and each accepted job runs as its own session task.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use livekit_protocol as proto;
use proto::worker_message::Message as WorkerMessage;
use serde::Serialize;
use tokio::runtime::Handle;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::config::WorkerConfig;
use super::job::{
    CancelReason, CancelTrigger, JobContext, JobError, JobResult, SharedHandler, cancel_pair,
};
use super::metrics;
use crate::fleet::{Fleet, FleetHealth};
use crate::room::{AGENT_STATE_ATTRIBUTE, RoomConnection};
use crate::session::AgentState;

/// How the worker presents itself to the server and the health endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerLoad {
    Available,
    Full,
}

/// A point-in-time view for `/worker` and tests.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkerSnapshot {
    pub worker_id: Option<String>,
    pub agent_name: String,
    pub active_jobs: usize,
    pub pending_jobs: usize,
    pub running_job_ids: Vec<String>,
    pub load: f32,
    pub status: WorkerLoad,
    pub draining: bool,
    pub connected: bool,
    /// The shared-state backend's health, when the worker runs in a fleet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fleet: Option<FleetHealth>,
    /// The services behind the agent (CRMs, model, speech providers).
    pub services: Vec<ServiceStatus>,
    /// Further reports the agent attached (e.g. its phrase audio cache).
    #[serde(flatten)]
    pub reports: std::collections::BTreeMap<&'static str, serde_json::Value>,
}

/// A named report `/worker` includes, made fresh for each request.
pub type ExtraReport = Arc<dyn Fn() -> serde_json::Value + Send + Sync>;

/// One service behind the agent, as `/worker` and `/metrics` show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceStatus {
    pub name: String,
    /// `false` when it has no credentials and is left out.
    pub configured: bool,
    /// Its circuit breaker's state (`closed`, `open`, `half_open`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub breaker: Option<&'static str>,
    /// What to set to configure it, when it is not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

/// Reports the services' current status when asked.
pub type ServiceReport = Arc<dyn Fn() -> Vec<ServiceStatus> + Send + Sync>;

struct RunningSession {
    cancel: CancelTrigger,
    task: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct Ledger {
    worker_id: Option<String>,
    connected: bool,
    draining: bool,
    /// Accepted in an availability answer, assignment not yet received.
    pending: HashMap<String, Instant>,
    running: HashMap<String, RunningSession>,
}

/// Shared between the connection task, the session tasks and the health server.
pub struct WorkerState {
    pub config: WorkerConfig,
    ledger: Mutex<Ledger>,
    /// Session status updates travel to the connection task through here, so a
    /// session never waits on the socket and updates survive a reconnect.
    outbound: mpsc::UnboundedSender<WorkerMessage>,
    /// Woken whenever a session ends.
    pub session_ended: Notify,
    /// Where sessions run: the caller's runtime, never the connection's thread.
    sessions_runtime: OnceLock<Handle>,
    /// Where the health server actually listens, once started.
    pub health_addr: OnceLock<std::net::SocketAddr>,
    /// The fleet whose health `/worker` and `/metrics` report.
    pub fleet: OnceLock<Fleet>,
    /// The services `/worker` and `/metrics` report.
    pub services: OnceLock<ServiceReport>,
    pub reports: Mutex<Vec<(&'static str, ExtraReport)>>,
}

impl WorkerState {
    pub fn new(config: WorkerConfig) -> (Arc<Self>, mpsc::UnboundedReceiver<WorkerMessage>) {
        let (outbound, outbound_rx) = mpsc::unbounded_channel();
        let state = Arc::new(Self {
            config,
            ledger: Mutex::default(),
            outbound,
            session_ended: Notify::new(),
            sessions_runtime: OnceLock::new(),
            health_addr: OnceLock::new(),
            fleet: OnceLock::new(),
            services: OnceLock::new(),
            reports: Mutex::default(),
        });
        (state, outbound_rx)
    }

    /// Sessions spawned from now on run on `runtime`.
    pub fn set_sessions_runtime(&self, runtime: Handle) {
        let _ = self.sessions_runtime.set(runtime);
    }

    fn spawn_session(&self, session: impl Future<Output = ()> + Send + 'static) -> JoinHandle<()> {
        match self.sessions_runtime.get() {
            Some(runtime) => runtime.spawn(session),
            None => tokio::spawn(session),
        }
    }

    fn ledger(&self) -> MutexGuard<'_, Ledger> {
        self.ledger
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Decides an availability request and, when accepting, reserves the slot.
    pub fn try_reserve(&self, job_id: &str) -> bool {
        let mut ledger = self.ledger();
        let in_use = ledger.pending.len() + ledger.running.len();
        let already = ledger.pending.contains_key(job_id) || ledger.running.contains_key(job_id);
        if ledger.draining || already || in_use >= self.config.max_sessions as usize {
            return false;
        }
        ledger.pending.insert(
            job_id.to_string(),
            Instant::now() + self.config.assignment_timeout,
        );
        true
    }

    /// Frees reservations whose assignment never came; returns how many.
    pub fn expire_reservations(&self, now: Instant) -> usize {
        let mut ledger = self.ledger();
        let before = ledger.pending.len();
        ledger.pending.retain(|_, deadline| *deadline > now);
        before - ledger.pending.len()
    }

    /// Turns a reservation into a running session; `false` when the job
    /// cannot be taken (no reservation and no free slot, or draining).
    fn claim(&self, job_id: &str, cancel: CancelTrigger) -> bool {
        let mut ledger = self.ledger();
        let reserved = ledger.pending.remove(job_id).is_some();
        let in_use = ledger.pending.len() + ledger.running.len();
        let free = !ledger.draining && in_use < self.config.max_sessions as usize;
        if ledger.running.contains_key(job_id) || !(reserved || free) {
            return false;
        }
        ledger
            .running
            .insert(job_id.to_string(), RunningSession { cancel, task: None });
        metrics::sessions_active(ledger.running.len());
        true
    }

    fn attach_task(&self, job_id: &str, task: JoinHandle<()>) {
        if let Some(session) = self.ledger().running.get_mut(job_id) {
            session.task = Some(task);
        }
    }

    fn finish(&self, job_id: &str) {
        let mut ledger = self.ledger();
        ledger.running.remove(job_id);
        metrics::sessions_active(ledger.running.len());
        drop(ledger);
        self.session_ended.notify_waiters();
    }

    pub fn drop_reservation(&self, job_id: &str) {
        self.ledger().pending.remove(job_id);
    }

    /// Asks one session to stop; `false` if no such session runs.
    pub fn cancel(&self, job_id: &str, reason: CancelReason) -> bool {
        match self.ledger().running.get(job_id) {
            Some(session) => {
                session.cancel.cancel(reason);
                true
            }
            None => false,
        }
    }

    pub fn cancel_all(&self, reason: CancelReason) {
        for session in self.ledger().running.values() {
            session.cancel.cancel(reason);
        }
    }

    /// Aborts every session task at once (immediate shutdown).
    pub fn abort_all(&self) {
        for session in self.ledger().running.values_mut() {
            if let Some(task) = session.task.take() {
                task.abort();
            }
        }
    }

    pub fn running_job_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.ledger().running.keys().cloned().collect();
        ids.sort();
        ids
    }

    pub fn is_idle(&self) -> bool {
        let ledger = self.ledger();
        ledger.running.is_empty() && ledger.pending.is_empty()
    }

    pub fn set_registered(&self, worker_id: Option<String>) {
        let mut ledger = self.ledger();
        ledger.connected = worker_id.is_some();
        if worker_id.is_some() {
            ledger.worker_id = worker_id;
        }
    }

    pub fn start_draining(&self) -> bool {
        let mut ledger = self.ledger();
        let first = !ledger.draining;
        ledger.draining = true;
        first
    }

    pub fn is_draining(&self) -> bool {
        self.ledger().draining
    }

    pub fn snapshot(&self) -> WorkerSnapshot {
        let ledger = self.ledger();
        let active = ledger.running.len();
        let capacity = self.config.max_sessions.max(1) as f32;
        let load = (active + ledger.pending.len()) as f32 / capacity;
        let full = ledger.draining || load >= self.config.load_full_threshold;
        let mut running_job_ids: Vec<String> = ledger.running.keys().cloned().collect();
        running_job_ids.sort();
        WorkerSnapshot {
            worker_id: ledger.worker_id.clone(),
            agent_name: self.config.agent_name.clone(),
            active_jobs: active,
            pending_jobs: ledger.pending.len(),
            running_job_ids,
            load: load.min(1.0),
            status: if full {
                WorkerLoad::Full
            } else {
                WorkerLoad::Available
            },
            draining: ledger.draining,
            connected: ledger.connected,
            fleet: self.fleet.get().map(Fleet::health),
            services: self
                .services
                .get()
                .map(|report| report())
                .unwrap_or_default(),
            reports: self
                .reports
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .map(|(name, report)| (*name, report()))
                .collect(),
        }
    }

    /// The UpdateWorkerStatus message for the current state.
    pub fn status_message(&self, seq: u64) -> WorkerMessage {
        let snapshot = self.snapshot();
        let status = match snapshot.status {
            WorkerLoad::Available => proto::WorkerStatus::WsAvailable,
            WorkerLoad::Full => proto::WorkerStatus::WsFull,
        };
        WorkerMessage::UpdateWorker(proto::UpdateWorkerStatus {
            status: Some(status as i32),
            load: snapshot.load,
            job_count: snapshot.active_jobs as u32,
            draining: snapshot.draining,
            seq,
        })
    }

    fn send_job_status(&self, job_id: &str, status: proto::JobStatus, error: String) {
        let update = proto::UpdateJobStatus {
            job_id: job_id.to_string(),
            status: status as i32,
            error,
        };
        // The receiver lives as long as the worker runs; after that nobody listens.
        let _ = self.outbound.send(WorkerMessage::UpdateJob(update));
    }
}

/// Starts a session for an assignment; returns `false` (after reporting the
/// job FAILED) when the worker cannot take it.
pub fn start_session(
    state: &Arc<WorkerState>,
    handler: SharedHandler,
    assignment: proto::JobAssignment,
) -> bool {
    let Some(job) = assignment.job else {
        tracing::warn!("assignment without a job ignored");
        return false;
    };
    let (cancel, signal) = cancel_pair();
    if !state.claim(&job.id, cancel) {
        tracing::warn!(job_id = %job.id, "assignment refused: no capacity or draining");
        state.send_job_status(
            &job.id,
            proto::JobStatus::JsFailed,
            "worker has no capacity for this job".into(),
        );
        metrics::job_finished("refused");
        return false;
    }
    let url = assignment
        .url
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| state.config.url.clone());
    let job_id = job.id.clone();
    // Boxed: the assignment's proto is ~1 KiB and waits in the session's
    // task until the room is joined.
    let job = Box::new(job);
    let task_state = Arc::clone(state);
    let task = state.spawn_session(async move {
        let job_id = job.id.clone();
        task_state.send_job_status(&job_id, proto::JobStatus::JsRunning, String::new());
        let result = run_session(&task_state, handler, job, assignment.token, url, signal).await;
        let (status, error, label) = match result {
            Ok(()) => (proto::JobStatus::JsSuccess, String::new(), "success"),
            Err(error) => (proto::JobStatus::JsFailed, error.report(), "failed"),
        };
        tracing::info!(%job_id, status = label, %error, "session ended");
        task_state.send_job_status(&job_id, status, error);
        metrics::job_finished(label);
        task_state.finish(&job_id);
    });
    state.attach_task(&job_id, task);
    true
}

async fn run_session(
    state: &WorkerState,
    handler: SharedHandler,
    job: Box<proto::Job>,
    token: String,
    url: String,
    cancel: super::job::CancelSignal,
) -> JobResult {
    let options = handler.room_options(&job);
    let room = tokio::select! {
        joined = RoomConnection::connect_with(&url, &token, &options) => joined?,
        reason = cancel.cancelled() => return Err(JobError::CancelledBeforeJoin(reason)),
    };
    room.set_attribute(AGENT_STATE_ATTRIBUTE, AgentState::Initializing.as_str())
        .await;
    let context = JobContext {
        job: *job,
        token,
        url,
        room: room.clone(),
        cancel: cancel.clone(),
    };
    let grace = state.config.session_stop_grace;
    let result = tokio::select! {
        result = handler.run(context) => result,
        reason = stopped_after_grace(&cancel, grace) => {
            Err(JobError::StopTimeout { grace, reason })
        }
    };
    room.leave().await;
    result
}

async fn stopped_after_grace(cancel: &super::job::CancelSignal, grace: Duration) -> CancelReason {
    let reason = cancel.cancelled().await;
    tokio::time::sleep(grace).await;
    reason
}
