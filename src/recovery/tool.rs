//! What a tool call is made of: the declared [`ToolSpec`], the context each
//! attempt gets ([`ToolCallCtx`]), what a tool answers ([`ToolAnswer`]), the
//! [`LadderTiming`] it runs under and the [`ToolOutcome`] it resolves to.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::phrases::Promise;
use super::policy::SessionAction;
use super::speech::SpeechKind;
use super::transcript::ToolCallId;
use crate::resilience::{AttemptRecord, CallError, SideEffect};

/// A tool as declared to the runner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolSpec {
    pub name: String,
    /// The service whose guard, breaker and display name the tool uses.
    pub service: String,
    pub side_effect: SideEffect,
}

impl ToolSpec {
    pub fn new(
        name: impl Into<String>,
        service: impl Into<String>,
        side_effect: SideEffect,
    ) -> ToolSpec {
        ToolSpec {
            name: name.into(),
            service: service.into(),
            side_effect,
        }
    }
}

/// Generated once per tool call and sent with every attempt, so a service
/// can recognise a retried write.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct IdempotencyKey(pub String);

impl IdempotencyKey {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What the tool's code learns about the call it is part of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolCallCtx {
    pub call_id: ToolCallId,
    /// Present for writes; identical across attempts of one call.
    pub idempotency_key: Option<IdempotencyKey>,
}

/// A tool's successful answer. `NotFound` is an answer, not a failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolAnswer<T> {
    Found(T),
    NotFound,
}

/// The latency ladder for one service, from the active timeout profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LadderTiming {
    /// Silence allowed before the first filler line.
    pub filler_after: Duration,
    /// Gap between later "still working" lines.
    pub filler_repeat: Duration,
    /// Most ladder lines (filler plus still-working) for one call.
    pub filler_max: u32,
    /// The whole call resolves (answer or failure phrase) within this.
    pub budget: Duration,
}

impl LadderTiming {
    /// When fillers are spoken if the call is still running, up to `until`
    /// (exclusive): `filler_after`, then every `filler_repeat`, at most
    /// `filler_max` of them, never at or after the budget.
    pub fn filler_times(&self, until: Duration) -> Vec<Duration> {
        let end = until.min(self.budget);
        (0..self.filler_max)
            .map(|k| self.filler_after + self.filler_repeat * k)
            .take_while(|&at| at < end)
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LadderError {
    #[error("filler_after ({filler_after:?}) must be shorter than the budget ({budget:?})")]
    FillerAfterBudget {
        filler_after: Duration,
        budget: Duration,
    },
    #[error("filler_repeat must be greater than zero")]
    ZeroRepeat,
    #[error("filler_max must be at least 1")]
    NoFiller,
}

impl LadderTiming {
    pub fn validate(&self) -> Result<(), LadderError> {
        if self.filler_after >= self.budget {
            return Err(LadderError::FillerAfterBudget {
                filler_after: self.filler_after,
                budget: self.budget,
            });
        }
        if self.filler_repeat.is_zero() {
            return Err(LadderError::ZeroRepeat);
        }
        if self.filler_max == 0 {
            return Err(LadderError::NoFiller);
        }
        Ok(())
    }

    /// Whether the ladder keeps talking until the budget ends: the last line
    /// is followed by at most `filler_repeat` of silence before resolution.
    pub fn covers_budget(&self) -> bool {
        self.filler_after + self.filler_repeat * self.filler_max >= self.budget
    }
}

/// How a tool call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeKind {
    /// The tool answered (found or not found) and its result was committed.
    Ok,
    /// The tool failed; the state was rolled back and a failure phrase spoken.
    Fallback,
    /// A write failed ambiguously; it may have happened.
    UnknownOutcome,
    /// The caller interrupted; the state was rolled back.
    Cancelled,
}

/// Why a call did not produce an answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ToolFailure {
    #[error("{0}")]
    Call(CallError),
    /// The tool's code panicked; the payload if it was text.
    #[error("the tool panicked: {0}")]
    Panicked(String),
}

/// One line the runner spoke for this call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpokenLine {
    pub kind: SpeechKind,
    pub promises: Promise,
    /// Offset from the start of the call.
    pub at: Duration,
}

/// Everything a caller (and a simulation) needs to know about one tool call.
#[derive(Debug, Clone)]
pub struct ToolOutcome<T> {
    pub call_id: ToolCallId,
    pub kind: OutcomeKind,
    pub value: Option<ToolAnswer<T>>,
    pub error: Option<ToolFailure>,
    /// When the runner first spoke for this call; `None` when the call
    /// resolved before `filler_after` and said nothing (the answer, spoken by
    /// the caller, is then the first thing heard, at `resolved_at`).
    pub first_speech_at: Option<Duration>,
    pub resolved_at: Duration,
    pub attempts: Vec<AttemptRecord>,
    /// Attempts the tool's code was started for (known even when the guard's
    /// records were lost to a panic, an overrun or a cancellation).
    pub attempts_started: u32,
    pub spoken: Vec<SpokenLine>,
    pub action: SessionAction,
}

impl<T> ToolOutcome<T> {
    /// When the caller first heard anything about this call.
    pub fn first_heard_at(&self) -> Duration {
        self.first_speech_at.unwrap_or(self.resolved_at)
    }

    /// Whether a spoken line promised a retry that did not happen.
    pub fn broke_a_promise(&self) -> bool {
        let retried = self.attempts.len() > 1 || self.attempts_started > 1;
        self.spoken.iter().any(|l| l.promises == Promise::Retry) && !retried
    }
}

/// Barge-in: the caller started talking, so the call in flight is abandoned.
#[derive(Debug, Clone)]
pub struct Interrupt {
    flag: Arc<watch::Sender<bool>>,
}

impl Default for Interrupt {
    fn default() -> Self {
        Interrupt::new()
    }
}

impl Interrupt {
    pub fn new() -> Interrupt {
        Interrupt {
            flag: Arc::new(watch::Sender::new(false)),
        }
    }

    pub fn trigger(&self) {
        self.flag.send_replace(true);
    }

    pub fn is_triggered(&self) -> bool {
        *self.flag.borrow()
    }

    /// Resolves once [`Interrupt::trigger`] has been called.
    pub async fn triggered(&self) {
        let mut rx = self.flag.subscribe();
        // The sender lives as long as `self`, so this only ends by triggering.
        let _ = rx.wait_for(|triggered| *triggered).await;
    }
}
