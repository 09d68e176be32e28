//! Opus through the system's libopus (installed by
//! `scripts/install-system-deps.sh` when missing), on real speech rendered
//! by espeak-ng: the round trip keeps the speech, a lost packet is
//! concealed, FEC recovers it better, and garbage is a typed error.

#[path = "media_support.rs"]
mod media_support;

use std::time::Duration;

use media_support::{speech_48k, system_deps};
use voxguard::media::level::best_alignment;
use voxguard::media::level_dbfs;
use voxguard::media::opus::{
    Decoder, Encoder, EncoderConfig, MAX_PACKET, MAX_PACKET_SAMPLES, OpusError, SAMPLES_PER_FRAME,
};

const SENTENCE: &str = "Thanks for waiting. I found your booking for Tuesday at three o'clock.";

fn encode_all(speech: &[i16]) -> Vec<Vec<u8>> {
    let mut encoder = Encoder::new(EncoderConfig::default()).expect("libopus is installed");
    let mut packet = [0u8; MAX_PACKET];
    speech
        .chunks_exact(SAMPLES_PER_FRAME)
        .map(|frame| {
            let len = encoder.encode(frame, &mut packet).expect("encodes");
            packet[..len].to_vec()
        })
        .collect()
}

/// Decode packets `0..lost` normally; return the decoder, ready for `lost`.
fn decoder_before(packets: &[Vec<u8>], lost: usize) -> Decoder {
    let mut decoder = Decoder::new().expect("libopus is installed");
    let mut pcm = [0i16; SAMPLES_PER_FRAME];
    for packet in &packets[..lost] {
        decoder.decode(packet, &mut pcm).expect("decodes");
    }
    decoder
}

fn squared_error(a: &[i16], b: &[i16]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
        .sum()
}

#[test]
fn the_libopus_in_use_reports_its_version() {
    system_deps();
    let version = voxguard::media::opus::library_version().expect("libopus is installed");
    assert!(version.starts_with("libopus"), "{version}");
}

#[test]
fn speech_keeps_its_energy_envelope_through_encode_and_decode() {
    system_deps();
    let speech = speech_48k(SENTENCE);
    let packets = encode_all(&speech);
    let average = packets.iter().map(Vec::len).sum::<usize>() as f64 / packets.len() as f64;
    // ~32 kbit/s is 80 bytes per 20 ms; VBR spends less on pauses.
    assert!(
        (30.0..=110.0).contains(&average),
        "{average} bytes per packet"
    );

    let mut decoder = Decoder::new().unwrap();
    let mut heard = vec![0i16; speech.len()];
    for (packet, out) in packets
        .iter()
        .zip(heard.chunks_exact_mut(SAMPLES_PER_FRAME))
    {
        assert_eq!(decoder.decode(packet, out).unwrap(), SAMPLES_PER_FRAME);
    }
    let (delay, correlation) = best_alignment(&speech, &heard, 48_000, Duration::from_millis(50));
    assert!(correlation >= 0.95, "envelope correlation {correlation}");
    assert!(delay <= Duration::from_millis(10), "codec delay {delay:?}");
}

#[test]
fn a_decoder_at_16_khz_gives_the_speech_at_16_khz_a_third_of_the_samples() {
    system_deps();
    let speech = speech_48k(SENTENCE);
    let packets = encode_all(&speech);
    let mut decoder = Decoder::at_rate(16_000).unwrap();
    assert_eq!(decoder.rate(), 16_000);
    let mut heard = vec![0i16; speech.len() / 3];
    for (packet, out) in packets.iter().zip(heard.chunks_exact_mut(320)) {
        assert_eq!(decoder.decode(packet, out).unwrap(), 320);
    }
    let mut concealed = [0i16; 320];
    assert_eq!(decoder.conceal(&mut concealed), Ok(320));
    assert_eq!(
        decoder.conceal(&mut [0i16; 500]),
        Err(OpusError::FrameSize {
            got: 500,
            rate: 16_000
        })
    );
    let mut reference = Vec::new();
    voxguard::media::Resampler::new(48_000, 16_000)
        .unwrap()
        .process(&speech, &mut reference);
    let (delay, correlation) =
        best_alignment(&reference, &heard, 16_000, Duration::from_millis(50));
    assert!(correlation >= 0.95, "envelope correlation {correlation}");
    assert!(delay <= Duration::from_millis(10), "codec delay {delay:?}");
}

