//! The speech simulator's recognizer against what a caller's line becomes
//! on its way to a recognizer: espeak-ng speech (as simulated callers say
//! it), Opus-coded at 48 kHz, packets lost (concealed by the decoder),
//! resampled to the 16 kHz a recognizer takes. Lines that differ by one
//! word must still come out as the line that was said. The callers' whole
//! script also goes the way the agent hears it (jitter buffer, decoder at
//! 16 kHz) into the streaming recognizer, with lost and late packets and
//! with senders that stall mid-line.

#[path = "media_support.rs"]
mod media_support;

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

use voxguard::media::jitter::JitterConfig;
use voxguard::media::opus::{Decoder, EncoderConfig, SAMPLES_PER_FRAME};
use voxguard::media::resample::Resampler;
use voxguard::media::vad::VadConfig;
use voxguard::media::{packetize, wav};
use voxguard::simulate::audio::words;
use voxguard::simulate::caller::{CHOICES, script};
use voxguard::testbed::crm::Fixtures;
use voxguard::testbed::speech::recognize::{self, Heard, Utterance, transcribe};
use voxguard::voice::listener::{InboundPacket, Listener};

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
    let utterances = register(LINES.iter().copied().zip(&spoken));
    (spoken, utterances)
}

/// Each `(text, speech)` registered with the recognizer, numbered in order.
fn register<'a>(lines: impl Iterator<Item = (&'a str, &'a wav::Pcm)>) -> Vec<Arc<Utterance>> {
    lines
        .enumerate()
        .map(|(id, (text, pcm))| {
            Arc::new(Utterance::new(
                id as u64,
                text,
                &pcm.samples,
                pcm.sample_rate,
            ))
        })
        .collect()
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

/// Every line of `simulate`'s script for six callers (their emails and
/// picks), and the hum of a false interruption, registered as `simulate`
/// registers them.
fn the_callers_script() -> (Vec<String>, Vec<wav::Pcm>, Vec<Arc<Utterance>>) {
    let fixtures = Fixtures::generate(7);
    let mut texts: Vec<String> = Vec::new();
    for (i, person) in fixtures.people.iter().take(6).enumerate() {
        for line in script(&person.email, CHOICES[i % CHOICES.len()]) {
            if !texts.contains(&line) {
                texts.push(line);
            }
        }
    }
    let spoken: Vec<wav::Pcm> = texts.iter().map(|t| say(t)).collect();
    let hum = say("mmmmm hmmmm");
    let utterances = register(
        texts
            .iter()
            .map(String::as_str)
            .zip(&spoken)
            .chain([("", &hum)]),
    );
    (texts, spoken, utterances)
}

/// How a sender's packets reach the agent: `lost` ones never, the others
/// 0–40 ms late at random, and every packet from `stall.0` on a further
/// `stall.1` late (the sender froze mid-line, then caught up).
struct Network {
    seed: u64,
    loss: f64,
    stall: Option<(usize, Duration)>,
}

/// `pcm` said through `network` and heard the way the agent hears it: a
/// jitter buffer ticked every 20 ms, the decoder at 16 kHz. Returns the
/// 16 kHz audio, with a second of silence after.
fn as_the_agent_hears(pcm: &wav::Pcm, network: &Network) -> Vec<i16> {
    let packets = packetize(EncoderConfig::default(), pcm.sample_rate, &pcm.samples).unwrap();
    let mut rng = SmallRng::seed_from_u64(network.seed);
    let lead = Duration::from_millis(300);
    let mut arrivals: Vec<(Duration, usize)> = (0..packets.len())
        .filter_map(|i| {
            let lost = rng.random_bool(network.loss);
            let late = Duration::from_micros(rng.random_range(0..40_000));
            let stalled = match network.stall {
                Some((from, by)) if i >= from => by,
                _ => Duration::ZERO,
            };
            let sent = lead + Duration::from_millis(20 * i as u64);
            (!lost).then_some((sent + late + stalled, i))
        })
        .collect();
    arrivals.sort();
    let mut listener = Listener::new(JitterConfig::default(), VadConfig::default()).unwrap();
    let t0 = Instant::now();
    let mut audio = Vec::new();
    let mut arrived = arrivals.iter().peekable();
    let last = arrivals.last().map_or(Duration::ZERO, |a| a.0);
    let ticks = (last.as_millis() / 20) as u64 + 50;
    for tick in 0..ticks {
        let now = Duration::from_millis(20 * tick);
        while let Some(&&(at, i)) = arrived.peek().filter(|a| a.0 <= now) {
            let packet = InboundPacket {
                ssrc: 1,
                sequence: i as u16,
                timestamp: (i * 960) as u32,
                payload: packets[i].clone(),
            };
            listener.push(&packet, t0 + at);
            arrived.next();
        }
        audio.extend_from_slice(listener.tick(t0 + now).unwrap().frame);
    }
    audio
}

