//! The stand-in's rooms: who is in them, and telling the agents' signal
//! connections when a caller joins or leaves.

use std::collections::HashMap;

use livekit_protocol as proto;
use tokio::sync::mpsc;

use super::sfu::{MediaPeer, PublishedTrack};
use super::{HubState, LoopbackHandle, RtcCommand};

#[derive(Default)]
pub(super) struct RoomState {
    pub(super) sid: String,
    /// Remote participants by identity (callers and agents).
    pub(super) participants: HashMap<String, proto::ParticipantInfo>,
    pub(super) signal_links: HashMap<String, mpsc::UnboundedSender<RtcCommand>>,
    /// Participants' media by identity.
    pub(super) media: HashMap<String, MediaPeer>,
    /// Published audio tracks by sid.
    pub(super) tracks: HashMap<String, PublishedTrack>,
}

impl LoopbackHandle {
    /// A caller joins `room_name` (announced to agents in the room).
    pub fn participant_joins(&self, room_name: &str, identity: &str) {
        let mut state = self.hub.lock();
        let sid = self.hub.next_id();
        add_caller(&mut state, room_name, identity, sid);
        if let Some(room) = state.rooms.get(room_name) {
            let info = room.participants[identity].clone();
            announce(room, info);
        }
    }

    /// A participant leaves `room_name`: agents see it DISCONNECTED.
    pub fn participant_leaves(&self, room_name: &str, identity: &str) -> bool {
        let mut state = self.hub.lock();
        let Some(room) = state.rooms.get_mut(room_name) else {
            return false;
        };
        let Some(mut info) = room.participants.remove(identity) else {
            return false;
        };
        info.state = proto::participant_info::State::Disconnected as i32;
        info.disconnect_reason = proto::DisconnectReason::ClientInitiated as i32;
        announce(room, info);
        close_if_empty(&mut state, room_name);
        true
    }

    /// The attributes the server holds for `identity` in `room_name`.
    pub fn participant_attributes(
        &self,
        room_name: &str,
        identity: &str,
    ) -> HashMap<String, String> {
        let state = self.hub.lock();
        state
            .rooms
            .get(room_name)
            .and_then(|room| room.participants.get(identity))
            .map(|p| p.attributes.clone())
            .unwrap_or_default()
    }
}

pub(super) fn ensure_room<'a>(
    state: &'a mut HubState,
    room_name: &str,
    sid: u64,
) -> &'a mut RoomState {
    state
        .rooms
        .entry(room_name.to_string())
        .or_insert_with(|| RoomState {
            sid: format!("RM_{sid}"),
            ..Default::default()
        })
}

pub(super) fn add_caller(
    state: &mut HubState,
    room_name: &str,
    identity: &str,
    sid: u64,
) -> String {
    let room = ensure_room(state, room_name, sid);
    room.participants
        .entry(identity.to_string())
        .or_insert_with(|| proto::ParticipantInfo {
            sid: format!("PA_{sid}"),
            identity: identity.into(),
            name: identity.into(),
            state: proto::participant_info::State::Active as i32,
            kind: proto::participant_info::Kind::Standard as i32,
            ..Default::default()
        });
    room.sid.clone()
}

/// A room nobody is in, or connected to, is closed, as LiveKit closes empty rooms.
pub(super) fn close_if_empty(state: &mut HubState, room_name: &str) {
    if state
        .rooms
        .get(room_name)
        .is_some_and(|room| room.participants.is_empty() && room.signal_links.is_empty())
    {
        state.rooms.remove(room_name);
    }
}

pub(super) fn announce(room: &RoomState, info: proto::ParticipantInfo) {
    let update = proto::ParticipantUpdate {
        participants: vec![info],
    };
    for link in room.signal_links.values() {
        let _ = link.send(RtcCommand::Send(Box::new(
            proto::signal_response::Message::Update(update.clone()),
        )));
    }
}
