//! Short answers to the brain's questions: yes or no, and which of the
//! offered meeting slots the caller picked.

use serde::{Deserialize, Serialize};

use super::numbers::number_at;
use super::tokens::{Tokens, phrase_len};

/// A yes or a no.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Confirmation {
    Yes,
    No,
}

/// Longer phrases win at a position, so "no problem" is a yes and
/// "not sure" is neither.
const ANSWERS: &[(&str, Option<Confirmation>)] = &[
    ("no problem", Some(Confirmation::Yes)),
    ("no worries", Some(Confirmation::Yes)),
    ("not sure", None),
    ("dont know", None),
    ("not really", Some(Confirmation::No)),
    ("not quite", Some(Confirmation::No)),
    ("not interested", Some(Confirmation::No)),
    ("no thanks", Some(Confirmation::No)),
    ("no thank you", Some(Confirmation::No)),
    ("thats right", Some(Confirmation::Yes)),
    ("thats correct", Some(Confirmation::Yes)),
    ("that works", Some(Confirmation::Yes)),
    ("sounds good", Some(Confirmation::Yes)),
    ("sounds great", Some(Confirmation::Yes)),
    ("go ahead", Some(Confirmation::Yes)),
    ("please do", Some(Confirmation::Yes)),
    ("why not", Some(Confirmation::Yes)),
    ("of course", Some(Confirmation::Yes)),
    ("yes", Some(Confirmation::Yes)),
    ("yeah", Some(Confirmation::Yes)),
    ("yep", Some(Confirmation::Yes)),
    ("yup", Some(Confirmation::Yes)),
    ("ya", Some(Confirmation::Yes)),
    ("sure", Some(Confirmation::Yes)),
    ("correct", Some(Confirmation::Yes)),
    ("absolutely", Some(Confirmation::Yes)),
    ("definitely", Some(Confirmation::Yes)),
    ("ok", Some(Confirmation::Yes)),
    ("okay", Some(Confirmation::Yes)),
    ("alright", Some(Confirmation::Yes)),
    ("perfect", Some(Confirmation::Yes)),
    ("great", Some(Confirmation::Yes)),
    ("no", Some(Confirmation::No)),
    ("nope", Some(Confirmation::No)),
    ("nah", Some(Confirmation::No)),
    ("wrong", Some(Confirmation::No)),
    ("incorrect", Some(Confirmation::No)),
];

/// The first yes or no in the utterance; hedges ("not sure") count as neither.
pub fn confirmation(tokens: &Tokens) -> Option<Confirmation> {
    if tokens.len() == 1 && tokens.get(0) == Some("right") {
        return Some(Confirmation::Yes);
    }
    let mut by_length: Vec<&(&str, Option<Confirmation>)> = ANSWERS.iter().collect();
    by_length.sort_by_cached_key(|(phrase, _)| std::cmp::Reverse(phrase_len(phrase)));
    (0..tokens.len()).find_map(|i| {
        by_length
            .iter()
            .find(|(phrase, _)| tokens.phrase_at(i, phrase))
            .map(|(_, answer)| *answer)
    })?
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Weekday {
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
    Sunday,
}

const WEEKDAYS: [(&str, Weekday); 7] = [
    ("monday", Weekday::Monday),
    ("tuesday", Weekday::Tuesday),
    ("wednesday", Weekday::Wednesday),
    ("thursday", Weekday::Thursday),
    ("friday", Weekday::Friday),
    ("saturday", Weekday::Saturday),
    ("sunday", Weekday::Sunday),
];

/// Which offered slot: by position ("the second one"), by position from the
/// end ("the last one"), or by its day and time ("Tuesday at 10").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotChoice {
    /// 0-based position among the offered slots.
    pub position: Option<usize>,
    pub from_end: bool,
    pub weekday: Option<Weekday>,
    pub time: Option<TimeOfDay>,
}

/// A clock time as said; `pm` is `None` when the caller did not say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeOfDay {
    pub hour: u8,
    pub minute: u8,
    pub pm: Option<bool>,
}

impl TimeOfDay {
    /// Whether two times can be the same clock time (12-hour ambiguity allowed).
    pub fn matches(&self, other: &TimeOfDay) -> bool {
        let same_pm = match (self.pm, other.pm) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        };
        self.hour % 12 == other.hour % 12 && self.minute == other.minute && same_pm
    }
}

