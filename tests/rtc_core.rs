//! The transport core with time passed in, over an in-memory network:
//! timeouts, failures and refused input, decided to the millisecond of
//! virtual time.

#[path = "rtc/memory_net.rs"]
mod memory_net;

use std::time::{Duration, Instant};

use memory_net::{Net, participant_addr, server_addr};
use voxguard::room::rtc::sdp::SdpError;
use voxguard::room::rtc::{
    FailReason, InputError, OfferChanges, Role, RoomTransport, RtcError, RtcEvent, Side,
    TransportConfig,
};

fn failures(events: &[RtcEvent]) -> Vec<&RtcEvent> {
    events
        .iter()
        .filter(|e| matches!(e, RtcEvent::Failed { .. }))
        .collect()
}

#[test]
fn both_sides_connect_over_the_memory_network() {
    let mut net = Net::new(Instant::now());
    net.connect();
    assert!(failures(&net.participant_events).is_empty());
}

#[test]
fn a_peer_that_vanishes_mid_dtls_fails_the_side_at_the_connect_timeout() {
    let start = Instant::now();
    let mut net = Net::new(start);
    // ICE gets through; the server's DTLS never arrives.
    net.filter = Box::new(|from_server, t| !(from_server && (20..64).contains(&t.contents[0])));
    net.negotiate_subscriber();
    net.advance(Duration::from_millis(9_990));
    assert!(
        failures(&net.participant_events).is_empty(),
        "nothing fails before the timeout: {:?}",
        net.participant_events
    );
    net.advance(Duration::from_millis(10));
    assert_eq!(
        failures(&net.participant_events),
        vec![&RtcEvent::Failed {
            side: Side::Subscriber,
            reason: FailReason::ConnectTimeout(Duration::from_secs(10)),
        }]
    );
    assert!(
        !net.participant_events
            .contains(&RtcEvent::Connected(Side::Subscriber))
    );
}

#[test]
fn a_connected_side_whose_path_breaks_disconnects_then_fails_after_the_grace() {
    let mut net = Net::new(Instant::now());
    net.connect();
    net.filter = Box::new(|_, _| false);
    net.advance(Duration::from_secs(60));
    let disconnected = net
        .participant_events
        .iter()
        .position(|e| *e == RtcEvent::Disconnected(Side::Subscriber))
        .expect("consent checks notice the broken path");
    let failed = net
        .participant_events
        .iter()
        .position(|e| {
            *e == RtcEvent::Failed {
                side: Side::Subscriber,
                reason: FailReason::MediaPathLost(Duration::from_secs(15)),
            }
        })
        .expect("the side fails once the grace period is over");
    assert!(disconnected < failed);
}

#[test]
fn rtp_with_an_undeclared_payload_type_or_ssrc_is_dropped_and_reported_once() {
    let mut net = Net::new(Instant::now());
    net.connect();
    let rtp = |pt: u8, ssrc: u32| {
        let mut packet = vec![0x80, pt, 0, 1, 0, 0, 0, 0];
        packet.extend_from_slice(&ssrc.to_be_bytes());
        packet.extend_from_slice(&[0u8; 40]);
        packet
    };
    let declared = net.participant.remote_tracks(Side::Subscriber)[0].ssrcs[0];
    for packet in [rtp(0, declared), rtp(0, declared), rtp(111, 0xdead_beef)] {
        net.participant
            .handle_datagram(server_addr(), participant_addr(), &packet, net.now);
    }
    net.pump();
    let refused: Vec<&InputError> = net
        .participant_events
        .iter()
        .filter_map(|e| match e {
            RtcEvent::Refused { error, .. } => Some(error),
            _ => None,
        })
        .collect();
    assert_eq!(
        refused,
        vec![
            &InputError::UnexpectedPayloadType { pt: 0 },
            &InputError::UnexpectedSsrc { ssrc: 0xdead_beef }
        ]
    );
    assert_eq!(net.participant.stats().subscriber.refused_rtp, 3);
    assert!(
        failures(&net.participant_events).is_empty(),
        "refused input does not fail the side"
    );
}

