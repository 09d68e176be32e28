//! The simulator's voice: deterministic, speech-like audio whose length is
//! proportional to the text (~65 ms a character). A voiced signal (a 120 Hz
//! fundamental and its harmonics, with a slow pitch drift) is modulated at a
//! syllable rate of about 4 Hz and dips between words, so VAD and energy
//! measurements see speech, and different texts have different envelopes
//! (which is how the simulator's recognizer tells them apart).
//!
//! For a person listening (the dev page), the simulator can speak with
//! espeak-ng instead: a voice of its own, intelligible, and audibly not the
//! agent's local voice, so a caller hears when the agent falls back.

use std::collections::HashMap;
use std::f64::consts::TAU;
use std::sync::{Arc, Mutex, OnceLock};

use crate::media::resample::Resampler;
use crate::media::wav;

/// How the simulator's voices sound.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SimVoice {
    /// The speech-like signal of [`synthesize`]: deterministic, needs no
    /// program, and the simulator's recognizer can tell texts apart by it.
    #[default]
    Synthetic,
    /// The `espeak-ng` program with this voice (e.g. `en-us+f3`).
    Espeak { voice: String },
}

/// `text` in `voice` at `sample_rate`.
pub async fn render(voice: &SimVoice, text: &str, sample_rate: u32) -> Result<Vec<i16>, String> {
    let espeak_voice = match voice {
        SimVoice::Synthetic => return Ok(recently_synthesized(text, sample_rate)),
        SimVoice::Espeak { voice } => voice,
    };
    let output = tokio::process::Command::new("espeak-ng")
        .args(["-v", espeak_voice, "--stdout", "--", text])
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| format!("the simulator's voice needs espeak-ng: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "espeak-ng could not speak: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    let pcm = wav::parse(&output.stdout).map_err(|e| format!("espeak-ng's audio: {e}"))?;
    if pcm.sample_rate == sample_rate {
        return Ok(pcm.samples);
    }
    let mut resampler = Resampler::new(pcm.sample_rate, sample_rate).map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(resampler.max_output(pcm.samples.len()) + 64);
    resampler.process(&pcm.samples, &mut out);
    resampler.flush(&mut out);
    Ok(out)
}

/// Renders kept for reuse: a simulator serving many calls is asked for the
/// same lines over and over (greetings, answers with the same names).
const KEPT_RENDERS: usize = 128;

/// [`synthesize`], reusing a recent render of the same text.
fn recently_synthesized(text: &str, sample_rate: u32) -> Vec<i16> {
    type Renders = HashMap<(String, u32), Arc<[i16]>>;
    static RENDERS: OnceLock<Mutex<Renders>> = OnceLock::new();
    let renders = RENDERS.get_or_init(Mutex::default);
    let key = (text.to_owned(), sample_rate);
    let kept = renders
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&key)
        .cloned();
    if let Some(audio) = kept {
        return audio.to_vec();
    }
    let audio = synthesize(text, sample_rate);
    let mut renders = renders.lock().unwrap_or_else(|e| e.into_inner());
    if renders.len() >= KEPT_RENDERS {
        renders.clear();
    }
    renders.insert(key, Arc::from(audio.as_slice()));
    audio
}

/// Audio per character of text.
pub const MS_PER_CHAR: u64 = 65;
/// Peak amplitude (about −12 dBFS).
const PEAK: f64 = 8_000.0;

/// The audio for `text` at `sample_rate`.
pub fn synthesize(text: &str, sample_rate: u32) -> Vec<i16> {
    let chars: Vec<char> = text.chars().collect();
    let per_char = (sample_rate as u64 * MS_PER_CHAR / 1000) as usize;
    let mut out = Vec::with_capacity(chars.len() * per_char);
    let rate = f64::from(sample_rate);
    // Smooth transitions inside each character: the same curve for every
    // character, computed once.
    let shape: Vec<f64> = (0..per_char)
        .map(|i| {
            (std::f64::consts::PI * i as f64 / per_char as f64)
                .sin()
                .powf(0.6)
        })
        .collect();
    // Three sinusoids, each advanced a sample at a time by rotation (no
    // sine per sample): the syllable rate, the pitch drift and the voice.
    let mut syllable = Rotor::new();
    let syllable_step = (TAU * 4.0 / rate).sin_cos();
    let mut drift = Rotor::new();
    let drift_step = (TAU * 0.7 / rate).sin_cos();
    let mut voice = Rotor::new();
    for &c in &chars {
        // Each character shapes its stretch: spaces and punctuation are
        // near-silent gaps, letters are loud or soft by their code, so the
        // envelope carries the text's spelling.
        let gap = !c.is_alphanumeric();
        let weight = if gap {
            0.02
        } else {
            0.45 + 0.55 * f64::from((u32::from(c.to_ascii_lowercase()) * 37) % 11) / 10.0
        };
        for &shape in &shape {
            let level = 0.6 + 0.4 * syllable.sin;
            let f0 = 120.0 + 15.0 * drift.sin;
            voice.turn(Rotor::small_step(TAU * f0 / rate));
            let sample = PEAK * weight * shape * level * harmonics_of(voice.sin, voice.cos) / 1.6;
            out.push(sample.clamp(-32_767.0, 32_767.0) as i16);
            syllable.turn(syllable_step);
            drift.turn(drift_step);
        }
    }
    out
}

