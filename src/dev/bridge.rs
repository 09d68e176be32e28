//! One spoken call, both ways: the browser's peer connection on one side,
//! the call's room (the dev server joined as the caller) on the other. The
//! microphone's Opus packets go out on the caller's track and the agent's
//! come back, unchanged; the agent's captions, state and session events go
//! to the page; the page's typed words go to the room on `lk.chat`.

use axum::extract::ws::{Message, WebSocket, close_code};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};

use super::DevState;
use super::browser_leg::{BrowserLeg, LegEvent};
use super::call::{ToolTally, close};
use super::peers::PeerSlot;
use super::voice_call::{CALLER, FromPage, ToPage, send};
use crate::room::data::{
    TOPIC_CHAT, TOPIC_TRANSCRIPTION, TextStreamOptions, new_stream_id, text_stream,
};
use crate::room::{AGENT_STATE_ATTRIBUTE, RoomConnection, RoomEvent, unix_millis};
use crate::session::AgentEvent;

/// Opus packets from browsers and from the agent last 20 ms.
const FRAME: Duration = Duration::from_millis(20);
/// Longest typed message sent on `lk.chat`.
const MAX_CHAT_CHARS: usize = 2_000;

/// One call, both ways, until the caller or the agent ends it.
pub(super) struct Bridge {
    pub room: RoomConnection,
    /// Off when the page recognizes speech itself: the agent, with no
    /// recognizer, would only say it cannot hear.
    pub forward_microphone: bool,
    pub tally: ToolTally,
}

impl Bridge {
    pub async fn run(
        mut self,
        mut socket: WebSocket,
        mut leg: BrowserLeg,
        mut session_events: mpsc::Receiver<AgentEvent>,
        state: &DevState,
        slot: &PeerSlot,
    ) {
        let Some(mut inbound) = self.room.take_inbound() else {
            send(
                &mut socket,
                &ToPage::Error {
                    message: "the call's room has no media",
                },
            )
            .await;
            self.room.leave().await;
            leg.close().await;
            return;
        };
        let mut room_events = self.room.events();
        let mut mic_packets: u64 = 0;
        loop {
            tokio::select! {
                frame = socket.recv() => match frame {
                    Some(Ok(Message::Text(text))) => {
                        if !self.on_page(&mut socket, &text).await {
                            break;
                        }
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                    Some(Ok(Message::Binary(_))) => {
                        let message = "binary frames are not part of the protocol; audio travels over WebRTC";
                        send(&mut socket, &ToPage::Error { message }).await;
                    }
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                },
                event = leg.events.recv() => match event.map(LegEvent::from) {
                    Some(LegEvent::Microphone(payload)) => {
                        mic_packets += 1;
                        if self.forward_microphone {
                            self.room.send_audio(&payload, FRAME);
                        }
                    }
                    Some(LegEvent::Connected) => {}
                    Some(LegEvent::Failed(reason)) => {
                        tracing::info!(peer = %slot.peer(), room = self.room.room_name(), %reason, "browser media failed");
                        let message = format!("the browser's audio connection failed: {reason}");
                        send(&mut socket, &ToPage::Error { message: &message }).await;
                        break;
                    }
                    Some(LegEvent::Other) => {}
                    None => break,
                },
                audio = inbound.audio.recv() => match audio {
                    Some(audio) => leg.send_audio(audio.packet.payload, FRAME),
                    None => break,
                },
                text = inbound.texts.recv() => match text {
                    Some(text) if text.topic == TOPIC_TRANSCRIPTION => {
                        let segment = text.attributes.get("lk.segment_id").map(String::as_str).unwrap_or(&text.stream_id);
                        send(&mut socket, &ToPage::Caption { text: &text.text, segment }).await;
                    }
                    Some(_) => {}
                    None => break,
                },
                event = room_events.recv() => match event {
                    Ok(RoomEvent::AttributesChanged { attributes, .. }) => {
                        if let Some(agent_state) = attributes.get(AGENT_STATE_ATTRIBUTE) {
                            send(&mut socket, &ToPage::AgentState { state: agent_state }).await;
                        }
                    }
                    Ok(RoomEvent::Disconnected { reason, .. }) => {
                        let message = format!("the call's room closed: {reason}");
                        send(&mut socket, &ToPage::Error { message: &message }).await;
                        break;
                    }
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                event = session_events.recv() => {
                    let Some(event) = event else { break };
                    self.tally.observe(&event, &state.tool_calls);
                    let ended = matches!(event, AgentEvent::SessionEnded { .. });
                    let text = serde_json::to_string(&event).unwrap_or_default();
                    if socket.send(Message::Text(text.into())).await.is_err() {
                        break;
                    }
                    if ended {
                        close(&mut socket, close_code::NORMAL, "call ended").await;
                        break;
                    }
                }
            }
        }
        tracing::info!(
            room = self.room.room_name(),
            microphone_packets = mic_packets,
            "browser call ended"
        );
        self.room.leave().await;
        leg.close().await;
    }

    /// One frame from the page; `false` ends the call.
    async fn on_page(&mut self, socket: &mut WebSocket, text: &str) -> bool {
        match serde_json::from_str::<FromPage>(text) {
            Ok(FromPage::User { text }) => {
                let text: String = text.trim().chars().take(MAX_CHAT_CHARS).collect();
                if !text.is_empty() {
                    self.type_text(&text).await;
                }
                true
            }
            Ok(FromPage::Hangup) => false,
            Ok(FromPage::Offer { .. }) => {
                let message = "this call is already connected; open a new call to renegotiate";
                send(socket, &ToPage::Error { message }).await;
                true
            }
            Err(error) => {
                let message = format!(
                    "not a call frame ({error}); send {{\"type\":\"user\",\"text\":\"...\"}}"
                );
                send(socket, &ToPage::Error { message: &message }).await;
                true
            }
        }
    }

    /// The caller's words on `lk.chat`, as LiveKit's text input sends them.
    async fn type_text(&self, text: &str) {
        let options = TextStreamOptions::new(TOPIC_CHAT);
        let packets: Vec<_> =
            text_stream(CALLER, text, &options, new_stream_id(), unix_millis()).collect();
        if !self.room.send_data(&packets).await {
            tracing::debug!(room = self.room.room_name(), "typed text not sent");
        }
    }
}
