//! The hybrid brain: the LLM leads while it answers; when a request fails
//! the scripted policy takes over from everything learned so far (signals,
//! lookups, booking), and the turn reports the failure so the session can
//! speak its fallback phrase first. Once fallen back it stays scripted.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::action::{Action, BrainState, FollowUp, Stage, StartContext, ToolName, ToolResultView};
use super::llm::{ChatMessage, LlmBrain};
use super::scripted::{
    Activity, Booking, CrmRecord, Lookup, OfferedSlot, ScriptedBrain, ScriptedConfig,
    ScriptedState, read_slots,
};
use super::understanding::{Question, extract_answering};
use crate::resilience::{CallError, Deadline, Guard};

/// Who is deciding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrainMode {
    Llm,
    Scripted,
}

/// One turn's actions, and the LLM failure that caused a fallback on this
/// turn (the session speaks its fallback phrase before the actions).
#[derive(Debug, Clone, PartialEq)]
pub struct HybridTurn {
    pub actions: Vec<Action>,
    pub fell_back: Option<CallError>,
}

/// LLM first, script on failure.
pub struct HybridBrain {
    llm: LlmBrain,
    guard: Option<(Arc<Guard>, Duration)>,
    scripted_config: ScriptedConfig,
    /// What the scripted brain will start from if it takes over.
    facts: ScriptedState,
    /// The LLM's outstanding tool calls, by id.
    llm_calls: Vec<(String, ToolName, Value)>,
    scripted: Option<ScriptedBrain>,
}

impl std::fmt::Debug for HybridBrain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HybridBrain")
            .field("mode", &self.mode())
            .field(
                "guarded_by",
                &self.guard.as_ref().map(|(guard, _)| guard.service()),
            )
            .field("llm", &self.llm)
            .field("state", self.state())
            .finish()
    }
}

impl HybridBrain {
    pub fn new(llm: LlmBrain, scripted_config: ScriptedConfig) -> HybridBrain {
        let facts = ScriptedState::new(scripted_config.seed);
        HybridBrain {
            llm,
            guard: None,
            scripted_config,
            facts,
            llm_calls: Vec::new(),
            scripted: None,
        }
    }

    /// Carry on a conversation the model was leading: `llm` holds its
    /// history, `facts` what the script would start from.
    pub fn resume(
        llm: LlmBrain,
        scripted_config: ScriptedConfig,
        facts: ScriptedState,
    ) -> HybridBrain {
        HybridBrain {
            facts,
            ..HybridBrain::new(llm, scripted_config)
        }
    }

    /// The model's conversation, while the model leads (`None` once the
    /// script has taken over).
    pub fn model_history(&self) -> Option<&[ChatMessage]> {
        self.scripted.is_none().then(|| self.llm.transcript())
    }

    /// The caller heard only `heard` of the reply `spoken` (see
    /// [`LlmBrain::heard_only`]); the script keeps no record of wording.
    pub fn heard_only(&mut self, spoken: &str, heard: &str) {
        self.llm.heard_only(spoken, heard);
    }

    /// Run each LLM request under `guard`, within `budget` per turn.
    pub fn with_guard(mut self, guard: Arc<Guard>, budget: Duration) -> HybridBrain {
        self.guard = Some((guard, budget));
        self
    }

    pub fn mode(&self) -> BrainMode {
        if self.scripted.is_some() {
            BrainMode::Scripted
        } else {
            BrainMode::Llm
        }
    }

    /// What the script knows (or would start from).
    pub fn state(&self) -> &ScriptedState {
        self.scripted
            .as_ref()
            .map(ScriptedBrain::state)
            .unwrap_or(&self.facts)
    }

    pub fn llm(&self) -> &LlmBrain {
        &self.llm
    }

