//! Translations between the brain's vocabulary and the conversation state
//! the recovery layer snapshots.

use crate::brain::{self, ToolResultView};
use crate::recovery::{self, OutcomeKind, SpeechKind, ToolAnswer, ToolFailure, ToolOutcome};
use crate::resilience::ErrorKind;

pub fn stage(stage: brain::Stage) -> recovery::Stage {
    match stage {
        brain::Stage::Greeting => recovery::Stage::Greeting,
        brain::Stage::Discovery => recovery::Stage::Discovery,
        brain::Stage::ValueDemo => recovery::Stage::ValueDemo,
        brain::Stage::Qualification => recovery::Stage::Qualification,
        brain::Stage::NextSteps => recovery::Stage::NextSteps,
        brain::Stage::FrictionRescue => recovery::Stage::FrictionRescue,
        brain::Stage::Closing => recovery::Stage::Closing,
    }
}

pub fn brain_stage(stage: recovery::Stage) -> brain::Stage {
    match stage {
        recovery::Stage::Greeting => brain::Stage::Greeting,
        recovery::Stage::Discovery => brain::Stage::Discovery,
        recovery::Stage::ValueDemo => brain::Stage::ValueDemo,
        recovery::Stage::Qualification => brain::Stage::Qualification,
        recovery::Stage::NextSteps => brain::Stage::NextSteps,
        recovery::Stage::FrictionRescue => brain::Stage::FrictionRescue,
        recovery::Stage::Closing => brain::Stage::Closing,
    }
}

fn integration(i: brain::signals::Integration) -> recovery::Integration {
    use brain::signals::Integration as B;
    match i {
        B::HubSpot => recovery::Integration::Hubspot,
        B::Salesforce => recovery::Integration::Salesforce,
        B::Slack => recovery::Integration::Slack,
        other => recovery::Integration::Other(snake(&other)),
    }
}

fn urgency(u: brain::signals::Urgency) -> recovery::Urgency {
    use brain::signals::Urgency as B;
    match u {
        B::Asap | B::ThisWeek => recovery::Urgency::Now,
        B::ThisMonth => recovery::Urgency::ThisMonth,
        B::NextQuarter => recovery::Urgency::ThisQuarter,
        B::Later | B::JustExploring => recovery::Urgency::Exploring,
    }
}

fn snake<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Merge what the brain heard into the conversation's signals.
pub fn merge_signals(into: &mut recovery::Signals, heard: &brain::signals::Signals) {
    if let Some(n) = heard.team_size {
        into.team_size = Some(n);
    }
    if let Some(n) = heard.monthly_volume {
        into.monthly_volume = Some(n);
    }
    if let Some(list) = &heard.integrations {
        into.integrations
            .extend(list.iter().copied().map(integration));
    }
    if let Some(u) = heard.urgency {
        into.urgency = Some(urgency(u));
    }
    if let Some(industry) = heard.industry {
        into.industry = Some(snake(&industry));
    }
}

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

pub fn speech_kind_name(kind: SpeechKind) -> String {
    snake(&kind)
}
