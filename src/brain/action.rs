//! The brain's vocabulary with the session: conversation stages, the tools
//! it may call, the actions it asks for and the tool results it reads.
//! Plain data the session records as it is (the conversation state holds
//! the same `Stage` and `Signals`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::understanding::Signals;
use crate::resilience::ErrorKind;

/// Where the conversation is: the one stage machine of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Stage {
    Greeting,
    Discovery,
    ValueDemo,
    Qualification,
    NextSteps,
    FrictionRescue,
    Closing,
}

impl Stage {
    pub const ALL: [Stage; 7] = [
        Stage::Greeting,
        Stage::Discovery,
        Stage::ValueDemo,
        Stage::Qualification,
        Stage::NextSteps,
        Stage::FrictionRescue,
        Stage::Closing,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Greeting => "GREETING",
            Stage::Discovery => "DISCOVERY",
            Stage::ValueDemo => "VALUE_DEMO",
            Stage::Qualification => "QUALIFICATION",
            Stage::NextSteps => "NEXT_STEPS",
            Stage::FrictionRescue => "FRICTION_RESCUE",
            Stage::Closing => "CLOSING",
        }
    }

    /// Whether the conversation may move from `self` to `next`. Staying put
    /// is always allowed; the main path runs forward; friction rescue can be
    /// entered from any open stage and resumes anywhere forward of greeting;
    /// closing is reachable from everywhere and final.
    pub fn can_transition_to(self, next: Stage) -> bool {
        use Stage::*;
        if self == next {
            return true;
        }
        match (self, next) {
            (Closing, _) => false,
            (_, Closing) => true,
            (_, FrictionRescue) => true,
            (FrictionRescue, Greeting) => false,
            (FrictionRescue, _) => true,
            (Greeting, Discovery) => true,
            (Discovery, ValueDemo | Qualification) => true,
            (ValueDemo, Qualification | Discovery) => true,
            (Qualification, NextSteps) => true,
            _ => false,
        }
    }
}

/// Which CRM holds the caller's record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum CrmChoice {
    #[default]
    Salesforce,
    HubSpot,
}

impl CrmChoice {
    pub fn lookup_tool(self) -> ToolName {
        match self {
            CrmChoice::Salesforce => ToolName::SalesforceLookup,
            CrmChoice::HubSpot => ToolName::HubspotLookup,
        }
    }
}

/// The tools the brain can call; names are the wire names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolName {
    AmplitudeActivity,
    SalesforceLookup,
    HubspotLookup,
    ChilipiperSlots,
    ChilipiperBook,
}

impl ToolName {
    pub const ALL: [ToolName; 5] = [
        ToolName::AmplitudeActivity,
        ToolName::SalesforceLookup,
        ToolName::HubspotLookup,
        ToolName::ChilipiperSlots,
        ToolName::ChilipiperBook,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ToolName::AmplitudeActivity => "amplitude_activity",
            ToolName::SalesforceLookup => "salesforce_lookup",
            ToolName::HubspotLookup => "hubspot_lookup",
            ToolName::ChilipiperSlots => "chilipiper_slots",
            ToolName::ChilipiperBook => "chilipiper_book",
        }
    }

    pub fn parse(name: &str) -> Option<ToolName> {
        ToolName::ALL.into_iter().find(|tool| tool.as_str() == name)
    }

    /// Whether calling it changes something outside (a booking).
    pub fn has_side_effects(self) -> bool {
        self == ToolName::ChilipiperBook
    }
}

/// Something the session must follow up on outside this call: the brain
/// only promises what the session will actually do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FollowUp {
    /// The caller wants a person to call them back.
    Callback { email: Option<String> },
    /// A booking's outcome is unknown: confirm it (or not) by email, never re-book.
    ConfirmBookingByEmail { email: String, slot_id: String },
}

/// What the brain asks the session to do, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    Say {
        text: String,
    },
    CallTool {
        call_id: String,
        name: ToolName,
        args: Value,
    },
    SetStage {
        stage: Stage,
    },
    RecordSignals {
        signals: Signals,
    },
    FollowUp {
        follow_up: FollowUp,
    },
    EndCall,
}

impl Action {
    pub fn say(text: impl Into<String>) -> Action {
        Action::Say { text: text.into() }
    }
}

/// How a tool call ended, as the recovery layer reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ToolResultView {
    /// The service answered.
    Ok { value: Value },
    /// The service answered that there is no such record.
    NotFound,
    /// The call failed (or a fallback was used); the recovery layer has
    /// already spoken an honest phrase about it.
    Failed { kind: ErrorKind },
    /// A side-effecting call may or may not have happened.
    UnknownOutcome { kind: ErrorKind },
}

/// What the session knows that the brain must respect on each turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrainState {
    /// The session's current stage (authoritative: it may have been rolled
    /// back or moved to friction rescue by the recovery layer).
    pub stage: Stage,
}

/// What is known when the call starts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartContext {
    pub caller_name: Option<String>,
    pub caller_email: Option<String>,
}