    /// Greet at once with the scripted line (no model round trip before the
    /// first words) and tell the model what is already known.
    pub fn on_start(&mut self, ctx: &StartContext) -> Vec<Action> {
        let mut greeter = ScriptedBrain::resume(self.scripted_config.clone(), self.facts.clone());
        let actions = greeter.on_start(&StartContext {
            caller_name: ctx.caller_name.clone(),
            caller_email: None,
        });
        self.facts.wording = greeter.state().wording;
        if let Some(email) = ctx.caller_email.clone() {
            self.llm
                .push_context(&format!("The caller's email is {email}."));
            self.facts.signals.email = Some(email);
        }
        for action in &actions {
            if let Action::Say { text } = action {
                self.llm.push_assistant_text(text);
            }
        }
        actions
    }

    pub async fn on_user(&mut self, text: &str, session: &BrainState) -> HybridTurn {
        if let Some(scripted) = &mut self.scripted {
            return HybridTurn {
                actions: scripted.on_user(text, session),
                fell_back: None,
            };
        }
        self.facts.stage = session.stage;
        let heard = extract_answering(text, self.facts.awaiting);
        self.facts.signals.merge(&heard.signals);
        let mut prefix = Vec::new();
        if !heard.signals.is_empty() {
            prefix.push(Action::RecordSignals {
                signals: heard.signals,
            });
        }
        self.move_to(&mut prefix, Stage::Discovery);
        self.llm.push_user(text);
        match self.ask_llm().await {
            Ok(actions) => {
                self.note_calls(&mut prefix, &actions);
                prefix.extend(actions);
                HybridTurn {
                    actions: prefix,
                    fell_back: None,
                }
            }
            Err(error) => {
                let session = BrainState {
                    stage: self.facts.stage,
                };
                let mut scripted =
                    ScriptedBrain::resume(self.scripted_config.clone(), self.facts.clone());
                prefix.extend(
                    scripted
                        .on_user(text, &session)
                        .into_iter()
                        .filter(|a| !matches!(a, Action::RecordSignals { .. })),
                );
                self.scripted = Some(scripted);
                HybridTurn {
                    actions: prefix,
                    fell_back: Some(error),
                }
            }
        }
    }

    pub async fn on_tool_result(
        &mut self,
        call_id: &str,
        result: ToolResultView,
        session: &BrainState,
    ) -> HybridTurn {
        if let Some(scripted) = &mut self.scripted {
            return HybridTurn {
                actions: scripted.on_tool_result(call_id, result),
                fell_back: None,
            };
        }
        self.facts.stage = session.stage;
        let mut prefix = Vec::new();
        let Some(index) = self.llm_calls.iter().position(|(id, _, _)| id == call_id) else {
            // Not a call the model made (or already answered): nothing to do.
            return HybridTurn {
                actions: prefix,
                fell_back: None,
            };
        };
        let (_, tool, args) = self.llm_calls.remove(index);
        self.learn(tool, &args, &result);
        // The model is told to promise an email confirmation; make it real.
        if let (Booking::Unconfirmed { slot }, Some(email)) =
            (&self.facts.booking, &self.facts.signals.email)
            && tool == ToolName::ChilipiperBook
        {
            let follow_up = FollowUp::ConfirmBookingByEmail {
                email: email.clone(),
                slot_id: slot.id.clone(),
            };
            prefix.push(Action::FollowUp { follow_up });
        }
        self.llm.push_tool_result(call_id, &result);
        if self.llm.awaiting_tool_results() {
            return HybridTurn {
                actions: prefix,
                fell_back: None,
            };
        }
        match self.ask_llm().await {
            Ok(actions) => {
                self.note_calls(&mut prefix, &actions);
                prefix.extend(actions);
                HybridTurn {
                    actions: prefix,
                    fell_back: None,
                }
            }
            Err(error) => {
                prefix.extend(self.fall_back());
                HybridTurn {
                    actions: prefix,
                    fell_back: Some(error),
                }
            }
        }
    }

