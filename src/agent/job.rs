//! The LiveKit job handler: job → room → session. For each assignment it
//! attaches the job's room to a session through `SessionIo`: the caller
//! leaving ends the session, the agent's state is published as
//! `lk.agent.state`, and a transport registered for the room (the dev page's
//! WebSocket, a simulated caller) carries the caller's words and the agent's
//! speech.
//!
//! Jobs are resumable: a room whose conversation was saved by an earlier
//! job (a worker that died or was redeployed) continues where it stopped.
//! A job that is cancelled or loses its room keeps the saved state for the
//! next one; a call that ends normally forgets it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use dashmap::DashMap;
use tokio::sync::{mpsc, watch};

use crate::room::{AGENT_STATE_ATTRIBUTE, RoomConnection, RoomEvent, RoomOptions};
use crate::session::io::{self, AgentEvent, AgentState, CallerEvent, SessionIo, TransportIo};
use crate::session::resume::{self, SessionSaver};
use crate::session::{EndReason, Session, SessionEnv, SessionReport};
use crate::worker::{CancelSignal, JobContext, JobError, JobHandler, JobResult};

use super::call;
use super::voice::VoiceStack;

/// Transports waiting for their room's job, keyed by room name.
#[derive(Clone, Default)]
pub struct Transports {
    waiting: Arc<DashMap<String, SessionIo>>,
}

impl Transports {
    /// Register a transport for `room`; the session for that room's job uses it.
    pub fn attach(&self, room: &str) -> TransportIo {
        let (session_io, transport_io) = io::channel(256);
        self.waiting.insert(room.to_string(), session_io);
        transport_io
    }

    /// Forget the transport registered for `room` (its job never came).
    pub fn detach(&self, room: &str) {
        self.waiting.remove(room);
    }

    fn take(&self, room: &str) -> Option<SessionIo> {
        self.waiting.remove(room).map(|(_, io)| io)
    }
}

/// Why a job's session failed.
#[derive(Debug, thiserror::Error)]
pub enum SessionJobError {
    #[error("the session task failed")]
    Task(#[from] tokio::task::JoinError),
    #[error("{0} tool calls left without a result")]
    UnpairedToolCalls(usize),
}

/// Runs a voxguard session for each job.
pub struct SessionJobHandler {
    pub env: SessionEnv,
    pub transports: Transports,
    /// Where finished sessions' reports go (room name, report), when someone
    /// checks them (the simulator does).
    pub reports: Option<mpsc::UnboundedSender<(String, SessionReport)>>,
    /// How calls hear and speak; `None` runs sessions on registered
    /// transports only (text).
    pub voice: Option<Arc<VoiceStack>>,
}

impl JobHandler for SessionJobHandler {
    fn room_options(&self, job: &livekit_protocol::Job) -> RoomOptions {
        let room = job
            .room
            .as_ref()
            .map(|r| r.name.as_str())
            .unwrap_or_default();
        match &self.voice {
            // A registered transport carries this call; the room is signal only.
            Some(_) if self.transports.waiting.contains_key(room) => RoomOptions::default(),
            Some(voice) => RoomOptions::with_media(voice.media.clone()),
            None => RoomOptions::default(),
        }
    }

