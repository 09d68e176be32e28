//! The conversational brain: decides what the agent says and which tools it
//! calls on each turn. `understanding` reads the caller's words; `ScriptedBrain`
//! is the deterministic policy; `LlmBrain` asks an OpenAI-compatible model
//! and `HybridBrain` falls back from it to the script when it fails.
//!
//! The session drives a brain with three events — the call starts, the
//! caller speaks, a tool call resolves — and runs the [`Action`]s it gets
//! back in order. Tool calls go through the recovery layer, whose verdict
//! comes back as a [`ToolResultView`].
//!
//! ```
//! use voxguard::brain::{Action, BrainState, ScriptedBrain, ScriptedConfig, Stage, StartContext, ToolResultView};
//! let mut brain = ScriptedBrain::new(ScriptedConfig::default());
//! let ctx = StartContext { caller_email: Some("jane@acme.com".into()), ..StartContext::default() };
//! let opening = brain.on_start(&ctx);
//! let Some(Action::CallTool { call_id, .. }) = opening.last() else { panic!("looks the caller up") };
//! // The activity lookup failed: the brain carries on and asks the CRM next.
//! let next = brain.on_tool_result(call_id, ToolResultView::Failed { kind: voxguard::resilience::ErrorKind::Timeout });
//! assert!(matches!(next.as_slice(), [Action::CallTool { .. }]));
//! let reply = brain.on_user("we're about eight people", &BrainState { stage: Stage::Greeting });
//! assert!(reply.contains(&Action::SetStage { stage: Stage::Discovery }));
//! ```

mod action;
mod hybrid;
pub mod llm;
pub mod scripted;
pub mod understanding;

pub use action::{
    Action, BrainState, CrmChoice, FollowUp, Stage, StartContext, ToolName, ToolResultView,
};
pub use hybrid::{BrainMode, HybridBrain, HybridTurn};
pub use scripted::{ScriptedBrain, ScriptedConfig, ScriptedState, is_sales_qualified};
