//! The agent's presence in a room: a LiveKit signal connection opened with the
//! assignment token. It tracks who is in the room (the job ends when the caller
//! leaves), publishes the agent's state as the `lk.agent.state` attribute and
//! leaves cleanly. Media is not handled here.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use livekit_api::signal_client::{SignalClient, SignalError, SignalEvent, SignalOptions};
use livekit_protocol as proto;
use proto::participant_info::{Kind as ParticipantKind, State as ParticipantState};
use proto::signal_request::Message as SignalRequest;
use proto::signal_response::Message as SignalResponse;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;

use super::protocol::AGENT_STATE_ATTRIBUTE;

/// Bound on joining a room: the signal connect plus the JoinResponse.
pub const ROOM_JOIN_TIMEOUT: Duration = Duration::from_secs(10);
const LEAVE_TIMEOUT: Duration = Duration::from_secs(3);

/// What the agent is doing, as other participants see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentState {
    Initializing,
    Listening,
    Thinking,
    Speaking,
}

impl AgentState {
    pub fn as_str(self) -> &'static str {
        match self {
            AgentState::Initializing => "initializing",
            AgentState::Listening => "listening",
            AgentState::Thinking => "thinking",
            AgentState::Speaking => "speaking",
        }
    }
}

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
    /// The signal connection closed (server side or network).
    Disconnected {
        reason: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum RoomError {
    #[error("could not join the room: {0}")]
    Join(String),
    #[error("joining the room took longer than {0:?}")]
    JoinTimeout(Duration),
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

/// A handle on the agent's room connection; clones share it.
#[derive(Clone)]
pub struct RoomConnection {
    inner: Arc<RoomInner>,
}

struct RoomInner {
    client: SignalClient,
    room_name: String,
    local_identity: String,
    events: broadcast::Sender<RoomEvent>,
    callers: watch::Receiver<Callers>,
    state: Mutex<Option<AgentState>>,
    pump: Mutex<Option<JoinHandle<()>>>,
    left: tokio::sync::Mutex<bool>,
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
    /// Joins the room at `url` (http/ws base URL; `/rtc` is appended) with `token`.
    pub async fn connect(url: &str, token: &str) -> Result<Self, RoomError> {
        let mut options = SignalOptions::default();
        // voxguard runs its own reconnect logic; one endpoint, one attempt.
        options.region_failover = false;
        options.auto_subscribe = true;
        options.sdk_options.sdk = "voxguard".into();
        let joined = tokio::time::timeout(
            ROOM_JOIN_TIMEOUT,
            SignalClient::connect(url, token, options, None),
        )
        .await
        .map_err(|_| RoomError::JoinTimeout(ROOM_JOIN_TIMEOUT))?;
        let (client, join, signal_events) =
            joined.map_err(|e: SignalError| RoomError::Join(e.to_string()))?;

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
        let (callers_tx, callers_rx) = watch::channel(roster.callers());
        let (events_tx, _) = broadcast::channel(64);
        let pump = tokio::spawn(pump_signal_events(
            signal_events,
            roster,
            local_identity.clone(),
            events_tx.clone(),
            callers_tx,
        ));
        tracing::info!(room = %room_name, identity = %local_identity, "joined room");
        Ok(Self {
            inner: Arc::new(RoomInner {
                client,
                room_name,
                local_identity,
                events: events_tx,
                callers: callers_rx,
                state: Mutex::new(None),
                pump: Mutex::new(Some(pump)),
                left: tokio::sync::Mutex::new(false),
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

    /// The agent state last published.
    pub fn agent_state(&self) -> Option<AgentState> {
        *self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Publishes `state` as the `lk.agent.state` participant attribute.
    /// Unchanged states are not re-sent.
    pub async fn set_agent_state(&self, state: AgentState) {
        {
            let mut current = self.inner.state.lock().unwrap_or_else(|e| e.into_inner());
            if *current == Some(state) {
                return;
            }
            *current = Some(state);
        }
        let update = proto::UpdateParticipantMetadata {
            attributes: HashMap::from([(
                AGENT_STATE_ATTRIBUTE.to_string(),
                state.as_str().to_string(),
            )]),
            request_id: self.inner.client.next_request_id(),
            ..Default::default()
        };
        self.inner
            .client
            .send(SignalRequest::UpdateMetadata(update))
            .await;
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
        let leave = proto::LeaveRequest {
            can_reconnect: false,
            reason: proto::DisconnectReason::ClientInitiated as i32,
            action: proto::leave_request::Action::Disconnect as i32,
            regions: None,
        };
        let goodbye = async {
            self.inner.client.send(SignalRequest::Leave(leave)).await;
            self.inner.client.close().await;
        };
        if tokio::time::timeout(LEAVE_TIMEOUT, goodbye).await.is_err() {
            tracing::warn!(room = %self.inner.room_name, "leaving the room timed out");
        }
        if let Some(pump) = self
            .inner
            .pump
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            pump.abort();
        }
        tracing::info!(room = %self.inner.room_name, "left room");
    }
}

/// Remote participants by identity, with their kind.
#[derive(Default)]
struct Roster {
    participants: HashMap<String, (String, bool)>,
    caller_seen: bool,
}

impl Roster {
    /// Applies one participant record; returns the event it implies, if any.
    fn apply(&mut self, info: &proto::ParticipantInfo, local_identity: &str) -> Option<RoomEvent> {
        if info.identity == local_identity {
            return None;
        }
        let is_caller = info.kind == ParticipantKind::Standard as i32;
        if info.state == ParticipantState::Disconnected as i32 {
            self.participants
                .remove(&info.identity)
                .map(|(sid, _)| RoomEvent::ParticipantLeft {
                    identity: info.identity.clone(),
                    sid,
                })
        } else if self.participants.contains_key(&info.identity) {
            None
        } else {
            self.caller_seen |= is_caller;
            self.participants
                .insert(info.identity.clone(), (info.sid.clone(), is_caller));
            Some(RoomEvent::ParticipantJoined {
                identity: info.identity.clone(),
                sid: info.sid.clone(),
            })
        }
    }

    fn callers(&self) -> Callers {
        let present = self
            .participants
            .values()
            .filter(|(_, caller)| *caller)
            .count();
        match (present, self.caller_seen) {
            (0, false) => Callers::Waiting,
            (0, true) => Callers::Gone,
            (n, _) => Callers::Present(n),
        }
    }
}

async fn pump_signal_events(
    mut signal_events: mpsc::UnboundedReceiver<SignalEvent>,
    mut roster: Roster,
    local_identity: String,
    events: broadcast::Sender<RoomEvent>,
    callers: watch::Sender<Callers>,
) {
    while let Some(event) = signal_events.recv().await {
        match event {
            SignalEvent::Message(message) => match *message {
                SignalResponse::Update(update) => {
                    for participant in &update.participants {
                        if let Some(event) = roster.apply(participant, &local_identity) {
                            let _ = events.send(event);
                        }
                    }
                    callers.send_replace(roster.callers());
                }
                SignalResponse::Leave(_) => {
                    let _ = events.send(RoomEvent::Disconnected {
                        reason: "server asked the agent to leave".into(),
                    });
                    break;
                }
                _ => {}
            },
            SignalEvent::Close(reason) => {
                let _ = events.send(RoomEvent::Disconnected {
                    reason: reason.into_owned(),
                });
                break;
            }
        }
    }
    callers.send_replace(Callers::Gone);
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
            Some(RoomEvent::ParticipantLeft {
                identity: "alice".into(),
                sid: "PA_alice".into()
            })
        );
        assert_eq!(roster.callers(), Callers::Gone);
    }

    #[test]
    fn the_local_participant_is_never_tracked() {
        let mut roster = Roster::default();
        assert_eq!(
            roster.apply(
                &participant("me", ParticipantKind::Standard, ParticipantState::Active),
                "me"
            ),
            None
        );
        assert_eq!(roster.callers(), Callers::Waiting);
    }
}
