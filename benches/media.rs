//! The audio path's CPU cost. Every benchmark processes ONE SECOND of audio
//! (50 frames of 20 ms, or the same second in irregular chunks), so each
//! time criterion reports is CPU time per second of audio for one call.
//! The 48 kHz → 16 kHz resampler runs beside `rubato`'s FFT resampler on
//! the same input, in the same run.
//!
//! `cargo bench --bench media -- --warm-up-time 1 --measurement-time 3`
//!
//! The Opus benchmarks need the system's libopus (`scripts/install-system-deps.sh`);
//! without it they are skipped with a note.

use std::hint::black_box;
use std::time::{Duration, Instant};

use audioadapter_buffers::direct::InterleavedSlice;
use criterion::{Criterion, criterion_group, criterion_main};
use rubato::{Fft, FixedSync, Resampler as _};
use voxguard::media::jitter::{JitterBuffer, JitterConfig, RtpPacket};
use voxguard::media::level::AudibilityTracker;
use voxguard::media::opus::{Decoder, Encoder, EncoderConfig, MAX_PACKET, SAMPLES_PER_FRAME};
use voxguard::media::playout::{Playout, PlayoutConfig};
use voxguard::media::resample::Resampler;
use voxguard::media::vad::{Vad, VadConfig};

const FRAMES_PER_SECOND: usize = 50;

/// One second of a voice-like signal at `rate`: a 140 Hz buzz with
/// harmonics, gliding pitch and a syllable-rate envelope.
fn voice(rate: u32) -> Vec<i16> {
    let rate_f = f64::from(rate);
    let mut phase = 0.0f64;
    (0..rate as usize)
        .map(|i| {
            let t = i as f64 / rate_f;
            phase += 2.0 * std::f64::consts::PI * (140.0 + 30.0 * (t * 3.0).sin()) / rate_f;
            let envelope = (0.5 + 0.5 * (t * 2.0 * std::f64::consts::PI * 4.0).sin()).powi(2);
            let buzz: f64 = (1..12).map(|h| (phase * h as f64).sin() / h as f64).sum();
            (6_000.0 * envelope * buzz) as i16
        })
        .collect()
}

fn opus(c: &mut Criterion) {
    let (mut encoder, mut decoder) = match (Encoder::new(EncoderConfig::default()), Decoder::new())
    {
        (Ok(e), Ok(d)) => (e, d),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("skipping the Opus benchmarks: {e}");
            return;
        }
    };
    let second = voice(48_000);
    let mut packet = [0u8; MAX_PACKET];
    let packets: Vec<Vec<u8>> = second
        .chunks_exact(SAMPLES_PER_FRAME)
        .map(|frame| {
            let len = encoder.encode(frame, &mut packet).unwrap();
            packet[..len].to_vec()
        })
        .collect();
    let mut group = c.benchmark_group("opus_per_second_of_audio");
    group.bench_function("encode_48k_20ms", |b| {
        b.iter(|| {
            for frame in second.chunks_exact(SAMPLES_PER_FRAME) {
                black_box(encoder.encode(black_box(frame), &mut packet).unwrap());
            }
        })
    });
    // The default complexity against costlier ones, and silence (what an
    // idle agent sends).
    for complexity in [5, 9] {
        let config = EncoderConfig {
            complexity,
            ..EncoderConfig::default()
        };
        let mut costlier = Encoder::new(config).unwrap();
        group.bench_function(format!("encode_48k_20ms_complexity_{complexity}"), |b| {
            b.iter(|| {
                for frame in second.chunks_exact(SAMPLES_PER_FRAME) {
                    black_box(costlier.encode(black_box(frame), &mut packet).unwrap());
                }
            })
        });
    }
    let silence = [0i16; SAMPLES_PER_FRAME];
    group.bench_function("encode_48k_20ms_silence", |b| {
        b.iter(|| {
            for _ in 0..FRAMES_PER_SECOND {
                black_box(encoder.encode(black_box(&silence), &mut packet).unwrap());
            }
        })
    });
    let mut pcm = [0i16; SAMPLES_PER_FRAME];
    group.bench_function("decode_48k_20ms", |b| {
        b.iter(|| {
            for p in &packets {
                black_box(decoder.decode(black_box(p), &mut pcm).unwrap());
            }
        })
    });
    group.bench_function("conceal_48k_20ms", |b| {
        b.iter(|| {
            for _ in 0..FRAMES_PER_SECOND {
                black_box(decoder.conceal(&mut pcm).unwrap());
            }
        })
    });
    group.bench_function("fec_recover_48k_20ms", |b| {
        b.iter(|| {
            for p in &packets {
                black_box(decoder.recover(black_box(p), &mut pcm).unwrap());
            }
        })
    });
    group.finish();
}

