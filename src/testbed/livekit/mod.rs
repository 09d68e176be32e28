//! A LiveKit stand-in that runs in-process: the `/agent` worker endpoint and a
//! minimal `/rtc` signal endpoint, with the real server's rules (JWT check,
//! register deadline, availability deadline, pongs, WS pings). `voxguard dev`
//! uses it as its loopback dispatcher; integration tests use it as the server,
//! with extra levers to misbehave (garbage, oversized frames, drops, silence).

mod agent_socket;
mod caller;
mod dispatch;
mod rooms;
mod rtc_socket;
mod sfu;

pub use caller::{AUDIBLE_DBFS, CallerError, HeardPacket, Recording, ScriptedCaller};
pub use dispatch::{DispatchError, DispatchedJob};
use rooms::{RoomState, add_caller, ensure_room};

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::extract::ws::Message as WsMessage;
use axum::http::HeaderMap;
use axum::routing::get;
use axum::serve::ListenerExt;
use livekit_api::access_token::{Claims, TokenVerifier};
use livekit_protocol as proto;
use proto::server_message::Message as ServerMessage;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// How the stand-in behaves; the defaults match a LiveKit server in dev mode.
#[derive(Debug, Clone)]
pub struct LoopbackConfig {
    pub api_key: String,
    pub api_secret: String,
    /// A worker that has not registered within this closes.
    pub register_timeout: Duration,
    /// An availability answer later than this loses the job.
    pub availability_timeout: Duration,
    /// Interval of WebSocket-level pings to each worker.
    pub ws_ping_interval: Duration,
    /// The URL sent in job assignments; `None` uses this server's own URL.
    pub public_url: Option<String>,
    /// Keep every job update, status, join, leave and attribute update in
    /// [`Records`] (tests read them). Off, only the counters are kept, so a
    /// long simulation does not grow with every call it made.
    pub keep_history: bool,
    /// Carry media: each participant gets WebRTC connections and the
    /// stand-in forwards audio and data between them. Off, `/rtc` is
    /// signal only (what text-only simulations need).
    pub media: bool,
    /// Addresses the media sockets bind (their host candidates).
    pub media_ips: Vec<std::net::IpAddr>,
    /// Share of forwarded audio packets dropped, 0.0 to 1.0.
    pub media_loss: f64,
    /// Forwarded audio packets are delayed by up to this much (reordering
    /// some), as a jittery network does.
    pub media_jitter: Duration,
    /// A room closes this long after its last caller left (agents do not
    /// keep it open); LiveKit's default is 20 s.
    pub departure_timeout: Duration,
    /// A room no caller ever came to closes this long after it was made;
    /// LiveKit's default is 5 minutes.
    pub empty_timeout: Duration,
}

impl Default for LoopbackConfig {
    fn default() -> Self {
        Self {
            api_key: "devkey".into(),
            api_secret: "secret".into(),
            register_timeout: Duration::from_secs(10),
            availability_timeout: Duration::from_secs(3),
            ws_ping_interval: Duration::from_secs(10),
            public_url: None,
            keep_history: true,
            media: true,
            media_ips: vec![std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)],
            media_loss: 0.0,
            departure_timeout: Duration::from_secs(20),
            empty_timeout: Duration::from_secs(300),
            media_jitter: Duration::ZERO,
        }
    }
}

/// One worker registration as the server saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerRegistration {
    pub worker_id: String,
    pub request: proto::RegisterWorkerRequest,
}

/// Everything observable about what workers did, in arrival order.
#[derive(Debug, Clone, Default)]
pub struct Records {
    pub registrations: Vec<WorkerRegistration>,
    /// (worker id, update)
    pub job_updates: Vec<(String, proto::UpdateJobStatus)>,
    pub worker_statuses: Vec<(String, proto::UpdateWorkerStatus)>,
    pub migrations: Vec<(String, proto::MigrateJobRequest)>,
    pub pings: usize,
    pub auth_failures: usize,
    pub register_timeouts: usize,
    pub late_availability: usize,
    pub lost_jobs: usize,
    pub availability_latencies: Vec<Duration>,
    /// (room, identity) of room joins over `/rtc`.
    pub room_joins: Vec<(String, String)>,
    /// (room, identity) of clean leaves (LeaveRequest) over `/rtc`.
    pub room_leaves: Vec<(String, String)>,
    /// Rooms the server closed once their callers were gone.
    pub rooms_closed: Vec<String>,
    /// (room, identity, key, value) for every attribute update.
    pub attribute_updates: Vec<(String, String, String, String)>,
}

