//! `/ws`: one browser call per WebSocket. The socket becomes a room's
//! transport and the loopback dispatcher assigns the room's job to the
//! worker, so the production code path runs.
//!
//! Limits hold while reading, not after: frames and messages over
//! [`MAX_CALLER_FRAME_BYTES`] are refused by the WebSocket reader before they
//! are buffered, and every refusal ends with a close code and a reason the
//! caller can read — 1009 too big, 1007 not UTF-8, 1008 silent or too many
//! sockets from one address, 1013 no free session slot.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{ConnectInfo, State};
use axum::response::Response;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::error::CapacityError;

use super::DevState;
use super::api;
use super::peers::PeerSlot;
use crate::session::io::{MAX_CALLER_FRAME_BYTES, parse_caller_frame};
use crate::session::{AgentEvent, CallerEvent};
use crate::testbed::livekit::DispatchError;

const CALLER: &str = "browser-caller";

pub(super) async fn ws_upgrade(
    ws: WebSocketUpgrade,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    State(state): State<DevState>,
) -> Response {
    super::peers::upgrade_admitted(ws, peer, state, MAX_CALLER_FRAME_BYTES, converse)
}

/// One browser conversation: a room, a job, and frames pumped both ways.
async fn converse(mut socket: WebSocket, state: DevState, slot: PeerSlot) {
    let room = format!(
        "dev-room-{}",
        state.next_room.fetch_add(1, Ordering::Relaxed)
    );
    let mut transport = state.transports.attach(&room);
    if let Err(err) = state.loopback.dispatch_job(&room, CALLER).await {
        state.transports.detach(&room);
        refuse_job(&mut socket, &err).await;
        state.loopback.participant_leaves(&room, CALLER);
        return;
    }
    let mut tally = ToolTally::default();
    let first_frame = tokio::time::sleep(state.first_frame_timeout);
    tokio::pin!(first_frame);
    let mut caller_spoke = false;
    loop {
        tokio::select! {
            () = &mut first_frame, if !caller_spoke => {
                let reason = format!(
                    "no frame from the caller within {} of connecting; open a new call",
                    humantime::format_duration(state.first_frame_timeout)
                );
                tracing::info!(peer = %slot.peer(), %room, "closing a call socket that sent nothing");
                close(&mut socket, close_code::POLICY, &reason).await;
                break;
            }
            event = transport.from_session.recv() => match event {
                Some(event) => {
                    tally.observe(&event, &state.tool_calls);
                    let ended = matches!(event, AgentEvent::SessionEnded { .. });
                    if send_event(&mut socket, &event).await.is_err() {
                        break;
                    }
                    if ended {
                        // A closing handshake, so the browser sees a clean end
                        // of call rather than a dropped connection.
                        close(&mut socket, close_code::NORMAL, "call ended").await;
                        break;
                    }
                }
                None => break,
            },
            frame = socket.recv() => match frame {
                Some(Ok(Message::Text(text))) => {
                    caller_spoke = true;
                    match parse_caller_frame(&text) {
                        Ok(event) => {
                            if transport.to_session.send(event).await.is_err() {
                                break;
                            }
                        }
                        Err(message) => {
                            let _ = send_event(&mut socket, &AgentEvent::Error { message }).await;
                        }
                    }
                }
                Some(Ok(Message::Binary(_))) => {
                    caller_spoke = true;
                    let message = "binary frames are not part of the protocol; send JSON text frames such as {\"type\":\"user\",\"text\":\"...\"}".to_owned();
                    let _ = send_event(&mut socket, &AgentEvent::Error { message }).await;
                }
                Some(Ok(Message::Close(_))) | None => break,
                Some(Err(err)) => {
                    if let Some((code, reason)) = close_for_read_error(&err) {
                        tracing::info!(peer = %slot.peer(), %room, code, reason, "closing a call socket");
                        close(&mut socket, code, reason).await;
                    }
                    break;
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            },
        }
    }
    let _ = transport.to_session.send(CallerEvent::Hangup).await;
    state.loopback.participant_leaves(&room, CALLER);
}

/// The worker would not take the call: say why in the protocol's error
/// frame, then close — 1013 when trying again later can help.
pub(super) async fn refuse_job(socket: &mut WebSocket, err: &DispatchError) {
    let (code, message, reason) = match err {
        DispatchError::Declined => (
            close_code::AGAIN,
            "the agent cannot take this call: every session slot is taken; try again in a moment"
                .to_owned(),
            "every session slot is taken; try again later",
        ),
        DispatchError::NoWorker
        | DispatchError::AvailabilityTimeout(_)
        | DispatchError::WorkerGone => (
            close_code::AGAIN,
            format!("the agent cannot take this call: {err}; try again in a moment"),
            "the agent is not available; try again later",
        ),
        DispatchError::Token(_) => (
            close_code::ERROR,
            format!("could not start the agent: {err}"),
            "could not start the agent",
        ),
    };
    tracing::warn!(error = %err, "dev call refused");
    if send_event(socket, &AgentEvent::Error { message })
        .await
        .is_ok()
    {
        close(socket, code, reason).await;
    }
}

/// The close a failed read deserves; `None` when the connection is gone
/// and nothing can be said on it.
fn close_for_read_error(err: &axum::Error) -> Option<(u16, &'static str)> {
    let source: &(dyn std::error::Error + 'static) = err;
    let mut cause = Some(source);
    while let Some(error) = cause {
        if let Some(ws) = error.downcast_ref::<WsError>() {
            return match ws {
                WsError::Capacity(CapacityError::MessageTooLong { .. }) => Some((
                    close_code::SIZE,
                    "message over the 16 KiB limit; send one utterance per frame",
                )),
                WsError::Capacity(_) => Some((close_code::SIZE, "frame too large for this server")),
                WsError::Utf8(_) => Some((close_code::INVALID, "text frame is not valid UTF-8")),
                WsError::Protocol(_) => {
                    Some((close_code::PROTOCOL, "WebSocket protocol violation"))
                }
                _ => None,
            };
        }
        cause = error.source();
    }
    None
}

pub(super) async fn close(socket: &mut WebSocket, code: u16, reason: &str) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    let _ = socket.send(Message::Close(Some(frame))).await;
}

async fn send_event(socket: &mut WebSocket, event: &AgentEvent) -> Result<(), axum::Error> {
    let text = serde_json::to_string(event).unwrap_or_default();
    socket.send(Message::Text(text.into())).await
}

/// Pairs a call's `tool_finished` with the service its `tool_started` named,
/// for the service cards.
#[derive(Default)]
pub(super) struct ToolTally {
    in_flight: HashMap<String, String>,
}

impl ToolTally {
    pub(super) fn observe(&mut self, event: &AgentEvent, board: &api::ToolCallBoard) {
        match event {
            AgentEvent::ToolStarted(started) => {
                self.in_flight
                    .insert(started.call_id.clone(), started.service.clone());
            }
            AgentEvent::ToolFinished(finished) => {
                if let Some(service) = self.in_flight.remove(&finished.call_id) {
                    board.record(&service, finished.elapsed_ms, &finished.outcome);
                }
            }
            _ => {}
        }
    }
}
