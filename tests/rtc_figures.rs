//! Figures for the media transport, printed (run with `--nocapture`):
//! heap held by one room's transport (both peer connections) once
//! connected and after a second of audio both ways, and the time to
//! connect two transports over UDP on 127.0.0.1. Nothing here asserts a
//! speed; the assertions only check that the measurement measured.
//!
//! `cargo test --release --test rtc_figures -- --nocapture`

#[path = "rtc/endpoint.rs"]
mod endpoint;
#[path = "rtc/memory_net.rs"]
mod memory_net;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use endpoint::Endpoint;
use memory_net::Net;
use voxguard::room::rtc::{OfferChanges, Role, RtcEvent, Side};

/// Counts live heap bytes.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

#[test]
fn heap_of_one_rooms_transport_when_connected() {
    const PAIRS: usize = 10;
    let frame = Duration::from_millis(20);
    // Warm up process-wide state (crypto provider, time base) first.
    let mut warm = Net::new(Instant::now());
    warm.connect();
    drop(warm);

    let before = live();
    let mut nets: Vec<Net> = (0..PAIRS)
        .map(|_| {
            let mut net = Net::new(Instant::now());
            net.connect();
            net.server_events.clear();
            net.participant_events.clear();
            net.server_events.shrink_to_fit();
            net.participant_events.shrink_to_fit();
            net
        })
        .collect();
    let connected = live() - before;
    for net in &mut nets {
        let down = net.server_track.unwrap();
        let up = net.participant_track.unwrap();
        for _ in 0..50 {
            net.server
                .send_audio(down, vec![0x78; 80], frame, net.now)
                .unwrap();
            net.participant
                .send_audio(up, vec![0x78; 80], frame, net.now)
                .unwrap();
            net.advance(frame);
        }
        net.server_events.clear();
        net.participant_events.clear();
        net.server_events.shrink_to_fit();
        net.participant_events.shrink_to_fit();
    }
    let streaming = live() - before;
    // A pair is two transports (server and participant), each with two
    // peer connections of the same make-up: one transport is half a pair.
    let per_transport = |bytes: isize| bytes as f64 / (PAIRS * 2) as f64 / 1024.0;
    println!(
        "heap per room transport (2 peer connections): connected {:.0} KiB, after 1 s of audio both ways {:.0} KiB",
        per_transport(connected),
        per_transport(streaming)
    );
    assert!(connected > 0);
    drop(nets);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_to_connect_on_loopback() {
    let mut times = Vec::new();
    for _ in 0..5 {
        let mut server = Endpoint::start(Role::Server).await;
        let mut participant = Endpoint::start(Role::Participant).await;
        let started = Instant::now();
        let offer = server
            .handle
            .create_offer(
                Side::Subscriber,
                OfferChanges {
                    add_audio: vec![("PA_c".into(), "TR_c".into())],
                    data_channels: true,
                    ..OfferChanges::default()
                },
            )
            .await
            .unwrap()
            .unwrap();
        let answer = participant
            .handle
            .accept_offer(Side::Subscriber, offer.sdp)
            .await
            .unwrap();
        server
            .handle
            .accept_answer(Side::Subscriber, answer.sdp)
            .await
            .unwrap();
        participant
            .saw("connected", |e| *e == RtcEvent::Connected(Side::Subscriber))
            .await;
        server
            .saw("connected", |e| *e == RtcEvent::Connected(Side::Subscriber))
            .await;
        times.push(started.elapsed());
        server.handle.close().await;
        participant.handle.close().await;
    }
    times.sort();
    println!(
        "time to connect the subscriber side on 127.0.0.1 (offer to ICE + DTLS up on both ends): min {:?}, median {:?}, max {:?}",
        times[0], times[2], times[4]
    );
    assert_eq!(times.len(), 5);
}
