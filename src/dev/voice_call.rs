//! `/call`: a spoken call from the page. The WebSocket carries the WebRTC
//! offer and answer, the caller's typed words and what the page shows; the
//! audio travels over WebRTC.
//!
//! The dev server joins the call's room as the caller, an ordinary media
//! participant of the loopback LiveKit stand-in, and bridges it to the
//! browser's peer connection: the microphone's Opus packets go out on the
//! caller's track, the agent's packets come back on the browser's. The
//! agent's job runs the production voice path (worker → job → room with
//! media → voice pipeline → session) and cannot tell this caller from any
//! other: it reads `lk.chat`, publishes `lk.transcription` and
//! `lk.agent.state`, which the bridge shows on the page.
//!
//! Page → server (JSON text frames): `{"type":"offer","sdp":…,
//! "browser_recognition":bool}` first, then `{"type":"user","text":…}`
//! (sent as `lk.chat`) and `{"type":"hangup"}`. Server → page: `answer`
//! (with who recognizes speech: `agent`, `browser` or `none`), `joined`,
//! `media`, `caption`, `agent_state`, the session's `tool_started`,
//! `tool_finished` and `session_ended`, and `error`.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{ConnectInfo, State};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::bridge::Bridge;
use super::browser_leg::{BrowserLeg, LegEvent};
use super::call::{ToolTally, close, refuse_job};
use super::peers::PeerSlot;
use super::{DevState, VoiceAvailability};
use crate::room::rtc::Loopback;
use crate::room::{MediaOptions, RoomConnection, RoomOptions};

pub(super) const CALLER: &str = "browser-caller";
/// An SDP offer with audio and a data channel is a few KiB; this leaves
/// room for many candidates and nothing more.
const MAX_CALL_FRAME_BYTES: usize = 32 * 1024;
/// Longer than the transport's own connect timeout (10 s), which fails the
/// connection first with its reason.
const AUDIO_CONNECT_LIMIT: Duration = Duration::from_secs(12);
/// Session events waiting for the call's socket.
const SESSION_EVENTS: usize = 64;

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum FromPage {
    Offer {
        sdp: String,
        #[serde(default)]
        browser_recognition: bool,
    },
    User {
        text: String,
    },
    Hangup,
}

/// Who turns the caller's speech into words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum Recognizer {
    /// The agent's own recognizer hears the microphone.
    Agent,
    /// The page's Web Speech API; its words arrive as `lk.chat`.
    Browser,
    /// Nobody: the caller types.
    None,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum ToPage<'a> {
    Answer {
        sdp: &'a str,
        recognizer: Recognizer,
        /// What the page should tell the caller about recognition.
        note: &'a str,
    },
    Joined {
        room: &'a str,
    },
    Media {
        state: &'a str,
    },
    /// A sentence as the caller heard it: whole, or cut where they
    /// interrupted.
    Caption {
        text: &'a str,
        segment: &'a str,
    },
    AgentState {
        state: &'a str,
    },
    Unavailable {
        message: &'a str,
    },
    Error {
        message: &'a str,
    },
}

pub(super) async fn call_upgrade(
    ws: WebSocketUpgrade,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    State(state): State<DevState>,
) -> Response {
    super::peers::upgrade_admitted(ws, peer, state, MAX_CALL_FRAME_BYTES, call)
}

