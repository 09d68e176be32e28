//! The jitter buffer as a receiver sees it: a sender paced at 20 ms, a
//! network that delays, reorders, duplicates and drops, and a 20 ms tick
//! asking what to decode. Time is passed in; nothing sleeps.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use voxguard::media::jitter::{Decode, JitterBuffer, JitterConfig, MAX_PAYLOAD, Pushed, RtpPacket};

const FRAME: Duration = Duration::from_millis(20);

/// What one tick produced, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Out {
    Packet(u16),
    Fec(u16),
    Conceal(Option<u64>),
    Idle,
}

fn payload(seq: u16) -> [u8; 2] {
    seq.to_be_bytes()
}

fn decode_seq(bytes: &[u8]) -> u16 {
    u16::from_be_bytes([bytes[0], bytes[1]])
}

fn pop(buffer: &mut JitterBuffer, now: Instant) -> Out {
    let tick = buffer.pop(now);
    match tick.decode {
        Decode::Packet { payload } => Out::Packet(decode_seq(payload)),
        Decode::Fec { next_payload } => Out::Fec(decode_seq(next_payload).wrapping_sub(1)),
        Decode::Conceal => Out::Conceal(tick.sequence),
        Decode::Idle => Out::Idle,
    }
}

/// A sender paced at 20 ms from `first`, each packet delayed by the network
/// as `delay(i)` says (`None`: lost); ticks every 20 ms for `ticks`.
fn simulate(
    first: u16,
    count: u16,
    ticks: u32,
    delay: impl Fn(u16) -> Option<Duration>,
) -> (Vec<Out>, JitterBuffer) {
    let start = Instant::now();
    let mut buffer = JitterBuffer::new(JitterConfig::default());
    let mut arrivals: Vec<(Instant, u16)> = (0..count)
        .filter_map(|i| delay(i).map(|d| (start + FRAME * u32::from(i) + d, i)))
        .collect();
    arrivals.sort();
    let mut arrivals = arrivals.into_iter().peekable();
    let mut out = Vec::new();
    for t in 0..ticks {
        let now = start + FRAME * t + Duration::from_millis(5);
        while let Some(&(at, i)) = arrivals.peek() {
            if at > now {
                break;
            }
            let seq = first.wrapping_add(i);
            let packet = RtpPacket {
                ssrc: 1,
                sequence: seq,
                timestamp: u32::from(i) * 960,
                payload: &payload(seq),
            };
            buffer.push(packet, at);
            arrivals.next();
        }
        out.push(pop(&mut buffer, now));
    }
    (out, buffer)
}

fn packets(out: &[Out]) -> Vec<u16> {
    out.iter()
        .filter_map(|o| match o {
            Out::Packet(s) => Some(*s),
            _ => None,
        })
        .collect()
}

#[test]
fn a_steady_stream_plays_every_packet_in_order_across_the_sequence_wrap() {
    let (out, buffer) = simulate(65_500, 100, 110, |_| Some(Duration::from_millis(3)));
    let played = packets(&out);
    let expected: Vec<u16> = (0..100).map(|i| 65_500u16.wrapping_add(i)).collect();
    assert_eq!(played, expected);
    let stats = buffer.stats();
    assert_eq!((stats.lost, stats.late, stats.duplicate), (0, 0, 0));
    assert_eq!(buffer.target_delay(), Duration::from_millis(20));
}

#[test]
fn reordered_packets_come_out_in_sequence_order() {
    // Odd packets overtake even ones by 15 ms.
    let (out, buffer) = simulate(0, 50, 60, |i| {
        Some(Duration::from_millis(if i % 2 == 0 { 30 } else { 15 }))
    });
    assert_eq!(packets(&out), (0..50).collect::<Vec<u16>>());
    assert_eq!(buffer.stats().lost, 0);
}

#[test]
fn a_lost_packet_is_recovered_from_its_successor_and_two_in_a_row_are_concealed_then_recovered() {
    let (out, buffer) = simulate(100, 40, 45, |i| {
        (i != 10 && i != 20 && i != 21).then_some(Duration::from_millis(2))
    });
    let position = |o: &Out| out.iter().position(|x| x == o).unwrap();
    assert_eq!(position(&Out::Fec(110)), position(&Out::Packet(109)) + 1);
    assert_eq!(position(&Out::Packet(111)), position(&Out::Fec(110)) + 1);
    // With one frame of delay, 120's absence only shows once 122 arrives:
    // until then the buffer conceals without giving up on it.
    let after: Vec<&Out> = out[position(&Out::Packet(119)) + 1..]
        .iter()
        .filter(|o| **o != Out::Conceal(None))
        .take(3)
        .collect();
    assert!(matches!(after[0], Out::Conceal(Some(_))), "{after:?}");
    assert_eq!(after[1..], [&Out::Fec(121), &Out::Packet(122)]);
    let stats = buffer.stats();
    assert_eq!((stats.lost, stats.recovered), (3, 2));
}

