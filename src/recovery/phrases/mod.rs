//! Spoken recovery phrases: the vocabulary ([`Category`], [`Level`],
//! [`Promise`]), the validated [`PhraseBook`] loaded from TOML, and the
//! per-session [`PhraseSession`] that draws variants without repeating itself.

mod book;
mod session;

pub use book::{MIN_ELIGIBLE, MIN_VARIANTS, PhraseBook, PhraseBookError, PhraseProblem, Variant};
pub use session::{DrawError, Phrase, PhraseContext, PhraseSession};

use serde::{Deserialize, Serialize};

/// What a phrase is for. Each category is a `[[name]]` array of tables in
/// `prompts/phrases.toml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    ToolFailure,
    ConnectionIssue,
    Timeout,
    ServiceUnavailable,
    DataNotFound,
    Generic,
    Filler,
    StillWorking,
    RateLimited,
    UnknownOutcome,
    Handoff,
    Recovered,
    /// No voice can speak: the answer goes out as text (played from the
    /// phrase cache, rendered while a voice still worked).
    VoiceTrouble,
    /// The caller speaks but nothing can transcribe them: ask for text.
    CannotHear,
}

impl Category {
    pub const ALL: [Category; 14] = [
        Category::ToolFailure,
        Category::ConnectionIssue,
        Category::Timeout,
        Category::ServiceUnavailable,
        Category::DataNotFound,
        Category::Generic,
        Category::Filler,
        Category::StillWorking,
        Category::RateLimited,
        Category::UnknownOutcome,
        Category::Handoff,
        Category::Recovered,
        Category::VoiceTrouble,
        Category::CannotHear,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Category::ToolFailure => "tool_failure",
            Category::ConnectionIssue => "connection_issue",
            Category::Timeout => "timeout",
            Category::ServiceUnavailable => "service_unavailable",
            Category::DataNotFound => "data_not_found",
            Category::Generic => "generic",
            Category::Filler => "filler",
            Category::StillWorking => "still_working",
            Category::RateLimited => "rate_limited",
            Category::UnknownOutcome => "unknown_outcome",
            Category::Handoff => "handoff",
            Category::Recovered => "recovered",
            Category::VoiceTrouble => "voice_trouble",
            Category::CannotHear => "cannot_hear",
        }
    }

    pub fn from_name(name: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.as_str() == name)
    }

    /// Failure categories escalate: their variants are tagged with a [`Level`]
    /// so a service failing again, or with its breaker open, sounds different.
    pub fn escalates(self) -> bool {
        matches!(
            self,
            Category::ToolFailure
                | Category::ConnectionIssue
                | Category::Timeout
                | Category::ServiceUnavailable
                | Category::RateLimited
                | Category::Generic
        )
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl std::fmt::Display for Category {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How far a service's trouble has gone, as the caller should hear it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// The service failed for the first time in a row.
    First,
    /// The same service failed again.
    Repeat,
    /// The service's circuit breaker is open: it is known to be down.
    Open,
}

impl Level {
    pub const ALL: [Level; 3] = [Level::First, Level::Repeat, Level::Open];

    pub fn as_str(self) -> &'static str {
        match self {
            Level::First => "first",
            Level::Repeat => "repeat",
            Level::Open => "open",
        }
    }
}

/// What a phrase commits the agent to. A phrase may only be spoken when its
/// promise will actually be kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Promise {
    /// Promises nothing beyond what is being said.
    None,
    /// Says another attempt is happening or will happen.
    Retry,
    /// Offers another way forward (a fallback service, a callback).
    Alternative,
}

impl Promise {
    pub const ALL: [Promise; 3] = [Promise::None, Promise::Retry, Promise::Alternative];

    pub fn as_str(self) -> &'static str {
        match self {
            Promise::None => "none",
            Promise::Retry => "retry",
            Promise::Alternative => "alternative",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// The promises a speaker is able to keep right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PromiseSet(u8);

impl PromiseSet {
    /// Only phrases that promise nothing.
    pub const NONE_ONLY: PromiseSet = PromiseSet(1);
    pub const EMPTY: PromiseSet = PromiseSet(0);

    pub fn of(promises: &[Promise]) -> PromiseSet {
        PromiseSet(promises.iter().fold(0, |bits, p| bits | p.bit()))
    }

    pub fn with(self, promise: Promise) -> PromiseSet {
        PromiseSet(self.0 | promise.bit())
    }

    pub fn contains(self, promise: Promise) -> bool {
        self.0 & promise.bit() != 0
    }

    pub fn iter(self) -> impl Iterator<Item = Promise> {
        Promise::ALL.into_iter().filter(move |p| self.contains(*p))
    }
}

impl std::fmt::Display for PromiseSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.iter().map(Promise::as_str).collect();
        write!(f, "{{{}}}", names.join(", "))
    }
}