#[test]
fn a_lost_packet_is_concealed_with_audible_audio_of_a_full_frame() {
    system_deps();
    let speech = speech_48k(SENTENCE);
    let packets = encode_all(&speech);
    // The loudest frame of the sentence is surely inside a word.
    let lost = (10..packets.len() - 1)
        .max_by(|&a, &b| {
            let level = |i: usize| level_dbfs(&speech[i * 960..(i + 1) * 960]);
            level(a).total_cmp(&level(b))
        })
        .unwrap();
    let mut decoder = decoder_before(&packets, lost);
    let mut concealed = [0i16; SAMPLES_PER_FRAME];
    assert_eq!(decoder.conceal(&mut concealed).unwrap(), SAMPLES_PER_FRAME);
    let level = level_dbfs(&concealed);
    assert!(level > -35.0, "concealment is near silence: {level} dBFS");
    // Decoding carries on after the gap.
    let mut next = [0i16; SAMPLES_PER_FRAME];
    assert_eq!(
        decoder.decode(&packets[lost + 1], &mut next).unwrap(),
        SAMPLES_PER_FRAME
    );
}

#[test]
fn fec_recovers_a_dropped_frame_closer_to_the_original_than_concealment() {
    system_deps();
    let speech = speech_48k(SENTENCE);
    let packets = encode_all(&speech);
    let (mut fec_error, mut plc_error) = (0.0, 0.0);
    let mut dropped = 0;
    for lost in (8..packets.len() - 1).step_by(7) {
        if level_dbfs(&speech[lost * 960..(lost + 1) * 960]) < -40.0 {
            continue; // a pause: nothing to recover
        }
        dropped += 1;
        let mut reference = [0i16; SAMPLES_PER_FRAME];
        decoder_before(&packets, lost)
            .decode(&packets[lost], &mut reference)
            .unwrap();

        let mut recovered = [0i16; SAMPLES_PER_FRAME];
        let n = decoder_before(&packets, lost)
            .recover(&packets[lost + 1], &mut recovered)
            .unwrap();
        assert_eq!(n, SAMPLES_PER_FRAME);
        let mut concealed = [0i16; SAMPLES_PER_FRAME];
        decoder_before(&packets, lost)
            .conceal(&mut concealed)
            .unwrap();

        fec_error += squared_error(&recovered, &reference);
        plc_error += squared_error(&concealed, &reference);
    }
    assert!(dropped >= 5, "only {dropped} voiced frames dropped");
    assert!(
        fec_error < plc_error * 0.3,
        "FEC error {fec_error:.3e} is not well below concealment's {plc_error:.3e}"
    );
}

