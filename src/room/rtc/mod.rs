//! A room's media transport in pure Rust (str0m): the two peer connections
//! of a LiveKit participant — the subscriber, on which the server offers
//! other participants' audio and its data channels, and the publisher, on
//! which the participant offers its own audio track and the `_reliable` and
//! `_lossy` channels — over UDP sockets bound on the host's interfaces.
//!
//! [`RoomTransport`] is the sans-IO core (datagrams, timeouts and commands
//! in; datagrams, [`RtcEvent`]s and the next deadline out), usable in both
//! roles: a participant (full ICE, controlling against LiveKit's ICE-lite
//! server) and the server end (ICE-lite, for the test stand-in of a LiveKit
//! server). [`driver`] is the one tokio task that owns the sockets and the
//! clock.
//!
//! What is on: Opus only (anything else is refused in descriptions and
//! dropped as RTP with a typed report); RTCP sender and receiver reports
//! every 5 s; NACK answered from a 50-packet audio send buffer when the
//! peer negotiated it for Opus; trickle ICE both ways; host candidates from
//! the real interfaces (loopback only when asked) and server-reflexive ones
//! from the JoinResponse's STUN servers. **No TURN**: a peer reachable only
//! through a relay gets no media, and [`candidates::ice_servers`] flags a
//! server that offers only TURN so the room can log it.
//!
//! ```
//! use std::time::Instant;
//! use voxguard::room::rtc::{OfferChanges, Role, RoomTransport, Side, TransportConfig};
//!
//! let now = Instant::now();
//! let mut agent = RoomTransport::new(TransportConfig::new(Role::Participant), now);
//! agent.add_host(Some(Side::Subscriber), "127.0.0.1:50000".parse().unwrap(), now).unwrap();
//! agent.add_host(Some(Side::Publisher), "127.0.0.1:50001".parse().unwrap(), now).unwrap();
//! let offer = agent
//!     .create_offer(Side::Publisher, &OfferChanges::publish_audio("PA_agent", "TR_agent"), now)
//!     .unwrap()
//!     .unwrap();
//! assert!(offer.sdp.contains("opus/48000/2"));
//! assert!(offer.sdp.contains("webrtc-datachannel"));
//! ```

pub mod candidates;
pub mod clock;
pub mod driver;
mod event;
mod peer;
mod screen;
pub mod sdp;
pub mod stun;
mod transport;

pub use candidates::{
    CandidateInit, IceServers, Loopback, host_addresses, ice_servers, loopback_for_server,
};
pub use event::{
    AudioPacket, DataChannel, FailReason, InputError, LocalTrack, Mid, RemoteTrack, RtcError,
    RtcEvent, Side,
};
pub use peer::{PeerState, PeerStats, Transmit};
pub use transport::{
    Answer, Offer, OfferChanges, Role, RoomTransport, TransportConfig, TransportStats,
};
