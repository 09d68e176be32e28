//! The other side of every boundary, for `voxguard dev`, `simulate`, the
//! `crm-sim` command and the tests: a loopback LiveKit stand-in and a
//! fault-injecting CRM simulator. Production layers never import this module
//! (a test in tests/layering.rs holds that).

pub mod crm;
pub mod livekit;
