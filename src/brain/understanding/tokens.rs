//! Tokenizing a transcript into whole lowercase words, and matching word
//! phrases against it. Matching is by whole tokens only, so "api" never
//! matches inside "rapid" and "hr" never matches inside "three".

/// A transcript split into lowercase tokens.
///
/// Letters and digits form tokens; apostrophes inside words are dropped
/// ("we're" → "were"); a comma between digits joins them ("2,500" → "2500");
/// a dot or colon between digits is kept ("1.5", "10:30"). Everything else
/// separates tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tokens {
    words: Vec<String>,
}

impl Tokens {
    pub fn new(text: &str) -> Tokens {
        let chars: Vec<char> = text.chars().collect();
        let mut words = Vec::new();
        let mut current = String::new();
        for (i, &c) in chars.iter().enumerate() {
            let prev_digit = i > 0 && chars[i - 1].is_ascii_digit();
            let next_digit = chars.get(i + 1).is_some_and(|n| n.is_ascii_digit());
            let prev_alnum = i > 0 && chars[i - 1].is_alphanumeric();
            let next_alpha = chars.get(i + 1).is_some_and(|n| n.is_alphabetic());
            if c.is_alphanumeric() {
                current.extend(c.to_lowercase());
            } else if c == ',' && prev_digit && next_digit && !current.is_empty() {
                // "2,500": a thousands separator, not a pause.
            } else if (c == '.' || c == ':') && prev_digit && next_digit {
                current.push(c);
            } else if (c == '\'' || c == '’') && prev_alnum && next_alpha {
                // "we're" → "were": keep the word whole.
            } else if !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
        }
        if !current.is_empty() {
            words.push(current);
        }
        Tokens { words }
    }

    pub fn len(&self) -> usize {
        self.words.len()
    }

    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    pub fn get(&self, i: usize) -> Option<&str> {
        self.words.get(i).map(String::as_str)
    }

    pub fn words(&self) -> &[String] {
        &self.words
    }

    /// Whether the phrase (space-separated words) occurs at token `i`.
    pub fn phrase_at(&self, i: usize, phrase: &str) -> bool {
        let mut n = 0;
        for (k, word) in phrase.split(' ').enumerate() {
            if self.get(i + k) != Some(word) {
                return false;
            }
            n += 1;
        }
        n > 0
    }

    /// Positions where the phrase starts.
    pub fn find(&self, phrase: &str) -> impl Iterator<Item = usize> + '_ {
        let phrase = phrase.to_owned();
        (0..self.words.len()).filter(move |&i| self.phrase_at(i, &phrase))
    }

    pub fn contains(&self, phrase: &str) -> bool {
        self.find(phrase).next().is_some()
    }

    /// Whether one of the words in `words` occurs among the `window` tokens
    /// before position `i`.
    pub fn preceded_by(&self, i: usize, window: usize, words: &[&str]) -> bool {
        let end = i.min(self.words.len());
        self.words[end.saturating_sub(window)..end]
            .iter()
            .any(|w| words.contains(&w.as_str()))
    }
}

/// Words that negate what follows them within a short window.
pub const NEGATORS: [&str; 7] = ["dont", "not", "no", "never", "without", "doesnt", "arent"];

/// The number of tokens a phrase spans.
pub fn phrase_len(phrase: &str) -> usize {
    phrase.split(' ').count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        Tokens::new(text).words().to_vec()
    }

    #[test]
    fn splits_on_punctuation_and_lowercases() {
        assert_eq!(
            words("We use HubSpot, Slack & Zapier."),
            ["we", "use", "hubspot", "slack", "zapier"]
        );
    }

    #[test]
    fn keeps_contractions_and_number_formats_whole() {
        assert_eq!(
            words("we're doing 2,500 a month"),
            ["were", "doing", "2500", "a", "month"]
        );
        assert_eq!(
            words("about 1.5k, at 10:30."),
            ["about", "1.5k", "at", "10:30"]
        );
    }

    #[test]
    fn phrases_match_whole_tokens_only() {
        let t = Tokens::new("a rapid three-way said Monday");
        assert!(!t.contains("api"));
        assert!(!t.contains("hr"));
        assert!(!t.contains("ai"));
        assert!(!t.contains("day"));
        assert!(t.contains("three way"));
    }
}
