//! One conversation: the turn loop between a caller (through `SessionIo`),
//! the brain, and the recovery layer that runs risky tool calls.

pub mod io;

pub use io::{AgentEvent, CallerEvent, SessionIo, TransportIo};
