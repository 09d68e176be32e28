//! What every session of a process shares: the phrase book, the tools and
//! each service's binding (one guard per service, so breakers see every
//! session's calls), the model when one leads, the fleet that keeps saved
//! conversations, and the session settings. Built once by the composition
//! root; sessions clone it cheaply.

use std::sync::Arc;

use crate::brain::ScriptedConfig;
use crate::fleet::Fleet;
use crate::recovery::{Bindings, PhraseBook};

use super::brain::LlmSetup;
use super::tools::Tools;

/// Shared by all sessions of one process.
#[derive(Clone)]
pub struct SessionEnv {
    pub phrasebook: Arc<PhraseBook>,
    pub tools: Arc<dyn Tools>,
    pub bindings: Bindings,
    /// Failed tool calls in a row before the agent offers a person.
    pub handoff_after: u32,
    pub scripted: ScriptedConfig,
    /// Set when a model leads; the script is its fallback.
    pub llm: Option<LlmSetup>,
    /// Sessions save their state to it after each turn.
    pub fleet: Fleet,
}