#[test]
fn duplicates_and_packets_after_their_turn_are_counted_and_dropped() {
    let start = Instant::now();
    let mut buffer = JitterBuffer::new(JitterConfig::default());
    let push = |b: &mut JitterBuffer, seq: u16, at: Instant| {
        b.push(
            RtpPacket {
                ssrc: 9,
                sequence: seq,
                timestamp: u32::from(seq) * 960,
                payload: &payload(seq),
            },
            at,
        )
    };
    assert_eq!(push(&mut buffer, 0, start), Pushed::Accepted);
    assert_eq!(push(&mut buffer, 0, start), Pushed::Duplicate);
    assert_eq!(push(&mut buffer, 2, start), Pushed::Accepted);
    let t = start + Duration::from_millis(25);
    assert_eq!(pop(&mut buffer, t), Out::Packet(0));
    assert_eq!(pop(&mut buffer, t), Out::Fec(1));
    assert_eq!(push(&mut buffer, 1, t), Pushed::Late);
    assert_eq!(push(&mut buffer, 0, t), Pushed::Duplicate);
    let stats = buffer.stats();
    assert_eq!(
        (stats.received, stats.duplicate, stats.late, stats.lost),
        (5, 2, 1, 1)
    );
}

#[test]
fn a_sender_that_stops_is_reported_idle_after_a_short_concealment() {
    let (out, buffer) = simulate(0, 50, 200, |_| Some(Duration::from_millis(1)));
    let concealed = out.iter().filter(|o| matches!(o, Out::Conceal(_))).count();
    assert!(
        concealed <= 10,
        "{concealed} concealed frames after the sender stopped"
    );
    assert!(out[100..].iter().all(|o| *o == Out::Idle));
    assert_eq!(buffer.stats().lost, 0);
}

#[test]
fn a_sender_that_resumes_after_a_pause_plays_again() {
    let (out, _) = simulate(0, 150, 170, |i| {
        Some(if i < 50 {
            Duration::ZERO
        } else {
            Duration::from_millis(1_000)
        })
    });
    let played = packets(&out);
    // Every packet that arrived in time for a tick, in order, none dropped.
    assert!(played.len() >= 110, "{played:?}");
    assert_eq!(played, (0..played.len() as u16).collect::<Vec<u16>>());
}

#[test]
fn a_new_ssrc_starts_a_new_stream_and_says_so_on_its_first_tick() {
    let start = Instant::now();
    let mut buffer = JitterBuffer::new(JitterConfig::default());
    for i in 0..5u16 {
        buffer.push(
            RtpPacket {
                ssrc: 1,
                sequence: 1_000 + i,
                timestamp: 0,
                payload: &payload(i),
            },
            start,
        );
    }
    let t = start + Duration::from_millis(30);
    assert!(!buffer.pop(t).new_stream);
    let pushed = buffer.push(
        RtpPacket {
            ssrc: 2,
            sequence: 7,
            timestamp: 0,
            payload: &payload(7),
        },
        t,
    );
    assert_eq!(pushed, Pushed::Restarted);
    assert_eq!(buffer.pop(t).decode, Decode::Idle); // buffering the new sender
    let tick = buffer.pop(t + Duration::from_millis(40));
    assert!(tick.new_stream);
    assert_eq!(
        tick.decode,
        Decode::Packet {
            payload: &payload(7)
        }
    );
    assert_eq!(buffer.stats().restarts, 1);
}

#[test]
fn a_sequence_jump_restarts_only_when_a_second_packet_confirms_it() {
    let start = Instant::now();
    let mut buffer = JitterBuffer::new(JitterConfig::default());
    let mut push = |seq: u16| {
        buffer.push(
            RtpPacket {
                ssrc: 3,
                sequence: seq,
                timestamp: 0,
                payload: &payload(seq),
            },
            start,
        )
    };
    assert_eq!(push(10), Pushed::Accepted);
    assert_eq!(push(30_000), Pushed::Probation); // a stray
    assert_eq!(push(11), Pushed::Accepted);
    assert_eq!(push(40_000), Pushed::Probation);
    assert_eq!(push(40_001), Pushed::Restarted);
    assert_eq!(buffer.stats().restarts, 1);
}

