//! The brain a session talks to: the scripted policy alone, or the model
//! leading with the script as its fallback. Model requests are risky calls
//! like any tool: they run under the `llm` guard (its own breaker and
//! profile), and [`LlmSetup`] holds what every session of the process
//! shares for them.

use std::sync::Arc;

use crate::brain::llm::{ChatMessage, LlmBrain, LlmConfig};
use crate::brain::{
    Action, BrainMode, BrainState, HybridBrain, ScriptedBrain, ScriptedConfig, ScriptedState,
    StartContext, ToolResultView,
};
use crate::recovery::{HeardLine, LadderTiming};
use crate::resilience::{CallError, Guard};

/// What every LLM-led session of a process shares.
#[derive(Clone)]
pub struct LlmSetup {
    pub config: LlmConfig,
    pub http: reqwest::Client,
    pub guard: Arc<Guard>,
    /// When the caller hears a filler while the model thinks, and the
    /// budget of one turn's model request (retries included).
    pub timing: LadderTiming,
}

impl std::fmt::Debug for LlmSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmSetup")
            .field("config", &self.config)
            .field("timing", &self.timing)
            .finish_non_exhaustive()
    }
}

impl LlmSetup {
    /// `brain` leading a session, each model request under this setup's
    /// guard and within its budget.
    fn leading(&self, brain: HybridBrain) -> SessionBrain {
        SessionBrain::Hybrid(Box::new(
            brain.with_guard(self.guard.clone(), self.timing.budget),
        ))
    }
}

/// One turn's actions, and the model failure that made the script take over
/// on this turn (the session owns up to it before the actions).
#[derive(Debug)]
pub struct Turn {
    pub actions: Vec<Action>,
    pub fell_back: Option<CallError>,
}

impl Turn {
    fn scripted(actions: Vec<Action>) -> Turn {
        Turn {
            actions,
            fell_back: None,
        }
    }
}

/// The session's brain.
// Unboxed scripted brain: it is what most sessions run, and boxing it would
// add an allocation to each of them for no saving.
#[allow(clippy::large_enum_variant)]
pub enum SessionBrain {
    Scripted(ScriptedBrain),
    Hybrid(Box<HybridBrain>),
}

impl SessionBrain {
    /// The model leads when `llm` is set; the script otherwise.
    pub fn new(scripted: ScriptedConfig, llm: Option<&LlmSetup>) -> SessionBrain {
        match llm {
            None => SessionBrain::Scripted(ScriptedBrain::new(scripted)),
            Some(setup) => setup.leading(HybridBrain::new(
                LlmBrain::with_client(setup.config.clone(), setup.http.clone()),
                scripted,
            )),
        }
    }

    /// Carry on a saved conversation: with the model leading again when it
    /// was leading (`model` holds its history) and a model is configured
    /// here, on the script otherwise.
    pub fn resume(
        scripted: ScriptedConfig,
        llm: Option<&LlmSetup>,
        facts: ScriptedState,
        model: Option<Vec<ChatMessage>>,
    ) -> SessionBrain {
        match (llm, model) {
            (Some(setup), Some(history)) => setup.leading(HybridBrain::resume(
                LlmBrain::resume_with_client(setup.config.clone(), setup.http.clone(), history),
                scripted,
                facts,
            )),
            _ => SessionBrain::Scripted(ScriptedBrain::resume(scripted, facts)),
        }
    }

    /// The model's conversation while it leads, for a resumable save.
    pub fn model_history(&self) -> Option<&[ChatMessage]> {
        match self {
            SessionBrain::Scripted(_) => None,
            SessionBrain::Hybrid(brain) => brain.model_history(),
        }
    }

    /// The caller cut in and heard only part of the agent's last lines.
    pub fn heard_only(&mut self, lines: &[HeardLine]) {
        if let SessionBrain::Hybrid(brain) = self {
            for line in lines {
                brain.heard_only(&line.spoken, &line.heard);
            }
        }
    }

    /// Who decides right now.
    pub fn mode(&self) -> BrainMode {
        match self {
            SessionBrain::Scripted(_) => BrainMode::Scripted,
            SessionBrain::Hybrid(brain) => brain.mode(),
        }
    }

    /// Whether this turn may wait on the model (and so needs a filler ladder).
    pub fn thinks_remotely(&self) -> bool {
        self.mode() == BrainMode::Llm
    }

    /// What the conversation has established so far.
    pub fn state(&self) -> &ScriptedState {
        match self {
            SessionBrain::Scripted(brain) => brain.state(),
            SessionBrain::Hybrid(brain) => brain.state(),
        }
    }

    pub fn on_start(&mut self, ctx: &StartContext) -> Vec<Action> {
        match self {
            SessionBrain::Scripted(brain) => brain.on_start(ctx),
            SessionBrain::Hybrid(brain) => brain.on_start(ctx),
        }
    }

    pub async fn on_user(&mut self, text: &str, session: &BrainState) -> Turn {
        match self {
            SessionBrain::Scripted(brain) => Turn::scripted(brain.on_user(text, session)),
            SessionBrain::Hybrid(brain) => {
                // Boxed: the model's request future is KiBs, and a scripted
                // session's turn should not be sized for it.
                let turn = Box::pin(brain.on_user(text, session)).await;
                Turn {
                    actions: turn.actions,
                    fell_back: turn.fell_back,
                }
            }
        }
    }

    pub async fn on_tool_result(
        &mut self,
        call_id: &str,
        result: ToolResultView,
        session: &BrainState,
    ) -> Turn {
        match self {
            SessionBrain::Scripted(brain) => Turn::scripted(brain.on_tool_result(call_id, result)),
            SessionBrain::Hybrid(brain) => {
                let turn = Box::pin(brain.on_tool_result(call_id, result, session)).await;
                Turn {
                    actions: turn.actions,
                    fell_back: turn.fell_back,
                }
            }
        }
    }
}
