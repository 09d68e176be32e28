//! The sans-IO core of a room's media transport: the subscriber and the
//! publisher peer connections of one LiveKit participant, plus the STUN
//! client that learns server-reflexive candidates from their sockets.
//!
//! Host sockets belong to one side or to both. A participant gives each
//! side its own sockets: LiveKit's server answers both connections from one
//! port, so by source address alone a datagram could belong to either, and
//! DTLS cannot be told apart. The server end may share a socket between its
//! sides, because a participant's two connections come from different
//! ports; such datagrams go to whichever connection accepts them.
//!
//! Inputs: datagrams, timeouts and commands, each with the time passed in.
//! Outputs: datagrams to send ([`RoomTransport::poll_transmit`]), events
//! ([`RoomTransport::poll_event`]) and the next deadline
//! ([`RoomTransport::poll_timeout`]).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use str0m::Rtc;

use super::candidates::{CandidateInit, host_candidate};
use super::event::{DataChannel, InputError, LocalTrack, Mid, RtcError, RtcEvent, Side};
use super::peer::{Outputs, Peer, PeerState, PeerStats, Transmit};
use super::stun::StunGatherer;

/// Which end of LiveKit's WebRTC this transport is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A participant (the agent): full ICE, ICE-controlling against the
    /// ICE-lite server; answers the subscriber offer, offers the publisher.
    Participant,
    /// The server end (the test stand-in of a LiveKit server): ICE-lite;
    /// offers the subscriber, answers the publisher.
    Server,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::Participant => "participant",
            Role::Server => "server",
        }
    }

    /// The side this role offers on.
    pub fn offers_on(self) -> Side {
        match self {
            Role::Participant => Side::Publisher,
            Role::Server => Side::Subscriber,
        }
    }
}

/// Settings of a [`RoomTransport`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransportConfig {
    pub role: Role,
    /// From a completed negotiation to ICE + DTLS up; a peer that vanishes
    /// mid-handshake fails the side after this.
    pub connect_timeout: Duration,
    /// How long a connected side may stay disconnected (an ICE restart is
    /// the way back) before it fails.
    pub reconnect_grace: Duration,
    /// Largest data channel message sent or accepted.
    pub max_data_message: usize,
}

impl TransportConfig {
    pub fn new(role: Role) -> TransportConfig {
        TransportConfig {
            role,
            connect_timeout: Duration::from_secs(10),
            reconnect_grace: Duration::from_secs(15),
            max_data_message: 64 * 1024,
        }
    }
}

/// What one side of an offer should change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OfferChanges {
    /// New send-only Opus tracks, as (msid stream id, msid track id).
    pub add_audio: Vec<(String, String)>,
    /// Local tracks to stop.
    pub remove_audio: Vec<Mid>,
    /// Add LiveKit's `_reliable` and `_lossy` channels (once).
    pub data_channels: bool,
    /// New ICE credentials: the way back from a broken media path.
    pub ice_restart: bool,
}

impl OfferChanges {
    /// What a participant's first publisher offer carries: one audio track
    /// and both data channels.
    pub fn publish_audio(stream_id: &str, track_id: &str) -> OfferChanges {
        OfferChanges {
            add_audio: vec![(stream_id.to_owned(), track_id.to_owned())],
            data_channels: true,
            ..OfferChanges::default()
        }
    }

    pub fn ice_restart() -> OfferChanges {
        OfferChanges {
            ice_restart: true,
            ..OfferChanges::default()
        }
    }
}

/// An offer to send to the remote, with the tracks it adds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    pub sdp: String,
    pub tracks: Vec<LocalTrack>,
}

/// An answer to send to the remote, with the tracks we may send on (audio
/// sections the remote offered as `sendrecv`; none from LiveKit's server,
/// whose subscriber tracks are send-only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub sdp: String,
    pub tracks: Vec<LocalTrack>,
}

/// Counters of both sides.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TransportStats {
    pub subscriber: PeerStats,
    pub publisher: PeerStats,
    /// Datagrams no connection accepted.
    pub unclaimed_datagrams: u64,
}

