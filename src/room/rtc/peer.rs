//! One peer connection of a room (subscriber or publisher) around a
//! `str0m::Rtc`: it checks descriptions before the stack sees them, keeps
//! the remote tracks named by their `msid`, stamps local audio with each
//! track's [`RtpClock`], screens incoming RTP ([`Screen`]), bounds
//! connecting and reconnecting with deadlines, and turns the stack's events
//! into [`RtcEvent`]s. Every mutation
//! is followed by a full drain of the stack's output, as str0m requires.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::channel::{ChannelConfig, ChannelId, Reliability};
use str0m::media::{Direction, Frequency, MediaKind, MediaTime, Pt};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc};

use super::candidates::CandidateInit;
use super::clock::RtpClock;
use super::event::{
    AudioPacket, DataChannel, FailReason, InputError, LocalTrack, Mid, RemoteTrack, RtcError,
    RtcEvent, Side,
};
use super::screen::Screen;
use super::sdp::{SdpError, SectionKind, Summary, summarize};

/// A datagram, or a STUN request, for the driver to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// The local socket to send from (a host candidate's address).
    pub source: SocketAddr,
    pub destination: SocketAddr,
    pub contents: Vec<u8>,
}

/// Where the transport's outputs collect between polls.
#[derive(Debug, Default)]
pub(super) struct Outputs {
    pub transmits: VecDeque<Transmit>,
    pub events: VecDeque<RtcEvent>,
}

/// Connection state, from negotiation to the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerState {
    /// No description exchanged yet.
    New,
    /// Negotiated; ICE and DTLS under way.
    Connecting,
    Connected,
    /// Was connected; consent checks stopped answering.
    Disconnected,
    Failed,
    Closed,
}

impl PeerState {
    pub fn as_str(self) -> &'static str {
        match self {
            PeerState::New => "new",
            PeerState::Connecting => "connecting",
            PeerState::Connected => "connected",
            PeerState::Disconnected => "disconnected",
            PeerState::Failed => "failed",
            PeerState::Closed => "closed",
        }
    }
}

/// Counters for figures and health.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeerStats {
    pub audio_sent: u64,
    pub audio_received: u64,
    pub data_sent: u64,
    pub data_received: u64,
    pub refused_rtp: u64,
    pub refused_data: u64,
}

#[derive(Debug)]
struct LocalAudio {
    mid: Mid,
    pt: Option<Pt>,
    clock: RtpClock,
}

impl LocalAudio {
    fn new(mid: Mid) -> LocalAudio {
        LocalAudio {
            mid,
            pt: None,
            // A random start, as RFC 3550 asks.
            clock: RtpClock::new(u64::from(rand::random::<u32>())),
        }
    }
}

/// Which labelled channel a stack channel id is.
#[derive(Debug, Clone, Copy)]
struct OpenChannel {
    id: ChannelId,
    channel: DataChannel,
}

pub(super) struct Peer {
    pub side: Side,
    pub rtc: Rtc,
    state: PeerState,
    pending: Option<(SdpPendingOffer, Vec<Mid>)>,
    /// A description has gone out (offer or answer): later local candidates
    /// must be trickled.
    described: bool,
    remote: Summary,
    remote_tracks: Vec<RemoteTrack>,
    local_tracks: Vec<LocalAudio>,
    channels: Vec<OpenChannel>,
    channels_offered: bool,
    screen: Screen,
    next_timeout: Instant,
    connect_deadline: Option<Instant>,
    lost_deadline: Option<Instant>,
    connect_timeout: Duration,
    reconnect_grace: Duration,
    max_data_message: usize,
    pub stats: PeerStats,
}