const ORDINALS: &[(&str, usize)] = &[
    ("first", 0),
    ("1st", 0),
    ("second", 1),
    ("2nd", 1),
    ("third", 2),
    ("3rd", 2),
    ("fourth", 3),
    ("4th", 3),
    ("fifth", 4),
    ("5th", 4),
    ("earlier", 0),
    ("earliest", 0),
];

fn position(tokens: &Tokens) -> (Option<usize>, bool) {
    for (i, word) in tokens.words().iter().enumerate() {
        if let Some((_, n)) = ORDINALS.iter().find(|(w, _)| w == word) {
            return (Some(*n), false);
        }
        if matches!(word.as_str(), "last" | "later" | "latest") {
            return (Some(0), true);
        }
        // "option two", "number 3"
        if matches!(word.as_str(), "option" | "number" | "slot")
            && let Some(span) = number_at(tokens, i + 1)
            && (1..=9).contains(&span.value)
        {
            return (Some(span.value as usize - 1), false);
        }
    }
    (None, false)
}

fn meridiem(tokens: &Tokens, i: usize) -> Option<(bool, usize)> {
    match tokens.get(i)? {
        "am" => Some((false, 1)),
        "pm" => Some((true, 1)),
        "a" if tokens.get(i + 1) == Some("m") => Some((false, 2)),
        "p" if tokens.get(i + 1) == Some("m") => Some((true, 2)),
        "morning" => Some((false, 1)),
        "afternoon" | "evening" => Some((true, 1)),
        _ => None,
    }
}

/// "10", "10:30", "10am", "ten thirty", "2 pm", "noon".
fn time_at(tokens: &Tokens, i: usize) -> Option<TimeOfDay> {
    let word = tokens.get(i)?;
    if word == "noon" {
        return Some(TimeOfDay {
            hour: 12,
            minute: 0,
            pm: Some(true),
        });
    }
    let (clock, suffix_pm) = if let Some(h) = word.strip_suffix("am") {
        (h, Some(false))
    } else if let Some(h) = word.strip_suffix("pm") {
        (h, Some(true))
    } else {
        (word, None)
    };
    let (hour, mut minute, mut next) = if let Some((h, m)) = clock.split_once(':') {
        (h.parse::<u8>().ok()?, m.parse::<u8>().ok()?, i + 1)
    } else if let Ok(h) = clock.parse::<u8>() {
        (h, 0, i + 1)
    } else {
        let span = number_at(tokens, i).filter(|s| s.end == i + 1)?;
        (u8::try_from(span.value).ok()?, 0, i + 1)
    };
    if suffix_pm.is_none() && minute == 0 {
        // "ten thirty", "ten fifteen"
        if let Some(span) =
            number_at(tokens, next).filter(|s| (10..60).contains(&s.value) && s.end == next + 1)
        {
            minute = span.value as u8;
            next = span.end;
        }
    }
    if !(1..=23).contains(&hour) || minute >= 60 {
        return None;
    }
    let pm = suffix_pm
        .or_else(|| meridiem(tokens, next).map(|(pm, _)| pm))
        .or_else(|| (hour > 12).then_some(true));
    Some(TimeOfDay { hour, minute, pm })
}

/// The time in the utterance: after "at", or any clock-looking token.
fn time(tokens: &Tokens) -> Option<TimeOfDay> {
    for (i, word) in tokens.words().iter().enumerate() {
        if word == "at" || word == "around" {
            if let Some(t) = time_at(tokens, i + 1) {
                return Some(t);
            }
        } else if (word.contains(':')
            || word.ends_with("am")
            || word.ends_with("pm")
            || word == "noon")
            && let Some(t) = time_at(tokens, i)
        {
            return Some(t);
        } else if meridiem(tokens, i + 1)
            .is_some_and(|(_, n)| n == 2 || matches!(tokens.get(i + 1), Some("am" | "pm")))
            && let Some(t) = time_at(tokens, i)
        {
            return Some(t);
        }
    }
    None
}

/// The slot the caller picked, if the utterance names one.
pub fn slot_choice(tokens: &Tokens) -> Option<SlotChoice> {
    let (position, from_end) = position(tokens);
    let weekday = tokens
        .words()
        .iter()
        .find_map(|w| WEEKDAYS.iter().find(|(d, _)| d == w).map(|(_, day)| *day));
    let time = time(tokens);
    (position.is_some() || weekday.is_some() || time.is_some()).then_some(SlotChoice {
        position,
        from_end,
        weekday,
        time,
    })
}
