//! How a tool call's outcome reads to the brain ([`result_view`]) and in
//! events and reports ([`outcome_name`]).

use crate::brain::ToolResultView;
use crate::recovery::{OutcomeKind, ToolAnswer, ToolFailure, ToolOutcome};
use crate::resilience::ErrorKind;

fn failure_kind(failure: &Option<ToolFailure>) -> ErrorKind {
    match failure {
        Some(ToolFailure::Call(err)) => err.kind(),
        _ => ErrorKind::Decode,
    }
}

/// How the brain hears a tool outcome.
pub fn result_view(outcome: &ToolOutcome<serde_json::Value>) -> ToolResultView {
    match outcome.kind {
        OutcomeKind::Ok => match &outcome.value {
            Some(ToolAnswer::Found(value)) => ToolResultView::Ok {
                value: value.clone(),
            },
            _ => ToolResultView::NotFound,
        },
        OutcomeKind::Fallback | OutcomeKind::Cancelled => ToolResultView::Failed {
            kind: failure_kind(&outcome.error),
        },
        OutcomeKind::UnknownOutcome => ToolResultView::UnknownOutcome {
            kind: failure_kind(&outcome.error),
        },
    }
}

pub fn outcome_name(outcome: &ToolOutcome<serde_json::Value>) -> &'static str {
    match (outcome.kind, &outcome.value) {
        (OutcomeKind::Ok, Some(ToolAnswer::NotFound)) => "not_found",
        (OutcomeKind::Ok, _) => "ok",
        (OutcomeKind::Fallback, _) => "fallback",
        (OutcomeKind::UnknownOutcome, _) => "unknown_outcome",
        (OutcomeKind::Cancelled, _) => "cancelled",
    }
}