    fn run(&self, job: JobContext) -> Pin<Box<dyn Future<Output = JobResult> + Send>> {
        // The job's assignment (its proto is ~1 KiB) is not kept for the
        // call's length: the session needs the room, the cancel signal and
        // a seed.
        let call = JobCall {
            env: Box::new(self.env.clone()),
            seed: job_seed(&job.job.id),
            room: job.room,
            cancel: job.cancel,
        };
        let attached = call.room.room_name().to_string();
        let transport = self.transports.take(&attached);
        let voice = self.voice.clone();
        let reports = self.reports.clone();
        Box::pin(async move {
            let report = run_job(call, transport, voice)
                .await
                .map_err(JobError::handler)?;
            tracing::info!(
                room = %attached,
                ended = report.ended.as_str(),
                turns = report.turns,
                "call ended"
            );
            let unpaired = report.state.transcript.unpaired_tool_calls().len();
            if let Some(reports) = reports {
                let _ = reports.send((attached, report));
            }
            if unpaired > 0 {
                return Err(JobError::handler(SessionJobError::UnpairedToolCalls(
                    unpaired,
                )));
            }
            Ok(())
        })
    }
}

/// What a job's session runs with.
struct JobCall {
    env: Box<SessionEnv>,
    seed: u64,
    room: RoomConnection,
    cancel: CancelSignal,
}

async fn run_job(
    call: JobCall,
    transport: Option<SessionIo>,
    voice: Option<Arc<VoiceStack>>,
) -> Result<SessionReport, SessionJobError> {
    let JobCall {
        env,
        seed,
        room,
        cancel,
    } = call;
    // A registered transport carries the call; otherwise the room's media
    // does, through the voice pipeline. A room without either (signal only,
    // no voice) hears nothing and its speech goes to the log.
    let media = match (&transport, &voice, room.take_inbound()) {
        (None, Some(stack), Some(inbound)) => {
            // The greeting waits for the agent's track, or its first words
            // would go nowhere.
            if !room.audio_published(TRACK_PUBLISH_LIMIT).await {
                tracing::warn!(
                    room = room.room_name(),
                    "the agent's audio track was not accepted in time; speaking anyway"
                );
            }
            Some(call::attach(&room, inbound, stack, seed))
        }
        _ => None,
    };
    let mut voice_call = media;
    let (
        SessionIo {
            inbound,
            outbound,
            line,
        },
        mut unattached,
    ) = match (transport, voice_call.as_mut()) {
        (Some(io), _) => (io, None),
        (None, Some(voice_call)) => {
            let (session_io, _) = io::channel(1);
            (std::mem::replace(&mut voice_call.session, session_io), None)
        }
        (None, None) => {
            let (session_io, transport_io) = io::channel(64);
            (session_io, Some(transport_io))
        }
    };
    // The session speaks straight to the transport; the room only learns
    // the agent's state, through a watch (one value, not a queue).
    let (state_tx, mut state_rx) = watch::channel(AgentState::Initializing);
    let room_name = room.room_name().to_string();
    let fleet = env.fleet.clone();
    let saver = SessionSaver::start(fleet.clone(), &room_name, fleet.config().state_ttl);
    let session = match Box::pin(resume::load(&fleet, &room_name)).await {
        Some(saved) => {
            tracing::info!(room = %room_name, turns = saved.turns, "resuming a saved conversation");
            Session::resume(*env, outbound, seed, saved)
        }
        None => Session::new(*env, outbound, seed),
    };
    let mut session = tokio::spawn(
        session
            .saving_to(saver.clone())
            .mirroring_state_to(move |agent_state| {
                state_tx.send_replace(agent_state);
            })
            .run(inbound),
    );
    // The session reads the caller's line itself; the job only adds a
    // hang-up when the room says the caller left or the job is stopped.
    let caller_line = CallerLine {
        line,
        saver: saver.clone(),
        session: session.abort_handle(),
    };

    let mut room_events = room.events();
    let mut hung_up = false;
    let mut stopped = false;
    // With a voice, the pipeline shows the state (speaking while audio plays).
    let mut mirroring = voice_call.is_none();
    let finished = loop {
        tokio::select! {
            finished = &mut session => break finished,
            changed = state_rx.changed(), if mirroring => match changed {
                Ok(()) => {
                    let agent_state = *state_rx.borrow_and_update();
                    room.set_attribute(AGENT_STATE_ATTRIBUTE, agent_state.as_str()).await;
                }
                Err(_) => mirroring = false,
            },
            Some(event) = next_unattached(&mut unattached) => {
                if let AgentEvent::Speech { kind, .. } = &event {
                    tracing::info!(room = room.room_name(), kind = kind.as_str(), "agent speech (no media transport attached)");
                }
            },
            room_event = room_events.recv(), if !hung_up => match room_event {
                Ok(RoomEvent::ParticipantLeft { .. }) => {
                    hung_up = true;
                    caller_line.hang_up().await;
                }
                // The server closed the room: its callers are gone for
                // good (or it was deleted), so the call is over.
                Ok(RoomEvent::Disconnected { room_closed: true, reason }) => {
                    tracing::info!(room = room.room_name(), %reason, "the room closed");
                    hung_up = true;
                    caller_line.hang_up().await;
                }
                // The agent lost the room, not the caller: the call may go on
                // with another job, so its state stays.
                Ok(RoomEvent::Disconnected { .. })
                | Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                    hung_up = true;
                    stopped = true;
                    saver.keep_on_end();
                    caller_line.hang_up().await;
                }
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
            },
            _ = cancel.cancelled(), if !hung_up => {
                hung_up = true;
                stopped = true;
                saver.keep_on_end();
                caller_line.hang_up().await;
            }
        }
    };
    let mut report = finished?;
    if stopped && report.ended == EndReason::CallerLeft {
        report.ended = EndReason::Shutdown;
    }
    if let Some(mut voice_call) = voice_call {
        // The last words play out unless the caller is gone.
        if !hung_up
            && let Ok(Ok(Ok(voice))) =
                tokio::time::timeout(LAST_WORDS_LIMIT, &mut voice_call.task).await
        {
            tracing::info!(
                room = %room_name,
                turns = voice.turns,
                interruptions = voice.interruptions,
                underruns = voice.underruns,
                "call's voice ended"
            );
        }
        voice_call.stop();
    }
    // The last write (or the forget) lands before the job reports done; each
    // takes at most the fleet's redis_timeout, or is queued by the fleet.
    if !saver.flushed(SAVER_FLUSH_LIMIT).await {
        tracing::warn!(room = %room_name, "conversation state still being written as the job ends");
    }
    room.leave().await;
    Ok(report)
}

/// The job's hold on the caller's line. When the job is dropped mid-call
/// (the worker aborts its sessions on shutdown) the session is stopped with
/// it and its saved state stays: the call is not over. Once the session has
/// ended, neither changes anything.
struct CallerLine {
    line: mpsc::WeakSender<CallerEvent>,
    saver: SessionSaver,
    session: tokio::task::AbortHandle,
}

impl CallerLine {
    /// Tell the session the caller is gone (unless the line is already closed).
    async fn hang_up(&self) {
        if let Some(line) = self.line.upgrade() {
            let _ = line.send(CallerEvent::Hangup).await;
        }
    }
}

impl Drop for CallerLine {
    fn drop(&mut self) {
        self.saver.keep_on_end();
        self.session.abort();
    }
}

/// The next event for a room with no transport attached; pending forever
/// when there is a transport.
async fn next_unattached(unattached: &mut Option<TransportIo>) -> Option<AgentEvent> {
    match unattached {
        Some(transport) => transport.from_session.recv().await,
        None => std::future::pending().await,
    }
}

/// How long a call waits for the server to accept the agent's audio track.
const TRACK_PUBLISH_LIMIT: std::time::Duration = std::time::Duration::from_secs(5);

/// How long a finished call's last words may take to play.
const LAST_WORDS_LIMIT: std::time::Duration = std::time::Duration::from_secs(15);

/// How long a finished job waits for its last state write.
const SAVER_FLUSH_LIMIT: std::time::Duration = std::time::Duration::from_secs(1);

/// A per-job seed: phrase choice and idempotency keys differ between jobs.
fn job_seed(job_id: &str) -> u64 {
    job_id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
