//! What the scripted brain remembers between turns, and its tuning. All of
//! it is plain serializable data, so a conversation can be saved and resumed.

use serde::{Deserialize, Serialize};

use super::lines::Wording;
use super::records::{Activity, CrmRecord, OfferedSlot};
use crate::brain::action::{CrmChoice, Stage, ToolName};
use crate::brain::understanding::{Question, Signals};

/// Tuning for the scripted policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScriptedConfig {
    pub crm: CrmChoice,
    /// Seeds the wording variants.
    pub seed: u64,
    pub product_name: String,
    /// A team at least this big is sales-qualified.
    pub qualify_team_size: u32,
    /// A monthly volume at least this big is sales-qualified.
    pub qualify_monthly_volume: u32,
    pub max_slots_offered: usize,
}

impl Default for ScriptedConfig {
    fn default() -> Self {
        ScriptedConfig {
            crm: CrmChoice::Salesforce,
            seed: 0,
            product_name: "DocuFlow".to_owned(),
            qualify_team_size: 5,
            qualify_monthly_volume: 1000,
            max_slots_offered: 3,
        }
    }
}

/// Progress of one lookup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Lookup<T> {
    NotStarted,
    Pending,
    Found(T),
    NotFound,
    /// Failed or unknown: carried on without it.
    Unavailable,
}

/// Progress of the meeting booking.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Booking {
    NotOffered,
    Offered,
    FetchingSlots,
    ChoosingSlot {
        slots: Vec<OfferedSlot>,
    },
    Booking {
        slot: OfferedSlot,
        remaining: Vec<OfferedSlot>,
    },
    Booked {
        slot: OfferedSlot,
    },
    /// The booking may have happened; it is confirmed by email, never retried.
    Unconfirmed {
        slot: OfferedSlot,
    },
    CallbackOffered,
    Declined,
}

/// A tool call the brain is waiting on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingCall {
    pub call_id: String,
    pub tool: ToolName,
}

/// Everything the scripted brain remembers; serializable so a call can resume.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScriptedState {
    pub stage: Stage,
    pub signals: Signals,
    /// Questions asked so far, in order (a question is asked at most twice).
    pub asked: Vec<Question>,
    /// The question the caller's next words answer.
    pub awaiting: Option<Question>,
    pub activity: Lookup<Activity>,
    pub crm: Lookup<CrmRecord>,
    /// A lookup found nothing: ask the caller to confirm the email (once).
    pub email_check_due: bool,
    pub email_checked: bool,
    pub booking: Booking,
    pub pending: Vec<PendingCall>,
    pub calls_made: u64,
    /// The stage to return to after friction rescue.
    pub resume_stage: Option<Stage>,
    pub wording: Wording,
    pub ended: bool,
}

impl ScriptedState {
    pub fn new(seed: u64) -> ScriptedState {
        ScriptedState {
            stage: Stage::Greeting,
            signals: Signals::default(),
            asked: Vec::new(),
            awaiting: None,
            activity: Lookup::NotStarted,
            crm: Lookup::NotStarted,
            email_check_due: false,
            email_checked: false,
            booking: Booking::NotOffered,
            pending: Vec::new(),
            calls_made: 0,
            resume_stage: None,
            wording: Wording {
                seed,
                picks: 0,
                last: 0,
            },
            ended: false,
        }
    }

    pub(super) fn times_asked(&self, question: Question) -> usize {
        self.asked.iter().filter(|q| **q == question).count()
    }
}

/// Whether the signals (and CRM record) make this a sales-qualified lead.
pub fn is_sales_qualified(
    signals: &Signals,
    crm: Option<&CrmRecord>,
    config: &ScriptedConfig,
) -> bool {
    signals
        .team_size
        .is_some_and(|n| n >= config.qualify_team_size)
        || signals
            .monthly_volume
            .is_some_and(|n| n >= config.qualify_monthly_volume)
        || crm.is_some_and(|record| record.open_opportunity)
}

pub(super) const DISCOVERY_ORDER: [Question; 5] = [
    Question::TeamSize,
    Question::MonthlyVolume,
    Question::Integrations,
    Question::Urgency,
    Question::Industry,
];
