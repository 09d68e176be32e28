//! `voxguard dev`: the embedded default. It starts the CRM simulator, a
//! loopback LiveKit dispatcher, the production worker against it, and a page
//! on which a person talks to the agent and breaks services on purpose.
//!
//! A spoken call (`/call`, [`voice_call`]) joins its room as a WebRTC
//! caller: the page's microphone and speaker are bridged to the room, and
//! the agent's job runs the production voice path. A typed call (`/ws`)
//! registers its socket as the room's transport instead, then asks the
//! loopback server to dispatch a job: the same worker, text only. The page
//! falls back to it when spoken calls cannot work here (no libopus, no
//! voice), and says what to install.

mod api;
mod bridge;
mod browser_leg;
mod call;
pub mod console;
pub mod origin;
mod peers;
mod speech_cards;
mod voice_call;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use axum::Router;
use axum::response::Html;
use axum::routing::{get, put};

use dashmap::DashMap;
use tokio::sync::mpsc;

use crate::agent::{
    Agent, AgentError, CallObserver, SessionJobHandler, Transports, VoiceStack, worker_config,
};
use crate::config::Config;
use crate::room::rtc::Loopback;
use crate::secret::Secret;
use crate::session::AgentEvent;
use crate::speech::TtsSettings;
use crate::testbed::crm::{CrmSimulator, SimError};
use crate::testbed::livekit::{LoopbackHandle, LoopbackServer};
use crate::testbed::speech::SpeechSimulator;
use crate::worker::{Worker, WorkerError, WorkerHandle};

const PAGE: &str = include_str!("static/dev.html");

/// Everything `voxguard dev` runs, for the HTTP handlers.
#[derive(Clone)]
pub struct DevState {
    pub sim: Arc<CrmSimulator>,
    pub loopback: LoopbackHandle,
    pub transports: Transports,
    pub agent: Agent,
    pub worker: WorkerHandle,
    pub faults: Arc<api::FaultBoard>,
    pub tool_calls: Arc<api::ToolCallBoard>,
    /// Whether spoken calls can work on this machine, and if not, why.
    pub voice: VoiceAvailability,
    /// Whether the agent has a recognizer (otherwise the page recognizes).
    pub hears: bool,
    /// The worker's speech, for the speech cards.
    pub voice_stack: Option<Arc<VoiceStack>>,
    /// The speech simulator serving this stack's speech providers, if any
    /// (the speech cards' fault buttons drive it).
    pub speech_sim: Option<Arc<SpeechSimulator>>,
    speech_faults: Arc<speech_cards::SpeechFaultBoard>,
    _scratch: Option<Arc<ScratchDir>>,
    /// Spoken calls by room, for their sessions' events.
    voice_calls: Arc<DashMap<String, mpsc::Sender<AgentEvent>>>,
    next_room: Arc<AtomicU64>,
    peers: Arc<peers::PeerConnections>,
    first_frame_timeout: Duration,
}

/// What else a dev stack runs with.
#[derive(Default)]
pub struct DevOptions {
    /// A speech simulator the configuration points speech providers at;
    /// its faults become buttons on the speech cards.
    pub speech_sim: Option<Arc<SpeechSimulator>>,
    /// Files the stack needs while it runs (removed when it stops).
    pub scratch: Option<Arc<ScratchDir>>,
}

/// A private directory removed when dropped.
#[derive(Debug)]
pub struct ScratchDir(std::path::PathBuf);

