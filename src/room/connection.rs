//! The agent's presence in a room: a LiveKit signal connection opened with the
//! assignment token. It tracks who is in the room (the job ends when the caller
//! leaves), publishes participant attributes (the agent's state as
//! `lk.agent.state`) and leaves cleanly.
//!
//! One task per room owns the socket (see [`super::signal`]): it applies
//! participant updates, sends the agent's requests in order, pings at the
//! interval the server asked for and notices a dead link.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use livekit_protocol as proto;
use proto::participant_info::{Kind as ParticipantKind, State as ParticipantState};
use proto::signal_request::Message as SignalRequest;
use proto::signal_response::Message as SignalResponse;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use super::media::{self, MediaDrops, MediaInbound, MediaLink, MediaTask, RoomOptions};
use super::signal::{self, Incoming, Keepalive, Socket, unix_millis};

/// Participant attribute carrying the agent's conversational state
/// (`initializing`, `listening`, `thinking`, `speaking`), as LiveKit's front
/// ends read it.
pub const AGENT_STATE_ATTRIBUTE: &str = "lk.agent.state";

/// Bound on joining a room: the signal connect plus the JoinResponse.
pub const ROOM_JOIN_TIMEOUT: Duration = Duration::from_secs(10);
const LEAVE_TIMEOUT: Duration = Duration::from_secs(3);
/// Room events are rare (joins, leaves); a reader that falls this far behind
/// sees `Lagged`, and the event that ends a job also travels on a watch.
const ROOM_EVENTS: usize = 32;

/// A change in the room, as seen by the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomEvent {
    ParticipantJoined {
        identity: String,
        sid: String,
    },
    ParticipantLeft {
        identity: String,
        sid: String,
    },
    /// A remote participant's attributes changed (e.g. an agent's
    /// `lk.agent.state`); `attributes` is the whole new set.
    AttributesChanged {
        identity: String,
        attributes: std::collections::BTreeMap<String, String>,
    },
    /// The signal connection closed (server side or network).
    Disconnected {
        reason: String,
        /// The server closed the room itself (`ROOM_CLOSED`: its callers
        /// are gone; `ROOM_DELETED`: an operator deleted it): the call is
        /// over, nobody can come back to it.
        room_closed: bool,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum RoomError {
    #[error("could not join the room: {0}")]
    Join(String),
    #[error("joining the room took longer than {0:?}")]
    JoinTimeout(Duration),
    #[error("could not start the room's media")]
    Media(#[from] super::media::MediaError),
}

/// Whether the remote standard participants (the callers) are in the room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Callers {
    /// No caller has joined yet.
    Waiting,
    Present(usize),
    /// Every caller that joined has left, or the connection closed.
    Gone,
}

/// What the room's task is asked to send.
enum Request {
    /// Set one participant attribute of the local participant.
    Attribute(&'static str, String),
    /// Send a LeaveRequest, close the socket, then answer.
    Leave(oneshot::Sender<()>),
}

/// A handle on the agent's room connection; clones share it.
#[derive(Clone)]
pub struct RoomConnection {
    inner: Arc<RoomInner>,
}

struct RoomInner {
    room_name: String,
    local_identity: String,
    requests: mpsc::Sender<Request>,
    events: broadcast::Sender<RoomEvent>,
    callers: watch::Receiver<Callers>,
    attributes: Mutex<HashMap<&'static str, String>>,
    task: Mutex<Option<JoinHandle<()>>>,
    left: tokio::sync::Mutex<bool>,
    media: Option<MediaLink>,
}

impl std::fmt::Debug for RoomConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoomConnection")
            .field("room", &self.inner.room_name)
            .field("identity", &self.inner.local_identity)
            .finish()
    }
}

impl RoomConnection {
    /// Joins the room at `url` (http/ws base URL; `/rtc` is appended) with
    /// `token`, signal only.
    pub async fn connect(url: &str, token: &str) -> Result<Self, RoomError> {
        Self::connect_with(url, token, &RoomOptions::default()).await
    }

