//! The composition root: configuration → guards → clients → brains → what a
//! session needs ([`wiring`]), the LiveKit job handler that runs a session
//! for each job in its room ([`job`]), the CRM tool bindings ([`tools`]),
//! and the worker's speech: recognizers, voices and phrase audio ([`voice`]).
//! The only module that knows every layer; `start`, `dev`, `console` and
//! `simulate` build their agent here.

pub mod call;
pub mod job;
pub mod start;
pub mod tools;
pub mod voice;
pub mod wiring;

pub use job::{SessionJobError, SessionJobHandler, Transports};
pub use start::{Production, StartError, worker_config};
pub use tools::{CalendarSettings, Toolbox, spoken_time};
pub use voice::{SessionEventTap, VoiceStack};
pub use wiring::{
    Agent, AgentError, CRM_SERVICES, CrmAccess, CrmCredentials, CrmEndpoints, Unconfigured,
    breaker_name,
};
