//! `voxguard simulate`: drives scripted calls through the full stack and
//! reports latency and the invariants checked on the sessions' transcripts.

pub mod report;

pub use report::{LatencySummary, Outcomes, SimulationReport};
