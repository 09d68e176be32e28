//! What a voice is asked to say: text cleaned of control characters, bounded
//! in length, and cut into sentences short enough to synthesize one at a
//! time, so the first audio comes quickly and a failure mid-answer resumes at
//! the first sentence not yet played.

/// The longest text one answer may ask a voice to speak (about three
/// minutes of speech); longer text is refused, not truncated silently.
pub const MAX_TEXT_CHARS: usize = 4_000;
/// The longest piece sent to a voice at once.
pub const MAX_SENTENCE_CHARS: usize = 240;

/// Why text cannot be spoken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("nothing to say: the text is empty or only whitespace and control characters")]
    Empty,
    #[error(
        "the text is {chars} characters long; a voice speaks at most {max} per answer, split it into several answers"
    )]
    TooLong { chars: usize, max: usize },
}

/// Clean `text` and cut it into sentences of at most [`MAX_SENTENCE_CHARS`]
/// characters: at sentence ends (`.`, `!`, `?`, `;`, newlines) first, then at
/// commas, then at spaces, and only as a last resort inside a word.
pub fn sentences(text: &str) -> Result<Vec<String>, TextError> {
    let chars = text.chars().count();
    if chars > MAX_TEXT_CHARS {
        return Err(TextError::TooLong {
            chars,
            max: MAX_TEXT_CHARS,
        });
    }
    let cleaned: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let mut out = Vec::new();
    let mut current = String::new();
    let mut chars_in_current = 0;
    let mut iter = cleaned.chars().peekable();
    while let Some(c) = iter.next() {
        current.push(c);
        chars_in_current += 1;
        let at_end = matches!(c, '.' | '!' | '?' | ';')
            && iter.peek().is_none_or(|next| next.is_whitespace());
        if at_end {
            push_piece(&mut out, &current);
            current.clear();
            chars_in_current = 0;
        } else if chars_in_current >= MAX_SENTENCE_CHARS {
            let rest = split_long(&mut out, &current);
            chars_in_current = rest.chars().count();
            current = rest;
        }
    }
    push_piece(&mut out, &current);
    if out.is_empty() {
        return Err(TextError::Empty);
    }
    Ok(out)
}

/// Emit the head of an over-long piece at its last comma or space; return the tail.
fn split_long(out: &mut Vec<String>, piece: &str) -> String {
    let cut = piece
        .rfind(", ")
        .map(|i| i + 1)
        .or_else(|| piece.rfind(' '))
        .filter(|&i| i > 0)
        .unwrap_or(piece.len());
    let (head, tail) = piece.split_at(cut);
    push_piece(out, head);
    tail.to_string()
}

fn push_piece(out: &mut Vec<String>, piece: &str) {
    let trimmed = piece.split_whitespace().collect::<Vec<_>>().join(" ");
    if trimmed.chars().any(|c| c.is_alphanumeric()) {
        out.push(trimmed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_cut_at_sentence_ends() {
        let got = sentences("Hello there. How are you? Fine!").unwrap();
        assert_eq!(got, ["Hello there.", "How are you?", "Fine!"]);
    }

    #[test]
    fn decimals_and_abbreviations_inside_words_do_not_cut() {
        let got = sentences("It costs 3.50 dollars.").unwrap();
        assert_eq!(got, ["It costs 3.50 dollars."]);
    }

    #[test]
    fn a_long_run_without_punctuation_is_cut_at_spaces_below_the_limit() {
        let text = "word ".repeat(200);
        let got = sentences(&text).unwrap();
        assert!(got.len() > 1);
        assert!(got.iter().all(|s| s.chars().count() <= MAX_SENTENCE_CHARS));
        assert_eq!(got.join(" "), text.trim());
    }

    #[test]
    fn a_hundred_kilobytes_of_text_is_refused_with_its_length() {
        let text = "a".repeat(100 * 1024);
        assert_eq!(
            sentences(&text),
            Err(TextError::TooLong {
                chars: 100 * 1024,
                max: MAX_TEXT_CHARS
            })
        );
    }

    #[test]
    fn whitespace_and_control_characters_alone_are_nothing_to_say() {
        assert_eq!(sentences(" \n\t\u{7} ... "), Err(TextError::Empty));
    }

    #[test]
    fn one_giant_word_is_still_bounded() {
        let got = sentences(&"x".repeat(1000)).unwrap();
        assert!(got.iter().all(|s| s.chars().count() <= MAX_SENTENCE_CHARS));
        assert_eq!(got.concat().len(), 1000);
    }
}
