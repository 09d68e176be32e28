//! The voice pipeline between a room's audio and a session's text turns:
//! voice activity and the recognizer become caller turns ([`endpoint`]),
//! the caller talking over the agent pauses or cuts it ([`interrupt`]), the
//! agent's speech goes out as paced Opus packets ([`outbox`]) with captions
//! in step with what was played ([`captions`]).
//!
//! Each piece is a function of its inputs and time (tested with a paused
//! clock, not sleeps); one task per call drives them.

pub mod call;
pub mod captions;
pub mod endpoint;
pub mod interrupt;
pub mod listener;
pub mod outbox;
pub mod speaking;
