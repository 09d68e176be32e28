//! Arbitrary RTP arrivals and ticks through the jitter buffer: sequence
//! numbers come out at most once and in order within a stream, a packet
//! plays its own payload, and the buffer never holds more than its
//! capacity.

#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use voxguard::media::jitter::{Decode, JitterBuffer, JitterConfig, RtpPacket};

const CAPACITY: usize = 16;

fuzz_target!(|data: &[u8]| {
    let mut buffer = JitterBuffer::new(JitterConfig {
        capacity: CAPACITY,
        ..JitterConfig::default()
    });
    let start = Instant::now();
    let mut now = start;
    let mut last: Option<u64> = None;
    // Each record: op, ssrc, sequence (2), timestamp (4), step ms, payload length.
    for record in data.chunks_exact(10) {
        now += Duration::from_millis(u64::from(record[8]));
        if record[0] & 1 == 0 {
            let sequence = u16::from_be_bytes([record[2], record[3]]);
            let timestamp = u32::from_be_bytes([record[4], record[5], record[6], record[7]]);
            let mut payload = [0u8; 64];
            payload[..2].copy_from_slice(&sequence.to_be_bytes());
            let len = 2 + usize::from(record[9]) % 62;
            let packet = RtpPacket {
                ssrc: u32::from(record[1] & 3),
                sequence,
                timestamp,
                payload: &payload[..len],
            };
            buffer.push(packet, now);
        } else {
            let tick = buffer.pop(now);
            if tick.new_stream {
                last = None;
            }
            if let Decode::Packet { payload } = tick.decode {
                let ext = tick.sequence.expect("a packet has a sequence number");
                assert_eq!(u16::from_be_bytes([payload[0], payload[1]]), ext as u16);
            }
            if let Some(ext) = tick.sequence {
                assert!(last.is_none_or(|l| ext > l), "{ext} after {last:?}");
                last = Some(ext);
            }
        }
        assert!(buffer.len() <= CAPACITY);
    }
});
