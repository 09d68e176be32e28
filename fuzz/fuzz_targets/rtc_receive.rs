//! The RTP receive path of the room's media transport: arbitrary datagrams
//! from the peer's address into a participant core that is connected (the
//! SRTP path, with the first bytes shaped like RTP on the negotiated SSRC
//! and payload type when asked) or still connecting (ICE and DTLS). Nothing
//! panics, and the core keeps working: a frame sent afterwards still
//! arrives.
//!
//! Input: one flags byte (bit 0: connecting instead of connected, bit 1:
//! to the publisher socket, bit 2: dress datagrams as RTP of the declared
//! stream), then datagrams, each a little-endian u16 length and that many
//! bytes.

#![no_main]

#[path = "../../tests/rtc/memory_net.rs"]
mod memory_net;

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use memory_net::{Net, participant_addr, participant_publisher_addr, server_addr};
use voxguard::room::rtc::{RtcEvent, Side};

fuzz_target!(|data: &[u8]| {
    let Some((&flags, mut rest)) = data.split_first() else {
        return;
    };
    let connecting = flags & 1 != 0;
    let to_publisher = flags & 2 != 0;
    let dress = flags & 4 != 0;
    let mut net = Net::new(Instant::now());
    if connecting {
        net.negotiate_subscriber();
        net.negotiate_publisher();
    } else {
        net.connect();
    }
    let destination = if to_publisher {
        participant_publisher_addr()
    } else {
        participant_addr()
    };
    let ssrc = net
        .participant
        .remote_tracks(Side::Subscriber)
        .first()
        .and_then(|t| t.ssrcs.first().copied())
        .unwrap_or(0);
    while rest.len() >= 2 {
        let len = usize::from(u16::from_le_bytes([rest[0], rest[1]])).min(rest.len() - 2);
        let mut datagram = rest[2..2 + len].to_vec();
        rest = &rest[2 + len..];
        if dress && datagram.len() >= 12 {
            datagram[0] = 0x80 | (datagram[0] & 0x3f);
            datagram[1] = (datagram[1] & 0x80) | 111;
            datagram[8..12].copy_from_slice(&ssrc.to_be_bytes());
        }
        net.participant
            .handle_datagram(server_addr(), destination, &datagram, net.now);
        net.pump();
    }
    net.advance(Duration::from_millis(50));
    if !connecting && net.server.state(Side::Subscriber) == voxguard::room::rtc::PeerState::Connected {
        let before = net
            .participant_events
            .iter()
            .filter(|e| matches!(e, RtcEvent::Audio { .. }))
            .count();
        let track = net.server_track.expect("connected pairs have a track");
        if net
            .server
            .send_audio(track, vec![0xf8, 0xff, 0xfe], Duration::from_millis(20), net.now)
            .is_ok()
        {
            net.advance(Duration::from_millis(100));
            let after = net
                .participant_events
                .iter()
                .filter(|e| matches!(e, RtcEvent::Audio { .. }))
                .count();
            let failed = net
                .participant_events
                .iter()
                .any(|e| matches!(e, RtcEvent::Failed { side: Side::Subscriber, .. }));
            assert!(failed || after > before, "a frame sent after the fuzz input did not arrive");
        }
    }
});