/// Orders for one worker connection's task.
#[derive(Debug)]
enum AgentCommand {
    Send(ServerMessage),
    /// An availability request; the task stamps when it went out.
    Availability(proto::AvailabilityRequest),
    Raw(WsMessage),
    Close,
    Drop,
    /// From now on read but never answer nor ping: a half-open link.
    GoSilent,
}

#[derive(Debug)]
enum RtcCommand {
    /// Boxed: the message enum is large and a queue block holds 32 of them.
    Send(Box<proto::signal_response::Message>),
    /// Another participant published: offer this one its tracks.
    Renegotiate,
    /// The server ends this participant's session (its room closed).
    Leave(proto::DisconnectReason),
}

struct AgentConnection {
    worker_id: Option<String>,
    agent_name: String,
    commands: mpsc::UnboundedSender<AgentCommand>,
}

struct PendingAvailability {
    sent_at: Option<Instant>,
    answer: oneshot::Sender<(proto::AvailabilityResponse, Duration)>,
}

#[derive(Default)]
struct HubState {
    agents: HashMap<u64, AgentConnection>,
    pending: HashMap<String, PendingAvailability>,
    /// job id → connection id currently owning it
    assignments: HashMap<String, u64>,
    rooms: HashMap<String, RoomState>,
    records: Records,
}

struct Hub {
    config: LoopbackConfig,
    url: String,
    state: Mutex<HubState>,
    changed: Notify,
    ids: AtomicU64,
    answer_register: AtomicBool,
}

impl Hub {
    fn lock(&self) -> MutexGuard<'_, HubState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn next_id(&self) -> u64 {
        self.ids.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn record(&self, update: impl FnOnce(&mut Records)) {
        update(&mut self.lock().records);
        self.changed.notify_waiters();
    }

    /// Like [`Hub::record`], for the per-call history that is only kept
    /// with [`LoopbackConfig::keep_history`].
    fn record_history(&self, update: impl FnOnce(&mut Records)) {
        if self.config.keep_history {
            self.record(update);
        } else {
            self.changed.notify_waiters();
        }
    }

    fn verify(&self, headers: &HeaderMap, query_token: Option<&str>) -> Option<Claims> {
        let bearer = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .or(query_token)?;
        TokenVerifier::with_api_key(&self.config.api_key, &self.config.api_secret)
            .verify(bearer)
            .ok()
    }
}

/// Starts the stand-in server.
pub struct LoopbackServer;

impl LoopbackServer {
    /// Binds `addr` with the default config (`devkey` / `secret`).
    pub async fn start(addr: SocketAddr) -> std::io::Result<LoopbackHandle> {
        Self::start_with(addr, LoopbackConfig::default()).await
    }

    /// Runs the server on a thread and runtime of its own, the way a real
    /// LiveKit server is a separate process: its timing is not disturbed by
    /// whatever the caller's runtime is busy with.
    pub async fn start_isolated(
        addr: SocketAddr,
        config: LoopbackConfig,
    ) -> std::io::Result<LoopbackHandle> {
        let (ready_tx, ready_rx) = oneshot::channel();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("voxguard-loopback".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(error) => {
                        let _ = ready_tx.send(Err(error));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let started = Self::start_with(addr, config).await;
                    let keep_alive = started.as_ref().ok().cloned();
                    let _ = ready_tx.send(started);
                    let _ = stop_rx.await;
                    drop(keep_alive);
                });
            })?;
        let mut handle = ready_rx
            .await
            .map_err(|_| std::io::Error::other("loopback thread ended"))??;
        handle._task = Arc::new(ServerTask::Thread(Some(stop_tx)));
        Ok(handle)
    }

    pub async fn start_with(
        addr: SocketAddr,
        config: LoopbackConfig,
    ) -> std::io::Result<LoopbackHandle> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        let url = format!("http://{local_addr}");
        let hub = Arc::new(Hub {
            config,
            url,
            state: Mutex::default(),
            changed: Notify::new(),
            ids: AtomicU64::new(0),
            answer_register: AtomicBool::new(true),
        });
        let app = Router::new()
            .route("/agent", get(agent_socket::upgrade))
            .route("/rtc", get(rtc_socket::upgrade))
            .route("/rtc/validate", get(rtc_socket::validate))
            .with_state(Arc::clone(&hub));
        // Like LiveKit's server, write small frames at once (no Nagle delay).
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let rooms = Arc::clone(&hub);
        let task = tokio::spawn(async move {
            tokio::select! {
                served = axum::serve(listener, app) => {
                    if let Err(error) = served {
                        tracing::error!(%error, "loopback server stopped");
                    }
                }
                () = rooms::close_idle_rooms(rooms) => {}
            }
        });
        Ok(LoopbackHandle {
            hub,
            local_addr,
            _task: Arc::new(ServerTask::Task(task)),
        })
    }
}