    /// Joins the room; with media, answers the server's subscriber offer
    /// (hearing the other participants) and publishes one audio track.
    pub async fn connect_with(
        url: &str,
        token: &str,
        options: &RoomOptions,
    ) -> Result<Self, RoomError> {
        // Boxed: connecting (TCP, TLS, the upgrade) is a large future, needed
        // only until the JoinResponse arrives.
        let joining = Box::pin(signal::join(url, token));
        let (socket, join) = tokio::time::timeout(ROOM_JOIN_TIMEOUT, joining)
            .await
            .map_err(|_| RoomError::JoinTimeout(ROOM_JOIN_TIMEOUT))?
            .map_err(|e| RoomError::Join(e.to_string()))?;

        let local_identity = join
            .participant
            .as_ref()
            .map(|p| p.identity.clone())
            .unwrap_or_default();
        let room_name = join
            .room
            .as_ref()
            .map(|r| r.name.clone())
            .unwrap_or_default();
        let mut roster = Roster::default();
        for participant in &join.other_participants {
            roster.apply(participant, &local_identity);
        }
        let keepalive = Keepalive::of(&join);
        let (media_task, media_link) = match &options.media {
            Some(media) => {
                let (task, link) = media::start(media.clone(), &join).await?;
                (Some(task), Some(link))
            }
            None => (None, None),
        };
        drop(join);
        let (callers_tx, callers_rx) = watch::channel(roster.callers());
        let (events_tx, _) = broadcast::channel(ROOM_EVENTS);
        // The agent sends a handful of requests per turn; a full queue makes
        // `set_agent_state` wait rather than grow memory.
        let (requests_tx, requests_rx) = mpsc::channel(4);
        // Boxed: the socket is ~1.4 KiB and the task's future would
        // otherwise hold it twice (as its argument and as its local).
        let task = tokio::spawn(
            Box::new(RoomTask {
                socket,
                roster,
                local_identity: local_identity.clone(),
                events: events_tx.clone(),
                callers: callers_tx,
                keepalive,
                media: media_task,
            })
            .run(requests_rx),
        );
        tracing::info!(room = %room_name, identity = %local_identity, "joined room");
        Ok(Self {
            inner: Arc::new(RoomInner {
                room_name,
                local_identity,
                requests: requests_tx,
                events: events_tx,
                callers: callers_rx,
                attributes: Mutex::default(),
                task: Mutex::new(Some(task)),
                left: tokio::sync::Mutex::new(false),
                media: media_link,
            }),
        })
    }

    pub fn room_name(&self) -> &str {
        &self.inner.room_name
    }

    pub fn local_identity(&self) -> &str {
        &self.inner.local_identity
    }

    /// Room events from now on. A slow reader may miss events (it sees `Lagged`);
    /// use [`RoomConnection::caller_left`] for the one that ends the job.
    pub fn events(&self) -> broadcast::Receiver<RoomEvent> {
        self.inner.events.subscribe()
    }

    /// The value of a local participant attribute last published.
    pub fn attribute(&self, key: &str) -> Option<String> {
        self.inner
            .attributes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned()
    }

    /// Publishes `value` as the local participant's attribute `key` (e.g.
    /// [`AGENT_STATE_ATTRIBUTE`]). Unchanged values are not re-sent; after
    /// the connection closed this does nothing.
    pub async fn set_attribute(&self, key: &'static str, value: impl Into<String>) {
        let value = value.into();
        {
            let mut attributes = self
                .inner
                .attributes
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if attributes.get(key) == Some(&value) {
                return;
            }
            attributes.insert(key, value.clone());
        }
        let _ = self
            .inner
            .requests
            .send(Request::Attribute(key, value))
            .await;
    }

    /// Whether this connection carries media.
    pub fn has_media(&self) -> bool {
        self.inner.media.is_some()
    }

