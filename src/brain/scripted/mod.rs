//! The scripted brain: a deterministic sales-assist policy. It greets,
//! discovers one need at a time, looks the caller up once their email is
//! known, qualifies, offers and books a meeting, and closes — reacting
//! honestly to every tool outcome. Same inputs and seed, same words.
//!
//! ```
//! use voxguard::brain::{Action, BrainState, ScriptedBrain, ScriptedConfig, Stage, StartContext};
//! let mut brain = ScriptedBrain::new(ScriptedConfig::default());
//! let hello = brain.on_start(&StartContext::default());
//! assert!(matches!(hello.last(), Some(Action::Say { .. })));
//! let next = brain.on_user("we're about eight people", &BrainState { stage: Stage::Greeting });
//! assert!(next.contains(&Action::SetStage { stage: Stage::Discovery }));
//! ```

mod booking;
mod lines;
mod records;
mod state;
mod turn;

use serde_json::json;

use super::action::{Action, BrainState, Stage, StartContext, ToolName, ToolResultView};
use super::understanding::{Confirmation, Question, Tokens, extract_answering};
pub use lines::Wording;
pub use records::{Activity, CrmRecord, OfferedSlot, match_slot, read_slots};
use records::{asks_to_retry, says_goodbye, sounds_frustrated};
use state::DISCOVERY_ORDER;
pub use state::{Booking, Lookup, PendingCall, ScriptedConfig, ScriptedState, is_sales_qualified};
use turn::Turn;

/// The deterministic conversation policy.
#[derive(Debug, Clone)]
pub struct ScriptedBrain {
    config: ScriptedConfig,
    state: ScriptedState,
}

impl ScriptedBrain {
    pub fn new(config: ScriptedConfig) -> ScriptedBrain {
        let state = ScriptedState::new(config.seed);
        ScriptedBrain { config, state }
    }

    /// Continue a conversation from a saved state (or one built by another brain).
    pub fn resume(config: ScriptedConfig, state: ScriptedState) -> ScriptedBrain {
        ScriptedBrain { config, state }
    }

    pub fn state(&self) -> &ScriptedState {
        &self.state
    }

    pub fn config(&self) -> &ScriptedConfig {
        &self.config
    }

    /// The opening line; starts lookups at once when the email is already known.
    pub fn on_start(&mut self, ctx: &StartContext) -> Vec<Action> {
        let mut turn = Turn::default();
        let greeting = lines::greeting(
            &mut self.state.wording,
            &self.config.product_name,
            ctx.caller_name.as_deref(),
        );
        turn.say(greeting);
        if let Some(email) = ctx
            .caller_email
            .clone()
            .filter(|e| super::understanding::is_valid_email(e))
        {
            self.state.signals.email = Some(email);
            self.start_lookups(&mut turn);
        }
        turn.finish()
    }

    /// React to what the caller just said.
    pub fn on_user(&mut self, text: &str, session: &BrainState) -> Vec<Action> {
        if self.state.ended {
            return Vec::new();
        }
        // The session's stage is authoritative (a rollback may have moved it).
        self.state.stage = session.stage;
        let mut turn = Turn::default();
        let awaiting = self.state.awaiting.take();
        let heard = extract_answering(text, awaiting);
        let tokens = Tokens::new(text);
        let new_email = heard
            .signals
            .email
            .clone()
            .filter(|e| self.state.signals.email.as_ref() != Some(e));
        self.state.signals.merge(&heard.signals);
        if !heard.signals.is_empty() {
            turn.record(heard.signals.clone());
        }
        if says_goodbye(&tokens) {
            self.close(&mut turn, None);
            return turn.finish();
        }
        if sounds_frustrated(&tokens)
            && !matches!(self.state.stage, Stage::FrictionRescue | Stage::Closing)
        {
            self.state.resume_stage = Some(self.state.stage);
            self.set_stage(&mut turn, Stage::FrictionRescue);
            turn.say("I'm sorry this has been a hassle. Let's take it one step at a time.");
            self.state.awaiting = awaiting;
            turn.say(self.repeat_or_continue(awaiting));
            return turn.finish();
        }
        let repeated_email = heard.signals.email.is_some() && new_email.is_none();
        if let Some(email) = new_email {
            self.on_new_email(&mut turn, email);
        } else if (repeated_email || asks_to_retry(&tokens)) && !self.lookups_running() {
            self.retry_failed_lookups(&mut turn);
        }
        if let Some(ack) = lines::acknowledge(&heard.signals) {
            turn.say(ack);
        }
        match awaiting {
            Some(Question::ConfirmEmail) => {
                self.after_email_check(&mut turn, heard.confirmation, heard.signals.email.is_some())
            }
            Some(Question::Email) if self.state.signals.email.is_none() => {
                self.ask_again_or_give_up(&mut turn, Question::Email)
            }
            Some(Question::MeetingInterest) => {
                self.after_meeting_offer(&mut turn, heard.confirmation)
            }
            Some(Question::SlotChoice) => {
                self.after_slot_choice(&mut turn, heard.slot_choice, heard.confirmation)
            }
            Some(Question::Callback) => self.after_callback_offer(&mut turn, heard.confirmation),
            _ => self.advance(&mut turn),
        }
        turn.finish()
    }