enum ServerTask {
    /// Served by a task on the caller's runtime.
    Task(JoinHandle<()>),
    /// Served on a thread of its own; dropping the sender stops it.
    Thread(Option<oneshot::Sender<()>>),
}

impl Drop for ServerTask {
    fn drop(&mut self) {
        match self {
            ServerTask::Task(task) => task.abort(),
            ServerTask::Thread(stop) => drop(stop.take()),
        }
    }
}

/// Drives and observes a running stand-in; the server stops with the last clone.
#[derive(Clone)]
pub struct LoopbackHandle {
    hub: Arc<Hub>,
    local_addr: SocketAddr,
    _task: Arc<ServerTask>,
}

impl LoopbackHandle {
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `http://127.0.0.1:<port>`: what a worker uses as LIVEKIT_URL.
    pub fn url(&self) -> String {
        self.hub.url.clone()
    }

    pub fn config(&self) -> &LoopbackConfig {
        &self.hub.config
    }

    pub fn records(&self) -> Records {
        self.hub.lock().records.clone()
    }

    /// Waits until `check` holds for the records, up to `timeout`.
    pub async fn wait_until(
        &self,
        timeout: Duration,
        mut check: impl FnMut(&Records) -> bool,
    ) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let changed = self.hub.changed.notified();
            if check(&self.hub.lock().records) {
                return true;
            }
            let wake = (Instant::now() + Duration::from_millis(50)).min(deadline);
            tokio::select! {
                _ = changed => {}
                _ = tokio::time::sleep_until(wake) => {}
            }
            if Instant::now() >= deadline {
                return check(&self.hub.lock().records);
            }
        }
    }

    /// The ids of connected, registered workers.
    pub fn connected_workers(&self) -> Vec<String> {
        self.hub
            .lock()
            .agents
            .values()
            .filter_map(|a| a.worker_id.clone())
            .collect()
    }

    /// Final or latest status the server saw for `job_id`.
    pub fn job_statuses(&self, job_id: &str) -> Vec<proto::JobStatus> {
        self.hub
            .lock()
            .records
            .job_updates
            .iter()
            .filter(|(_, u)| u.job_id == job_id)
            .filter_map(|(_, u)| proto::JobStatus::try_from(u.status).ok())
            .collect()
    }

    fn command(&self, connection: u64, command: AgentCommand) -> Option<()> {
        self.hub
            .lock()
            .agents
            .get(&connection)?
            .commands
            .send(command)
            .ok()
    }

    fn broadcast(&self, make: impl Fn() -> AgentCommand) -> usize {
        let state = self.hub.lock();
        state
            .agents
            .values()
            .filter(|a| a.commands.send(make()).is_ok())
            .count()
    }

    /// Sends a JobTermination to the worker running `job_id`.
    pub fn terminate_job(&self, job_id: &str) -> bool {
        let Some(connection) = self.hub.lock().assignments.get(job_id).copied() else {
            return false;
        };
        let termination = proto::JobTermination {
            job_id: job_id.into(),
        };
        self.command(
            connection,
            AgentCommand::Send(ServerMessage::Termination(termination)),
        )
        .is_some()
    }

    /// Closes every worker connection with a close frame.
    pub fn close_connections(&self) -> usize {
        self.broadcast(|| AgentCommand::Close)
    }

    /// Drops every worker connection without a close handshake.
    pub fn drop_connections(&self) -> usize {
        self.broadcast(|| AgentCommand::Drop)
    }

    /// Sends bytes that are not a ServerMessage to every worker.
    pub fn send_garbage(&self) -> usize {
        self.broadcast(|| {
            AgentCommand::Raw(WsMessage::Binary(
                vec![0xff, 0xfe, 0x07, 0x00, 0x13, 0x37].into(),
            ))
        })
    }

    /// Sends a binary frame of `bytes` bytes to every worker.
    pub fn send_oversized(&self, bytes: usize) -> usize {
        self.broadcast(|| AgentCommand::Raw(WsMessage::Binary(vec![0x0a; bytes].into())))
    }

    /// Turns every current worker connection half-open: the server keeps the
    /// socket but never answers nor pings on it again. New connections are normal.
    pub fn silence_connections(&self) -> usize {
        self.broadcast(|| AgentCommand::GoSilent)
    }

    /// When off, registrations go unanswered (to exercise the register deadline).
    pub fn set_answer_register(&self, answer: bool) {
        self.hub.answer_register.store(answer, Ordering::SeqCst);
    }
}