/// A room's media transport (both peer connections) as a state machine.
pub struct RoomTransport {
    config: TransportConfig,
    subscriber: Peer,
    publisher: Peer,
    hosts: Vec<(SocketAddr, Option<Side>)>,
    stun_servers: Vec<SocketAddr>,
    gatherer: StunGatherer,
    outputs: Outputs,
    unclaimed: u64,
    reported_unclaimed: bool,
}

impl std::fmt::Debug for RoomTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoomTransport")
            .field("role", &self.config.role)
            .field("subscriber", &self.subscriber.state())
            .field("publisher", &self.publisher.state())
            .field("hosts", &self.hosts)
            .finish()
    }
}

fn build_rtc(config: &TransportConfig, now: Instant) -> Rtc {
    Rtc::builder()
        .set_ice_lite(config.role == Role::Server)
        .clear_codecs()
        .enable_opus(true, false)
        // Audio frames leave the stack in order; waiting long for a lost
        // packet only adds delay in front of the jitter buffer.
        .set_reordering_size_audio(4)
        .set_reordering_timeout_audio(Some(Duration::from_millis(80)))
        .set_sctp_max_message_size(config.max_data_message as u32)
        .build(now)
}

impl RoomTransport {
    pub fn new(config: TransportConfig, now: Instant) -> RoomTransport {
        let peer = |side| {
            Peer::new(
                side,
                build_rtc(&config, now),
                now,
                config.connect_timeout,
                config.reconnect_grace,
                config.max_data_message,
            )
        };
        RoomTransport {
            config,
            subscriber: peer(Side::Subscriber),
            publisher: peer(Side::Publisher),
            hosts: Vec::new(),
            stun_servers: Vec::new(),
            gatherer: StunGatherer::new(),
            outputs: Outputs::default(),
            unclaimed: 0,
            reported_unclaimed: false,
        }
    }

    pub fn role(&self) -> Role {
        self.config.role
    }

    pub fn state(&self, side: Side) -> PeerState {
        match side {
            Side::Subscriber => self.subscriber.state(),
            Side::Publisher => self.publisher.state(),
        }
    }

    /// Host sockets in use (their addresses are the host candidates), with
    /// the side each belongs to (`None`: both).
    pub fn hosts(&self) -> &[(SocketAddr, Option<Side>)] {
        &self.hosts
    }

    pub fn stats(&self) -> TransportStats {
        TransportStats {
            subscriber: self.subscriber.stats,
            publisher: self.publisher.stats,
            unclaimed_datagrams: self.unclaimed,
        }
    }

    /// A bound host socket for `side` (`None`: shared by both sides): a
    /// candidate for the connection(s), and a base to ask the STUN servers
    /// about.
    pub fn add_host(
        &mut self,
        side: Option<Side>,
        addr: SocketAddr,
        now: Instant,
    ) -> Result<(), RtcError> {
        let candidate = host_candidate(addr)?;
        self.hosts.push((addr, side));
        if side != Some(Side::Publisher) {
            self.subscriber
                .add_local_candidate(candidate.clone(), now, &mut self.outputs);
        }
        if side != Some(Side::Subscriber) {
            self.publisher
                .add_local_candidate(candidate, now, &mut self.outputs);
        }
        self.gatherer.gather(addr, &self.stun_servers, now);
        Ok(())
    }

    /// STUN servers (resolved) to learn server-reflexive candidates from,
    /// for the hosts added so far and later.
    pub fn set_stun_servers(&mut self, servers: Vec<SocketAddr>, now: Instant) {
        for (host, _) in &self.hosts {
            self.gatherer.gather(*host, &servers, now);
        }
        self.stun_servers = servers;
    }

    fn owner(&self, local: SocketAddr) -> Option<Option<Side>> {
        self.hosts
            .iter()
            .find(|(addr, _)| *addr == local)
            .map(|(_, side)| *side)
    }

