//! One connection to LiveKit's `/agent` endpoint, from the upgrade to its end:
//! register, answer availability on this task (never behind session work),
//! start sessions, relay their status, ping, report load, and detect a dead link.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use livekit_protocol as proto;
use proto::server_message::Message as ServerMessage;
use proto::worker_message::Message as WorkerMessage;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior, interval_at, sleep_until};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::config::WorkerConfig;
use super::job::{CancelReason, SharedHandler};
use super::metrics;
use super::protocol::{self, ConnectError, ProtocolError};
use super::sessions::{WorkerState, start_session};
use crate::room::{AGENT_STATE_ATTRIBUTE, UpgradeRequestError, unix_millis, upgrade_request};

/// The server closes a worker that has not registered within 10 s; we give up first.
pub const REGISTER_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What the owner asks of the worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Run,
    Drain,
    Shutdown,
}

/// How a healthy connection ended on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkEnd {
    Drained,
    Shutdown,
}

pub struct Link<'a> {
    pub state: &'a Arc<WorkerState>,
    pub handler: &'a SharedHandler,
    pub outbound: &'a mut mpsc::UnboundedReceiver<WorkerMessage>,
    pub control: &'a mut watch::Receiver<Control>,
    pub drain_deadline: &'a mut Option<Instant>,
    pub status_seq: &'a mut u64,
}

/// Opens the socket with a fresh token. A 401/403 on upgrade is an auth error.
pub async fn open(state: &WorkerState) -> Result<Socket, ConnectError> {
    let config = &state.config;
    let endpoint = config.agent_endpoint().map_err(ConnectError::Connect)?;
    let token = protocol::worker_token(&config.api_key, config.api_secret.expose())?;
    let request = upgrade_request(&endpoint, &token).map_err(|e| match e {
        UpgradeRequestError::Url(error) => ConnectError::Connect(error),
        UpgradeRequestError::Token => ConnectError::Token("token is not a valid header".into()),
    })?;
    let ws_config = WebSocketConfig::default()
        .max_message_size(Some(config.max_frame_bytes))
        .max_frame_size(Some(config.max_frame_bytes));
    let connecting = tokio_tungstenite::connect_async_with_config(request, Some(ws_config), true);
    match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
        Err(_) => Err(ConnectError::Connect(format!(
            "no answer from {endpoint} within {CONNECT_TIMEOUT:?}"
        ))),
        Ok(Ok((socket, _))) => Ok(socket),
        Ok(Err(tungstenite::Error::Http(response)))
            if matches!(response.status().as_u16(), 401 | 403) =>
        {
            Err(ConnectError::Unauthorized {
                status: response.status().as_u16(),
            })
        }
        Ok(Err(error)) => Err(ConnectError::Connect(error.to_string())),
    }
}