impl ScratchDir {
    fn create(purpose: &str) -> std::io::Result<ScratchDir> {
        use std::os::unix::fs::DirBuilderExt;
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "voxguard-{purpose}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        std::fs::DirBuilder::new().mode(0o700).create(&path)?;
        Ok(ScratchDir(path))
    }

    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The espeak-ng voice the simulated network voice speaks with: audibly
/// not the local voice, so a caller hears the agent fall back.
pub const SIMULATED_VOICE: &str = "en-us+f3";

/// What `voxguard dev` runs: [`start`], and when the only voice this
/// configuration has is the local one (no voice key set), a speech
/// simulator in this process serving an OpenAI-compatible voice ahead of
/// it ([`DevOptions::simulated_voice`]). The page's card for that voice
/// then breaks it with one click (slow, errors, hang, drop, outage) and the
/// caller hears the agent cope: cached phrases, then the local voice. A
/// voice key (OPENAI_API_KEY, CARTESIA_API_KEY) or `VOXGUARD_TTS` leaves
/// the configuration as it is.
pub async fn start_default(
    config: &Config,
    addr: SocketAddr,
    seed: u64,
) -> Result<DevStack, DevError> {
    let (settings, _) = config.speech_settings();
    let only_local = settings
        .tts
        .iter()
        .all(|(voice, _)| matches!(voice, TtsSettings::Espeak(_)));
    let overridden = std::env::var_os("VOXGUARD_TTS").is_some();
    if !only_local || overridden || voice_availability(config).await != VoiceAvailability::Ready {
        return start(config, addr, seed).await;
    }
    let speech = SpeechSimulator::start(([127, 0, 0, 1], 0).into(), seed)
        .await
        .map_err(DevError::SpeechSimulator)?;
    let mut config = config.clone();
    let options = DevOptions::simulated_voice(&mut config, speech)?;
    start_with(&config, addr, seed, options).await
}

impl DevOptions {
    /// Puts `speech`'s OpenAI-compatible voice, speaking espeak-ng's
    /// [`SIMULATED_VOICE`], first in `config`'s voices (its key in a private
    /// directory that lives as long as the stack), and returns the options
    /// that give its card fault buttons.
    pub fn simulated_voice(
        config: &mut Config,
        speech: SpeechSimulator,
    ) -> Result<DevOptions, DevError> {
        speech.set_voice(crate::testbed::speech::SimVoice::Espeak {
            voice: SIMULATED_VOICE.into(),
        });
        let scratch = ScratchDir::create("dev").map_err(DevError::Scratch)?;
        let key_file = scratch.path().join("simulated-voice-key");
        std::fs::write(&key_file, speech.credentials().openai.expose())
            .map_err(DevError::Scratch)?;
        let others: Vec<String> = config
            .speech
            .tts
            .iter()
            .filter(|name| name.as_str() != "openai")
            .cloned()
            .collect();
        config.speech.tts = std::iter::once("openai".to_string())
            .chain(others)
            .collect();
        config.speech.openai_tts.base_url = speech.openai_base_url();
        config.speech.openai_tts.credentials = crate::config::CredentialRef::File(key_file);
        Ok(DevOptions {
            speech_sim: Some(Arc::new(speech)),
            scratch: Some(Arc::new(scratch)),
        })
    }
}

/// Whether `voxguard dev` can carry spoken calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VoiceAvailability {
    Ready,
    /// What is missing and how to install it; calls are typed.
    Missing(String),
}

/// A running dev stack.
pub struct DevStack {
    pub state: DevState,
    pub addr: SocketAddr,
    pub worker_task: tokio::task::JoinHandle<()>,
    pub http_task: tokio::task::JoinHandle<()>,
}