#[test]
fn malformed_packets_are_typed_errors() {
    system_deps();
    let mut decoder = Decoder::new().unwrap();
    let mut pcm = [0i16; SAMPLES_PER_FRAME];
    assert_eq!(decoder.decode(&[], &mut pcm), Err(OpusError::EmptyPacket));
    // Code 3 (arbitrary frame count) with the count byte missing.
    assert!(matches!(
        decoder.decode(&[0x03], &mut pcm),
        Err(OpusError::InvalidPacket { len: 1, .. })
    ));
    // Code 3 declaring 63 frames of 20 ms: 1.26 s, over Opus's 120 ms cap.
    assert!(matches!(
        decoder.decode(&[0x0b, 0x3f, 0, 0], &mut pcm),
        Err(OpusError::InvalidPacket { .. })
    ));
    // A valid 60 ms packet does not fit a 20 ms buffer.
    let mut encoder = Encoder::new(EncoderConfig::default()).unwrap();
    let mut packet = [0u8; MAX_PACKET];
    let len = encoder.encode(&[0i16; 2_880], &mut packet).unwrap();
    assert_eq!(
        decoder.decode(&packet[..len], &mut pcm),
        Err(OpusError::OutputTooSmall {
            samples: 2_880,
            room: 960
        })
    );
    let mut big = vec![0i16; MAX_PACKET_SAMPLES];
    assert_eq!(decoder.decode(&packet[..len], &mut big), Ok(2_880));
    assert_eq!(
        encoder.encode(&[0i16; 100], &mut [0u8; MAX_PACKET]),
        Err(OpusError::FrameSize {
            got: 100,
            rate: 48_000
        })
    );
    assert_eq!(
        decoder.conceal(&mut [0i16; 1000]),
        Err(OpusError::FrameSize {
            got: 1000,
            rate: 48_000
        })
    );
    assert_eq!(
        Decoder::at_rate(44_100).err(),
        Some(OpusError::Rate { got: 44_100 })
    );
}

#[test]
fn random_bytes_never_panic_and_never_write_past_the_output() {
    system_deps();
    let mut decoder = Decoder::new().unwrap();
    let mut pcm = vec![0i16; MAX_PACKET_SAMPLES];
    let mut seed = 0x9e37_79b9u32;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed
    };
    let (mut ok, mut refused) = (0, 0);
    for _ in 0..20_000 {
        let len = 1 + next() as usize % 300;
        let packet: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        match decoder.decode(&packet, &mut pcm) {
            Ok(samples) => {
                assert!(samples <= MAX_PACKET_SAMPLES);
                ok += 1;
            }
            Err(OpusError::InvalidPacket { .. } | OpusError::Codec { .. }) => refused += 1,
            Err(other) => panic!("unexpected error {other}"),
        }
    }
    assert!(refused > 0 && ok > 0, "ok {ok}, refused {refused}");
}

#[test]
fn encoder_settings_out_of_range_are_refused_by_name() {
    let err = Encoder::new(EncoderConfig {
        bitrate_bps: 1_000,
        ..EncoderConfig::default()
    })
    .err()
    .unwrap();
    assert!(err.to_string().contains("bitrate_bps"), "{err}");
}

#[test]
fn jitter_buffer_ticks_decode_to_full_frames_and_a_bad_packet_is_concealed() {
    use std::time::{Duration, Instant};
    use voxguard::media::jitter::{JitterBuffer, JitterConfig, RtpPacket};

    system_deps();
    let speech = speech_48k(SENTENCE);
    let mut packets = encode_all(&speech);
    packets[12] = vec![0x03]; // malformed
    let mut buffer = JitterBuffer::new(JitterConfig::default());
    let mut decoder = Decoder::new().unwrap();
    let start = Instant::now();
    let mut pcm = [0i16; SAMPLES_PER_FRAME];
    let mut errors = 0;
    let mut heard = Vec::new();
    for (i, packet) in packets.iter().enumerate() {
        let at = start + Duration::from_millis(20 * i as u64);
        if i != 20 {
            let rtp = RtpPacket {
                ssrc: 1,
                sequence: i as u16,
                timestamp: i as u32 * 960,
                payload: packet,
            };
            buffer.push(rtp, at);
        }
        let tick = buffer.pop(at + Duration::from_millis(5));
        if decoder.decode_tick(&tick, &mut pcm).is_err() {
            errors += 1;
        }
        heard.extend_from_slice(&pcm);
    }
    assert_eq!(errors, 1);
    assert_eq!(buffer.stats().recovered, 1);
    let (_, correlation) = best_alignment(&speech, &heard, 48_000, Duration::from_millis(80));
    assert!(correlation >= 0.9, "envelope correlation {correlation}");
}
