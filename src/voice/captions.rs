//! What the caller has heard of a line, in words: captions go out word by
//! word in step with the audio, and when the caller interrupts, the
//! transcript keeps only the words that were played.
//!
//! Voices do not say when each word is spoken, so a word is taken as heard
//! once the audio played covers its share of the line (by characters, which
//! tracks speaking time well enough for captions), never before.
//!
//! ```
//! use voxguard::voice::captions::heard_words;
//! let line = "I found your account and your plan renews next month.";
//! assert_eq!(heard_words(line, 0.0), "");
//! assert_eq!(heard_words(line, 0.5), "I found your account and");
//! assert_eq!(heard_words(line, 1.0), line);
//! ```

use std::time::Duration;

/// Speaking time per character when a line's audio length is not known yet
/// (its voice is still producing it): about 150 words a minute.
pub const TIME_PER_CHAR: Duration = Duration::from_millis(65);

/// The words of `text` a listener has heard once `fraction` (0..=1) of its
/// audio has played: each word counts once the audio reaches its end.
pub fn heard_words(text: &str, fraction: f64) -> &str {
    let text = text.trim();
    if fraction >= 1.0 {
        return text;
    }
    let total = text.chars().count().max(1) as f64;
    let reached = fraction.max(0.0) * total;
    let mut heard_end = 0;
    let mut chars = 0usize;
    let mut in_word = false;
    for (at, c) in text.char_indices() {
        if c.is_whitespace() {
            if in_word && chars as f64 <= reached {
                heard_end = at;
            }
            in_word = false;
        } else {
            in_word = true;
        }
        chars += 1;
    }
    if in_word && chars as f64 <= reached {
        heard_end = text.len();
    }
    &text[..heard_end]
}

/// The share of a line heard after `played` of audio, of `total` if the line's
/// audio is complete, else estimated from its length.
pub fn fraction_played(text: &str, played: Duration, total: Option<Duration>) -> f64 {
    let total = total.unwrap_or_else(|| TIME_PER_CHAR * text.trim().chars().count() as u32);
    if total.is_zero() {
        return 1.0;
    }
    (played.as_secs_f64() / total.as_secs_f64()).min(1.0)
}

/// Captions for one line: hands out the words as the audio reaches them.
#[derive(Debug, Clone)]
pub struct Caption {
    text: String,
    /// Bytes of `text` already handed out.
    sent: usize,
}

impl Caption {
    pub fn new(text: impl Into<String>) -> Caption {
        Caption {
            text: text.into().trim().to_string(),
            sent: 0,
        }
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// The words newly heard since the last call, with their leading space.
    pub fn advance(&mut self, fraction: f64) -> Option<&str> {
        let heard = heard_words(&self.text, fraction).len();
        if heard <= self.sent {
            return None;
        }
        let delta = &self.text[self.sent..heard];
        self.sent = heard;
        Some(delta)
    }

    /// Everything handed out so far: what the caller heard.
    pub fn heard(&self) -> &str {
        &self.text[..self.sent]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_never_heard_before_their_audio() {
        let line = "one two three four";
        for step in 0..=100 {
            let fraction = f64::from(step) / 100.0;
            let heard = heard_words(line, fraction);
            let share = heard.chars().count() as f64 / line.chars().count() as f64;
            assert!(share <= fraction + 1e-9, "{fraction}: {heard:?}");
            assert!(line.starts_with(heard));
        }
    }

    #[test]
    fn captions_hand_out_each_word_once_in_order() {
        let mut caption = Caption::new("We can book that for Tuesday.");
        let mut out = String::new();
        for step in 0..=20 {
            if let Some(delta) = caption.advance(f64::from(step) / 20.0) {
                out.push_str(delta);
            }
        }
        assert_eq!(out, "We can book that for Tuesday.");
        assert_eq!(caption.heard(), "We can book that for Tuesday.");
        assert_eq!(caption.advance(1.0), None);
    }

    #[test]
    fn an_unfinished_line_is_estimated_from_its_length() {
        let text = "a".repeat(100);
        let half = fraction_played(&text, TIME_PER_CHAR * 50, None);
        assert!((half - 0.5).abs() < 1e-9);
        assert_eq!(
            fraction_played("hi", Duration::from_secs(9), Some(Duration::from_secs(1))),
            1.0
        );
    }

    #[test]
    fn non_ascii_text_is_cut_on_character_boundaries() {
        let line = "Très bien, à mardi à 15 h.";
        for step in 0..=10 {
            let heard = heard_words(line, f64::from(step) / 10.0);
            assert!(line.starts_with(heard));
        }
    }
}