    /// Switch to the script now and let it say what comes next.
    pub fn fall_back(&mut self) -> Vec<Action> {
        let session = BrainState {
            stage: self.facts.stage,
        };
        let scripted = self.scripted.get_or_insert_with(|| {
            ScriptedBrain::resume(self.scripted_config.clone(), self.facts.clone())
        });
        scripted.continue_turn(&session)
    }

    async fn ask_llm(&mut self) -> Result<Vec<Action>, CallError> {
        match self.guard.clone() {
            Some((guard, budget)) => {
                self.llm
                    .respond_guarded(&guard, Deadline::after(budget))
                    .await
                    .result
            }
            None => self.llm.respond().await,
        }
    }

    /// Track the LLM's tool calls and move the stage along with them.
    fn note_calls(&mut self, prefix: &mut Vec<Action>, actions: &[Action]) {
        for action in actions {
            if let Action::CallTool {
                call_id,
                name,
                args,
            } = action
            {
                self.llm_calls.push((call_id.clone(), *name, args.clone()));
                if matches!(name, ToolName::ChilipiperSlots | ToolName::ChilipiperBook) {
                    self.move_to(prefix, Stage::Qualification);
                    self.move_to(prefix, Stage::NextSteps);
                }
            }
        }
    }

    /// Follow the LLM's progress forward along the main path only.
    fn move_to(&mut self, prefix: &mut Vec<Action>, next: Stage) {
        let rank = |stage: Stage| match stage {
            Stage::Greeting => 0,
            Stage::Discovery => 1,
            Stage::ValueDemo => 2,
            Stage::Qualification => 3,
            Stage::NextSteps => 4,
            Stage::FrictionRescue | Stage::Closing => 5,
        };
        if rank(next) > rank(self.facts.stage) && self.facts.stage.can_transition_to(next) {
            self.facts.stage = next;
            prefix.push(Action::SetStage { stage: next });
        }
    }

    /// Keep what an LLM-made tool call taught us, so a takeover starts from it.
    fn learn(&mut self, tool: ToolName, args: &Value, result: &ToolResultView) {
        let email = args.get("email").and_then(Value::as_str).map(str::to_owned);
        if self.facts.signals.email.is_none() {
            self.facts.signals.email = email;
        }
        match tool {
            ToolName::AmplitudeActivity => self.facts.activity = lookup(result, Activity::read),
            ToolName::SalesforceLookup | ToolName::HubspotLookup => {
                self.facts.crm = lookup(result, CrmRecord::read)
            }
            ToolName::ChilipiperSlots => {
                if let ToolResultView::Ok { value } = result {
                    let slots = read_slots(value);
                    if !slots.is_empty() {
                        self.facts.booking = Booking::ChoosingSlot { slots };
                        self.facts.awaiting = Some(Question::SlotChoice);
                    }
                }
            }
            ToolName::ChilipiperBook => {
                let id = args
                    .get("slot_id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                let label = match &self.facts.booking {
                    Booking::ChoosingSlot { slots } => {
                        slots.iter().find(|s| s.id == id).map(|s| s.label.clone())
                    }
                    _ => None,
                };
                let slot = OfferedSlot {
                    label: label.unwrap_or_else(|| id.clone()),
                    id,
                };
                match result {
                    ToolResultView::Ok { .. } => self.facts.booking = Booking::Booked { slot },
                    ToolResultView::UnknownOutcome { .. } => {
                        self.facts.booking = Booking::Unconfirmed { slot }
                    }
                    _ => {}
                }
                self.facts.awaiting = None;
            }
        }
    }
}

fn lookup<T>(result: &ToolResultView, read: impl Fn(&Value) -> T) -> Lookup<T> {
    match result {
        ToolResultView::Ok { value } => Lookup::Found(read(value)),
        ToolResultView::NotFound => Lookup::NotFound,
        _ => Lookup::Unavailable,
    }
}
