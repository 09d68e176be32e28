//! voxguard: a realtime voice-agent backend for LiveKit whose recovery layer
//! keeps callers out of dead air when the services behind the agent fail.
//!
//! Layers, top calls down: `worker` (LiveKit protocol) → `session` (one
//! conversation) → `brain` and `recovery` (what to say, how risky calls are
//! run) → `services` (CRM clients) → `resilience` (the engine). `fleet` holds
//! shared state; `config` loads and validates the TOML configuration.

pub mod brain;
pub mod config;
pub mod dev;
pub mod fleet;
pub mod media;
pub mod recovery;
pub mod resilience;
pub mod room;
pub mod services;
pub mod session;
pub mod simulate;
pub mod worker;