#[derive(Debug, thiserror::Error)]
pub enum DevError {
    #[error("the CRM simulator could not start")]
    Simulator(#[from] SimError),
    #[error("the loopback LiveKit server could not start")]
    Loopback(#[source] std::io::Error),
    #[error("the agent could not be built")]
    Agent(#[from] AgentError),
    #[error("the worker could not start")]
    Worker(#[from] WorkerError),
    #[error("the simulated voice could not start")]
    SpeechSimulator(#[source] crate::testbed::speech::SpeechSimError),
    #[error("could not write the simulated voice's key to a private directory")]
    Scratch(#[source] std::io::Error),
    #[error("cannot listen on {addr} (set [dev] addr or VOXGUARD_DEV_ADDR)")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Start the whole embedded stack; the page listens on `addr`.
pub async fn start(config: &Config, addr: SocketAddr, seed: u64) -> Result<DevStack, DevError> {
    start_with(config, addr, seed, DevOptions::default()).await
}

/// [`start`], with options.
pub async fn start_with(
    config: &Config,
    addr: SocketAddr,
    seed: u64,
    options: DevOptions,
) -> Result<DevStack, DevError> {
    // The speech cards read the worker's latency summaries.
    crate::worker::metrics::prometheus();
    let loopback_addr: SocketAddr = ([127, 0, 0, 1], 0).into();
    let sim = CrmSimulator::start(loopback_addr, seed).await?;
    let agent = Agent::from_config(config, sim.crm_endpoints(), seed)?;
    let loopback = LoopbackServer::start(loopback_addr)
        .await
        .map_err(DevError::Loopback)?;
    let transports = Transports::default();

    let lk = loopback.config();
    let worker_config = worker_config(
        config,
        loopback.url(),
        lk.api_key.clone(),
        Secret::new(lk.api_secret.clone()),
    );
    let voice_calls: Arc<DashMap<String, mpsc::Sender<AgentEvent>>> = Arc::default();
    let voice = voice_availability(config).await;
    let voice_stack = match &voice {
        VoiceAvailability::Ready => {
            let mut stack = VoiceStack::build(
                config,
                &agent.registry,
                &agent.sessions.phrasebook,
                &agent.display_names(),
            )?;
            // The stand-in runs in this process, on 127.0.0.1.
            stack.media.loopback = Loopback::Include;
            stack.observer = Some(Arc::new(ForwardToCalls(voice_calls.clone())));
            stack.log_hearing();
            Some(Arc::new(stack))
        }
        VoiceAvailability::Missing(why) => {
            tracing::warn!("spoken calls are unavailable, the page offers typed calls: {why}");
            None
        }
    };
    let hears = voice_stack.as_ref().is_some_and(|v| v.hears());
    let handler = Arc::new(SessionJobHandler {
        env: agent.sessions.clone(),
        transports: transports.clone(),
        reports: None,
        voice: voice_stack.clone(),
    });
    let worker = Worker::new(worker_config, handler)?;
    let worker_handle = worker.handle();
    worker_handle.attach_fleet(agent.sessions.fleet.clone());
    match &voice_stack {
        Some(voice) => {
            worker_handle.attach_services(agent.service_report_with(&voice.unconfigured))
        }
        None => worker_handle.attach_services(agent.service_report()),
    }
    let worker_task = tokio::spawn(async move {
        if let Err(err) = worker.run().await {
            tracing::error!(error = %err, "dev worker stopped");
        }
    });
    worker_handle
        .wait_registrations(1, std::time::Duration::from_secs(10))
        .await;

    let state = DevState {
        sim: Arc::new(sim),
        loopback,
        transports,
        agent,
        worker: worker_handle,
        faults: Arc::new(api::FaultBoard::default()),
        tool_calls: Arc::new(api::ToolCallBoard::default()),
        voice,
        hears,
        voice_stack,
        speech_sim: options.speech_sim,
        speech_faults: Arc::default(),
        _scratch: options.scratch,
        voice_calls,
        next_room: Arc::new(AtomicU64::new(1)),
        peers: peers::PeerConnections::new(config.dev.max_connections_per_address),
        first_frame_timeout: config.dev.first_frame_timeout,
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| DevError::Bind { addr, source })?;
    let addr = listener
        .local_addr()
        .map_err(|source| DevError::Bind { addr, source })?;
    let app = Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .route("/ws", get(call::ws_upgrade))
        .route("/call", get(voice_call::call_upgrade))
        .route("/api/services", get(api::services))
        .route("/api/faults", put(api::set_fault))
        .route("/api/speech", get(speech_cards::speech))
        .route("/api/speech/faults", put(speech_cards::set_speech_fault))
        .with_state(state.clone())
        .layer(axum::middleware::from_fn_with_state(
            origin::ServedAddresses::for_bound(addr),
            origin::only_this_server,
        ));
    let http_task = tokio::spawn(async move {
        let app = app.into_make_service_with_connect_info::<SocketAddr>();
        if let Err(err) = axum::serve(listener, app).await {
            tracing::error!(error = %err, "dev page server stopped");
        }
    });
    Ok(DevStack {
        state,
        addr,
        worker_task,
        http_task,
    })
}

/// Hands each spoken call's session events to its page.
struct ForwardToCalls(Arc<DashMap<String, mpsc::Sender<AgentEvent>>>);

impl CallObserver for ForwardToCalls {
    fn event(&self, room: &str, event: &AgentEvent) {
        if let Some(call) = self.0.get(room) {
            // A page that stopped reading loses events, never the agent's pace.
            let _ = call.try_send(event.clone());
        }
    }

    fn finished(&self, _room: &str, _report: Option<crate::voice::call::VoiceReport>) {}
}

/// Whether this machine can carry spoken calls: libopus for the audio,
/// and a voice that can run (espeak-ng when every configured voice is the
/// local one).
async fn voice_availability(config: &Config) -> VoiceAvailability {
    let mut missing = Vec::new();
    if let Err(error) = crate::media::opus::library_version() {
        missing.push(format!(
            "libopus is missing ({error}); install it with `apt-get install libopus0` (Debian/Ubuntu) or `brew install opus` (macOS)"
        ));
    }
    let (settings, _) = config.speech_settings();
    let only_local = settings
        .tts
        .iter()
        .all(|(voice, _)| matches!(voice, TtsSettings::Espeak(_)));
    if only_local {
        for (voice, _) in &settings.tts {
            if let TtsSettings::Espeak(espeak) = voice
                && !program_runs(&espeak.program).await
            {
                missing.push(format!(
                    "the local voice `{}` does not run; install espeak-ng with `apt-get install espeak-ng` (Debian/Ubuntu) or `brew install espeak-ng` (macOS), or set a voice's key (OPENAI_API_KEY, CARTESIA_API_KEY)",
                    espeak.program.display()
                ));
            }
        }
    }
    if missing.is_empty() {
        VoiceAvailability::Ready
    } else {
        VoiceAvailability::Missing(missing.join("; "))
    }
}

/// Whether `program --version` runs and succeeds within a second.
async fn program_runs(program: &std::path::Path) -> bool {
    let run = tokio::process::Command::new(program)
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .status();
    matches!(
        tokio::time::timeout(Duration::from_secs(1), run).await,
        Ok(Ok(status)) if status.success()
    )
}
