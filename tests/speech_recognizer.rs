//! The speech simulator's recognizer against what a caller's line becomes
//! on its way to a recognizer: espeak-ng speech (as simulated callers say
//! it), Opus-coded at 48 kHz, packets lost (concealed by the decoder),
//! resampled to the 16 kHz a recognizer takes. Lines that differ by one
//! word must still come out as the line that was said.

#[path = "media_support.rs"]
mod media_support;

use std::process::Command;
use std::sync::Arc;

use voxguard::media::opus::{Decoder, EncoderConfig, SAMPLES_PER_FRAME};
use voxguard::media::resample::Resampler;
use voxguard::media::{packetize, wav};
use voxguard::testbed::speech::recognize::{Utterance, transcribe};

use media_support::{at_rate, system_deps};

/// Lines of the simulated callers' scripts, confusable ones included.
const LINES: &[&str] = &[
    "the first one",
    "the second one",
    "the third one",
    "yes please",
    "yes, that sounds great",
    "we use HubSpot",
    "we use Salesforce",
    "this month ideally",
    "next quarter",
    "twelve hundred docs a month",
];

/// A line as the simulated callers say it (espeak-ng at their 170 words a minute).
fn say(text: &str) -> wav::Pcm {
    system_deps();
    let output = Command::new("espeak-ng")
        .args(["-v", "en-us", "-s", "170", "--stdout", text])
        .output()
        .expect("espeak-ng runs");
    wav::parse(&output.stdout).expect("espeak-ng writes WAV")
}

/// Every line of [`LINES`] spoken, and registered with the recognizer.
fn registered() -> (Vec<wav::Pcm>, Vec<Arc<Utterance>>) {
    let spoken: Vec<wav::Pcm> = LINES.iter().map(|l| say(l)).collect();
    let utterances = LINES
        .iter()
        .zip(&spoken)
        .enumerate()
        .map(|(id, (text, pcm))| {
            Arc::new(Utterance::new(
                id as u64,
                text,
                &pcm.samples,
                pcm.sample_rate,
            ))
        })
        .collect();
    (spoken, utterances)
}

/// `pcm` through Opus with every packet `lost(i)` says dropped (the decoder
/// conceals it), at 16 kHz.
fn through_the_network(pcm: &wav::Pcm, lost: impl Fn(usize) -> bool) -> Vec<i16> {
    through_a_jittery_network(pcm, lost, |_| false)
}

/// Also: before every packet `stalled(i)` says was late, the jitter
/// buffer ran dry and played a concealed frame (its delay grew by one).
fn through_a_jittery_network(
    pcm: &wav::Pcm,
    lost: impl Fn(usize) -> bool,
    stalled: impl Fn(usize) -> bool,
) -> Vec<i16> {
    let mut samples = at_rate(pcm, 48_000);
    samples.resize(samples.len().div_ceil(960) * 960 + 960 * 20, 0);
    let packets = packetize(EncoderConfig::default(), 48_000, &samples).unwrap();
    let mut decoder = Decoder::new().unwrap();
    let mut frame = vec![0i16; SAMPLES_PER_FRAME];
    let mut decoded = Vec::with_capacity(samples.len());
    for (i, packet) in packets.iter().enumerate() {
        if stalled(i) {
            decoder.conceal(&mut frame).unwrap();
            decoded.extend_from_slice(&frame);
        }
        if lost(i) {
            decoder.conceal(&mut frame).unwrap();
        } else {
            decoder.decode(packet, &mut frame).unwrap();
        }
        decoded.extend_from_slice(&frame);
    }
    let mut resampler = Resampler::new(48_000, 16_000).unwrap();
    let mut out = Vec::new();
    resampler.process(&decoded, &mut out);
    resampler.flush(&mut out);
    out
}

#[test]
fn lines_one_word_apart_are_told_apart_through_opus_with_lost_and_late_packets() {
    let (spoken, utterances) = registered();
    let mut wrong = Vec::new();
    let mut tried = 0;
    for (text, pcm) in LINES.iter().zip(&spoken) {
        // 5 % of packets lost, and 0, 10 or 20 % late (the jitter buffer
        // played a concealed frame before each), a different pattern each time.
        for pattern in 0..12u64 {
            let stall_rate = pattern % 3 * 10;
            let lost = |i: usize| (i as u64 * 2_654_435_761 + pattern * 40_503) % 100 < 5;
            let stalled =
                |i: usize| (i as u64 * 2_654_435_761 + pattern * 7_919 + 13) % 100 < stall_rate;
            let audio = through_a_jittery_network(pcm, lost, stalled);
            let heard = transcribe(&audio, 16_000, &utterances, 300);
            tried += 1;
            if heard != *text {
                wrong.push(format!(
                    "{text:?} (pattern {pattern}, {stall_rate} % late) heard as {heard:?}"
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {tried} wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

#[test]
fn speech_nobody_registered_is_not_taken_for_a_registered_line() {
    let (_, utterances) = registered();
    for other in [
        "could you repeat the price for the enterprise plan",
        "my colleague will join us shortly",
    ] {
        let audio = through_the_network(&say(other), |_| false);
        assert_eq!(
            transcribe(&audio, 16_000, &utterances, 300),
            "",
            "{other:?}"
        );
    }
}

#[test]
fn two_lines_said_back_to_back_are_both_heard() {
    let (spoken, utterances) = registered();
    // "we use HubSpot" then "this month ideally" with no pause between.
    let (first, second) = (&spoken[5], &spoken[7]);
    let trim = |pcm: &wav::Pcm| {
        let loud = |s: &&i16| s.unsigned_abs() > 300;
        let start = pcm.samples.iter().position(|s| loud(&s)).unwrap_or(0);
        let end = pcm.samples.iter().rposition(|s| loud(&s)).unwrap_or(0);
        pcm.samples[start..=end].to_vec()
    };
    let mut samples = trim(first);
    samples.extend(trim(second));
    let both = wav::Pcm {
        sample_rate: first.sample_rate,
        samples,
    };
    let audio = through_the_network(&both, |_| false);
    assert_eq!(
        transcribe(&audio, 16_000, &utterances, 300),
        "we use HubSpot this month ideally"
    );
}
