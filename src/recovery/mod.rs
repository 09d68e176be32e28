//! The conversational recovery layer: runs risky tool calls so the caller
//! never sits in dead air and never hears a lie. It owns the latency ladder,
//! state snapshots and rollback, tool-call pairing and the spoken phrases.

pub mod phrases;

pub use phrases::{Category, Level, Phrase, PhraseBook, PhraseContext, PhraseSession, Promise, PromiseSet};
