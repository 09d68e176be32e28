//! The audio path allocates nothing per frame once warm: a counting global
//! allocator watches each stage run frame after frame on this thread.
//! (libopus's own C heap is not counted; it does not allocate per call.)

#[path = "media_support.rs"]
mod media_support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::{Duration, Instant};

use voxguard::media::jitter::{JitterBuffer, JitterConfig, RtpPacket};
use voxguard::media::level::AudibilityTracker;
use voxguard::media::opus::{Decoder, Encoder, EncoderConfig, MAX_PACKET, SAMPLES_PER_FRAME};
use voxguard::media::playout::{Playout, PlayoutConfig};
use voxguard::media::resample::Resampler;
use voxguard::media::vad::{Vad, VadConfig};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made by `f` on this thread.
fn allocations(f: impl FnOnce()) -> u64 {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

fn tone(len: usize, step: f64) -> Vec<i16> {
    (0..len)
        .map(|i| (8_000.0 * (i as f64 * step).sin()) as i16)
        .collect()
}

#[test]
fn resampling_irregular_chunks_allocates_nothing_once_warm() {
    let input = tone(22_050, 0.07);
    let mut resampler = Resampler::new(22_050, 48_000).unwrap();
    let mut out = Vec::with_capacity(resampler.max_output(2_000));
    let run = |resampler: &mut Resampler, out: &mut Vec<i16>| {
        for chunk in input.chunks(1_037) {
            out.clear();
            resampler.process(chunk, out);
        }
    };
    run(&mut resampler, &mut out);
    assert_eq!(allocations(|| run(&mut resampler, &mut out)), 0);
}

#[test]
fn the_jitter_buffer_allocates_nothing_per_packet_once_warm() {
    let mut buffer = JitterBuffer::new(JitterConfig::default());
    let start = Instant::now();
    let payload = [7u8; 120];
    let run = |buffer: &mut JitterBuffer, from: u16| {
        for i in from..from + 200 {
            let at = start + Duration::from_millis(20 * u64::from(i));
            if i % 17 != 0 {
                let packet = RtpPacket {
                    ssrc: 5,
                    sequence: i,
                    timestamp: u32::from(i) * 960,
                    payload: &payload,
                };
                buffer.push(packet, at);
            }
            buffer.pop(at + Duration::from_millis(30));
        }
    };
    run(&mut buffer, 0);
    assert_eq!(allocations(|| run(&mut buffer, 200)), 0);
}

#[test]
fn vad_and_level_tracking_allocate_nothing_per_frame() {
    let audio = tone(16_000, 0.2);
    let mut vad = Vad::new(VadConfig::default());
    let mut tracker = AudibilityTracker::new(16_000, -40.0);
    let mut changes = Vec::with_capacity(16);
    vad.push(&audio[..320]).unwrap();
    let used = allocations(|| {
        for (i, frame) in audio.chunks_exact(320).enumerate() {
            vad.push(frame).unwrap();
            changes.clear();
            tracker.push(Duration::from_millis(20 * i as u64), frame, &mut changes);
        }
    });
    assert_eq!(used, 0);
}

#[test]
fn playout_allocates_nothing_per_frame_while_a_segment_streams_in() {
    let mut playout = Playout::new(PlayoutConfig::default());
    let chunk = tone(1_103, 0.05); // irregular TTS chunks
    let start = Instant::now();
    let run = |playout: &mut Playout, id: u64, from: u32| {
        playout.start_segment(id).unwrap();
        for k in from..from + 100 {
            playout.append(id, &chunk).unwrap();
            playout
                .next_frame(start + Duration::from_millis(20) * k)
                .unwrap();
            while playout.pop_event().is_some() {}
        }
        playout.finish_segment(id).unwrap();
        playout.cut();
    };
    run(&mut playout, 1, 0);
    assert_eq!(allocations(|| run(&mut playout, 2, 100)), 0);
}

#[test]
fn opus_encode_and_decode_allocate_nothing_on_the_rust_side() {
    media_support::system_deps();
    let mut encoder = Encoder::new(EncoderConfig::default()).unwrap();
    let mut decoder = Decoder::new().unwrap();
    let audio = tone(SAMPLES_PER_FRAME * 50, 0.03);
    let mut packet = [0u8; MAX_PACKET];
    let mut pcm = [0i16; SAMPLES_PER_FRAME];
    let used = allocations(|| {
        for frame in audio.chunks_exact(SAMPLES_PER_FRAME) {
            let len = encoder.encode(frame, &mut packet).unwrap();
            decoder.decode(&packet[..len], &mut pcm).unwrap();
            decoder.conceal(&mut pcm).unwrap();
        }
    });
    assert_eq!(used, 0);
}

#[test]
fn the_counter_sees_an_allocation() {
    assert!(allocations(|| drop(std::hint::black_box(vec![0u8; 16]))) > 0);
}
