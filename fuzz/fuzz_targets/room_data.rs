//! LiveKit data packets and text streams from a peer: data-channel
//! messages through `decode_packet` and a `StreamReader` with small limits.
//! Nothing panics, the reader never holds more than its limits allow, and a
//! completed text is valid UTF-8 of at most the per-stream limit.
//!
//! Input: messages, each a little-endian u16 length and that many bytes; a
//! length's top bit moves the clock on by a second before the message.

#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use voxguard::room::data::{ReaderLimits, StreamReader, decode_packet};

fuzz_target!(|data: &[u8]| {
    let limits = ReaderLimits {
        open_per_sender: 2,
        open_total: 3,
        bytes_per_stream: 2048,
        idle_timeout: Duration::from_secs(2),
    };
    let mut reader = StreamReader::new(limits);
    let mut now = Instant::now();
    let mut rest = data;
    while rest.len() >= 2 {
        let header = u16::from_le_bytes([rest[0], rest[1]]);
        rest = &rest[2..];
        if header & 0x8000 != 0 {
            now += Duration::from_secs(1);
            reader.expire(now);
        }
        let len = usize::from(header & 0x7fff).min(rest.len());
        let (message, tail) = rest.split_at(len);
        rest = tail;
        let _ = decode_packet(message);
        if let Ok(Some(text)) = reader.receive_bytes(message, now) {
            assert!(text.text.len() <= limits.bytes_per_stream);
        }
        assert!(reader.open_streams() <= limits.open_total);
        assert!(reader.buffered_bytes() <= limits.open_total * limits.bytes_per_stream);
    }
});
