//! The speech layer's per-frame work, compared in one run: keeping a 20 ms
//! frame in the turn buffer (μ-law, 8 s ring) against a plain copy of the
//! same frame, PCM reassembly of a provider's chunk, and the simulator's
//! envelope recognizer on a 3 s utterance.
//!
//! `cargo bench --bench speech -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use voxguard::speech::pcm::PcmAssembler;
use voxguard::speech::stt::TurnBuffer;
use voxguard::speech::stt::turn::DEFAULT_REPLAY;
use voxguard::testbed::speech::recognize::{Utterance, transcribe};
use voxguard::testbed::speech::voice;

fn frame() -> Vec<i16> {
    (0..320).map(|i| ((i * 97) % 4000 - 2000) as i16).collect()
}

fn turn_buffer(c: &mut Criterion) {
    let mut group = c.benchmark_group("stt frame (20 ms at 16 kHz)");
    let frame = frame();
    let mut turn = TurnBuffer::new(DEFAULT_REPLAY);
    group.bench_function("turn buffer push (mu-law ring)", |b| {
        b.iter(|| turn.push(black_box(&frame)))
    });
    let mut ring = vec![0i16; 16_000 * 8];
    let mut at = 0;
    group.bench_function("plain linear16 ring copy", |b| {
        b.iter(|| {
            let start = at % (ring.len() - 320);
            ring[start..start + 320].copy_from_slice(black_box(&frame));
            at += 320;
        })
    });
    group.finish();
}

fn reassembly(c: &mut Criterion) {
    let bytes: Vec<u8> = frame().iter().flat_map(|s| s.to_le_bytes()).collect();
    let mut out = Vec::with_capacity(1024);
    c.bench_function("tts chunk reassembly (640 bytes)", |b| {
        b.iter(|| {
            let mut pcm = PcmAssembler::new(24_000, Duration::from_secs(30));
            out.clear();
            pcm.push(black_box(&bytes[..321]), &mut out).unwrap();
            pcm.push(black_box(&bytes[321..]), &mut out).unwrap();
        })
    });
}

fn recognizer(c: &mut Criterion) {
    let texts = [
        "I would like to book a demo for my team",
        "my email is ada at example dot com",
        "yes that works for me",
        "please call me back tomorrow",
    ];
    let utterances: Vec<Arc<Utterance>> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| {
            Arc::new(Utterance::new(
                i as u64,
                t,
                &voice::synthesize(t, 16_000),
                16_000,
            ))
        })
        .collect();
    let heard = voice::synthesize(texts[1], 16_000);
    c.bench_function("simulator transcribes a 2.2 s utterance among 4", |b| {
        b.iter(|| transcribe(black_box(&heard), 16_000, &utterances, 300))
    });
}

criterion_group!(benches, turn_buffer, reassembly, recognizer);
criterion_main!(benches);
