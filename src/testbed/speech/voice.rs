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

use std::f64::consts::TAU;

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
        SimVoice::Synthetic => return Ok(synthesize(text, sample_rate)),
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
    let mut phase = 0.0f64;
    for (index, &c) in chars.iter().enumerate() {
        // Each character shapes its stretch: spaces and punctuation are
        // near-silent gaps, letters are loud or soft by their code, so the
        // envelope carries the text's spelling.
        let gap = !c.is_alphanumeric();
        let weight = if gap {
            0.02
        } else {
            0.45 + 0.55 * f64::from((u32::from(c.to_ascii_lowercase()) * 37) % 11) / 10.0
        };
        for (i, &shape) in shape.iter().enumerate() {
            let t = (index * per_char + i) as f64 / rate;
            let syllable = 0.6 + 0.4 * (TAU * 4.0 * t).sin();
            let f0 = 120.0 + 15.0 * (TAU * 0.7 * t).sin();
            phase = (phase + TAU * f0 / rate) % TAU;
            let sample = PEAK * weight * shape * syllable * harmonics(phase) / 1.6;
            out.push(sample.clamp(-32_767.0, 32_767.0) as i16);
        }
    }
    out
}

/// The fundamental at `phase` and its first five overtones, each at
/// 1/h of its level: sin(h·phase) by the Chebyshev recurrence from one
/// sine and cosine.
fn harmonics(phase: f64) -> f64 {
    let (s1, c1) = phase.sin_cos();
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