async fn call(mut socket: WebSocket, state: DevState, slot: PeerSlot) {
    if let VoiceAvailability::Missing(message) = &state.voice {
        send(&mut socket, &ToPage::Unavailable { message }).await;
        close(
            &mut socket,
            close_code::NORMAL,
            "spoken calls are unavailable",
        )
        .await;
        return;
    }
    let Some((offer, browser_recognition)) = first_offer(&mut socket, &state).await else {
        return;
    };
    let mut leg = match BrowserLeg::answer(offer).await {
        Ok(leg) => leg,
        Err(error) => {
            let message = error.to_string();
            tracing::warn!(peer = %slot.peer(), %message, "browser call refused");
            send(&mut socket, &ToPage::Error { message: &message }).await;
            close(
                &mut socket,
                close_code::POLICY,
                "the call's media could not start",
            )
            .await;
            return;
        }
    };
    let (recognizer, note) = match (state.hears, browser_recognition) {
        (true, _) => (
            Recognizer::Agent,
            "the agent's recognizer hears your microphone",
        ),
        (false, true) => (
            Recognizer::Browser,
            "no recognizer is configured for the agent (set DEEPGRAM_API_KEY or OPENAI_API_KEY): your browser recognizes your words and sends them as lk.chat text",
        ),
        (false, false) => (
            Recognizer::None,
            "no recognizer is configured for the agent (set DEEPGRAM_API_KEY or OPENAI_API_KEY) and this browser has none: type to the agent",
        ),
    };
    let answered = send(
        &mut socket,
        &ToPage::Answer {
            sdp: &leg.answer,
            recognizer,
            note,
        },
    )
    .await;
    if !answered {
        leg.close().await;
        return;
    }
    // The agent greets as soon as its job starts: the browser's audio path
    // comes first, or the caller would miss the greeting's first words.
    if let Err(message) = connected(&mut leg).await {
        send(&mut socket, &ToPage::Error { message: &message }).await;
        close(
            &mut socket,
            close_code::POLICY,
            "the call's audio did not connect",
        )
        .await;
        leg.close().await;
        return;
    }
    send(&mut socket, &ToPage::Media { state: "connected" }).await;

    let room_name = format!(
        "dev-room-{}",
        state.next_room.fetch_add(1, Ordering::Relaxed)
    );
    let room = match join_room(&state, &room_name).await {
        Ok(room) => room,
        Err(message) => {
            send(&mut socket, &ToPage::Error { message: &message }).await;
            close(
                &mut socket,
                close_code::ERROR,
                "could not join the call's room",
            )
            .await;
            leg.close().await;
            return;
        }
    };
    let (events_tx, session_events) = mpsc::channel(SESSION_EVENTS);
    state.voice_calls.insert(room_name.clone(), events_tx);
    if let Err(err) = state.loopback.dispatch_job(&room_name, CALLER).await {
        state.voice_calls.remove(&room_name);
        refuse_job(&mut socket, &err).await;
        room.leave().await;
        leg.close().await;
        return;
    }
    send(&mut socket, &ToPage::Joined { room: &room_name }).await;
    let bridge = Bridge {
        room,
        forward_microphone: recognizer != Recognizer::Browser,
        tally: ToolTally::default(),
    };
    bridge.run(socket, leg, session_events, &state, &slot).await;
    state.voice_calls.remove(&room_name);
}

/// The page's offer, the first frame, within `[dev] first_frame_timeout`.
async fn first_offer(socket: &mut WebSocket, state: &DevState) -> Option<(String, bool)> {
    let frame = tokio::time::timeout(state.first_frame_timeout, socket.recv()).await;
    let text = match frame {
        Err(_) => {
            let reason = format!(
                "no offer within {} of connecting; open a new call",
                humantime::format_duration(state.first_frame_timeout)
            );
            close(socket, close_code::POLICY, &reason).await;
            return None;
        }
        Ok(Some(Ok(Message::Text(text)))) => text,
        Ok(_) => return None,
    };
    match serde_json::from_str::<FromPage>(&text) {
        Ok(FromPage::Offer {
            sdp,
            browser_recognition,
        }) => Some((sdp, browser_recognition)),
        _ => {
            let message =
                "the first frame of a call is its offer: {\"type\":\"offer\",\"sdp\":\"...\"}";
            send(socket, &ToPage::Error { message }).await;
            close(socket, close_code::PROTOCOL, "expected an offer").await;
            None
        }
    }
}

/// Waits for the browser's connection (ICE and DTLS) to come up, within
/// the transport's connect timeout.
async fn connected(leg: &mut BrowserLeg) -> Result<(), String> {
    let waiting = async {
        loop {
            match leg.events.recv().await.map(LegEvent::from) {
                Some(LegEvent::Connected) => return Ok(()),
                Some(LegEvent::Failed(reason)) => {
                    return Err(format!(
                        "the browser's audio connection failed: {reason}; a browser on another machine needs to reach one of this machine's addresses over UDP"
                    ));
                }
                Some(_) => {}
                None => return Err("the call's media stopped".to_owned()),
            }
        }
    };
    tokio::time::timeout(AUDIO_CONNECT_LIMIT, waiting)
        .await
        .unwrap_or_else(|_| {
            Err(format!(
                "the browser's audio did not connect within {}",
                humantime::format_duration(AUDIO_CONNECT_LIMIT)
            ))
        })
}

/// Joins `room_name` as the caller, with media, on the stand-in.
async fn join_room(state: &DevState, room_name: &str) -> Result<RoomConnection, String> {
    let token = state
        .loopback
        .participant_token(room_name, CALLER, false)
        .map_err(|e| format!("could not make the caller's token: {e}"))?;
    let options = RoomOptions::with_media(MediaOptions {
        // The stand-in runs in this process, on 127.0.0.1.
        loopback: Loopback::Include,
        track_name: "microphone".into(),
    });
    RoomConnection::connect_with(&state.loopback.url(), &token, &options)
        .await
        .map_err(|e| format!("could not join the call's room: {e}"))
}

pub(super) async fn send(socket: &mut WebSocket, message: &ToPage<'_>) -> bool {
    let text = serde_json::to_string(message).unwrap_or_default();
    socket.send(Message::Text(text.into())).await.is_ok()
}