#[test]
fn datagrams_from_a_stranger_are_counted_and_reported_once() {
    let mut net = Net::new(Instant::now());
    net.connect();
    let stranger = "198.51.100.9:4000".parse().unwrap();
    for _ in 0..3 {
        net.participant.handle_datagram(
            stranger,
            participant_addr(),
            &[0x80, 111, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            net.now,
        );
    }
    net.pump();
    let reports = net
        .participant_events
        .iter()
        .filter(|e| {
            matches!(
                e,
                RtcEvent::Refused {
                    error: InputError::UnknownSource { .. },
                    ..
                }
            )
        })
        .count();
    assert_eq!(reports, 1);
    assert_eq!(net.participant.stats().unclaimed_datagrams, 3);
}

fn server_offer(now: Instant) -> String {
    let mut server = RoomTransport::new(TransportConfig::new(Role::Server), now);
    server.add_host(None, server_addr(), now).unwrap();
    server
        .create_offer(
            Side::Subscriber,
            &OfferChanges {
                add_audio: vec![("PA_x".into(), "TR_x".into())],
                ..OfferChanges::default()
            },
            now,
        )
        .unwrap()
        .unwrap()
        .sdp
}

fn participant(now: Instant) -> RoomTransport {
    let mut participant = RoomTransport::new(TransportConfig::new(Role::Participant), now);
    participant
        .add_host(Some(Side::Subscriber), participant_addr(), now)
        .unwrap();
    participant
}

#[test]
fn an_offer_without_opus_is_refused_naming_what_it_offered() {
    let now = Instant::now();
    let offer = server_offer(now).replace("opus/48000/2", "PCMU/8000");
    let error = participant(now)
        .accept_offer(Side::Subscriber, &offer, now)
        .unwrap_err();
    assert!(
        matches!(&error, RtcError::Sdp(SdpError::NoOpus { offered, .. }) if offered == "pcmu"),
        "{error}"
    );
}

#[test]
fn an_offer_without_audio_or_data_is_refused() {
    let now = Instant::now();
    let offer = server_offer(now).replace("m=audio", "m=video");
    let error = participant(now)
        .accept_offer(Side::Subscriber, &offer, now)
        .unwrap_err();
    assert_eq!(error, RtcError::Sdp(SdpError::NoAudio));
}

#[test]
fn malformed_descriptions_are_typed_errors_and_leave_the_side_usable() {
    let now = Instant::now();
    let mut participant = participant(now);
    for garbage in [
        "",
        "v=1\r\n",
        "v=0\r\nm=audio x\r\n",
        "v=0\r\nm=audio 9 RTP/AVP 111\r\n",
    ] {
        let error = participant
            .accept_offer(Side::Subscriber, garbage, now)
            .unwrap_err();
        assert!(matches!(error, RtcError::Sdp(_)), "{garbage:?}: {error}");
    }
    // A description the checks pass but the stack refuses (no fingerprint).
    let offer = server_offer(now);
    let stripped: String = offer
        .lines()
        .filter(|l| !l.starts_with("a=fingerprint"))
        .map(|l| format!("{l}\r\n"))
        .collect();
    let error = participant
        .accept_offer(Side::Subscriber, &stripped, now)
        .unwrap_err();
    assert!(
        matches!(error, RtcError::Sdp(SdpError::Refused(_))),
        "{error}"
    );
}

#[test]
fn an_answer_without_a_pending_offer_is_refused() {
    let now = Instant::now();
    let mut participant = participant(now);
    let error = participant
        .accept_answer(Side::Publisher, &server_offer(now), now)
        .unwrap_err();
    assert_eq!(error, RtcError::NoPendingOffer("publisher"));
}

#[test]
fn rtp_timestamps_advance_by_960_and_jump_by_a_gap_in_sending() {
    let mut net = Net::new(Instant::now());
    net.connect();
    let track = net.participant_track.unwrap();
    let frame = Duration::from_millis(20);
    let send = |net: &mut Net, n: u8| {
        net.participant
            .send_audio(track, vec![n; 60], frame, net.now)
            .unwrap();
        net.advance(frame);
    };
    for n in 0..3 {
        send(&mut net, n);
    }
    // One second of silence: nothing is sent.
    net.advance(Duration::from_millis(980));
    for n in 3..5 {
        send(&mut net, n);
    }
    net.advance(Duration::from_millis(200));
    let received: Vec<(u64, u32, u8)> = net
        .server_events
        .iter()
        .filter_map(|e| match e {
            RtcEvent::Audio {
                side: Side::Publisher,
                packet,
            } => Some((packet.sequence, packet.rtp_timestamp, packet.payload[0])),
            _ => None,
        })
        .collect();
    assert_eq!(
        received.iter().map(|r| r.2).collect::<Vec<_>>(),
        vec![0, 1, 2, 3, 4]
    );
    let steps: Vec<u32> = received
        .windows(2)
        .map(|w| w[1].1.wrapping_sub(w[0].1))
        .collect();
    // Packet 3 leaves one second after packet 2: 48 000 ticks at 48 kHz.
    assert_eq!(steps, vec![960, 960, 48_000, 960]);
    let seq_steps: Vec<u64> = received.windows(2).map(|w| w[1].0 - w[0].0).collect();
    assert_eq!(
        seq_steps,
        vec![1, 1, 1, 1],
        "sequence numbers stay continuous"
    );
}

#[test]
fn sending_audio_before_the_side_is_connected_is_refused() {
    let now = Instant::now();
    let mut net = Net::new(now);
    net.negotiate_publisher();
    let error = net
        .participant
        .send_audio(
            net.participant_track.unwrap(),
            vec![0; 10],
            Duration::from_millis(20),
            now,
        )
        .unwrap_err();
    assert!(matches!(error, RtcError::WrongState { .. }), "{error}");
    let error = net
        .participant
        .send_audio(
            net.participant_track.unwrap(),
            vec![0; 10],
            Duration::from_millis(500),
            now,
        )
        .unwrap_err();
    assert_eq!(error, RtcError::AudioDuration(Duration::from_millis(500)));
}
