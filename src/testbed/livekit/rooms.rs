//! The stand-in's rooms: who is in them, telling the agents' signal
//! connections when a caller joins or leaves, and closing a room once its
//! callers are gone, as LiveKit does: agents do not keep a room open, so
//! `departure_timeout` after its last caller left (or `empty_timeout`
//! after it was made, when no caller ever came) every agent still in it is
//! told to leave, with the reason `ROOM_CLOSED`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use livekit_protocol as proto;
use tokio::sync::mpsc;

use super::sfu::{MediaPeer, PublishedTrack};
use super::{Hub, HubState, LoopbackConfig, LoopbackHandle, RtcCommand};

pub(super) struct RoomState {
    pub(super) sid: String,
    /// Remote participants by identity (callers and agents).
    pub(super) participants: HashMap<String, proto::ParticipantInfo>,
    pub(super) signal_links: HashMap<String, mpsc::UnboundedSender<RtcCommand>>,
    /// Participants' media by identity.
    pub(super) media: HashMap<String, MediaPeer>,
    /// Published audio tracks by sid.
    pub(super) tracks: HashMap<String, PublishedTrack>,
    pub(super) created: Instant,
    /// A caller (a participant that is not an agent) has been in the room.
    pub(super) callers_came: bool,
    pub(super) last_caller_left: Option<Instant>,
    /// Closed: the agents in it were told to leave.
    pub(super) closed: bool,
}

fn is_agent(info: &proto::ParticipantInfo) -> bool {
    info.kind == proto::participant_info::Kind::Agent as i32
}

impl RoomState {
    /// `info` is now in the room.
    pub(super) fn joined(&mut self, info: proto::ParticipantInfo) {
        if !is_agent(&info) {
            self.callers_came = true;
        }
        self.participants.insert(info.identity.clone(), info);
    }

    /// `identity` left the room; what it was, if it was in it.
    pub(super) fn left(&mut self, identity: &str) -> Option<proto::ParticipantInfo> {
        let info = self.participants.remove(identity)?;
        if !is_agent(&info) {
            self.last_caller_left = Some(Instant::now());
        }
        Some(info)
    }

    /// No caller is in the room and it has waited long enough for one: a
    /// caller who left may come back within `departure_timeout`, and a
    /// room nobody came to waits `empty_timeout`.
    fn idle_past_timeout(&self, now: Instant, config: &LoopbackConfig) -> bool {
        if self.participants.values().any(|p| !is_agent(p)) {
            return false;
        }
        let (since, timeout) = match (self.callers_came, self.last_caller_left) {
            (true, Some(left)) => (left, config.departure_timeout),
            _ => (self.created, config.empty_timeout),
        };
        now.saturating_duration_since(since) >= timeout
    }
}

impl LoopbackHandle {
    /// A caller joins `room_name` (announced to agents in the room).
    pub fn participant_joins(&self, room_name: &str, identity: &str) {
        let mut state = self.hub.lock();
        let sid = self.hub.next_id();
        add_caller(&mut state, room_name, identity, sid);
        if let Some(room) = state.rooms.get(room_name)
            && let Some(info) = room.participants.get(identity)
        {
            announce(room, info.clone());
        }
    }

    /// A participant leaves `room_name`: agents see it DISCONNECTED.
    pub fn participant_leaves(&self, room_name: &str, identity: &str) -> bool {
        let mut state = self.hub.lock();
        let Some(room) = state.rooms.get_mut(room_name) else {
            return false;
        };
        let Some(mut info) = room.left(identity) else {
            return false;
        };
        info.state = proto::participant_info::State::Disconnected as i32;
        info.disconnect_reason = proto::DisconnectReason::ClientInitiated as i32;
        announce(room, info);
        close_if_empty(&mut state, room_name, &self.hub.config);
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
            participants: HashMap::new(),
            signal_links: HashMap::new(),
            media: HashMap::new(),
            tracks: HashMap::new(),
            created: Instant::now(),
            callers_came: false,
            last_caller_left: None,
            closed: false,
        })
}

pub(super) fn add_caller(
    state: &mut HubState,
    room_name: &str,
    identity: &str,
    sid: u64,
) -> String {
    let room = ensure_room(state, room_name, sid);
    if !room.participants.contains_key(identity) {
        room.joined(proto::ParticipantInfo {
            sid: format!("PA_{sid}"),
            identity: identity.into(),
            name: identity.into(),
            state: proto::participant_info::State::Active as i32,
            kind: proto::participant_info::Kind::Standard as i32,
            ..Default::default()
        });
    }
    room.sid.clone()
}

/// A room nobody is in or connected to is forgotten once it is closed or
/// its timeout has passed (a caller may still come back until then).
pub(super) fn close_if_empty(state: &mut HubState, room_name: &str, config: &LoopbackConfig) {
    if state.rooms.get(room_name).is_some_and(|room| {
        room.participants.is_empty()
            && room.signal_links.is_empty()
            && (room.closed || room.idle_past_timeout(Instant::now(), config))
    }) {
        state.rooms.remove(room_name);
    }
}

/// Closes every room whose callers are gone for good, checking a few times
/// per `departure_timeout`; runs as long as the server.
pub(super) async fn close_idle_rooms(hub: Arc<Hub>) {
    let every =
        (hub.config.departure_timeout / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now = Instant::now();
        let mut state = hub.lock();
        let due: Vec<String> = state
            .rooms
            .iter()
            .filter(|(_, room)| !room.closed && room.idle_past_timeout(now, &hub.config))
            .map(|(name, _)| name.clone())
            .collect();
        if due.is_empty() {
            continue;
        }
        for name in &due {
            if let Some(room) = state.rooms.get_mut(name) {
                room.closed = true;
                for link in room.signal_links.values() {
                    let _ = link.send(RtcCommand::Leave(proto::DisconnectReason::RoomClosed));
                }
            }
            close_if_empty(&mut state, name, &hub.config);
            if hub.config.keep_history {
                state.records.rooms_closed.push(name.clone());
            }
        }
        drop(state);
        hub.changed.notify_waiters();
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
