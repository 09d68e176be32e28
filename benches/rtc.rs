//! CPU cost of one audio stream in and out through the room's media
//! transport: a connected participant core and a server core on an
//! in-memory network with virtual time. One iteration is one second of
//! 20 ms Opus frames each way (50 down, 50 up), both cores' work included
//! (SRTP, RTP, RTCP, pacing), so the participant's own share is about half.
//!
//! `cargo bench --bench rtc`

#[path = "../tests/rtc/memory_net.rs"]
mod memory_net;

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use memory_net::Net;

const FRAME: Duration = Duration::from_millis(20);

fn one_second_both_ways(c: &mut Criterion) {
    let mut net = Net::new(Instant::now());
    net.connect();
    let down = net.server_track.unwrap();
    let up = net.participant_track.unwrap();
    // A typical 20 ms voice frame at ~32 kbit/s.
    let frame = vec![0x78u8; 80];
    let mut group = c.benchmark_group("rtc");
    group.bench_function(
        "one second of audio in and out (50 frames each way, both cores)",
        |b| {
            b.iter(|| {
                for _ in 0..50 {
                    net.server
                        .send_audio(down, frame.as_slice(), FRAME, net.now)
                        .unwrap();
                    net.participant
                        .send_audio(up, frame.as_slice(), FRAME, net.now)
                        .unwrap();
                    net.advance(FRAME);
                }
                // Keep the event record from growing across iterations.
                net.server_events.clear();
                net.participant_events.clear();
            })
        },
    );
    group.finish();
}

criterion_group!(benches, one_second_both_ways);
criterion_main!(benches);