    /// Take the conversation over mid-call (e.g. after the LLM failed) and
    /// say what comes next without waiting for the caller.
    pub fn continue_turn(&mut self, session: &BrainState) -> Vec<Action> {
        if self.state.ended {
            return Vec::new();
        }
        self.state.stage = session.stage;
        let mut turn = Turn::default();
        match self.state.booking.clone() {
            Booking::Booked { .. } | Booking::Unconfirmed { .. } => self.close(&mut turn, None),
            Booking::ChoosingSlot { slots } => self.present_slots(&mut turn, slots),
            Booking::Offered => self.offer_meeting(&mut turn),
            Booking::CallbackOffered => self.offer_callback(&mut turn, "Sorry about that."),
            _ => match self.state.awaiting {
                Some(question)
                    if DISCOVERY_ORDER.contains(&question) || question == Question::Email =>
                {
                    let again = lines::question(&mut self.state.wording, question);
                    turn.say(again);
                }
                _ => self.advance(&mut turn),
            },
        }
        turn.finish()
    }

    /// React to a tool call's outcome. Unknown call ids are ignored.
    pub fn on_tool_result(&mut self, call_id: &str, result: ToolResultView) -> Vec<Action> {
        let Some(index) = self.state.pending.iter().position(|p| p.call_id == call_id) else {
            return Vec::new();
        };
        let call = self.state.pending.remove(index);
        let mut turn = Turn::default();
        match call.tool {
            ToolName::AmplitudeActivity => {
                self.state.activity = lookup_from(result, Activity::read);
                self.note_not_found(matches!(self.state.activity, Lookup::NotFound));
                self.call_tool(
                    &mut turn,
                    self.config.crm.lookup_tool(),
                    json!({ "email": self.state.signals.email }),
                );
            }
            ToolName::SalesforceLookup | ToolName::HubspotLookup => {
                self.state.crm = lookup_from(result, CrmRecord::read);
                self.note_not_found(matches!(self.state.crm, Lookup::NotFound));
                if self.state.email_check_due && self.state.awaiting.is_none() && !self.state.ended
                {
                    self.ask_email_check(&mut turn);
                }
            }
            ToolName::ChilipiperSlots => self.after_slots(&mut turn, result),
            ToolName::ChilipiperBook => self.after_booking(&mut turn, result),
        }
        turn.finish()
    }

    // --- discovery and qualification -------------------------------------

    /// Take the next step of the main path when nothing else is pending.
    fn advance(&mut self, turn: &mut Turn) {
        loop {
            match self.state.stage {
                Stage::Greeting => self.set_stage(turn, Stage::Discovery),
                Stage::FrictionRescue => {
                    let back = self.state.resume_stage.take().unwrap_or(Stage::Discovery);
                    self.set_stage(turn, back);
                }
                Stage::Discovery => {
                    if self.state.email_check_due {
                        return self.ask_email_check(turn);
                    }
                    if let Some(question) = self.next_discovery_question() {
                        return self.ask(turn, question);
                    }
                    self.set_stage(turn, Stage::ValueDemo);
                    let docs = match &self.state.activity {
                        Lookup::Found(activity) => activity.docs_processed,
                        _ => None,
                    };
                    turn.say(lines::value_pitch(
                        &mut self.state.wording,
                        &self.state.signals,
                        docs,
                    ));
                    self.state.awaiting = Some(Question::ValueFit);
                    return;
                }
                Stage::ValueDemo => self.set_stage(turn, Stage::Qualification),
                Stage::Qualification => return self.qualify(turn),
                Stage::NextSteps => {
                    if self.state.booking == Booking::NotOffered {
                        return self.offer_meeting(turn);
                    }
                    return;
                }
                Stage::Closing => return,
            }
        }
    }

    fn next_discovery_question(&self) -> Option<Question> {
        let signals = &self.state.signals;
        DISCOVERY_ORDER.into_iter().find(|q| {
            let known = match q {
                Question::TeamSize => signals.team_size.is_some(),
                Question::MonthlyVolume => signals.monthly_volume.is_some(),
                Question::Integrations => signals.integrations.is_some(),
                Question::Urgency => signals.urgency.is_some(),
                _ => signals.industry.is_some(),
            };
            !known && self.state.times_asked(*q) == 0
        })
    }

    fn qualify(&mut self, turn: &mut Turn) {
        let crm = match &self.state.crm {
            Lookup::Found(record) => Some(record),
            _ => None,
        };
        if !is_sales_qualified(&self.state.signals, crm, &self.config) {
            turn.say(lines::self_serve_close(&mut self.state.wording));
            self.set_stage(turn, Stage::Closing);
            turn.end();
            self.state.ended = true;
            return;
        }
        if self.state.signals.email.is_none() {
            return self.ask_again_or_give_up(turn, Question::Email);
        }
        self.set_stage(turn, Stage::NextSteps);
        self.offer_meeting(turn);
    }

