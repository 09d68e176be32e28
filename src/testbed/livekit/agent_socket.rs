//! The stand-in's `/agent` endpoint: authenticates the worker, enforces the
//! register deadline, assigns a fresh worker id per connection, and relays
//! availability answers, job updates, pings and migrations into the hub.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use livekit_protocol as proto;
use proto::server_message::Message as ServerMessage;
use proto::worker_message::Message as WorkerMessage;
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior, interval_at, sleep_until};

use super::{AgentCommand, AgentConnection, Hub, WorkerRegistration};
use crate::room::unix_millis;
use crate::worker::protocol::{decode_worker, encode_server};

/// The largest frame the stand-in reads from a worker.
const MAX_WORKER_FRAME: usize = 1 << 20;

pub(super) async fn upgrade(
    State(hub): State<Arc<Hub>>,
    headers: HeaderMap,
    Query(query): Query<std::collections::HashMap<String, String>>,
    ws: WebSocketUpgrade,
) -> Response {
    let claims = hub.verify(&headers, query.get("access_token").map(String::as_str));
    if !claims.is_some_and(|c| c.video.agent) {
        hub.record(|r| r.auth_failures += 1);
        return (StatusCode::UNAUTHORIZED, "invalid worker token").into_response();
    }
    ws.max_message_size(MAX_WORKER_FRAME)
        .on_upgrade(move |socket| serve(hub, socket))
}

async fn serve(hub: Arc<Hub>, socket: WebSocket) {
    let connection = hub.next_id();
    let (commands, mut command_rx) = mpsc::unbounded_channel();
    hub.lock().agents.insert(
        connection,
        AgentConnection {
            worker_id: None,
            agent_name: String::new(),
            commands,
        },
    );
    let (mut sink, mut stream) = socket.split();
    let register_deadline = Instant::now() + hub.config.register_timeout;
    let ping_every = hub.config.ws_ping_interval;
    let mut ws_pings = interval_at(Instant::now() + ping_every, ping_every);
    ws_pings.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut worker_id: Option<String> = None;
    let mut silent = false;

    loop {
        let register_wait = async {
            match worker_id {
                Some(_) => std::future::pending::<()>().await,
                None => sleep_until(register_deadline).await,
            }
        };
        tokio::select! {
            frame = stream.next() => {
                let Some(Ok(frame)) = frame else { break };
                if silent {
                    continue;
                }
                let WsMessage::Binary(bytes) = frame else {
                    if matches!(frame, WsMessage::Close(_)) { break }
                    continue;
                };
                let Ok(message) = decode_worker(&bytes) else {
                    tracing::warn!("loopback: undecodable worker frame");
                    continue;
                };
                let reply = on_worker_message(&hub, connection, &mut worker_id, message);
                if let Some(reply) = reply
                    && sink.send(binary(reply)).await.is_err()
                {
                    break;
                }
            }
            command = command_rx.recv() => {
                let Some(command) = command else { break };
                let outgoing = match command {
                    AgentCommand::Send(message) => binary(message),
                    AgentCommand::Availability(request) => {
                        let job_id = request.job.as_ref().map(|j| j.id.clone()).unwrap_or_default();
                        let sent = sink.send(binary(ServerMessage::Availability(request))).await;
                        if let Some(pending) = hub.lock().pending.get_mut(&job_id) {
                            pending.sent_at = Some(Instant::now());
                        }
                        if sent.is_err() { break }
                        continue;
                    }
                    AgentCommand::Raw(message) => message,
                    AgentCommand::Close => {
                        let _ = sink.send(WsMessage::Close(Some(CloseFrame { code: 1001, reason: "server closing".into() }))).await;
                        break;
                    }
                    AgentCommand::Drop => break,
                    AgentCommand::GoSilent => {
                        silent = true;
                        continue;
                    }
                };
                if silent {
                    continue;
                }
                if sink.send(outgoing).await.is_err() {
                    break;
                }
            }
            _ = ws_pings.tick() => {
                if !silent && sink.send(WsMessage::Ping(Vec::new().into())).await.is_err() {
                    break;
                }
            }
            _ = register_wait => {
                hub.record(|r| r.register_timeouts += 1);
                let reason = CloseFrame { code: 1008, reason: "worker did not register in time".into() };
                let _ = tokio::time::timeout(Duration::from_secs(1), sink.send(WsMessage::Close(Some(reason)))).await;
                break;
            }
        }
    }
    hub.lock().agents.remove(&connection);
    hub.changed.notify_waiters();
}

fn binary(message: ServerMessage) -> WsMessage {
    WsMessage::Binary(encode_server(message).into())
}

/// Applies one worker message to the hub; returns the direct reply, if any.
fn on_worker_message(
    hub: &Hub,
    connection: u64,
    worker_id: &mut Option<String>,
    message: WorkerMessage,
) -> Option<ServerMessage> {
    let id = worker_id.clone().unwrap_or_default();
    match message {
        WorkerMessage::Register(request) => {
            if worker_id.is_some() || !hub.answer_register.load(Ordering::SeqCst) {
                return None;
            }
            let new_id = format!("AW_{}", hub.next_id());
            *worker_id = Some(new_id.clone());
            {
                let mut state = hub.lock();
                if let Some(agent) = state.agents.get_mut(&connection) {
                    agent.worker_id = Some(new_id.clone());
                    agent.agent_name = request.agent_name.clone();
                }
                state.records.registrations.push(WorkerRegistration {
                    worker_id: new_id.clone(),
                    request,
                });
            }
            hub.changed.notify_waiters();
            let server_info = proto::ServerInfo {
                edition: proto::server_info::Edition::Standard as i32,
                version: "loopback".into(),
                protocol: 16,
                agent_protocol: 1,
                ..Default::default()
            };
            Some(ServerMessage::Register(proto::RegisterWorkerResponse {
                worker_id: new_id,
                server_info: Some(server_info),
                endpoint_settings: None,
            }))
        }
        WorkerMessage::Availability(response) => {
            let pending = hub.lock().pending.remove(&response.job_id);
            match pending {
                Some(pending) => {
                    let latency = pending.sent_at.map(|t| t.elapsed()).unwrap_or_default();
                    let _ = pending.answer.send((response, latency));
                }
                None => hub.record(|r| r.late_availability += 1),
            }
            None
        }
        WorkerMessage::UpdateJob(update) => {
            let finished = [proto::JobStatus::JsSuccess, proto::JobStatus::JsFailed]
                .map(|s| s as i32)
                .contains(&update.status);
            if finished {
                // A finished job no longer belongs to this worker.
                hub.lock().assignments.remove(&update.job_id);
            }
            hub.record_history(|r| r.job_updates.push((id, update)));
            None
        }
        WorkerMessage::UpdateWorker(status) => {
            hub.record_history(|r| r.worker_statuses.push((id, status)));
            None
        }
        WorkerMessage::Ping(ping) => {
            hub.record(|r| r.pings += 1);
            Some(ServerMessage::Pong(proto::WorkerPong {
                last_timestamp: ping.timestamp,
                timestamp: unix_millis(),
            }))
        }
        WorkerMessage::MigrateJob(migrate) => {
            {
                let mut state = hub.lock();
                for job_id in &migrate.job_ids {
                    state.assignments.insert(job_id.clone(), connection);
                }
                state.records.migrations.push((id, migrate));
            }
            hub.changed.notify_waiters();
            None
        }
        WorkerMessage::SimulateJob(_) => None,
    }
}
