//! Two transports in one process over real UDP on 127.0.0.1: one in the
//! ICE-lite server role (what the LiveKit stand-in will run), one as the
//! participant. Audio and both data channels flow both ways, a
//! renegotiation adds a second track, an ICE restart keeps media flowing.

#[path = "rtc/endpoint.rs"]
mod endpoint;

use std::sync::Arc;
use std::time::Duration;

use endpoint::Endpoint;
use voxguard::room::rtc::driver::DriverError;
use voxguard::room::rtc::{DataChannel, LocalTrack, OfferChanges, Role, RtcError, RtcEvent, Side};

const FRAME: Duration = Duration::from_millis(20);

/// A connected pair: the server's subscriber track to the participant and
/// the participant's publisher track to the server.
struct Pair {
    server: Endpoint,
    participant: Endpoint,
    server_track: LocalTrack,
    participant_track: LocalTrack,
}

async fn connected_pair() -> Pair {
    let mut server = Endpoint::start(Role::Server).await;
    let mut participant = Endpoint::start(Role::Participant).await;

    // Subscriber: the server offers the caller's audio and its channels.
    let offer = server
        .handle
        .create_offer(
            Side::Subscriber,
            OfferChanges {
                add_audio: vec![("PA_caller".into(), "TR_caller".into())],
                data_channels: true,
                ..OfferChanges::default()
            },
        )
        .await
        .unwrap()
        .expect("an offer");
    assert!(
        offer.sdp.contains("a=ice-lite"),
        "the server role is ICE-lite"
    );
    let answer = participant
        .handle
        .accept_offer(Side::Subscriber, offer.sdp)
        .await
        .unwrap()
        .sdp;
    server
        .handle
        .accept_answer(Side::Subscriber, answer)
        .await
        .unwrap();

    // Publisher: the participant offers its track and LiveKit's channels.
    let publish = participant
        .handle
        .create_offer(
            Side::Publisher,
            OfferChanges::publish_audio("PA_agent", "TR_agent"),
        )
        .await
        .unwrap()
        .expect("an offer");
    let answer = server
        .handle
        .accept_offer(Side::Publisher, publish.sdp)
        .await
        .unwrap()
        .sdp;
    participant
        .handle
        .accept_answer(Side::Publisher, answer)
        .await
        .unwrap();

    for side in [Side::Subscriber, Side::Publisher] {
        for endpoint in [&mut server, &mut participant] {
            endpoint
                .saw("connected", |e| *e == RtcEvent::Connected(side))
                .await;
        }
    }
    Pair {
        server,
        participant,
        server_track: offer.tracks[0],
        participant_track: publish.tracks[0],
    }
}

fn payload(track: u8, n: u16) -> Arc<[u8]> {
    // An Opus-sized frame that says which packet it is.
    let mut bytes = vec![track; 80];
    bytes[..2].copy_from_slice(&n.to_be_bytes());
    bytes.into()
}

async fn send_frames(endpoint: &Endpoint, track: LocalTrack, marker: u8, count: u16) {
    let mut tick = tokio::time::interval(FRAME);
    for n in 0..count {
        tick.tick().await;
        endpoint
            .handle
            .send_audio(track, payload(marker, n), FRAME)
            .await
            .unwrap();
    }
}

