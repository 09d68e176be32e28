//! The simulator's voice: deterministic, speech-like audio whose length is
//! proportional to the text (~65 ms a character). A voiced signal (a 120 Hz
//! fundamental and its harmonics, with a slow pitch drift) is modulated at a
//! syllable rate of about 4 Hz and dips between words, so VAD and energy
//! measurements see speech, and different texts have different envelopes
//! (which is how the simulator's recognizer tells them apart).

use std::f64::consts::TAU;

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
        for i in 0..per_char {
            let t = (index * per_char + i) as f64 / rate;
            let within = i as f64 / per_char as f64;
            // Smooth transitions inside each character.
            let shape = (std::f64::consts::PI * within).sin().powf(0.6);
            let syllable = 0.6 + 0.4 * (TAU * 4.0 * t).sin();
            let f0 = 120.0 + 15.0 * (TAU * 0.7 * t).sin();
            phase += TAU * f0 / rate;
            let voiced: f64 = (1..=6)
                .map(|h| (phase * f64::from(h)).sin() / f64::from(h))
                .sum();
            let sample = PEAK * weight * shape * syllable * voiced / 1.6;
            out.push(sample.clamp(-32_767.0, 32_767.0) as i16);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::level_dbfs;

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