impl Link<'_> {
    /// Registers on `socket` and serves it until it fails or the worker stops.
    /// `on_registered` runs once the server acknowledged, with the new worker id.
    pub async fn serve(
        mut self,
        mut socket: Socket,
        on_registered: impl FnOnce(&str),
    ) -> Result<LinkEnd, ConnectError> {
        let worker_id = self.register(&mut socket).await?;
        self.state.set_registered(Some(worker_id.clone()));
        metrics::registered(true);
        on_registered(&worker_id);

        let running = self.state.running_job_ids();
        if !running.is_empty() {
            tracing::info!(jobs = ?running, "asking the server to keep running jobs on this worker");
            send(
                &mut socket,
                WorkerMessage::MigrateJob(proto::MigrateJobRequest { job_ids: running }),
            )
            .await?;
        }
        let result = self.serve_registered(&mut socket).await;
        self.state.set_registered(None);
        metrics::registered(false);
        if result.is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(1), socket.close(None)).await;
        }
        result
    }

    async fn register(&mut self, socket: &mut Socket) -> Result<String, ConnectError> {
        let config = &self.state.config;
        let permissions = proto::ParticipantPermission {
            can_subscribe: true,
            can_publish: true,
            can_publish_data: true,
            can_update_metadata: true,
            ..Default::default()
        };
        let register = proto::RegisterWorkerRequest {
            r#type: proto::JobType::JtRoom as i32,
            agent_name: config.agent_name.clone(),
            version: config.version.clone(),
            ping_interval: config.ping_interval.as_secs() as u32,
            allowed_permissions: Some(permissions),
            ..Default::default()
        };
        send(socket, WorkerMessage::Register(register)).await?;
        let deadline = Instant::now() + REGISTER_TIMEOUT;
        let far_future = Instant::now() + Duration::from_secs(86_400 * 365);
        loop {
            // A drain or shutdown must not wait for a registration that may never come.
            let session_ended = self.state.session_ended.notified();
            tokio::pin!(session_ended);
            session_ended.as_mut().enable();
            if self.stopping() {
                return Err(ConnectError::Closed(
                    "worker stopped before registration".into(),
                ));
            }
            let drain_wake = self.drain_deadline.unwrap_or(far_future);
            let frame = tokio::select! {
                frame = socket.next() => frame,
                _ = sleep_until(deadline) => return Err(ConnectError::RegisterTimeout(REGISTER_TIMEOUT)),
                changed = self.control.changed() => {
                    if changed.is_err() {
                        return Err(ConnectError::Closed("worker dropped".into()));
                    }
                    self.apply_control();
                    continue;
                }
                _ = sleep_until(drain_wake) => {
                    self.state.cancel_all(CancelReason::DrainTimeout);
                    *self.drain_deadline = Some(far_future);
                    continue;
                }
                _ = session_ended => continue,
            };
            match read_frame(frame, config.max_frame_bytes)? {
                Some(ServerMessage::Register(response)) => {
                    tracing::info!(worker_id = %response.worker_id, agent_name = %config.agent_name, "registered with LiveKit");
                    return Ok(response.worker_id);
                }
                Some(other) => {
                    tracing::debug!(message = ?other, "message before registration ignored")
                }
                None => {}
            }
        }
    }

    /// Shutting down, or draining with nothing left to wait for.
    fn stopping(&self) -> bool {
        match *self.control.borrow() {
            Control::Shutdown => true,
            Control::Drain => self.state.is_idle(),
            Control::Run => false,
        }
    }

    /// Takes in a new control request: a drain starts its clock, a shutdown
    /// cancels every session.
    fn apply_control(&mut self) -> Control {
        let control = *self.control.borrow_and_update();
        match control {
            Control::Drain if self.drain_deadline.is_none() => {
                *self.drain_deadline = Some(Instant::now() + self.state.config.drain_timeout);
            }
            Control::Shutdown => self.state.cancel_all(CancelReason::Shutdown),
            _ => {}
        }
        control
    }

    async fn serve_registered(&mut self, socket: &mut Socket) -> Result<LinkEnd, ConnectError> {
        let config = &self.state.config;
        let mut pings = interval_at(Instant::now() + config.ping_interval, config.ping_interval);
        pings.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut status_ticks = interval_at(Instant::now(), config.status_interval);
        status_ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut last_heard = Instant::now();
        let far_future = Instant::now() + Duration::from_secs(86_400 * 365);

        loop {
            // Registered before the idle check so an ending session cannot slip between them.
            let session_ended = self.state.session_ended.notified();
            tokio::pin!(session_ended);
            session_ended.as_mut().enable();
            if let Some(end) = self.check_exit(socket).await? {
                return Ok(end);
            }
            let drain_deadline = self.drain_deadline.unwrap_or(far_future);
            tokio::select! {
                biased;
                frame = socket.next() => {
                    last_heard = Instant::now();
                    let received = Instant::now();
                    if let Some(message) = read_frame(frame, config.max_frame_bytes)? {
                        self.on_server_message(socket, message, received).await?;
                    }
                }
                Some(message) = self.outbound.recv() => send(socket, message).await?,
                changed = self.control.changed() => {
                    if changed.is_err() {
                        self.state.cancel_all(CancelReason::Shutdown);
                        return Ok(LinkEnd::Shutdown);
                    }
                    self.on_control(socket).await?;
                }
                _ = status_ticks.tick() => {
                    let expired = self.state.expire_reservations(Instant::now());
                    if expired > 0 {
                        tracing::warn!(expired, "accepted jobs never assigned; slots freed");
                    }
                    *self.status_seq += 1;
                    send(socket, self.state.status_message(*self.status_seq)).await?;
                }
                _ = pings.tick() => {
                    send(socket, WorkerMessage::Ping(proto::WorkerPing { timestamp: unix_millis() })).await?;
                }
                _ = sleep_until(last_heard + config.ping_timeout) => {
                    return Err(ConnectError::DeadLink(config.ping_timeout));
                }
                _ = sleep_until(drain_deadline) => {
                    tracing::warn!(remaining = ?self.state.running_job_ids(), "drain timeout: ending the remaining sessions");
                    self.state.cancel_all(CancelReason::DrainTimeout);
                    *self.drain_deadline = Some(far_future);
                }
                _ = session_ended => {}
            }
        }
    }

    /// Ends the link when draining finished or a shutdown was requested.
    async fn check_exit(&mut self, socket: &mut Socket) -> Result<Option<LinkEnd>, ConnectError> {
        match *self.control.borrow() {
            Control::Shutdown => return Ok(Some(LinkEnd::Shutdown)),
            Control::Drain if self.state.is_idle() => {}
            _ => return Ok(None),
        }
        // Idle and draining: flush the final statuses, then say so once more.
        while let Ok(message) = self.outbound.try_recv() {
            send(socket, message).await?;
        }
        *self.status_seq += 1;
        send(socket, self.state.status_message(*self.status_seq)).await?;
        Ok(Some(LinkEnd::Drained))
    }

    async fn on_control(&mut self, socket: &mut Socket) -> Result<(), ConnectError> {
        if self.apply_control() == Control::Drain {
            // Tell the server at once that no more jobs should come here.
            *self.status_seq += 1;
            send(socket, self.state.status_message(*self.status_seq)).await?;
        }
        Ok(())
    }

    async fn on_server_message(
        &mut self,
        socket: &mut Socket,
        message: ServerMessage,
        received: Instant,
    ) -> Result<(), ConnectError> {
        match server_action(self.state, message) {
            ServerAction::Answer(response) => {
                let available = response.available;
                let job_id = response.job_id.clone();
                send(socket, WorkerMessage::Availability(response)).await?;
                metrics::availability_answered(received.elapsed(), available);
                tracing::debug!(%job_id, available, "availability answered");
            }
            ServerAction::Start(assignment) => {
                start_session(self.state, Arc::clone(self.handler), *assignment);
            }
            ServerAction::Nothing => {}
            ServerAction::Close(error) => return Err(error),
        }
        Ok(())
    }
}