    /// What other participants send (audio packets, chat texts); `None`
    /// without media or once taken.
    pub fn take_inbound(&self) -> Option<MediaInbound> {
        self.inner
            .media
            .as_ref()?
            .inbound
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    /// Sends one Opus packet of `duration` on the published audio track.
    /// `false` (and counted) when there is no track yet or the media stopped.
    pub fn send_audio(&self, payload: &[u8], duration: Duration) -> bool {
        match &self.inner.media {
            Some(media) => media.send_audio(payload, duration),
            None => false,
        }
    }

    /// Sends data packets in order on the reliable channel (text streams,
    /// user packets); `false` when they could not go.
    pub async fn send_data(&self, packets: &[proto::DataPacket]) -> bool {
        match &self.inner.media {
            Some(media) => media.send_data(packets).await,
            None => false,
        }
    }

    /// The published audio track's sid, once the server accepted it.
    pub fn audio_track_sid(&self) -> Option<String> {
        let media = self.inner.media.as_ref()?;
        let track = media.track.borrow();
        track.as_ref().map(|(_, sid)| sid.clone())
    }

    /// Waits until the published audio track is negotiated (or `limit`).
    pub async fn audio_published(&self, limit: Duration) -> bool {
        let Some(media) = &self.inner.media else {
            return false;
        };
        let mut track = media.track.clone();
        tokio::time::timeout(limit, track.wait_for(|t| t.is_some()))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// What the media dropped rather than queue without bound.
    pub fn media_drops(&self) -> Option<&MediaDrops> {
        self.inner.media.as_ref().map(|m| m.drops.as_ref())
    }

    /// Resolves when every caller that joined has left, or the room connection closed.
    pub async fn caller_left(&self) {
        let mut callers = self.inner.callers.clone();
        let _ = callers.wait_for(|c| *c == Callers::Gone).await;
    }

    /// Sends a leave request and closes the signal connection. Idempotent and bounded.
    pub async fn leave(&self) {
        let mut left = self.inner.left.lock().await;
        if *left {
            return;
        }
        *left = true;
        let (done_tx, done) = oneshot::channel();
        let goodbye = async {
            if self
                .inner
                .requests
                .send(Request::Leave(done_tx))
                .await
                .is_ok()
            {
                let _ = done.await;
            }
        };
        if tokio::time::timeout(LEAVE_TIMEOUT, goodbye).await.is_err() {
            tracing::warn!(room = %self.inner.room_name, "leaving the room timed out");
        }
        if let Some(task) = self
            .inner
            .task
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            task.abort();
        }
        tracing::info!(room = %self.inner.room_name, "left room");
    }
}

/// The room's one task: it owns the socket.
struct RoomTask {
    socket: Socket,
    roster: Roster,
    local_identity: String,
    events: broadcast::Sender<RoomEvent>,
    callers: watch::Sender<Callers>,
    keepalive: Keepalive,
    media: Option<MediaTask>,
}

/// The next transport event, or never without media.
async fn next_media_event(media: &mut Option<MediaTask>) -> Option<super::rtc::RtcEvent> {
    match media {
        Some(media) => media.events.recv().await,
        None => std::future::pending().await,
    }
}

impl RoomTask {
    async fn run(mut self: Box<Self>, mut requests: mpsc::Receiver<Request>) {
        let mut ping = tokio::time::interval_at(
            Instant::now() + self.keepalive.interval,
            self.keepalive.interval,
        );
        ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let silence = tokio::time::sleep(self.keepalive.timeout);
        tokio::pin!(silence);
        let mut request_id = 0u32;
        let mut rtt = 0i64;
        let mut room_closed = false;
        if let Some(media) = &mut self.media {
            let publish = media.publish_request();
            if !signal::send(&mut self.socket, publish).await {
                tracing::warn!("signal connection failed while publishing the audio track");
            }
        }
        let ended = loop {
            tokio::select! {
                // The server's word first: a server that closes the room
                // sends a Leave, then tears the media down, and the Leave
                // says why the call ended.
                biased;
                incoming = signal::next_response(&mut self.socket) => {
                    if !matches!(incoming, Incoming::Closed(_)) {
                        silence.as_mut().reset(Instant::now() + self.keepalive.timeout);
                    }
                    let message = match incoming {
                        Incoming::Message(message) => *message,
                        Incoming::Other => continue,
                        Incoming::Closed(reason) => break Some(reason),
                    };
                    if let Some(media) = &mut self.media {
                        let mut failed = false;
                        for request in media.on_signal(&message).await {
                            failed |= !signal::send(&mut self.socket, request).await;
                        }
                        if failed {
                            break Some("signal connection failed while negotiating media".to_string());
                        }
                    }
                    match message {
                        SignalResponse::Update(update) => {
                            for participant in &update.participants {
                                for event in self.roster.apply(participant, &self.local_identity) {
                                    let _ = self.events.send(event);
                                }
                            }
                            self.callers.send_replace(self.roster.callers());
                        }
                        SignalResponse::PongResp(pong) => {
                            rtt = unix_millis().saturating_sub(pong.last_ping_timestamp).max(0);
                        }
                        SignalResponse::Leave(leave) => {
                            let reason = proto::DisconnectReason::try_from(leave.reason)
                                .unwrap_or(proto::DisconnectReason::UnknownReason);
                            room_closed = matches!(
                                reason,
                                proto::DisconnectReason::RoomClosed
                                    | proto::DisconnectReason::RoomDeleted
                            );
                            break Some(format!(
                                "the server asked the agent to leave ({})",
                                reason.as_str_name()
                            ));
                        }
                        _ => {}
                    }
                }
                request = requests.recv() => match request {
                    Some(Request::Attribute(key, value)) => {
                        request_id = request_id.wrapping_add(1);
                        let update = proto::UpdateParticipantMetadata {
                            attributes: HashMap::from([(key.to_string(), value)]),
                            request_id,
                            ..Default::default()
                        };
                        if !signal::send(&mut self.socket, SignalRequest::UpdateMetadata(update)).await {
                            break Some("signal connection failed while sending".to_string());
                        }
                    }
                    Some(Request::Leave(done)) => {
                        let leave = proto::LeaveRequest {
                            can_reconnect: false,
                            reason: proto::DisconnectReason::ClientInitiated as i32,
                            action: proto::leave_request::Action::Disconnect as i32,
                            regions: None,
                        };
                        if signal::send(&mut self.socket, SignalRequest::Leave(leave)).await {
                            let _ = self.socket.close(None).await;
                        }
                        let _ = done.send(());
                        break None;
                    }
                    // Every handle is gone: nobody will ask to leave.
                    None => {
                        let _ = self.socket.close(None).await;
                        break None;
                    }
                },
                _ = ping.tick() => {
                    let ping = SignalRequest::PingReq(proto::Ping { timestamp: unix_millis(), rtt });
                    if !signal::send(&mut self.socket, ping).await {
                        break Some("signal connection failed while pinging".to_string());
                    }
                }
                _ = &mut silence => {
                    break Some(format!("no word from the server within {:?}", self.keepalive.timeout));
                }
                event = next_media_event(&mut self.media) => {
                    let Some(media) = &mut self.media else { continue };
                    let Some(event) = event else {
                        break Some("the room's media transport stopped".to_string());
                    };
                    match media.on_event(event).await {
                        Ok(Some(request)) => {
                            if !signal::send(&mut self.socket, request).await {
                                break Some("signal connection failed while sending".to_string());
                            }
                        }
                        Ok(None) => {}
                        Err(reason) => break Some(reason),
                    }
                }
            }
        };
        if let Some(media) = self.media.take() {
            media.close().await;
        }
        if let Some(reason) = ended {
            let _ = self.events.send(RoomEvent::Disconnected {
                reason,
                room_closed,
            });
        }
        self.callers.send_replace(Callers::Gone);
    }
}

/// Remote participants by identity, with their kind and attributes.
#[derive(Default)]
struct Roster {
    participants: HashMap<String, Known>,
    caller_seen: bool,
}

struct Known {
    sid: String,
    caller: bool,
    attributes: std::collections::BTreeMap<String, String>,
}

impl Roster {
    /// Applies one participant record; returns the events it implies (a
    /// join, a leave, attributes that changed).
    fn apply(&mut self, info: &proto::ParticipantInfo, local_identity: &str) -> Vec<RoomEvent> {
        if info.identity == local_identity {
            return Vec::new();
        }
        let is_caller = info.kind == ParticipantKind::Standard as i32;
        if info.state == ParticipantState::Disconnected as i32 {
            return self
                .participants
                .remove(&info.identity)
                .map(|known| RoomEvent::ParticipantLeft {
                    identity: info.identity.clone(),
                    sid: known.sid,
                })
                .into_iter()
                .collect();
        }
        let mut events = Vec::new();
        let known = match self.participants.entry(info.identity.clone()) {
            std::collections::hash_map::Entry::Occupied(known) => known.into_mut(),
            std::collections::hash_map::Entry::Vacant(vacant) => {
                self.caller_seen |= is_caller;
                events.push(RoomEvent::ParticipantJoined {
                    identity: info.identity.clone(),
                    sid: info.sid.clone(),
                });
                vacant.insert(Known {
                    sid: info.sid.clone(),
                    caller: is_caller,
                    attributes: Default::default(),
                })
            }
        };
        let changed = known.attributes.len() != info.attributes.len()
            || info
                .attributes
                .iter()
                .any(|(k, v)| known.attributes.get(k) != Some(v));
        if changed {
            known.attributes = info
                .attributes
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            events.push(RoomEvent::AttributesChanged {
                identity: info.identity.clone(),
                attributes: known.attributes.clone(),
            });
        }
        events
    }