#[test]
fn network_jitter_raises_the_delay_and_calm_trims_it_back() {
    // 0-60 ms of jitter for 10 s, then a calm network for 10 s.
    let (out, buffer) = simulate(0, 1_000, 1_010, |i| {
        let jitter = if i < 500 {
            u64::from(i.wrapping_mul(7919) % 61)
        } else {
            0
        };
        Some(Duration::from_millis(jitter))
    });
    let stats = buffer.stats();
    let late_share = stats.late as f64 / 1_000.0;
    assert!(late_share < 0.05, "{} late of 1000", stats.late);
    assert!(stats.dropped > 0, "the surplus delay was never trimmed");
    // The calm second half plays packets, not concealment, and ends as
    // close behind the sender as a calm start does.
    assert!(
        out[800..1_000].iter().all(|o| matches!(o, Out::Packet(_))),
        "{:?}",
        &out[800..1_000]
    );
    assert_eq!(out[999], Out::Packet(998));
}

#[test]
fn oversized_and_empty_payloads_are_refused() {
    let mut buffer = JitterBuffer::new(JitterConfig::default());
    let now = Instant::now();
    let big = vec![0u8; MAX_PAYLOAD + 1];
    assert_eq!(
        buffer.push(
            RtpPacket {
                ssrc: 1,
                sequence: 0,
                timestamp: 0,
                payload: &big
            },
            now
        ),
        Pushed::Refused
    );
    assert_eq!(
        buffer.push(
            RtpPacket {
                ssrc: 1,
                sequence: 0,
                timestamp: 0,
                payload: &[]
            },
            now
        ),
        Pushed::Refused
    );
    assert!(buffer.is_empty());
}

#[derive(Debug, Clone)]
enum Op {
    Push {
        ssrc: u32,
        seq_offset: i32,
        len: usize,
        after_ms: u8,
    },
    Pop {
        after_ms: u8,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u32..2, -40i32..60, 1usize..40, 0u8..30)
            .prop_map(|(ssrc, seq_offset, len, after_ms)| Op::Push { ssrc, seq_offset, len, after_ms }),
        1 => (0u32..2, -40_000i32..40_000, 1usize..40, 0u8..30)
            .prop_map(|(ssrc, seq_offset, len, after_ms)| Op::Push { ssrc, seq_offset, len, after_ms }),
        3 => (0u8..40).prop_map(|after_ms| Op::Pop { after_ms }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Within a stream every sequence number is emitted at most once and in
    /// increasing order, a packet plays only its own payload, and the
    /// buffer never holds more than its capacity.
    #[test]
    fn every_sequence_number_is_emitted_at_most_once_in_order_and_memory_is_bounded(
        ops in prop::collection::vec(op(), 1..400),
        start_seq in any::<u16>(),
    ) {
        let config = JitterConfig { capacity: 16, ..JitterConfig::default() };
        let mut buffer = JitterBuffer::new(config);
        let mut now = Instant::now();
        let mut base = start_seq;
        let mut last: Option<u64> = None;
        for op in ops {
            match op {
                Op::Push { ssrc, seq_offset, len, after_ms } => {
                    now += Duration::from_millis(after_ms.into());
                    let seq = base.wrapping_add(seq_offset as u16);
                    if (0..60).contains(&seq_offset) {
                        base = base.wrapping_add(1);
                    }
                    let mut bytes = vec![0u8; len.max(2)];
                    bytes[..2].copy_from_slice(&seq.to_be_bytes());
                    buffer.push(RtpPacket { ssrc, sequence: seq, timestamp: u32::from(seq) * 960, payload: &bytes }, now);
                }
                Op::Pop { after_ms } => {
                    now += Duration::from_millis(after_ms.into());
                    let tick = buffer.pop(now);
                    if tick.new_stream {
                        last = None;
                    }
                    if let Decode::Packet { payload } = tick.decode {
                        let ext = tick.sequence.expect("a packet has a sequence number");
                        prop_assert_eq!(decode_seq(payload), ext as u16);
                    }
                    if let Some(ext) = tick.sequence {
                        prop_assert!(last.is_none_or(|l| ext > l), "{ext} after {last:?}");
                        last = Some(ext);
                    }
                }
            }
            prop_assert!(buffer.len() <= 16);
        }
    }
}
