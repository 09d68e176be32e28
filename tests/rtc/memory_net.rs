//! Two transport cores joined by an in-memory network with time passed in:
//! datagrams go from one core to the other by address, a filter can drop
//! them, and the clock jumps to the next deadline. Used by tests, the
//! benchmark and the fuzz target; no sockets, no sleeping.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use voxguard::room::rtc::{
    LocalTrack, OfferChanges, Role, RoomTransport, RtcEvent, Side, Transmit, TransportConfig,
};

/// The server end answers both connections from one port, as LiveKit does.
pub const SERVER_ADDR: &str = "192.0.2.1:7882";
/// The participant's subscriber socket; its publisher socket is the next port.
pub const PARTICIPANT_ADDR: &str = "192.0.2.2:50000";

/// Decides whether a datagram is delivered; the flag says the server sent it.
pub type Filter = Box<dyn FnMut(bool, &Transmit) -> bool>;

pub struct Net {
    pub server: RoomTransport,
    pub participant: RoomTransport,
    pub now: Instant,
    pub server_events: Vec<RtcEvent>,
    pub participant_events: Vec<RtcEvent>,
    pub server_track: Option<LocalTrack>,
    pub participant_track: Option<LocalTrack>,
    /// Returns false to drop a datagram (sent by the server when the flag is true).
    pub filter: Filter,
}

pub fn server_addr() -> SocketAddr {
    SERVER_ADDR.parse().unwrap()
}

pub fn participant_addr() -> SocketAddr {
    PARTICIPANT_ADDR.parse().unwrap()
}

pub fn participant_publisher_addr() -> SocketAddr {
    let mut addr = participant_addr();
    addr.set_port(addr.port() + 1);
    addr
}

impl Net {
    pub fn new(start: Instant) -> Net {
        Net::with_config(
            TransportConfig::new(Role::Server),
            TransportConfig::new(Role::Participant),
            start,
        )
    }

    pub fn with_config(
        server: TransportConfig,
        participant: TransportConfig,
        start: Instant,
    ) -> Net {
        let mut server = RoomTransport::new(server, start);
        server.add_host(None, server_addr(), start).unwrap();
        let mut participant = RoomTransport::new(participant, start);
        participant
            .add_host(Some(Side::Subscriber), participant_addr(), start)
            .unwrap();
        participant
            .add_host(Some(Side::Publisher), participant_publisher_addr(), start)
            .unwrap();
        Net {
            server,
            participant,
            now: start,
            server_events: Vec::new(),
            participant_events: Vec::new(),
            server_track: None,
            participant_track: None,
            filter: Box::new(|_, _| true),
        }
    }

    /// Negotiates the subscriber side (server offers one track and the
    /// channels).
    pub fn negotiate_subscriber(&mut self) {
        let offer = self
            .server
            .create_offer(
                Side::Subscriber,
                &OfferChanges {
                    add_audio: vec![("PA_caller".into(), "TR_caller".into())],
                    data_channels: true,
                    ..OfferChanges::default()
                },
                self.now,
            )
            .unwrap()
            .unwrap();
        self.server_track = Some(offer.tracks[0]);
        let answer = self
            .participant
            .accept_offer(Side::Subscriber, &offer.sdp, self.now)
            .unwrap()
            .sdp;
        self.server
            .accept_answer(Side::Subscriber, &answer, self.now)
            .unwrap();
    }

    /// Negotiates the publisher side (participant offers its track).
    pub fn negotiate_publisher(&mut self) {
        let offer = self
            .participant
            .create_offer(
                Side::Publisher,
                &OfferChanges::publish_audio("PA_agent", "TR_agent"),
                self.now,
            )
            .unwrap()
            .unwrap();
        self.participant_track = Some(offer.tracks[0]);
        let answer = self
            .server
            .accept_offer(Side::Publisher, &offer.sdp, self.now)
            .unwrap()
            .sdp;
        self.participant
            .accept_answer(Side::Publisher, &answer, self.now)
            .unwrap();
    }

    /// Delivers every queued datagram (and what they cause) and collects
    /// events, without moving the clock.
    pub fn pump(&mut self) {
        loop {
            let mut moved = false;
            while let Some(t) = self.server.poll_transmit() {
                moved = true;
                if t.destination.ip() == participant_addr().ip() && (self.filter)(true, &t) {
                    self.participant.handle_datagram(
                        t.source,
                        t.destination,
                        &t.contents,
                        self.now,
                    );
                }
            }
            while let Some(t) = self.participant.poll_transmit() {
                moved = true;
                if t.destination == server_addr() && (self.filter)(false, &t) {
                    self.server
                        .handle_datagram(t.source, t.destination, &t.contents, self.now);
                }
            }
            while let Some(e) = self.server.poll_event() {
                self.server_events.push(e);
            }
            while let Some(e) = self.participant.poll_event() {
                self.participant_events.push(e);
            }
            if !moved {
                return;
            }
        }
    }

    /// Runs until `until` or the next deadline past it, whichever is first.
    pub fn advance_to(&mut self, until: Instant) {
        for _ in 0..1_000_000 {
            self.pump();
            let next = [self.server.poll_timeout(), self.participant.poll_timeout()]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(until)
                .max(self.now);
            if next >= until {
                self.now = until;
                self.server.handle_timeout(self.now);
                self.participant.handle_timeout(self.now);
                self.pump();
                return;
            }
            self.now = next;
            self.server.handle_timeout(self.now);
            self.participant.handle_timeout(self.now);
        }
        panic!(
            "the clock did not reach {until:?}: a core keeps asking for the same instant \
             (now {:?}, server {:?} at {:?}, participant {:?} at {:?})",
            self.now,
            self.server,
            self.server.poll_timeout(),
            self.participant,
            self.participant.poll_timeout()
        );
    }

    pub fn advance(&mut self, by: Duration) {
        let until = self.now + by;
        self.advance_to(until);
    }

    /// Both sides negotiated and connected on both ends.
    pub fn connect(&mut self) {
        self.negotiate_subscriber();
        self.negotiate_publisher();
        for _ in 0..200 {
            self.advance(Duration::from_millis(10));
            let up = |events: &[RtcEvent], side| events.contains(&RtcEvent::Connected(side));
            if [Side::Subscriber, Side::Publisher]
                .iter()
                .all(|side| up(&self.server_events, *side) && up(&self.participant_events, *side))
            {
                return;
            }
        }
        panic!(
            "not connected after 2 s of virtual time: server {:?}, participant {:?}",
            self.server_events, self.participant_events
        );
    }
}