    fn check_role(&self, side: Side, offering: bool) -> Result<(), RtcError> {
        let offers = self.config.role.offers_on() == side;
        if offers == offering {
            return Ok(());
        }
        Err(RtcError::WrongRole {
            role: self.config.role.as_str(),
            side: side.as_str(),
            rule: if offering {
                "receives offers; it does not make them"
            } else {
                "makes offers; it does not receive them"
            },
        })
    }

    /// Applies the remote's offer on `side`; returns the answer.
    pub fn accept_offer(
        &mut self,
        side: Side,
        sdp: &str,
        now: Instant,
    ) -> Result<Answer, RtcError> {
        self.check_role(side, false)?;
        let outputs = &mut self.outputs;
        let (sdp, tracks) = match side {
            Side::Subscriber => self.subscriber.accept_offer(sdp, now, outputs),
            Side::Publisher => self.publisher.accept_offer(sdp, now, outputs),
        }?;
        Ok(Answer { sdp, tracks })
    }

    /// Creates an offer on `side`. `Ok(None)` when the changes needed no
    /// negotiation.
    pub fn create_offer(
        &mut self,
        side: Side,
        changes: &OfferChanges,
        now: Instant,
    ) -> Result<Option<Offer>, RtcError> {
        self.check_role(side, true)?;
        if changes == &OfferChanges::default() {
            return Err(RtcError::NothingToOffer);
        }
        let peer = match side {
            Side::Subscriber => &mut self.subscriber,
            Side::Publisher => &mut self.publisher,
        };
        let offer = peer.create_offer(
            &changes.add_audio,
            changes.data_channels,
            &changes.remove_audio,
            changes.ice_restart,
            now,
            &mut self.outputs,
        )?;
        Ok(offer.map(|(sdp, tracks)| Offer { sdp, tracks }))
    }

    /// Applies the remote's answer to the pending offer on `side`.
    pub fn accept_answer(&mut self, side: Side, sdp: &str, now: Instant) -> Result<(), RtcError> {
        self.check_role(side, true)?;
        let outputs = &mut self.outputs;
        match side {
            Side::Subscriber => self.subscriber.accept_answer(sdp, now, outputs),
            Side::Publisher => self.publisher.accept_answer(sdp, now, outputs),
        }
    }

    /// A candidate the remote trickled for `side` (LiveKit's
    /// `TrickleRequest.candidateInit`).
    pub fn add_remote_candidate(
        &mut self,
        side: Side,
        candidate: &CandidateInit,
        now: Instant,
    ) -> Result<(), RtcError> {
        let Some(candidate) = candidate.parse()? else {
            return Ok(()); // end of candidates
        };
        let outputs = &mut self.outputs;
        match side {
            Side::Subscriber => self
                .subscriber
                .add_remote_candidate(candidate, now, outputs),
            Side::Publisher => self.publisher.add_remote_candidate(candidate, now, outputs),
        }
        Ok(())
    }

    /// Sends one Opus packet lasting `duration` (20 ms: 960 samples of RTP
    /// time) on a local track.
    pub fn send_audio(
        &mut self,
        track: LocalTrack,
        payload: impl Into<std::sync::Arc<[u8]>>,
        duration: Duration,
        now: Instant,
    ) -> Result<(), RtcError> {
        let outputs = &mut self.outputs;
        match track.side {
            Side::Subscriber => self
                .subscriber
                .send_audio(track.mid, payload, duration, now, outputs),
            Side::Publisher => self
                .publisher
                .send_audio(track.mid, payload, duration, now, outputs),
        }
    }

    /// Sends bytes (an encoded DataPacket) on a data channel of `side`.
    pub fn send_data(
        &mut self,
        side: Side,
        channel: DataChannel,
        payload: &[u8],
        now: Instant,
    ) -> Result<(), RtcError> {
        let outputs = &mut self.outputs;
        match side {
            Side::Subscriber => self.subscriber.send_data(channel, payload, now, outputs),
            Side::Publisher => self.publisher.send_data(channel, payload, now, outputs),
        }
    }