/// What the connection must do about one server message, once the ledger
/// has taken it in.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerAction {
    /// Send this availability answer; an accepted job's slot is already reserved.
    Answer(proto::AvailabilityResponse),
    /// Start a session for this assignment.
    Start(Box<proto::JobAssignment>),
    /// Nothing to send.
    Nothing,
    /// End the connection with this error.
    Close(ConnectError),
}

/// Decides a registered connection's answer to one server message and
/// updates the ledger (reservations, cancellations) on the way. Synchronous
/// and free of I/O: the serve loop carries out the returned action.
pub fn server_action(state: &WorkerState, message: ServerMessage) -> ServerAction {
    match message {
        ServerMessage::Availability(request) => {
            let Some(job) = request.job else {
                tracing::warn!("availability request without a job ignored");
                return ServerAction::Nothing;
            };
            let available = state.try_reserve(&job.id);
            ServerAction::Answer(availability_response(&state.config, &job, available))
        }
        ServerMessage::Assignment(assignment) => ServerAction::Start(Box::new(assignment)),
        ServerMessage::Termination(termination) => {
            state.drop_reservation(&termination.job_id);
            if state.cancel(&termination.job_id, CancelReason::Terminated) {
                tracing::info!(job_id = %termination.job_id, "server terminated the job");
            }
            ServerAction::Nothing
        }
        ServerMessage::Pong(pong) => {
            // The timestamp is the server's echo of ours; never trust it in arithmetic.
            let rtt = unix_millis().saturating_sub(pong.last_timestamp);
            tracing::trace!(rtt_ms = rtt, "worker pong");
            ServerAction::Nothing
        }
        ServerMessage::Register(_) => {
            tracing::debug!("repeated registration response ignored");
            ServerAction::Nothing
        }
        ServerMessage::GoAway(_) => {
            ServerAction::Close(ConnectError::Closed("server sent GoAway".into()))
        }
    }
}