/// A unit phasor: (sin θ, cos θ) of an angle that grows sample by sample.
struct Rotor {
    sin: f64,
    cos: f64,
}

impl Rotor {
    fn new() -> Rotor {
        Rotor { sin: 0.0, cos: 1.0 }
    }

    /// The (sin, cos) of a turn by an angle well under 0.1 rad, by its
    /// Taylor series (exact to 1e-12 there).
    fn small_step(angle: f64) -> (f64, f64) {
        let a2 = angle * angle;
        let sin = angle * (1.0 - a2 / 6.0 * (1.0 - a2 / 20.0 * (1.0 - a2 / 42.0)));
        let cos = 1.0 - a2 / 2.0 * (1.0 - a2 / 12.0 * (1.0 - a2 / 30.0));
        (sin, cos)
    }

    fn turn(&mut self, (sin, cos): (f64, f64)) {
        let s = self.sin * cos + self.cos * sin;
        let c = self.cos * cos - self.sin * sin;
        // Keep it on the unit circle (rounding would drift it off).
        let fix = 1.5 - 0.5 * (s * s + c * c);
        self.sin = s * fix;
        self.cos = c * fix;
    }
}

/// The fundamental at `phase` and its first five overtones, each at
/// 1/h of its level.
#[cfg(test)]
fn harmonics(phase: f64) -> f64 {
    let (s1, c1) = phase.sin_cos();
    harmonics_of(s1, c1)
}

/// [`harmonics`] from the fundamental's sine and cosine: sin(h·phase) by
/// the Chebyshev recurrence.
fn harmonics_of(s1: f64, c1: f64) -> f64 {
    let (mut previous, mut current) = (0.0, s1);
    let mut sum = s1;
    for h in 2..=6 {
        let next = 2.0 * c1 * current - previous;
        sum += next / f64::from(h);
        previous = current;
        current = next;
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::level_dbfs;

    #[test]
    fn the_harmonics_are_the_sum_of_their_sines() {
        for phase in [0.0, 0.3, 1.7, 3.0, 5.9] {
            let direct: f64 = (1..=6)
                .map(|h| (phase * f64::from(h)).sin() / f64::from(h))
                .sum();
            assert!((harmonics(phase) - direct).abs() < 1e-12, "{phase}");
        }
    }

    #[tokio::test]
    async fn the_synthetic_voice_renders_without_a_program() {
        let audio = render(&SimVoice::Synthetic, "hello", 24_000).await.unwrap();
        assert_eq!(audio, synthesize("hello", 24_000));
    }

    #[test]
    fn the_rotated_voice_is_the_voice_computed_with_sines() {
        // The signal as the formula writes it, a sine per sample.
        let text = "book a demo for thursday at ten, please";
        let rate = 24_000u32;
        let per_char = (rate as u64 * MS_PER_CHAR / 1000) as usize;
        let mut phase = 0.0f64;
        let mut expected = Vec::new();
        for (index, c) in text.chars().enumerate() {
            let weight = if !c.is_alphanumeric() {
                0.02
            } else {
                0.45 + 0.55 * f64::from((u32::from(c.to_ascii_lowercase()) * 37) % 11) / 10.0
            };
            for i in 0..per_char {
                let t = (index * per_char + i) as f64 / f64::from(rate);
                let shape = (std::f64::consts::PI * i as f64 / per_char as f64)
                    .sin()
                    .powf(0.6);
                let syllable = 0.6 + 0.4 * (TAU * 4.0 * t).sin();
                let f0 = 120.0 + 15.0 * (TAU * 0.7 * t).sin();
                phase = (phase + TAU * f0 / f64::from(rate)) % TAU;
                let sample = PEAK * weight * shape * syllable * harmonics(phase) / 1.6;
                expected.push(sample.clamp(-32_767.0, 32_767.0) as i16);
            }
        }
        let got = synthesize(text, rate);
        assert_eq!(got.len(), expected.len());
        let worst = got
            .iter()
            .zip(&expected)
            .map(|(a, b)| (i32::from(*a) - i32::from(*b)).abs())
            .max()
            .unwrap();
        assert!(worst <= 1, "off by {worst} at worst");
    }

    #[test]
    fn the_length_is_proportional_to_the_text() {
        assert_eq!(synthesize("hello", 24_000).len(), 5 * 24_000 * 65 / 1000);
        assert_eq!(synthesize("", 24_000).len(), 0);
    }

    #[test]
    fn it_is_loud_like_speech_and_deterministic() {
        let a = synthesize("book a demo please", 16_000);
        assert!(level_dbfs(&a) > -30.0, "{}", level_dbfs(&a));
        assert_eq!(a, synthesize("book a demo please", 16_000));
    }
}