    fn ask(&mut self, turn: &mut Turn, question: Question) {
        self.state.asked.push(question);
        self.state.awaiting = Some(question);
        turn.say(lines::question(&mut self.state.wording, question));
    }

    /// Ask a question a second time, or move on without its answer.
    fn ask_again_or_give_up(&mut self, turn: &mut Turn, question: Question) {
        if self.state.times_asked(question) < 2 {
            return self.ask(turn, question);
        }
        // Without an email there is nothing to book against: offer a callback.
        self.set_stage(turn, Stage::NextSteps);
        self.offer_callback(turn, "No worries.");
    }

    fn repeat_or_continue(&mut self, awaiting: Option<Question>) -> String {
        match awaiting {
            Some(question) if question != Question::ValueFit => {
                lines::question(&mut self.state.wording, question)
            }
            _ => "What's the one thing you'd most like to get working today?".to_owned(),
        }
    }

    // --- lookups ----------------------------------------------------------

    fn on_new_email(&mut self, turn: &mut Turn, email: String) {
        self.state.signals.email = Some(email);
        let idle = matches!(self.state.activity, Lookup::NotStarted)
            && matches!(self.state.crm, Lookup::NotStarted);
        let rechecking = self.state.email_checked && !self.lookups_running();
        if idle || rechecking {
            self.start_lookups(turn);
        }
    }

    fn lookups_running(&self) -> bool {
        self.state
            .pending
            .iter()
            .any(|p| p.tool != ToolName::ChilipiperSlots && p.tool != ToolName::ChilipiperBook)
    }

    /// Look the caller up again where an earlier lookup failed (the caller
    /// gave the email again or asked to retry).
    fn retry_failed_lookups(&mut self, turn: &mut Turn) {
        if self.state.signals.email.is_none() {
            return;
        }
        if matches!(self.state.activity, Lookup::Unavailable) {
            self.start_lookups(turn);
        } else if matches!(self.state.crm, Lookup::Unavailable) {
            self.state.crm = Lookup::Pending;
            self.call_tool(
                turn,
                self.config.crm.lookup_tool(),
                json!({ "email": self.state.signals.email }),
            );
        }
    }

    fn start_lookups(&mut self, turn: &mut Turn) {
        self.state.activity = Lookup::Pending;
        self.state.crm = Lookup::Pending;
        self.call_tool(
            turn,
            ToolName::AmplitudeActivity,
            json!({ "email": self.state.signals.email }),
        );
    }

    fn note_not_found(&mut self, not_found: bool) {
        if not_found && !self.state.email_checked {
            self.state.email_check_due = true;
        }
    }

    fn ask_email_check(&mut self, turn: &mut Turn) {
        self.state.email_check_due = false;
        self.state.email_checked = true;
        self.state.asked.push(Question::ConfirmEmail);
        self.state.awaiting = Some(Question::ConfirmEmail);
        let email = self.state.signals.email.clone().unwrap_or_default();
        turn.say(format!(
            "I couldn't find a trial under {email}. Is that the email you signed up with?"
        ));
    }

    fn after_email_check(
        &mut self,
        turn: &mut Turn,
        answer: Option<Confirmation>,
        gave_new_email: bool,
    ) {
        if gave_new_email {
            turn.say("Thanks, let me look that one up.");
        } else if answer == Some(Confirmation::No) {
            turn.say("No problem.");
            return self.ask(turn, Question::Email);
        } else {
            turn.say("Okay, thanks. We'll carry on from here.");
        }
        self.advance(turn);
    }

    // --- plumbing ---------------------------------------------------------

    pub(super) fn close(&mut self, turn: &mut Turn, line: Option<String>) {
        let line = line.unwrap_or_else(|| lines::goodbye(&mut self.state.wording));
        self.set_stage(turn, Stage::Closing);
        turn.say(line);
        turn.end();
        self.state.awaiting = None;
        self.state.ended = true;
    }

    /// Move to `next` if the state machine allows it.
    pub(super) fn set_stage(&mut self, turn: &mut Turn, next: Stage) {
        if self.state.stage == next {
            return;
        }
        if self.state.stage.can_transition_to(next) {
            self.state.stage = next;
            turn.stage(next);
        } else {
            tracing::warn!(
                from = self.state.stage.as_str(),
                to = next.as_str(),
                "scripted brain skipped an invalid stage transition"
            );
        }
    }

    pub(super) fn call_tool(&mut self, turn: &mut Turn, tool: ToolName, args: serde_json::Value) {
        self.state.calls_made += 1;
        let call_id = format!("scripted-{}", self.state.calls_made);
        self.state.pending.push(PendingCall {
            call_id: call_id.clone(),
            tool,
        });
        turn.call(call_id, tool, args);
    }
}

fn lookup_from<T>(result: ToolResultView, read: impl Fn(&serde_json::Value) -> T) -> Lookup<T> {
    match result {
        ToolResultView::Ok { value } => Lookup::Found(read(&value)),
        ToolResultView::NotFound => Lookup::NotFound,
        ToolResultView::Failed { .. } | ToolResultView::UnknownOutcome { .. } => {
            Lookup::Unavailable
        }
    }
}
