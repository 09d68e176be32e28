//! The stand-in's `/rtc` signal endpoint, just enough for an agent to join:
//! a JoinResponse listing the room's participants, pongs, attribute updates,
//! participant updates pushed by the hub, and a clean leave.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::ws::{Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use livekit_api::access_token::Claims;
use livekit_protocol as proto;
use prost::Message as _;
use proto::signal_request::Message as SignalRequest;
use proto::signal_response::Message as SignalResponse;
use tokio::sync::mpsc;

use super::rooms::{announce, close_if_empty};
use super::sfu::SfuPeer;
use super::{Hub, RtcCommand, ensure_room};
use crate::room::unix_millis;

pub(super) async fn upgrade(
    State(hub): State<Arc<Hub>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    ws: WebSocketUpgrade,
) -> Response {
    const SIGNAL_BUFFER: usize = 4 * 1024;
    let claims = hub.verify(&headers, query.get("access_token").map(String::as_str));
    match claims {
        Some(claims)
            if claims.video.room_join
                && !claims.video.room.is_empty()
                && !claims.sub.is_empty() =>
        {
            // Signal messages are small; the default 128 KiB buffers per
            // socket would dominate the stand-in's memory at scale.
            ws.read_buffer_size(SIGNAL_BUFFER)
                .write_buffer_size(SIGNAL_BUFFER)
                .on_upgrade(move |socket| serve(hub, socket, claims))
        }
        _ => {
            hub.record(|r| r.auth_failures += 1);
            (StatusCode::UNAUTHORIZED, "invalid room token").into_response()
        }
    }
}

async fn serve(hub: Arc<Hub>, socket: WebSocket, claims: Claims) {
    let room_name = claims.video.room.clone();
    let identity = claims.sub.clone();
    let (commands, mut command_rx) = mpsc::unbounded_channel();
    let join = {
        let mut state = hub.lock();
        let room = ensure_room(&mut state, &room_name, hub.next_id());
        let local = proto::ParticipantInfo {
            sid: format!("PA_{}", hub.next_id()),
            identity: identity.clone(),
            name: claims.name.clone(),
            state: proto::participant_info::State::Active as i32,
            kind: if claims.kind == "agent" {
                proto::participant_info::Kind::Agent as i32
            } else {
                proto::participant_info::Kind::Standard as i32
            },
            attributes: claims.attributes.clone(),
            joined_at_ms: unix_millis(),
            ..Default::default()
        };
        let others: Vec<_> = room.participants.values().cloned().collect();
        room.joined(local.clone());
        // Everyone already in the room learns of the newcomer.
        announce(room, local.clone());
        room.signal_links.insert(identity.clone(), commands);
        proto::JoinResponse {
            room: Some(proto::Room {
                sid: room.sid.clone(),
                name: room_name.clone(),
                ..Default::default()
            }),
            participant: Some(local),
            other_participants: others,
            server_version: "loopback".into(),
            // The signal client pings on this interval and gives up after the timeout.
            ping_interval: 5,
            ping_timeout: 15,
            subscriber_primary: hub.config.media,
            ..Default::default()
        }
    };
    hub.record_history(|r| r.room_joins.push((room_name.clone(), identity.clone())));
    let sid = join
        .participant
        .as_ref()
        .map(|p| p.sid.clone())
        .unwrap_or_default();

    let (mut sink, mut stream) = socket.split();
    if sink.send(signal(SignalResponse::Join(join))).await.is_err() {
        forget(&hub, &room_name, &identity);
        return;
    }
    let mut media = if hub.config.media {
        SfuPeer::start(hub.clone(), &room_name, &identity, &sid).await
    } else {
        None
    };
    // The subscriber connection is offered at once, as LiveKit does.
    let first_offer = match &mut media {
        Some(peer) => peer.offer().await,
        None => None,
    };
    if let Some(offer) = first_offer
        && sink.send(signal(offer)).await.is_err()
    {
        leave_media(media).await;
        forget(&hub, &room_name, &identity);
        return;
    }
    loop {
        let mut out: Vec<SignalResponse> = Vec::new();
        let mut leaving = false;
        tokio::select! {
            frame = stream.next() => {
                let Some(Ok(WsMessage::Binary(bytes))) = frame else {
                    if matches!(frame, Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Text(_)))) {
                        continue;
                    }
                    break;
                };
                let Ok(request) = proto::SignalRequest::decode(bytes.as_ref()) else { continue };
                let Some(request) = request.message else { continue };
                if let Some(peer) = &mut media {
                    out.extend(peer.on_request(&request).await);
                }
                match on_request(&hub, &room_name, &identity, request) {
                    Reply::None => {}
                    Reply::Send(response) => out.push(*response),
                    Reply::Leave => break,
                }
            }
            command = command_rx.recv() => match command {
                Some(RtcCommand::Send(response)) => out.push(*response),
                Some(RtcCommand::Leave(reason)) => {
                    // The server ends the participant's session: it may
                    // not reconnect to this room.
                    out.push(SignalResponse::Leave(proto::LeaveRequest {
                        can_reconnect: false,
                        reason: reason as i32,
                        action: proto::leave_request::Action::Disconnect as i32,
                        regions: None,
                    }));
                    leaving = true;
                }
                Some(RtcCommand::Renegotiate) => {
                    if let Some(peer) = &mut media {
                        out.extend(peer.offer().await);
                    }
                }
                None => break,
            },
            event = next_media_event(&mut media) => match event {
                Some(event) => {
                    if let Some(peer) = &mut media {
                        out.extend(peer.on_event(event));
                    }
                }
                None => media = None,
            },
        }
        let mut failed = false;
        for response in out {
            if sink.send(signal(response)).await.is_err() {
                failed = true;
                break;
            }
        }
        if failed || leaving {
            break;
        }
    }
    leave_media(media).await;
    forget(&hub, &room_name, &identity);
}