/// Asserts `count` packets arrived whole, in order, 960 RTP ticks apart.
async fn receive_frames(endpoint: &mut Endpoint, side: Side, marker: u8, count: u16) {
    let packets = endpoint
        .collect("audio", usize::from(count), |e| {
            matches!(e, RtcEvent::Audio { side: s, packet } if *s == side && packet.payload[2] == marker)
        })
        .await;
    let packets: Vec<_> = packets
        .into_iter()
        .map(|e| match e {
            RtcEvent::Audio { packet, .. } => packet,
            _ => unreachable!(),
        })
        .collect();
    for (n, packet) in packets.iter().enumerate() {
        assert_eq!(
            &packet.payload[..],
            &payload(marker, n as u16)[..],
            "packet {n} whole and in order"
        );
    }
    for pair in packets.windows(2) {
        assert_eq!(pair[1].sequence, pair[0].sequence + 1);
        assert_eq!(
            pair[1].rtp_timestamp.wrapping_sub(pair[0].rtp_timestamp),
            960
        );
        assert!(pair[1].arrival >= pair[0].arrival);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audio_flows_both_ways_whole_in_order_with_timestamps() {
    let mut pair = connected_pair().await;
    let added = pair
        .participant
        .seen
        .iter()
        .find(|e| matches!(e, RtcEvent::TrackAdded { .. }))
        .cloned()
        .expect("the track was announced with the offer");
    let RtcEvent::TrackAdded { side, track } = added else {
        unreachable!()
    };
    assert_eq!(side, Side::Subscriber);
    assert_eq!(track.stream_id, "PA_caller");
    assert_eq!(track.track_id, "TR_caller");
    assert_eq!(track.mid, pair.server_track.mid);
    assert!(!track.ssrcs.is_empty(), "str0m declares its SSRCs");

    let down = send_frames(&pair.server, pair.server_track, 1, 50);
    let up = send_frames(&pair.participant, pair.participant_track, 2, 50);
    tokio::join!(down, up);
    receive_frames(&mut pair.participant, Side::Subscriber, 1, 50).await;
    receive_frames(&mut pair.server, Side::Publisher, 2, 50).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_data_channels_carry_bytes_both_ways() {
    let mut pair = connected_pair().await;
    for side in [Side::Subscriber, Side::Publisher] {
        for endpoint in [&mut pair.server, &mut pair.participant] {
            for channel in [DataChannel::Reliable, DataChannel::Lossy] {
                endpoint
                    .saw("channel open", |e| {
                        *e == RtcEvent::ChannelOpen { side, channel }
                    })
                    .await;
            }
        }
    }
    for (from_server, side) in [(true, Side::Subscriber), (false, Side::Publisher)] {
        for channel in [DataChannel::Reliable, DataChannel::Lossy] {
            let message = format!("{side:?} {channel:?}").into_bytes();
            let (sender, receiver) = if from_server {
                (&pair.server, &mut pair.participant)
            } else {
                (&pair.participant, &mut pair.server)
            };
            sender
                .handle
                .send_data(side, channel, message.clone())
                .await
                .unwrap();
            receiver
                .next_matching("data", |e| {
                    *e == RtcEvent::Data {
                        side,
                        channel,
                        payload: message.clone(),
                    }
                })
                .await;
        }
    }
    // And the other way on the same connections: each peer connection's
    // channels are bidirectional.
    pair.participant
        .handle
        .send_data(Side::Subscriber, DataChannel::Reliable, b"ack".to_vec())
        .await
        .unwrap();
    pair.server
        .next_matching("data back", |e| {
            *e == RtcEvent::Data {
                side: Side::Subscriber,
                channel: DataChannel::Reliable,
                payload: b"ack".to_vec(),
            }
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renegotiation_adds_a_second_track_and_removes_it() {
    let mut pair = connected_pair().await;
    let offer = pair
        .server
        .handle
        .create_offer(
            Side::Subscriber,
            OfferChanges {
                add_audio: vec![("PA_second".into(), "TR_second".into())],
                ..OfferChanges::default()
            },
        )
        .await
        .unwrap()
        .expect("an offer");
    let answer = pair
        .participant
        .handle
        .accept_offer(Side::Subscriber, offer.sdp)
        .await
        .unwrap()
        .sdp;
    pair.server
        .handle
        .accept_answer(Side::Subscriber, answer)
        .await
        .unwrap();
    let second = offer.tracks[0];
    let added = pair
        .participant
        .next_matching(
            "second track",
            |e| matches!(e, RtcEvent::TrackAdded { track, .. } if track.track_id == "TR_second"),
        )
        .await;
    let RtcEvent::TrackAdded { track, .. } = added else {
        unreachable!()
    };
    assert_eq!(track.mid, second.mid);
    assert_ne!(track.mid, pair.server_track.mid);

    tokio::join!(
        send_frames(&pair.server, pair.server_track, 3, 25),
        send_frames(&pair.server, second, 4, 25)
    );
    receive_frames(&mut pair.participant, Side::Subscriber, 3, 25).await;
    receive_frames(&mut pair.participant, Side::Subscriber, 4, 25).await;

    // The participant leaves: the server stops its track.
    let offer = pair
        .server
        .handle
        .create_offer(
            Side::Subscriber,
            OfferChanges {
                remove_audio: vec![second.mid],
                ..OfferChanges::default()
            },
        )
        .await
        .unwrap()
        .expect("an offer");
    let answer = pair
        .participant
        .handle
        .accept_offer(Side::Subscriber, offer.sdp)
        .await
        .unwrap()
        .sdp;
    pair.server
        .handle
        .accept_answer(Side::Subscriber, answer)
        .await
        .unwrap();
    pair.participant
        .next_matching("track removed", |e| {
            *e == RtcEvent::TrackRemoved {
                side: Side::Subscriber,
                mid: second.mid,
            }
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ice_restart_on_either_side_keeps_media_flowing() {
    let mut pair = connected_pair().await;
    // The participant restarts its publisher.
    let offer = pair
        .participant
        .handle
        .create_offer(Side::Publisher, OfferChanges::ice_restart())
        .await
        .unwrap()
        .expect("a restart needs an offer");
    let answer = pair
        .server
        .handle
        .accept_offer(Side::Publisher, offer.sdp)
        .await
        .unwrap()
        .sdp;
    pair.participant
        .handle
        .accept_answer(Side::Publisher, answer)
        .await
        .unwrap();
    // The server restarts the subscriber.
    let offer = pair
        .server
        .handle
        .create_offer(Side::Subscriber, OfferChanges::ice_restart())
        .await
        .unwrap()
        .expect("a restart needs an offer");
    let answer = pair
        .participant
        .handle
        .accept_offer(Side::Subscriber, offer.sdp)
        .await
        .unwrap()
        .sdp;
    pair.server
        .handle
        .accept_answer(Side::Subscriber, answer)
        .await
        .unwrap();

    tokio::join!(
        send_frames(&pair.participant, pair.participant_track, 5, 25),
        send_frames(&pair.server, pair.server_track, 6, 25)
    );
    receive_frames(&mut pair.server, Side::Publisher, 5, 25).await;
    receive_frames(&mut pair.participant, Side::Subscriber, 6, 25).await;
    assert!(
        !pair
            .participant
            .seen
            .iter()
            .chain(&pair.server.seen)
            .any(|e| matches!(e, RtcEvent::Failed { .. })),
        "no side failed across the restarts"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_out_of_role_and_oversized_messages_are_typed_errors() {
    let pair = connected_pair().await;
    let error = pair
        .participant
        .handle
        .create_offer(Side::Subscriber, OfferChanges::ice_restart())
        .await
        .unwrap_err();
    assert!(
        matches!(error, DriverError::Rtc(RtcError::WrongRole { .. })),
        "{error}"
    );
    let error = pair
        .participant
        .handle
        .send_data(Side::Publisher, DataChannel::Reliable, vec![0; 70 * 1024])
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            DriverError::Rtc(RtcError::OversizedData {
                len: 71680,
                max: 65536
            })
        ),
        "{error}"
    );
    let error = pair
        .participant
        .handle
        .accept_offer(Side::Subscriber, "this is not sdp".into())
        .await
        .unwrap_err();
    assert!(error.to_string().contains("v=0"), "{error}");
}
