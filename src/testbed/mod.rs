//! The other side of every boundary, for `voxguard dev`, `simulate`, the
//! `crm-sim` and `speech-sim` commands and the tests: a loopback LiveKit
//! stand-in, a fault-injecting CRM simulator and a speech simulator that
//! speaks the providers' protocols. Production layers never import this
//! module (a test in tests/layering.rs holds that).

pub mod crm;
pub mod livekit;
pub mod speech;