    fn callers(&self) -> Callers {
        let present = self
            .participants
            .values()
            .filter(|known| known.caller)
            .count();
        match (present, self.caller_seen) {
            (0, false) => Callers::Waiting,
            (0, true) => Callers::Gone,
            (n, _) => Callers::Present(n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn participant(
        identity: &str,
        kind: ParticipantKind,
        state: ParticipantState,
    ) -> proto::ParticipantInfo {
        proto::ParticipantInfo {
            identity: identity.into(),
            sid: format!("PA_{identity}"),
            kind: kind as i32,
            state: state as i32,
            ..Default::default()
        }
    }

    #[test]
    fn callers_are_gone_only_after_one_joined_and_all_left() {
        let mut roster = Roster::default();
        assert_eq!(roster.callers(), Callers::Waiting);
        roster.apply(
            &participant(
                "other-agent",
                ParticipantKind::Agent,
                ParticipantState::Active,
            ),
            "me",
        );
        assert_eq!(roster.callers(), Callers::Waiting, "agents are not callers");
        roster.apply(
            &participant("alice", ParticipantKind::Standard, ParticipantState::Active),
            "me",
        );
        assert_eq!(roster.callers(), Callers::Present(1));
        let left = roster.apply(
            &participant(
                "alice",
                ParticipantKind::Standard,
                ParticipantState::Disconnected,
            ),
            "me",
        );
        assert_eq!(
            left,
            vec![RoomEvent::ParticipantLeft {
                identity: "alice".into(),
                sid: "PA_alice".into()
            }]
        );
        assert_eq!(roster.callers(), Callers::Gone);
    }

    #[test]
    fn attribute_changes_are_reported_once_each() {
        let mut roster = Roster::default();
        let mut agent = participant("agent", ParticipantKind::Agent, ParticipantState::Active);
        let joined = roster.apply(&agent, "me");
        assert!(matches!(
            joined.as_slice(),
            [RoomEvent::ParticipantJoined { .. }]
        ));
        agent
            .attributes
            .insert("lk.agent.state".into(), "listening".into());
        let changed = roster.apply(&agent, "me");
        assert_eq!(
            changed,
            vec![RoomEvent::AttributesChanged {
                identity: "agent".into(),
                attributes: [("lk.agent.state".to_string(), "listening".to_string())].into(),
            }]
        );
        assert!(
            roster.apply(&agent, "me").is_empty(),
            "unchanged: nothing new"
        );
    }

    #[test]
    fn the_local_participant_is_never_tracked() {
        let mut roster = Roster::default();
        assert_eq!(
            roster.apply(
                &participant("me", ParticipantKind::Standard, ParticipantState::Active),
                "me"
            ),
            Vec::new()
        );
        assert_eq!(roster.callers(), Callers::Waiting);
    }
}
