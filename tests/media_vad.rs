//! Voice activity on real speech rendered by espeak-ng (installed by
//! `scripts/install-system-deps.sh` when missing) between stretches of
//! silence and faint noise: speech is found where the words are, and
//! nowhere else.

#[path = "media_support.rs"]
mod media_support;

use std::time::Duration;

use media_support::{at_rate, speak};
use voxguard::media::FrameLength;
use voxguard::media::vad::{Vad, VadConfig, VadEvent};

const RATE: usize = 16_000;

/// White noise at about `dbfs` RMS, reproducible.
fn noise(seconds: f64, dbfs: f64, seed: &mut u32) -> Vec<i16> {
    let rms = 32_768.0 * 10f64.powf(dbfs / 20.0);
    let amplitude = rms * 3f64.sqrt(); // uniform in ±a has RMS a/√3
    (0..(seconds * RATE as f64) as usize)
        .map(|_| {
            *seed ^= *seed << 13;
            *seed ^= *seed >> 17;
            *seed ^= *seed << 5;
            ((f64::from(*seed) / f64::from(u32::MAX) * 2.0 - 1.0) * amplitude) as i16
        })
        .collect()
}

/// Where the words of `speech` are: first to last clearly audible sample.
fn words(speech: &[i16]) -> (usize, usize) {
    let loud = |s: &i16| s.unsigned_abs() > 1_000;
    let first = speech
        .iter()
        .position(loud)
        .expect("espeak-ng said something");
    let last = speech.iter().rposition(loud).unwrap();
    (first, last)
}

fn events(config: VadConfig, audio: &[i16]) -> Vec<VadEvent> {
    let mut vad = Vad::new(config);
    let mut events: Vec<VadEvent> = audio
        .chunks_exact(config.frame.samples_at(16_000))
        .filter_map(|frame| vad.push(frame).unwrap().event)
        .collect();
    events.extend(vad.finish());
    events
}

fn ms(samples: u64) -> i64 {
    (samples * 1_000 / RATE as u64) as i64
}

#[test]
fn speech_is_found_where_the_words_are_and_not_in_the_silence_or_noise_around_them() {
    let sentences = [
        "Hello, I would like to book a meeting for next week.",
        "My email address is jane at example dot com.",
    ];
    let mut seed = 7;
    let mut audio = noise(1.0, -60.0, &mut seed);
    let mut truth = Vec::new();
    for (i, text) in sentences.iter().enumerate() {
        let speech = at_rate(&speak(text), RATE as u32);
        let (first, last) = words(&speech);
        truth.push((audio.len() + first, audio.len() + last));
        audio.extend(&speech);
        // Silence, then faint room noise, between and after the sentences.
        audio.extend(vec![0i16; RATE / 2]);
        audio.extend(noise(if i == 0 { 1.5 } else { 1.0 }, -55.0, &mut seed));
    }

    for frame in [FrameLength::Ms10, FrameLength::Ms20] {
        let config = VadConfig {
            frame,
            ..VadConfig::default()
        };
        let found = events(config, &audio);
        assert_eq!(found.len(), 4, "{frame:?}: {found:?}");
        for (pair, &(first, last)) in found.chunks(2).zip(&truth) {
            let [
                VadEvent::SpeechStart { at: start },
                VadEvent::SpeechEnd { at: end },
            ] = pair
            else {
                panic!("{frame:?}: expected a start and an end, got {pair:?}");
            };
            let start_error = ms(*start) - ms(first as u64);
            let end_error = ms(*end) - ms(last as u64);
            assert!(
                (-80..=120).contains(&start_error),
                "{frame:?}: speech starts {start_error} ms from the first word"
            );
            assert!(
                (-150..=250).contains(&end_error),
                "{frame:?}: speech ends {end_error} ms from the last word"
            );
        }
    }
}

#[test]
fn room_noise_and_silence_alone_are_never_speech() {
    let mut seed = 99;
    let mut audio = vec![0i16; RATE];
    for dbfs in [-60.0, -50.0, -45.0] {
        audio.extend(noise(2.0, dbfs, &mut seed));
    }
    let mut vad = Vad::new(VadConfig::default());
    let mut speech_frames = 0;
    for frame in audio.chunks_exact(320) {
        let decision = vad.push(frame).unwrap();
        speech_frames += usize::from(decision.speech);
        assert_eq!(decision.event, None);
    }
    assert!(
        speech_frames <= 2,
        "{speech_frames} noise frames judged speech"
    );
}

#[test]
fn a_short_word_is_not_cut_by_a_long_deactivation_and_events_carry_times() {
    let speech = at_rate(&speak("Yes."), RATE as u32);
    let mut audio = vec![0i16; RATE / 2];
    let (first, _) = words(&speech);
    audio.extend(&speech);
    audio.extend(vec![0i16; RATE]);
    let config = VadConfig {
        deactivation: Duration::from_millis(800),
        ..VadConfig::default()
    };
    let found = events(config, &audio);
    assert_eq!(found.len(), 2, "{found:?}");
    let start = found[0].time();
    let expected =
        Duration::from_millis(500) + Duration::from_micros(first as u64 * 1_000_000 / 16_000);
    assert!(
        start.abs_diff(expected) <= Duration::from_millis(100),
        "{start:?} vs {expected:?}"
    );
}

#[test]
fn the_detector_rests_in_quiet_and_still_finds_the_same_speech() {
    // Lines with long quiet between them: digital silence (a caller who
    // sends nothing) and noise under the resting level.
    let mut seed = 11;
    let mut audio = vec![0i16; RATE];
    for text in [
        "Yes.",
        "Book a demo for Thursday, please.",
        "The first one.",
    ] {
        audio.extend(at_rate(&speak(text), RATE as u32));
        audio.extend(vec![0i16; RATE]);
        audio.extend(noise(1.5, -66.0, &mut seed));
    }
    let scored = |config: VadConfig| {
        let mut vad = Vad::new(config);
        let mut events: Vec<VadEvent> = audio
            .chunks_exact(320)
            .filter_map(|frame| vad.push(frame).unwrap().event)
            .collect();
        events.extend(vad.finish());
        (events, vad.scored_blocks())
    };
    let (always, every_block) = scored(VadConfig {
        rest_below_dbfs: f32::NEG_INFINITY,
        ..VadConfig::default()
    });
    let (resting, fewer_blocks) = scored(VadConfig::default());
    assert_eq!(always.len(), 6, "{always:?}");
    assert_eq!(resting.len(), always.len(), "{resting:?} vs {always:?}");
    for (rested, kept) in resting.iter().zip(&always) {
        assert_eq!(
            std::mem::discriminant(rested),
            std::mem::discriminant(kept),
            "{resting:?} vs {always:?}"
        );
        let apart = rested.time().abs_diff(kept.time());
        assert!(
            apart <= Duration::from_millis(20),
            "{rested:?} is {apart:?} from {kept:?}"
        );
    }
    // The audio is mostly quiet: the model scored well under half of it.
    assert!(
        fewer_blocks * 2 < every_block,
        "scored {fewer_blocks} of {every_block} blocks"
    );
}