impl Peer {
    pub fn new(
        side: Side,
        rtc: Rtc,
        now: Instant,
        connect_timeout: Duration,
        reconnect_grace: Duration,
        max_data_message: usize,
    ) -> Peer {
        Peer {
            side,
            rtc,
            state: PeerState::New,
            pending: None,
            described: false,
            remote: Summary::default(),
            remote_tracks: Vec::new(),
            local_tracks: Vec::new(),
            channels: Vec::new(),
            channels_offered: false,
            screen: Screen::default(),
            next_timeout: now,
            connect_deadline: None,
            lost_deadline: None,
            connect_timeout,
            reconnect_grace,
            max_data_message,
            stats: PeerStats::default(),
        }
    }

    pub fn state(&self) -> PeerState {
        self.state
    }

    pub fn remote_tracks(&self) -> &[RemoteTrack] {
        &self.remote_tracks
    }

    pub fn local_tracks(&self) -> impl Iterator<Item = LocalTrack> + '_ {
        self.local_tracks.iter().map(|t| LocalTrack {
            side: self.side,
            mid: t.mid,
        })
    }

    fn alive(&self) -> bool {
        !matches!(self.state, PeerState::Failed | PeerState::Closed)
    }

    fn require_alive(&self, what: &'static str) -> Result<(), RtcError> {
        if self.alive() {
            Ok(())
        } else {
            Err(RtcError::WrongState {
                side: self.side.as_str(),
                state: self.state.as_str(),
                what,
                needs: "alive (not failed or closed)",
            })
        }
    }

    /// Applies a remote offer; returns the answer and the audio tracks we
    /// may send on (sections the remote offered as `sendrecv`).
    pub fn accept_offer(
        &mut self,
        sdp: &str,
        now: Instant,
        out: &mut Outputs,
    ) -> Result<(String, Vec<LocalTrack>), RtcError> {
        self.require_alive("accepting an offer")?;
        let summary = summarize(sdp)?;
        summary.check_audio()?;
        let offer = SdpOffer::from_sdp_string(sdp).map_err(|e| SdpError::Refused(e.to_string()))?;
        let answer = self
            .rtc
            .sdp_api()
            .accept_offer(offer)
            .map_err(|e| SdpError::Refused(e.to_string()));
        // Whatever happened, a pending local offer is void now.
        self.pending = None;
        let answer = match answer {
            Ok(answer) => answer,
            Err(error) => {
                self.drain(now, out);
                return Err(error.into());
            }
        };
        self.described = true;
        let mut sendable = Vec::new();
        for section in summary.active().filter(|s| s.kind == SectionKind::Audio) {
            let mid = Mid::from(section.mid.as_str());
            let sends = self.rtc.media(mid).is_some_and(|m| {
                matches!(m.direction(), Direction::SendRecv | Direction::SendOnly)
            });
            if sends {
                if !self.local_tracks.iter().any(|t| t.mid == mid) {
                    self.local_tracks.push(LocalAudio::new(mid));
                }
                sendable.push(LocalTrack {
                    side: self.side,
                    mid,
                });
            }
        }
        self.local_tracks
            .retain(|t| summary.active().any(|s| s.mid == *t.mid));
        self.update_remote(summary, out);
        self.arm_connect(now);
        self.drain(now, out);
        Ok((answer.to_sdp_string(), sendable))
    }

    /// Creates an offer with `tracks` (stream id, track id) added as
    /// send-only Opus, LiveKit's data channels if asked and not yet there,
    /// `stop` tracks removed, and an ICE restart if asked. `None` when
    /// nothing needs negotiating.
    pub fn create_offer(
        &mut self,
        tracks: &[(String, String)],
        data_channels: bool,
        stop: &[Mid],
        ice_restart: bool,
        now: Instant,
        out: &mut Outputs,
    ) -> Result<Option<(String, Vec<LocalTrack>)>, RtcError> {
        self.require_alive("creating an offer")?;
        for mid in stop {
            if !self.local_tracks.iter().any(|t| t.mid == *mid) {
                return Err(RtcError::UnknownTrack(mid.to_string()));
            }
        }
        let mut api = self.rtc.sdp_api();
        let mut added = Vec::new();
        for (stream_id, track_id) in tracks {
            added.push(api.add_media(
                MediaKind::Audio,
                Direction::SendOnly,
                Some(stream_id.clone()),
                Some(track_id.clone()),
                None,
            ));
        }
        if data_channels && !self.channels_offered {
            api.add_channel_with_config(ChannelConfig {
                label: DataChannel::Reliable.label().to_owned(),
                ordered: true,
                reliability: Reliability::Reliable,
                ..Default::default()
            });
            api.add_channel_with_config(ChannelConfig {
                label: DataChannel::Lossy.label().to_owned(),
                ordered: false,
                reliability: Reliability::MaxRetransmits { retransmits: 0 },
                ..Default::default()
            });
            self.channels_offered = true;
        }
        for mid in stop {
            api.stop_media(*mid);
        }
        if ice_restart {
            api.ice_restart(true);
        }
        let applied = api.apply();
        for mid in stop {
            self.local_tracks.retain(|t| t.mid != *mid);
        }
        let result = match applied {
            Some((offer, pending)) => {
                self.pending = Some((pending, added.clone()));
                self.described = true;
                let tracks = added
                    .into_iter()
                    .map(|mid| LocalTrack {
                        side: self.side,
                        mid,
                    })
                    .collect();
                Some((offer.to_sdp_string(), tracks))
            }
            None => None,
        };
        if ice_restart && self.state == PeerState::Disconnected {
            // The restart is the way back; give it a full connect window.
            self.lost_deadline = Some(now + self.connect_timeout);
        }
        self.drain(now, out);
        Ok(result)
    }

    /// Applies the remote answer to our pending offer.
    pub fn accept_answer(
        &mut self,
        sdp: &str,
        now: Instant,
        out: &mut Outputs,
    ) -> Result<(), RtcError> {
        self.require_alive("accepting an answer")?;
        let summary = summarize(sdp)?;
        summary.check_audio()?;
        let Some((pending, added)) = self.pending.take() else {
            return Err(RtcError::NoPendingOffer(self.side.as_str()));
        };
        let answer =
            SdpAnswer::from_sdp_string(sdp).map_err(|e| SdpError::Refused(e.to_string()))?;
        if let Err(error) = self.rtc.sdp_api().accept_answer(pending, answer) {
            self.drain(now, out);
            return Err(SdpError::Refused(error.to_string()).into());
        }
        for mid in added {
            self.local_tracks.push(LocalAudio::new(mid));
        }
        self.update_remote(summary, out);
        self.arm_connect(now);
        self.drain(now, out);
        Ok(())
    }

    fn arm_connect(&mut self, now: Instant) {
        if matches!(self.state, PeerState::New | PeerState::Connecting) {
            self.state = PeerState::Connecting;
            self.connect_deadline
                .get_or_insert(now + self.connect_timeout);
        }
    }

    /// Diffs the remote's audio tracks against the new description.
    fn update_remote(&mut self, summary: Summary, out: &mut Outputs) {
        let now_tracks: Vec<RemoteTrack> = summary
            .active()
            .filter(|s| s.kind == SectionKind::Audio && s.remote_sends() && s.opus_pt().is_some())
            .map(|s| {
                let (stream_id, track_id) = s.msid.clone().unwrap_or_default();
                RemoteTrack {
                    mid: Mid::from(s.mid.as_str()),
                    ssrcs: s.ssrcs.clone(),
                    stream_id,
                    track_id,
                }
            })
            .collect();
        for old in &self.remote_tracks {
            if !now_tracks
                .iter()
                .any(|t| t.mid == old.mid && t.track_id == old.track_id)
            {
                out.events.push_back(RtcEvent::TrackRemoved {
                    side: self.side,
                    mid: old.mid,
                });
            }
        }
        for new in &now_tracks {
            if !self
                .remote_tracks
                .iter()
                .any(|t| t.mid == new.mid && t.track_id == new.track_id)
            {
                out.events.push_back(RtcEvent::TrackAdded {
                    side: self.side,
                    track: new.clone(),
                });
            }
        }
        self.remote_tracks = now_tracks;
        self.screen.update(&summary);
        self.remote = summary;
    }

    /// Adds a local candidate; returns whether it must be trickled.
    pub fn add_local_candidate(&mut self, candidate: Candidate, now: Instant, out: &mut Outputs) {
        if !self.alive() {
            return;
        }
        let added = self.rtc.add_local_candidate(candidate).cloned();
        if let Some(added) = added
            && self.described
        {
            out.events.push_back(RtcEvent::LocalCandidate {
                side: self.side,
                candidate: CandidateInit::from_candidate(&added),
            });
        }
        self.drain(now, out);
    }

    pub fn add_remote_candidate(&mut self, candidate: Candidate, now: Instant, out: &mut Outputs) {
        if !self.alive() {
            return;
        }
        self.rtc.add_remote_candidate(candidate);
        self.drain(now, out);
    }

    /// Sends one Opus packet lasting `duration` on `mid`, stamped by the
    /// track's [`RtpClock`].
    pub fn send_audio(
        &mut self,
        mid: Mid,
        payload: impl Into<std::sync::Arc<[u8]>>,
        duration: Duration,
        now: Instant,
        out: &mut Outputs,
    ) -> Result<(), RtcError> {
        if duration < Duration::from_micros(2_500) || duration > Duration::from_millis(120) {
            return Err(RtcError::AudioDuration(duration));
        }
        if self.state != PeerState::Connected {
            return Err(RtcError::WrongState {
                side: self.side.as_str(),
                state: self.state.as_str(),
                what: "sending audio",
                needs: "connected",
            });
        }
        let Some(index) = self.local_tracks.iter().position(|t| t.mid == mid) else {
            return Err(RtcError::UnknownTrack(mid.to_string()));
        };
        let track = &self.local_tracks[index];
        let stamp = track.clock.stamp(now, duration);
        let cached_pt = track.pt;
        let Some(writer) = self.rtc.writer(mid) else {
            return Err(RtcError::UnknownTrack(mid.to_string()));
        };
        let pt = match cached_pt {
            Some(pt) => pt,
            None => writer
                .payload_params()
                .find(|p| p.spec().codec == str0m::format::Codec::Opus)
                .map(|p| p.pt())
                .ok_or_else(|| RtcError::Stack("Opus was not negotiated on this track".into()))?,
        };
        let written = writer.start_of_talkspurt(stamp.talk_spurt).write(
            pt,
            now,
            MediaTime::new(stamp.timestamp, Frequency::FORTY_EIGHT_KHZ),
            payload,
        );
        let track = &mut self.local_tracks[index];
        track.pt = Some(pt);
        let result = match written {
            Ok(()) => {
                track.clock.commit(stamp, now, duration);
                self.stats.audio_sent += 1;
                Ok(())
            }
            Err(error) => Err(RtcError::Stack(error.to_string())),
        };
        self.drain(now, out);
        result
    }

    /// Sends `payload` on a data channel.
    pub fn send_data(
        &mut self,
        channel: DataChannel,
        payload: &[u8],
        now: Instant,
        out: &mut Outputs,
    ) -> Result<(), RtcError> {
        if payload.len() > self.max_data_message {
            return Err(RtcError::OversizedData {
                len: payload.len(),
                max: self.max_data_message,
            });
        }
        let not_open = RtcError::ChannelNotOpen {
            side: self.side.as_str(),
            label: channel.label(),
        };
        let Some(open) = self.channels.iter().find(|c| c.channel == channel) else {
            return Err(not_open);
        };
        let Some(mut handle) = self.rtc.channel(open.id) else {
            return Err(not_open);
        };
        let result = match handle.write(true, payload) {
            Ok(true) => {
                self.stats.data_sent += 1;
                Ok(())
            }
            Ok(false) => Err(RtcError::Stack(format!(
                "the {} channel's send buffer is full; wait for it to drain",
                channel.label()
            ))),
            Err(error) => Err(RtcError::Stack(error.to_string())),
        };
        self.drain(now, out);
        result
    }

    /// Whether this connection takes a datagram from `source`.
    pub fn accepts(
        &self,
        source: SocketAddr,
        destination: SocketAddr,
        bytes: &[u8],
        now: Instant,
    ) -> bool {
        if !self.alive() {
            return false;
        }
        match Receive::new(Protocol::Udp, source, destination, bytes) {
            Ok(receive) => self.rtc.accepts(&Input::Receive(now, receive)),
            Err(_) => false,
        }
    }

    fn report(&mut self, error: InputError, out: &mut Outputs) {
        if self.screen.first_time(&error) {
            out.events.push_back(RtcEvent::Refused {
                side: Some(self.side),
                error,
            });
        }
    }

    /// Feeds one datagram this connection accepted.
    pub fn handle_datagram(
        &mut self,
        source: SocketAddr,
        destination: SocketAddr,
        bytes: &[u8],
        now: Instant,
        out: &mut Outputs,
    ) {
        if !self.alive() {
            return;
        }
        if let Err(error) = self.screen.check(bytes) {
            self.stats.refused_rtp += 1;
            self.report(error, out);
            return;
        }
        let receive = match Receive::new(Protocol::Udp, source, destination, bytes) {
            Ok(receive) => receive,
            Err(error) => {
                self.report(InputError::Stack(error.to_string()), out);
                return;
            }
        };
        // A refused datagram is reported, never fatal: a stray or forged
        // packet must not end the call. A handshake that truly fails (a
        // fingerprint that does not match) closes the stack, which the
        // drain turns into `Failed`; one that stalls meets the connect
        // timeout.
        if let Err(error) = self.rtc.handle_input(Input::Receive(now, receive)) {
            self.report(InputError::Stack(error.to_string()), out);
        }
        self.drain(now, out);
    }

    /// Advances time to `now`.
    pub fn handle_timeout(&mut self, now: Instant, out: &mut Outputs) {
        if !self.alive() {
            return;
        }
        if let Some(deadline) = self.connect_deadline
            && now >= deadline
            && self.state == PeerState::Connecting
        {
            self.fail(FailReason::ConnectTimeout(self.connect_timeout), out);
            return;
        }
        if let Some(deadline) = self.lost_deadline
            && now >= deadline
            && self.state == PeerState::Disconnected
        {
            self.fail(FailReason::MediaPathLost(self.reconnect_grace), out);
            return;
        }
        if now >= self.next_timeout {
            if let Err(error) = self.rtc.handle_input(Input::Timeout(now)) {
                self.fail(FailReason::Stack(error.to_string()), out);
                return;
            }
            self.drain(now, out);
        }
    }

    /// The earliest time this connection needs [`Peer::handle_timeout`].
    pub fn poll_timeout(&self) -> Option<Instant> {
        if !self.alive() {
            return None;
        }
        let deadlines = [
            Some(self.next_timeout),
            self.connect_deadline
                .filter(|_| self.state == PeerState::Connecting),
            self.lost_deadline
                .filter(|_| self.state == PeerState::Disconnected),
        ];
        deadlines.into_iter().flatten().min()
    }

    fn fail(&mut self, reason: FailReason, out: &mut Outputs) {
        self.state = PeerState::Failed;
        self.rtc.disconnect();
        out.events.push_back(RtcEvent::Failed {
            side: self.side,
            reason,
        });
    }

    /// Closes the connection (RTCP BYE, SCTP shutdown, DTLS close_notify).
    pub fn close(&mut self, now: Instant, out: &mut Outputs) {
        if !self.alive() {
            return;
        }
        self.state = PeerState::Closed;
        let _ = self.rtc.close();
        self.drain(now, out);
    }

    /// Drains the stack's output until its next timeout.
    fn drain(&mut self, now: Instant, out: &mut Outputs) {
        loop {
            if !self.rtc.is_alive() {
                if self.alive() {
                    self.fail(
                        FailReason::Stack("the WebRTC stack closed the connection".into()),
                        out,
                    );
                }
                return;
            }
            let output = match self.rtc.poll_output() {
                Ok(output) => output,
                Err(error) => {
                    self.fail(FailReason::Stack(error.to_string()), out);
                    return;
                }
            };
            match output {
                Output::Timeout(at) => {
                    // A deadline at or before the instant just handled asks
                    // for the same instant again; a millisecond on keeps a
                    // driver from spinning.
                    self.next_timeout = at.max(now + Duration::from_millis(1));
                    return;
                }
                Output::Transmit(transmit) => out.transmits.push_back(Transmit {
                    source: transmit.source,
                    destination: transmit.destination,
                    contents: transmit.contents.into(),
                }),
                Output::Event(event) => self.on_event(event, now, out),
            }
        }
    }

    fn on_event(&mut self, event: Event, now: Instant, out: &mut Outputs) {
        match event {
            Event::Connected => self.connected(out),
            Event::IceConnectionStateChange(IceConnectionState::Disconnected)
                if self.state == PeerState::Connected =>
            {
                self.state = PeerState::Disconnected;
                self.lost_deadline = Some(now + self.reconnect_grace);
                out.events.push_back(RtcEvent::Disconnected(self.side));
            }
            Event::IceConnectionStateChange(
                IceConnectionState::Connected | IceConnectionState::Completed,
            ) if self.state == PeerState::Disconnected => self.connected(out),
            Event::MediaData(data) => {
                self.stats.audio_received += 1;
                out.events.push_back(RtcEvent::Audio {
                    side: self.side,
                    packet: AudioPacket {
                        mid: data.mid,
                        sequence: **data.seq_range.start(),
                        rtp_timestamp: data.time.numer() as u32,
                        payload: data.data,
                        arrival: data.network_time,
                    },
                });
            }
            Event::ChannelOpen(id, label) => match DataChannel::from_label(&label) {
                Some(channel) => {
                    self.channels.retain(|c| c.channel != channel);
                    self.channels.push(OpenChannel { id, channel });
                    out.events.push_back(RtcEvent::ChannelOpen {
                        side: self.side,
                        channel,
                    });
                }
                None => tracing::debug!(
                    side = self.side.as_str(),
                    label = %label.chars().take(64).collect::<String>(),
                    "ignoring a data channel that is not one of LiveKit's"
                ),
            },
            Event::ChannelData(data) => {
                let Some(open) = self.channels.iter().find(|c| c.id == data.id).copied() else {
                    return;
                };
                if data.data.len() > self.max_data_message {
                    self.stats.refused_data += 1;
                    let error = InputError::OversizedData {
                        len: data.data.len(),
                        max: self.max_data_message,
                    };
                    self.report(error, out);
                    return;
                }
                self.stats.data_received += 1;
                out.events.push_back(RtcEvent::Data {
                    side: self.side,
                    channel: open.channel,
                    payload: data.data,
                });
            }
            Event::ChannelClose(id) => {
                if let Some(index) = self.channels.iter().position(|c| c.id == id) {
                    let open = self.channels.remove(index);
                    out.events.push_back(RtcEvent::ChannelClosed {
                        side: self.side,
                        channel: open.channel,
                    });
                }
            }
            Event::Closed if self.alive() => self.fail(
                FailReason::Stack("the remote peer closed the connection".into()),
                out,
            ),
            _ => {}
        }
    }

    fn connected(&mut self, out: &mut Outputs) {
        self.state = PeerState::Connected;
        self.connect_deadline = None;
        self.lost_deadline = None;
        out.events.push_back(RtcEvent::Connected(self.side));
    }
}
