//! `voxguard simulate`: drives scripted calls through the full stack and
//! reports latency and the invariants checked on the sessions' transcripts.

pub mod audio;
pub mod boundary;
pub mod caller;
pub mod checks;
pub mod measure;
pub mod peer;
pub mod report;
pub mod run;
pub mod voice;

pub use boundary::Peer;
pub use peer::Media;
pub use report::{FleetUse, LatencySummary, Outcomes, SimulationReport};
pub use run::{SCENARIOS, SimulationOutput, SimulationPlan, VOICE_SCENARIOS, run};