fn availability_response(
    config: &WorkerConfig,
    job: &proto::Job,
    available: bool,
) -> proto::AvailabilityResponse {
    let mut response = proto::AvailabilityResponse {
        job_id: job.id.clone(),
        available,
        ..Default::default()
    };
    if available {
        response.participant_identity = format!("agent-{}", job.id);
        response.participant_name = if config.agent_name.is_empty() {
            "voxguard".into()
        } else {
            config.agent_name.clone()
        };
        response
            .participant_attributes
            .insert(AGENT_STATE_ATTRIBUTE.into(), "initializing".into());
    }
    response
}

async fn send(socket: &mut Socket, message: WorkerMessage) -> Result<(), ConnectError> {
    socket
        .send(Message::Binary(protocol::encode_worker(message).into()))
        .await
        .map_err(|e| ConnectError::Closed(e.to_string()))
}

/// One received frame: `Some` protobuf message, `None` for control frames.
pub(super) fn read_frame(
    frame: Option<Result<Message, tungstenite::Error>>,
    limit: usize,
) -> Result<Option<ServerMessage>, ConnectError> {
    match frame {
        None => Err(ConnectError::Closed("stream ended".into())),
        Some(Err(tungstenite::Error::Capacity(error))) => {
            tracing::warn!(%error, "oversized frame from the server");
            Err(ProtocolError::Oversized { size: 0, limit }.into())
        }
        Some(Err(error)) => Err(ConnectError::Closed(error.to_string())),
        Some(Ok(Message::Binary(bytes))) => {
            if bytes.len() > limit {
                return Err(ProtocolError::Oversized {
                    size: bytes.len(),
                    limit,
                }
                .into());
            }
            Ok(Some(protocol::decode_server(&bytes)?))
        }
        Some(Ok(Message::Text(_))) => Err(ProtocolError::TextFrame.into()),
        Some(Ok(Message::Close(frame))) => Err(ConnectError::Closed(
            frame
                .map(|f| f.reason.to_string())
                .unwrap_or_else(|| "close frame".into()),
        )),
        Some(Ok(_)) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(max_sessions: u32) -> Arc<WorkerState> {
        let mut config = WorkerConfig::new("ws://127.0.0.1:7880", "key", "secret");
        config.max_sessions = max_sessions;
        WorkerState::new(config).0
    }

    #[test]
    fn a_pong_echoing_any_timestamp_is_taken_without_overflow() {
        let state = state(1);
        for last_timestamp in [i64::MIN, -1, i64::MAX] {
            let pong = ServerMessage::Pong(proto::WorkerPong {
                last_timestamp,
                timestamp: 0,
            });
            assert_eq!(server_action(&state, pong), ServerAction::Nothing);
        }
    }

    #[test]
    fn availability_reserves_up_to_capacity_and_termination_frees_the_slot() {
        let state = state(1);
        let ask = |id: &str| {
            let request = proto::AvailabilityRequest {
                job: Some(proto::Job {
                    id: id.into(),
                    ..Default::default()
                }),
                ..Default::default()
            };
            match server_action(&state, ServerMessage::Availability(request)) {
                ServerAction::Answer(answer) => answer.available,
                other => panic!("{other:?}"),
            }
        };
        assert!(ask("AJ_1"));
        assert!(!ask("AJ_2"), "one slot only");
        let terminate = ServerMessage::Termination(proto::JobTermination {
            job_id: "AJ_1".into(),
        });
        assert_eq!(server_action(&state, terminate), ServerAction::Nothing);
        assert!(ask("AJ_2"));
    }
}
