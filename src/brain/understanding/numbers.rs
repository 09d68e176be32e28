//! Reading numbers the way callers say them: digits ("2500", "3k", "1.5k"),
//! words ("twelve hundred", "two thousand five hundred", "forty-two") and
//! vague quantities ("a couple", "a few hundred", "a dozen").

use super::tokens::Tokens;

/// A number found in a transcript: its value and the tokens it spans.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NumberSpan {
    pub value: u64,
    pub start: usize,
    /// One past the last token.
    pub end: usize,
}

fn small_word(word: &str) -> Option<u64> {
    const ONES: [&str; 20] = [
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "thirteen",
        "fourteen",
        "fifteen",
        "sixteen",
        "seventeen",
        "eighteen",
        "nineteen",
    ];
    const TENS: [&str; 8] = [
        "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
    ];
    if let Some(n) = ONES.iter().position(|w| *w == word) {
        return Some(n as u64);
    }
    TENS.iter()
        .position(|w| *w == word)
        .map(|n| (n as u64 + 2) * 10)
}

/// Vague quantities that count as numbers when they stand in for one.
fn vague_word(word: &str) -> Option<u64> {
    match word {
        "couple" => Some(2),
        "few" => Some(3),
        "handful" => Some(5),
        _ => None,
    }
}

fn scale_word(word: &str) -> Option<u64> {
    match word {
        "hundred" => Some(100),
        "thousand" | "k" => Some(1000),
        "million" => Some(1_000_000),
        "dozen" => Some(12),
        _ => None,
    }
}

/// Digits with an optional `k`/`m` suffix: "2500", "3k", "1.5k".
fn digit_token(word: &str) -> Option<f64> {
    let (digits, multiplier) = if let Some(d) = word.strip_suffix('k') {
        (d, 1000.0)
    } else if let Some(d) = word.strip_suffix('m') {
        (d, 1_000_000.0)
    } else {
        (word, 1.0)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return None;
    }
    digits.parse::<f64>().ok().map(|v| v * multiplier)
}

fn is_number_start(word: &str) -> bool {
    small_word(word).is_some()
        || vague_word(word).is_some()
        || digit_token(word).is_some()
        || word == "dozen"
}

/// Parse the number starting at token `start`, if there is one.
pub fn number_at(tokens: &Tokens, start: usize) -> Option<NumberSpan> {
    let mut i = start;
    // "a hundred", "a couple", "a dozen", "a few hundred"
    if matches!(tokens.get(i), Some("a" | "an")) {
        let next = tokens.get(i + 1)?;
        if vague_word(next).is_none() && scale_word(next).is_none() {
            return None;
        }
        i += 1;
    }
    let first = tokens.get(i)?;
    if !is_number_start(first) && scale_word(first).is_none() {
        return None;
    }
    if let Some(value) = digit_token(first) {
        // Digits may be followed by a scale word: "3 thousand", "12 hundred".
        let mut end = i + 1;
        let mut value = value;
        if let Some(scale) = tokens.get(end).and_then(scale_word) {
            value *= scale as f64;
            end += 1;
        }
        return Some(NumberSpan {
            value: value.round() as u64,
            start,
            end,
        });
    }
    parse_words(tokens, start, i)
}

fn parse_words(tokens: &Tokens, start: usize, mut i: usize) -> Option<NumberSpan> {
    let mut total: u64 = 0;
    let mut current: u64 = 0;
    let mut seen_any = false;
    let mut last_was_scale = false;
    while let Some(word) = tokens.get(i) {
        if let Some(n) = small_word(word).or_else(|| vague_word(word)) {
            // "twenty five" adds; "five six" is two numbers.
            if seen_any
                && !last_was_scale
                && !(current % 100 >= 20 && current.is_multiple_of(10) && n < 10)
            {
                break;
            }
            current = current.saturating_add(n);
            last_was_scale = false;
            // "a couple of hundred": skip the "of" before a scale word.
            if vague_word(word).is_some()
                && tokens.get(i + 1) == Some("of")
                && tokens.get(i + 2).and_then(scale_word).is_some()
            {
                i += 1;
            }
        } else if let Some(scale) = scale_word(word) {
            match scale {
                100 | 12 => current = current.max(1).saturating_mul(scale),
                _ => {
                    total = total.saturating_add(current.max(1).saturating_mul(scale));
                    current = 0;
                }
            }
            last_was_scale = true;
        } else if word == "and"
            && last_was_scale
            && tokens.get(i + 1).and_then(small_word).is_some()
        {
            // "one hundred and fifty"
            last_was_scale = true;
        } else {
            break;
        }
        seen_any = true;
        i += 1;
    }
    seen_any.then_some(NumberSpan {
        value: total + current,
        start,
        end: i,
    })
}

/// Every number in the transcript, left to right, non-overlapping.
pub fn numbers(tokens: &Tokens) -> Vec<NumberSpan> {
    let mut found = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        match number_at(tokens, i) {
            Some(span) => {
                i = span.end;
                found.push(span);
            }
            None => i += 1,
        }
    }
    found
}

/// Parse a whole phrase as one number ("twelve hundred" → 1200).
pub fn parse_number(text: &str) -> Option<u64> {
    let tokens = Tokens::new(text);
    let span = number_at(&tokens, 0)?;
    (span.end == tokens.len()).then_some(span.value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_spoken_and_written_numbers() {
        let cases: &[(&str, u64)] = &[
            ("one", 1),
            ("seven", 7),
            ("nineteen", 19),
            ("twenty", 20),
            ("forty-two", 42),
            ("ninety nine", 99),
            ("a hundred", 100),
            ("one hundred and fifty", 150),
            ("twelve hundred", 1200),
            ("two thousand five hundred", 2500),
            ("three thousand", 3000),
            ("a couple", 2),
            ("a few hundred", 300),
            ("a couple of hundred", 200),
            ("a dozen", 12),
            ("two dozen", 24),
            ("2,500", 2500),
            ("3k", 3000),
            ("1.5k", 1500),
            ("12 hundred", 1200),
            ("10 thousand", 10000),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_number(text), Some(*expected), "{text}");
        }
    }

    #[test]
    fn adjacent_units_are_separate_numbers() {
        let tokens = Tokens::new("five six");
        let values: Vec<u64> = numbers(&tokens).iter().map(|s| s.value).collect();
        assert_eq!(values, [5, 6]);
    }

    #[test]
    fn and_between_units_does_not_join_them() {
        let tokens = Tokens::new("between five and ten people");
        let values: Vec<u64> = numbers(&tokens).iter().map(|s| s.value).collect();
        assert_eq!(values, [5, 10]);
    }

    #[test]
    fn a_lone_article_is_not_a_number() {
        assert_eq!(parse_number("a"), None);
        assert!(numbers(&Tokens::new("a team of us")).is_empty());
    }
}
