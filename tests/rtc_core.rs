//! The transport core with time passed in, over an in-memory network:
//! timeouts, failures and refused input, decided to the millisecond of
//! virtual time.

#[path = "rtc/memory_net.rs"]
mod memory_net;

use std::time::{Duration, Instant};

use memory_net::{Net, participant_addr, server_addr};
use voxguard::room::rtc::sdp::SdpError;
use voxguard::room::rtc::{
    CandidateInit, FailReason, InputError, OfferChanges, Role, RoomTransport, RtcError, RtcEvent,
    Side, TransportConfig,
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

/// The `a=candidate` lines of a description as trickle messages, and the
/// description without them.
fn split_candidates(sdp: &str) -> (String, Vec<CandidateInit>) {
    let mut rest = String::new();
    let mut candidates = Vec::new();
    for line in sdp.lines() {
        match line.strip_prefix("a=") {
            Some(candidate) if candidate.starts_with("candidate:") => {
                candidates.push(CandidateInit {
                    candidate: candidate.to_owned(),
                    sdp_mid: Some("0".into()),
                    sdp_m_line_index: Some(0),
                    username_fragment: None,
                })
            }
            _ => {
                rest.push_str(line);
                rest.push_str("\r\n");
            }
        }
    }
    (rest, candidates)
}

#[test]
fn a_side_connects_on_trickled_candidates_alone() {
    let mut net = Net::new(Instant::now());
    let offer = net
        .server
        .create_offer(
            Side::Subscriber,
            &OfferChanges {
                add_audio: vec![("PA_c".into(), "TR_c".into())],
                ..OfferChanges::default()
            },
            net.now,
        )
        .unwrap()
        .unwrap();
    let (offer, server_candidates) = split_candidates(&offer.sdp);
    assert!(!server_candidates.is_empty());
    let answer = net
        .participant
        .accept_offer(Side::Subscriber, &offer, net.now)
        .unwrap();
    let (answer, participant_candidates) = split_candidates(&answer.sdp);
    net.server
        .accept_answer(Side::Subscriber, &answer, net.now)
        .unwrap();
    net.advance(Duration::from_millis(500));
    assert!(
        !net.participant_events
            .contains(&RtcEvent::Connected(Side::Subscriber)),
        "no candidates, no connection"
    );
    // Through the signal socket, as TrickleRequest JSON.
    for init in server_candidates {
        let json = init.to_json();
        net.participant
            .add_remote_candidate(
                Side::Subscriber,
                &CandidateInit::from_json(&json).unwrap(),
                net.now,
            )
            .unwrap();
    }
    for init in participant_candidates {
        net.server
            .add_remote_candidate(Side::Subscriber, &init, net.now)
            .unwrap();
    }
    net.advance(Duration::from_millis(500));
    assert!(
        net.participant_events
            .contains(&RtcEvent::Connected(Side::Subscriber))
    );
    assert!(
        net.server_events
            .contains(&RtcEvent::Connected(Side::Subscriber))
    );
}

#[test]
fn a_host_added_after_the_description_is_trickled_to_that_side_only() {
    let mut net = Net::new(Instant::now());
    net.negotiate_subscriber();
    let late: std::net::SocketAddr = "192.0.2.2:50007".parse().unwrap();
    net.participant
        .add_host(Some(Side::Subscriber), late, net.now)
        .unwrap();
    let events: Vec<RtcEvent> = std::iter::from_fn(|| net.participant.poll_event()).collect();
    let trickled: Vec<&RtcEvent> = events
        .iter()
        .filter(|e| matches!(e, RtcEvent::LocalCandidate { .. }))
        .collect();
    assert_eq!(trickled.len(), 1);
    let RtcEvent::LocalCandidate { side, candidate } = trickled[0] else {
        unreachable!()
    };
    assert_eq!(*side, Side::Subscriber);
    assert_eq!(candidate.parse().unwrap().unwrap().addr(), late);
    // The publisher has no description out yet: nothing to trickle there.
    assert!(!events.iter().any(|e| matches!(
        e,
        RtcEvent::LocalCandidate {
            side: Side::Publisher,
            ..
        }
    )));
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]

    #[test]
    fn arbitrary_datagrams_never_panic_a_connected_core_and_audio_still_arrives(
        datagrams in proptest::collection::vec(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300), 1..40),
        dress_as_rtp in proptest::prelude::any::<bool>(),
    ) {
        let mut net = Net::new(Instant::now());
        net.connect();
        let ssrc = net.participant.remote_tracks(Side::Subscriber)[0].ssrcs[0];
        for mut datagram in datagrams {
            if dress_as_rtp && datagram.len() >= 12 {
                datagram[0] = 0x80;
                datagram[1] = 111;
                datagram[8..12].copy_from_slice(&ssrc.to_be_bytes());
            }
            net.participant.handle_datagram(server_addr(), participant_addr(), &datagram, net.now);
            net.pump();
        }
        let track = net.server_track.unwrap();
        net.server.send_audio(track, vec![0xf8, 0xff, 0xfe], Duration::from_millis(20), net.now).unwrap();
        net.advance(Duration::from_millis(100));
        let failed = !failures(&net.participant_events).is_empty();
        let heard = net.participant_events.iter().any(|e| matches!(e, RtcEvent::Audio { .. }));
        proptest::prop_assert!(!failed, "garbage failed the side");
        proptest::prop_assert!(heard, "no audio after the garbage");
    }
}
