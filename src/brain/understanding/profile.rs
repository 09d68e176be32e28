//! Team size and monthly document volume: numbers read in context.
//!
//! A number is a team size when people words surround it ("eight people",
//! "a team of 12", "fifteen of us"), a volume when document or period words
//! follow it ("twelve hundred docs a month", "2,500 a month"). A bare number
//! is only used when the brain just asked for that figure.

use super::numbers::{NumberSpan, numbers};
use super::tokens::Tokens;

const PEOPLE: &[&str] = &[
    "people",
    "person",
    "persons",
    "employees",
    "staff",
    "users",
    "seats",
    "members",
    "folks",
    "guys",
    "engineers",
    "agents",
    "reps",
    "paralegals",
    "accountants",
    "lawyers",
    "analysts",
    "licenses",
    "heads",
    "fte",
    "ftes",
];

const DOCUMENTS: &[&str] = &[
    "docs",
    "documents",
    "document",
    "files",
    "pages",
    "invoices",
    "contracts",
    "pdfs",
    "forms",
    "records",
    "statements",
    "receipts",
    "claims",
    "applications",
    "scans",
    "orders",
    "bills",
    "submissions",
];

/// Filler between a number and the word that gives it meaning.
const HEDGES: &[&str] = &[
    "of",
    "or",
    "so",
    "ish",
    "plus",
    "odd",
    "roughly",
    "new",
    "incoming",
    "different",
];

/// Words before a number that only soften it.
const APPROXIMATELY: &[&str] = &[
    "about",
    "around",
    "roughly",
    "maybe",
    "like",
    "approximately",
    "nearly",
    "almost",
    "over",
    "under",
    "probably",
    "perhaps",
    "some",
    "just",
    "only",
    "close",
    "to",
    "ish",
    "uh",
    "um",
];

const SOLO: &[&str] = &[
    "just me",
    "only me",
    "just myself",
    "by myself",
    "on my own",
    "solo",
    "one man shop",
    "one woman shop",
    "one person shop",
    "me myself and i",
];

/// Per-period words and how many of that period make a month.
const PERIODS: &[(&str, f64)] = &[
    ("a month", 1.0),
    ("per month", 1.0),
    ("monthly", 1.0),
    ("each month", 1.0),
    ("every month", 1.0),
    ("a mo", 1.0),
    ("a week", 4.0),
    ("per week", 4.0),
    ("weekly", 4.0),
    ("each week", 4.0),
    ("every week", 4.0),
    ("a day", 21.0),
    ("per day", 21.0),
    ("daily", 21.0),
    ("each day", 21.0),
    ("every day", 21.0),
    ("a quarter", 1.0 / 3.0),
    ("per quarter", 1.0 / 3.0),
    ("a year", 1.0 / 12.0),
    ("per year", 1.0 / 12.0),
    ("annually", 1.0 / 12.0),
    ("yearly", 1.0 / 12.0),
    ("each year", 1.0 / 12.0),
];

/// What a number in the transcript measures.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Reading {
    TeamSize(u64),
    MonthlyVolume(u64),
    Bare(u64),
}

/// Skip hedge words after a number; returns the first meaningful index.
fn skip_hedges(tokens: &Tokens, mut i: usize) -> usize {
    while tokens.get(i).is_some_and(|w| HEDGES.contains(&w)) {
        i += 1;
    }
    i
}

fn period_at(tokens: &Tokens, i: usize) -> Option<f64> {
    PERIODS
        .iter()
        .find(|(phrase, _)| tokens.phrase_at(i, phrase))
        .map(|(_, per_month)| *per_month)
}

/// The meaningful word before a number, skipping softeners.
fn word_before<'a>(tokens: &'a Tokens, span: &NumberSpan) -> (Option<&'a str>, Option<&'a str>) {
    let mut i = span.start;
    while i > 0
        && tokens
            .get(i - 1)
            .is_some_and(|w| APPROXIMATELY.contains(&w))
    {
        i -= 1;
    }
    let before = if i > 0 { tokens.get(i - 1) } else { None };
    let before_that = if i > 1 { tokens.get(i - 2) } else { None };
    (before, before_that)
}

fn read(tokens: &Tokens, span: &NumberSpan) -> Reading {
    let after = skip_hedges(tokens, span.end);
    let next = tokens.get(after);
    if next.is_some_and(|w| PEOPLE.contains(&w))
        || tokens.phrase_at(span.end, "of us")
        || tokens.phrase_at(after, "person team")
    {
        return Reading::TeamSize(span.value);
    }
    let (document_end, has_document) = if next.is_some_and(|w| DOCUMENTS.contains(&w)) {
        (after + 1, true)
    } else if tokens
        .get(after + 1)
        .is_some_and(|w| DOCUMENTS.contains(&w))
    {
        // "3k PDF documents", "500 scanned files"
        (after + 2, true)
    } else {
        (after, false)
    };
    // "500 invoices a month", "2,500 a month", "about 40 docs every day"
    let period = period_at(tokens, skip_hedges(tokens, document_end)).or_else(|| {
        (1..=3)
            .find_map(|gap| period_at(tokens, document_end + gap))
            .filter(|_| has_document)
    });
    if has_document || period.is_some() {
        let monthly = span.value as f64 * period.unwrap_or(1.0);
        return Reading::MonthlyVolume(monthly.round() as u64);
    }
    match word_before(tokens, span) {
        (Some("of"), Some("team" | "size")) | (Some("is"), Some("team" | "size" | "headcount")) => {
            Reading::TeamSize(span.value)
        }
        (Some("headcount" | "team"), _) => Reading::TeamSize(span.value),
        (Some("were"), _) | (Some("are"), Some("we")) => Reading::TeamSize(span.value),
        (Some("process" | "processing" | "handle" | "handling" | "volume" | "ingest"), _) => {
            Reading::MonthlyVolume(span.value)
        }
        (Some("is"), Some("volume")) => Reading::MonthlyVolume(span.value),
        _ => Reading::Bare(span.value),
    }
}

/// The team size and monthly volume said in this utterance; bare numbers
/// fill whichever figure `bare_means` names.
pub fn team_and_volume(
    tokens: &Tokens,
    bare_means: Option<BareNumber>,
) -> (Option<u32>, Option<u32>) {
    let mut team = SOLO
        .iter()
        .any(|phrase| tokens.contains(phrase))
        .then_some(1u64);
    let mut volume = None;
    let mut bare = None;
    for span in numbers(tokens) {
        match read(tokens, &span) {
            Reading::TeamSize(n) => team = team.or(Some(n)),
            Reading::MonthlyVolume(n) => volume = volume.or(Some(n)),
            Reading::Bare(n) => bare = bare.or(Some(n)),
        }
    }
    match bare_means {
        Some(BareNumber::TeamSize) if team.is_none() => team = bare,
        Some(BareNumber::MonthlyVolume) if volume.is_none() => volume = bare,
        _ => {}
    }
    let clamp = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
    (team.filter(|n| *n > 0).map(clamp), volume.map(clamp))
}

/// Which figure a bare number answers, when the brain just asked for one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BareNumber {
    TeamSize,
    MonthlyVolume,
}