async fn next_media_event(media: &mut Option<SfuPeer>) -> Option<crate::room::rtc::RtcEvent> {
    match media {
        Some(peer) => peer.events.recv().await,
        None => std::future::pending().await,
    }
}

async fn leave_media(media: Option<SfuPeer>) {
    if let Some(peer) = media {
        peer.close().await;
    }
}

/// `GET /rtc/validate`: whether a token would be let in, as LiveKit's
/// clients ask after a failed connect.
pub(super) async fn validate(
    State(hub): State<Arc<Hub>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    match hub.verify(&headers, query.get("access_token").map(String::as_str)) {
        Some(claims) if claims.video.room_join => (StatusCode::OK, "success").into_response(),
        Some(_) => (
            StatusCode::UNAUTHORIZED,
            "the token does not grant roomJoin",
        )
            .into_response(),
        None => (StatusCode::UNAUTHORIZED, "invalid room token").into_response(),
    }
}

enum Reply {
    None,
    Send(Box<SignalResponse>),
    Leave,
}

fn on_request(hub: &Hub, room_name: &str, identity: &str, request: SignalRequest) -> Reply {
    match request {
        SignalRequest::PingReq(ping) => {
            Reply::Send(Box::new(SignalResponse::PongResp(proto::Pong {
                last_ping_timestamp: ping.timestamp,
                timestamp: unix_millis(),
            })))
        }
        SignalRequest::Ping(timestamp) => Reply::Send(Box::new(SignalResponse::Pong(timestamp))),
        SignalRequest::UpdateMetadata(update) => {
            let mut state = hub.lock();
            if let Some(participant) = state
                .rooms
                .get_mut(room_name)
                .and_then(|r| r.participants.get_mut(identity))
            {
                participant.attributes.extend(update.attributes.clone());
            }
            // Everyone in the room sees the new attributes, as LiveKit
            // pushes them in a participant update.
            if let Some(room) = state.rooms.get(room_name)
                && let Some(info) = room.participants.get(identity)
            {
                announce(room, info.clone());
            }
            if hub.config.keep_history {
                for (key, value) in update.attributes {
                    state.records.attribute_updates.push((
                        room_name.into(),
                        identity.into(),
                        key,
                        value,
                    ));
                }
            }
            drop(state);
            hub.changed.notify_waiters();
            Reply::None
        }
        SignalRequest::Leave(_) => {
            hub.record_history(|r| r.room_leaves.push((room_name.into(), identity.into())));
            Reply::Leave
        }
        _ => Reply::None,
    }
}

fn forget(hub: &Hub, room_name: &str, identity: &str) {
    let mut state = hub.lock();
    if let Some(room) = state.rooms.get_mut(room_name) {
        room.signal_links.remove(identity);
        if let Some(mut info) = room.left(identity) {
            info.state = proto::participant_info::State::Disconnected as i32;
            info.tracks.clear();
            announce(room, info);
        }
    }
    close_if_empty(&mut state, room_name, &hub.config);
}

fn signal(message: SignalResponse) -> WsMessage {
    WsMessage::Binary(
        proto::SignalResponse {
            message: Some(message),
        }
        .encode_to_vec()
        .into(),
    )
}
