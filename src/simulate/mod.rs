//! `voxguard simulate`: drives scripted calls through the full stack and
//! reports latency and the invariants checked on the sessions' transcripts.

pub mod checks;
pub mod report;
pub mod run;

pub use report::{LatencySummary, Outcomes, SimulationReport};
pub use run::{SCENARIOS, SimulationOutput, SimulationPlan, run};
