//! Collects one turn's actions in the order the session should run them:
//! bookkeeping first, then one spoken reply, then tool calls and follow-ups,
//! and ending the call last.

use serde_json::Value;

use crate::brain::action::{Action, FollowUp, Stage, ToolName};
use crate::brain::understanding::Signals;

#[derive(Debug, Default)]
pub struct Turn {
    bookkeeping: Vec<Action>,
    speech: Vec<String>,
    effects: Vec<Action>,
    end_call: bool,
}

impl Turn {
    pub fn say(&mut self, text: impl Into<String>) {
        self.speech.push(text.into());
    }

    pub fn stage(&mut self, stage: Stage) {
        self.bookkeeping.push(Action::SetStage { stage });
    }

    pub fn record(&mut self, signals: Signals) {
        self.bookkeeping.push(Action::RecordSignals { signals });
    }

    pub fn call(&mut self, call_id: String, name: ToolName, args: Value) {
        self.effects.push(Action::CallTool {
            call_id,
            name,
            args,
        });
    }

    pub fn follow_up(&mut self, follow_up: FollowUp) {
        self.effects.push(Action::FollowUp { follow_up });
    }

    pub fn end(&mut self) {
        self.end_call = true;
    }

    pub fn finish(self) -> Vec<Action> {
        let mut actions = self.bookkeeping;
        if !self.speech.is_empty() {
            actions.push(Action::Say {
                text: self.speech.join(" "),
            });
        }
        actions.extend(self.effects);
        if self.end_call {
            actions.push(Action::EndCall);
        }
        actions
    }
}
