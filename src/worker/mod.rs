//! The LiveKit agent worker: registers with a LiveKit server over its `/agent`
//! WebSocket, answers availability from local capacity, runs each accepted job
//! as a session behind the [`JobHandler`] seam, survives reconnects, drains on
//! SIGTERM and serves health and metrics endpoints.
//!
//! ```no_run
//! use std::sync::Arc;
//! use voxguard::worker::{HoldUntilCallerLeaves, Worker, WorkerConfig, run_until_signal};
//!
//! # async fn start() -> Result<(), Box<dyn std::error::Error>> {
//! let mut config = WorkerConfig::from_env()?;
//! config.health_addr = Some("0.0.0.0:8081".parse()?);
//! let worker = Worker::new(config, Arc::new(HoldUntilCallerLeaves))?;
//! run_until_signal(worker).await?;
//! # Ok(()) }
//! ```

mod config;
#[doc(hidden)]
pub mod fuzzing;
mod health;
mod job;
mod link;
pub mod metrics;
pub mod protocol;
mod runner;
mod sessions;
mod shutdown;

pub use config::{ConfigError, ReconnectPolicy, Secret, WorkerConfig, agent_endpoint};
pub use health::{HealthServer, router as health_router};
pub use job::{
    CancelReason, CancelSignal, CancelTrigger, FnHandler, HoldUntilCallerLeaves, JobContext,
    JobError, JobHandler, JobResult, ScriptedJob, SharedHandler, cancel_pair,
};
pub use link::ServerAction;
pub use protocol::ConnectError;
pub use runner::{Worker, WorkerError, WorkerHandle};
pub use sessions::{ExtraReport, ServiceReport, ServiceStatus, WorkerLoad, WorkerSnapshot};
pub use shutdown::{run_until, run_until_signal, shutdown_signal};
