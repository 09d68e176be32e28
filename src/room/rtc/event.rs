//! What the transport tells the room, and the typed errors of its commands
//! and of the input it refuses.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use str0m::media::Mid;

use super::candidates::{CandidateError, CandidateInit};
use super::sdp::SdpError;

/// One of a LiveKit participant's two peer connections, named from the
/// participant's side in both roles: the subscriber carries media from the
/// server to the participant, the publisher from the participant to the
/// server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    Subscriber,
    Publisher,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Subscriber => "subscriber",
            Side::Publisher => "publisher",
        }
    }

    /// The side a TrickleRequest's `target` names.
    pub fn of_signal_target(target: i32) -> Side {
        if target == livekit_protocol::SignalTarget::Subscriber as i32 {
            Side::Subscriber
        } else {
            Side::Publisher
        }
    }

    /// The TrickleRequest that sends `candidate` for this side.
    pub fn trickle(self, candidate: &super::CandidateInit) -> livekit_protocol::TrickleRequest {
        let target = match self {
            Side::Publisher => livekit_protocol::SignalTarget::Publisher,
            Side::Subscriber => livekit_protocol::SignalTarget::Subscriber,
        };
        livekit_protocol::TrickleRequest {
            candidate_init: candidate.to_json(),
            target: target as i32,
            ..Default::default()
        }
    }
}

/// LiveKit's two data channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataChannel {
    /// `_reliable`: ordered, retransmitted.
    Reliable,
    /// `_lossy`: unordered, never retransmitted.
    Lossy,
}

impl DataChannel {
    pub fn label(self) -> &'static str {
        match self {
            DataChannel::Reliable => "_reliable",
            DataChannel::Lossy => "_lossy",
        }
    }

    pub fn from_label(label: &str) -> Option<DataChannel> {
        match label {
            "_reliable" => Some(DataChannel::Reliable),
            "_lossy" => Some(DataChannel::Lossy),
            _ => None,
        }
    }
}

/// An audio track the remote peer sends, as its description names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteTrack {
    pub mid: Mid,
    /// The SSRCs the description declares (main first); empty when the
    /// peer relies on the mid header extension alone.
    pub ssrcs: Vec<u32>,
    /// `msid` stream id (LiveKit: the publisher's participant sid and track).
    pub stream_id: String,
    /// `msid` track id (LiveKit: the track sid, `TR_...`).
    pub track_id: String,
}

/// A track this side sends on; returned by offers that add one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LocalTrack {
    pub side: Side,
    pub mid: Mid,
}

/// One Opus packet received on a remote track.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioPacket {
    pub mid: Mid,
    /// RTP sequence number, extended past 16-bit rollover.
    pub sequence: u64,
    /// RTP timestamp at 48 kHz as sent.
    pub rtp_timestamp: u32,
    /// The Opus frame, shared with the stack (no copy).
    pub payload: Arc<[u8]>,
    /// When the datagram carrying it arrived.
    pub arrival: Instant,
}

/// Why a side of the transport failed for good.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FailReason {
    #[error("no ICE and DTLS connection within {0:?} after negotiation")]
    ConnectTimeout(Duration),
    #[error("the media path stayed disconnected for {0:?}; an ICE restart did not bring it back")]
    MediaPathLost(Duration),
    #[error("the WebRTC stack failed: {0}")]
    Stack(String),
}

/// Input the transport dropped, reported once per distinct kind and value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    #[error("RTP with SSRC {ssrc} that no description declared")]
    UnexpectedSsrc { ssrc: u32 },
    #[error("RTP with payload type {pt}, which was not negotiated (Opus only)")]
    UnexpectedPayloadType { pt: u8 },
    #[error("data channel message of {len} bytes exceeds the {max}-byte limit")]
    OversizedData { len: usize, max: usize },
    #[error("datagram from {source_addr} that no peer connection accepts")]
    UnknownSource { source_addr: SocketAddr },
    #[error("the WebRTC stack refused a datagram: {0}")]
    Stack(String),
}

/// What the room learns from the transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RtcEvent {
    /// ICE and DTLS are up (again, after `Disconnected`).
    Connected(Side),
    /// Consent checks stopped answering; may come back, or fail after the
    /// grace period.
    Disconnected(Side),
    Failed {
        side: Side,
        reason: FailReason,
    },
    TrackAdded {
        side: Side,
        track: RemoteTrack,
    },
    TrackRemoved {
        side: Side,
        mid: Mid,
    },
    Audio {
        side: Side,
        packet: AudioPacket,
    },
    ChannelOpen {
        side: Side,
        channel: DataChannel,
    },
    ChannelClosed {
        side: Side,
        channel: DataChannel,
    },
    Data {
        side: Side,
        channel: DataChannel,
        payload: Vec<u8>,
    },
    /// A local candidate learned after the description went out: trickle it
    /// with this side as the target.
    LocalCandidate {
        side: Side,
        candidate: CandidateInit,
    },
    Refused {
        side: Option<Side>,
        error: InputError,
    },
}

/// Why a command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RtcError {
    #[error(transparent)]
    Sdp(#[from] SdpError),
    #[error(transparent)]
    Candidate(#[from] CandidateError),
    #[error("the {side} connection is {state}; {what} needs it {needs}")]
    WrongState {
        side: &'static str,
        state: &'static str,
        what: &'static str,
        needs: &'static str,
    },
    #[error("in the {role} role the {side} connection {rule}")]
    WrongRole {
        role: &'static str,
        side: &'static str,
        rule: &'static str,
    },
    #[error("no answer is awaited on the {0} connection; create an offer first")]
    NoPendingOffer(&'static str),
    #[error("there is nothing to offer: no track, data channel or ICE restart was asked for")]
    NothingToOffer,
    #[error("track {0} is not a sending audio track of this transport")]
    UnknownTrack(String),
    #[error("data channel {label} is not open on the {side} connection yet")]
    ChannelNotOpen {
        side: &'static str,
        label: &'static str,
    },
    #[error(
        "data message of {len} bytes exceeds the {max}-byte limit; split it (text streams chunk at 15 000 bytes)"
    )]
    OversizedData { len: usize, max: usize },
    #[error("audio packet of {0:?} cannot be sent; Opus frames last 2.5 to 120 ms")]
    AudioDuration(Duration),
    #[error("the WebRTC stack refused: {0}")]
    Stack(String),
}
