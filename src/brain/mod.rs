//! The conversational brain: decides what the agent says and which tools it
//! calls on each turn. `signals` reads the caller's words; the scripted
//! policy and the LLM client turn them into actions.

pub mod signals;
