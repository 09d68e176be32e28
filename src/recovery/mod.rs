//! The conversational recovery layer: runs risky tool calls so the caller
//! never sits in dead air and never hears a lie. It owns the latency ladder,
//! state snapshots and rollback, tool-call pairing and the spoken phrases.

pub mod phrases;

pub use phrases::{
    Category, Level, Phrase, PhraseBook, PhraseContext, PhraseSession, Promise, PromiseSet,
};
pub mod speech;
pub mod state;
pub mod transcript;

pub use crate::brain::Stage;
pub use speech::{Speech, SpeechKind, SpeechSink};
pub use state::{ConversationState, Note, Snapshot, StageError};
pub use transcript::{
    CancelReason, Entry, HeardLine, PairingError, PairingViolation, ToolCallId, ToolCallRecord,
    ToolResult, Transcript, check_pairing,
};
pub mod binding;
pub mod classify;
pub mod ladder;
pub mod policy;
mod resolve;
pub mod runner;
pub mod tool;

pub use crate::resilience::SideEffect;
pub use binding::{Bindings, BreakerProbe, RunnerError, ServiceBinding, ToolCall, breaker_probe};
pub use classify::category_for;
pub use ladder::{Ladder, Rung};
pub use policy::{FailurePolicy, ServiceRecord, SessionAction};
pub use runner::ToolRunner;
pub use tool::{
    IdempotencyKey, Interrupt, LadderError, LadderTiming, OutcomeKind, SpokenLine, ToolAnswer,
    ToolCallCtx, ToolFailure, ToolOutcome, ToolSpec,
};