    /// One datagram received on the host socket `destination`.
    pub fn handle_datagram(
        &mut self,
        source: SocketAddr,
        destination: SocketAddr,
        bytes: &[u8],
        now: Instant,
    ) {
        if self.gatherer.owns(bytes) {
            match self.gatherer.handle_response(source, bytes) {
                Ok(Some(reflexive)) => self.add_reflexive(reflexive.mapped, reflexive.base, now),
                Ok(None) => {}
                Err(error) => {
                    tracing::debug!(%source, %error, "STUN server refused a binding request")
                }
            }
            return;
        }
        let owner = self.owner(destination);
        let to_subscriber = matches!(owner, Some(None | Some(Side::Subscriber)));
        let to_publisher = matches!(owner, Some(None | Some(Side::Publisher)));
        if to_subscriber && self.subscriber.accepts(source, destination, bytes, now) {
            self.subscriber
                .handle_datagram(source, destination, bytes, now, &mut self.outputs);
        } else if to_publisher && self.publisher.accepts(source, destination, bytes, now) {
            self.publisher
                .handle_datagram(source, destination, bytes, now, &mut self.outputs);
        } else {
            self.unclaimed += 1;
            if !self.reported_unclaimed {
                self.reported_unclaimed = true;
                self.outputs.events.push_back(RtcEvent::Refused {
                    side: None,
                    error: InputError::UnknownSource {
                        source_addr: source,
                    },
                });
            }
        }
    }

    fn add_reflexive(&mut self, mapped: SocketAddr, base: SocketAddr, now: Instant) {
        if self.owner(mapped).is_some() {
            return; // not behind a NAT: the host candidate says it all
        }
        let Some(side) = self.owner(base) else {
            return;
        };
        match str0m::Candidate::server_reflexive(mapped, base, "udp") {
            Ok(candidate) => {
                if side != Some(Side::Publisher) {
                    self.subscriber
                        .add_local_candidate(candidate.clone(), now, &mut self.outputs);
                }
                if side != Some(Side::Subscriber) {
                    self.publisher
                        .add_local_candidate(candidate, now, &mut self.outputs);
                }
            }
            Err(error) => tracing::debug!(%error, "unusable server-reflexive address"),
        }
    }

    /// Advances time: stack timers, STUN retransmissions, connect and
    /// reconnect deadlines.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.subscriber.handle_timeout(now, &mut self.outputs);
        self.publisher.handle_timeout(now, &mut self.outputs);
        while let Some(request) = self.gatherer.poll_transmit(now) {
            self.outputs.transmits.push_back(Transmit {
                source: request.source,
                destination: request.destination,
                contents: request.contents.to_vec(),
            });
        }
        self.gatherer.expire(now);
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.outputs.transmits.pop_front()
    }

    /// The next event for the room.
    pub fn poll_event(&mut self) -> Option<RtcEvent> {
        self.outputs.events.pop_front()
    }

    /// When [`RoomTransport::handle_timeout`] is next due; `None` once both
    /// sides have ended and no STUN request is outstanding.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.subscriber.poll_timeout(),
            self.publisher.poll_timeout(),
            self.gatherer.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Remote audio tracks currently offered on `side`.
    pub fn remote_tracks(&self, side: Side) -> &[super::event::RemoteTrack] {
        match side {
            Side::Subscriber => self.subscriber.remote_tracks(),
            Side::Publisher => self.publisher.remote_tracks(),
        }
    }

    /// Local tracks negotiated on `side`.
    pub fn local_tracks(&self, side: Side) -> Vec<LocalTrack> {
        match side {
            Side::Subscriber => self.subscriber.local_tracks().collect(),
            Side::Publisher => self.publisher.local_tracks().collect(),
        }
    }

    /// Closes both connections cleanly.
    pub fn close(&mut self, now: Instant) {
        self.subscriber.close(now, &mut self.outputs);
        self.publisher.close(now, &mut self.outputs);
    }

    /// Whether either side can still carry media.
    pub fn is_alive(&self) -> bool {
        [self.subscriber.state(), self.publisher.state()]
            .iter()
            .any(|s| !matches!(s, PeerState::Failed | PeerState::Closed))
    }
}