fn resampling(c: &mut Criterion) {
    let mut group = c.benchmark_group("resample_per_second_of_audio");
    for (from, to) in [
        (48_000, 16_000),
        (48_000, 24_000),
        (16_000, 48_000),
        (24_000, 48_000),
        (22_050, 48_000),
    ] {
        let second = voice(from);
        let mut resampler = Resampler::new(from, to).unwrap();
        let chunk = from as usize / FRAMES_PER_SECOND;
        let mut out = Vec::with_capacity(resampler.max_output(chunk));
        group.bench_function(format!("voxguard_{from}_to_{to}"), |b| {
            b.iter(|| {
                for piece in second.chunks(chunk) {
                    out.clear();
                    resampler.process(black_box(piece), &mut out);
                }
                black_box(out.len())
            })
        });
    }
    // rubato 5's FFT resampler, 20 ms chunks in, as the brief's reference.
    let second: Vec<f32> = voice(48_000)
        .iter()
        .map(|&s| f32::from(s) / 32_768.0)
        .collect();
    let mut fft = Fft::<f32>::new(48_000, 16_000, 960, 1, FixedSync::Input).unwrap();
    let mut out = vec![0.0f32; fft.output_frames_max()];
    group.bench_function("rubato_fft_48000_to_16000", |b| {
        b.iter(|| {
            for piece in second.chunks_exact(960) {
                let input = InterleavedSlice::new(piece, 1, 960).unwrap();
                let frames = out.len();
                let mut output = InterleavedSlice::new_mut(&mut out, 1, frames).unwrap();
                black_box(fft.process_into_buffer(&input, &mut output, None).unwrap());
            }
        })
    });
    group.finish();
    eprintln!(
        "resampler group delay: voxguard 48k->16k {:?}, 22.05k->48k {:?}; rubato FFT 48k->16k {:?}",
        Resampler::new(48_000, 16_000).unwrap().delay(),
        Resampler::new(22_050, 48_000).unwrap().delay(),
        Duration::from_secs_f64(fft.output_delay() as f64 / 16_000.0),
    );
}

fn vad_and_level(c: &mut Criterion) {
    let second = voice(16_000);
    let mut group = c.benchmark_group("analysis_per_second_of_audio");
    let mut vad = Vad::new(VadConfig::default());
    group.bench_function("vad_16k_20ms", |b| {
        b.iter(|| {
            for frame in second.chunks_exact(320) {
                black_box(vad.push(black_box(frame)).unwrap());
            }
        })
    });
    let mut tracker = AudibilityTracker::new(16_000, -45.0);
    let mut changes = Vec::with_capacity(64);
    group.bench_function("audibility_16k_20ms", |b| {
        b.iter(|| {
            changes.clear();
            for frame in second.chunks_exact(320) {
                tracker.push(Duration::ZERO, black_box(frame), &mut changes);
            }
        })
    });
    group.finish();
}

fn pacing(c: &mut Criterion) {
    let mut group = c.benchmark_group("pacing_per_second_of_audio");
    let payload = [0x5au8; 80];
    let mut buffer = JitterBuffer::new(JitterConfig::default());
    let start = Instant::now();
    let mut sequence = 0u16;
    let mut tick = 0u32;
    group.bench_function("jitter_push_pop_20ms", |b| {
        b.iter(|| {
            for _ in 0..FRAMES_PER_SECOND {
                let at = start + Duration::from_millis(20) * tick;
                let packet = RtpPacket {
                    ssrc: 1,
                    sequence,
                    timestamp: tick.wrapping_mul(960),
                    payload: &payload,
                };
                buffer.push(black_box(packet), at);
                black_box(buffer.pop(at + Duration::from_millis(25)));
                sequence = sequence.wrapping_add(1);
                tick = tick.wrapping_add(1);
            }
        })
    });
    let second = voice(48_000);
    let mut playout = Playout::new(PlayoutConfig::default());
    let mut segment = 0u64;
    let mut frame_index = 0u32;
    group.bench_function("playout_append_and_frame_20ms", |b| {
        b.iter(|| {
            segment += 1;
            playout.start_segment(segment).unwrap();
            for chunk in second.chunks(SAMPLES_PER_FRAME) {
                playout.append(segment, chunk).unwrap();
                let now = start + Duration::from_millis(20) * frame_index;
                black_box(playout.next_frame(now).map(|f| f.samples[0]));
                frame_index += 1;
                while playout.pop_event().is_some() {}
            }
            playout.finish_segment(segment).unwrap();
        })
    });
    group.finish();
}

criterion_group!(benches, opus, resampling, vad_and_level, pacing);
criterion_main!(benches);