/// The final transcripts the streaming recognizer gives for `audio`, as
/// the agent asks for them (300 ms endpointing).
fn finals(audio: &[i16], utterances: &[Arc<Utterance>]) -> Vec<String> {
    let mut recognizer = recognize::Listener::new(
        utterances.to_vec(),
        16_000,
        Some(300),
        Some(1000),
        true,
        true,
        false,
    );
    let mut events = Vec::new();
    for frame in audio.chunks(320) {
        recognizer.feed(frame, &mut events);
    }
    events
        .into_iter()
        .filter_map(|event| match event {
            Heard::Result {
                transcript,
                is_final: true,
                ..
            } if !transcript.is_empty() => Some(transcript),
            _ => None,
        })
        .collect()
}

#[test]
fn the_callers_whole_script_is_heard_through_the_agents_jitter_buffer_with_loss_and_jitter() {
    let (texts, spoken, utterances) = the_callers_script();
    let mut wrong = Vec::new();
    let mut tried = 0;
    for (index, (text, pcm)) in texts.iter().zip(&spoken).enumerate() {
        for trial in 0..6u64 {
            let network = Network {
                seed: index as u64 * 1_000 + trial,
                loss: 0.05,
                stall: None,
            };
            let heard = finals(&as_the_agent_hears(pcm, &network), &utterances);
            tried += 1;
            if heard != [text.clone()] {
                wrong.push(format!(
                    "{text:?} (seed {}) heard as {heard:?}",
                    network.seed
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
fn a_line_a_stalled_sender_cut_in_two_is_heard_whole_or_not_at_all_never_as_another() {
    let (texts, spoken, utterances) = the_callers_script();
    let (mut whole, mut unheard, mut wrong) = (0, Vec::new(), Vec::new());
    let mut tried = 0;
    for (index, (text, pcm)) in texts.iter().zip(&spoken).enumerate() {
        let packets = pcm.samples.len() / (pcm.sample_rate as usize / 50);
        for trial in 0..8u64 {
            let seed = index as u64 * 1_000 + trial;
            let mut rng = SmallRng::seed_from_u64(seed ^ 0x5eed);
            // Frozen somewhere in the middle fifth to four fifths of the
            // line, for longer than the recognizer's 300 ms endpointing.
            let at = rng.random_range(packets / 5..packets * 4 / 5);
            let by = Duration::from_millis(rng.random_range(350..900));
            let network = Network {
                seed,
                loss: 0.05,
                stall: Some((at, by)),
            };
            let heard = finals(&as_the_agent_hears(pcm, &network), &utterances);
            tried += 1;
            let said = words(&heard.join(" "));
            if said == words(text) {
                whole += 1;
            } else if said.is_empty() {
                unheard.push(format!("{text:?} (seed {seed})"));
            } else {
                wrong.push(format!(
                    "{text:?} (seed {seed}, stalled {by:?} at packet {at}) heard as {heard:?}"
                ));
            }
        }
    }
    println!(
        "{whole} of {tried} stalled lines heard whole, {} not at all, {} as other words",
        unheard.len(),
        wrong.len()
    );
    // Never words the caller did not say (the agent would answer them and
    // the line would be lost); a line it cannot make out is no words at
    // all (the caller is asked again, or types).
    assert!(
        wrong.is_empty(),
        "{} of {tried} heard as other words:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    assert!(
        whole * 10 >= tried * 9,
        "only {whole} of {tried} heard whole; not at all: {unheard:?}"
    );
}
