//! The conversational brain: decides what the agent says and which tools it
//! calls on each turn. `signals` reads the caller's words; `ScriptedBrain`
//! is the deterministic policy; `LlmBrain` asks an OpenAI-compatible model
//! and `HybridBrain` falls back from it to the script when it fails.

mod action;
mod hybrid;
pub mod llm;
pub mod scripted;
pub mod signals;

pub use action::{
    Action, BrainState, CrmChoice, FollowUp, Stage, StartContext, ToolName, ToolResultView,
};
pub use hybrid::{BrainMode, HybridBrain, HybridTurn};
pub use scripted::{ScriptedBrain, ScriptedConfig, ScriptedState, is_sales_qualified};
