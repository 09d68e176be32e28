//! Shared scaffolding for the worker integration tests: the in-process LiveKit
//! stand-in (voxguard's own `LoopbackServer`) and a worker wired to it with
//! short timings, all on real sockets on 127.0.0.1.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use livekit_protocol as proto;
use tokio::task::JoinHandle;
use voxguard::testbed::livekit::{LoopbackConfig, LoopbackHandle, LoopbackServer};
use voxguard::worker::{
    JobHandler, ReconnectPolicy, Worker, WorkerConfig, WorkerError, WorkerHandle,
};

pub const WAIT: Duration = Duration::from_secs(10);

pub async fn loopback() -> LoopbackHandle {
    loopback_with(LoopbackConfig::default()).await
}

pub async fn loopback_with(config: LoopbackConfig) -> LoopbackHandle {
    LoopbackServer::start_isolated("127.0.0.1:0".parse().unwrap(), config)
        .await
        .expect("loopback server binds")
}

/// A worker config for `server` with test-friendly timings.
pub fn worker_config(server: &LoopbackHandle) -> WorkerConfig {
    let mut config = WorkerConfig::new(
        server.url(),
        &server.config().api_key,
        &server.config().api_secret,
    );
    config.agent_name = "voxguard-test".into();
    config.version = "9.9.9-test".into();
    config.max_sessions = 2;
    config.ping_interval = Duration::from_millis(200);
    config.ping_timeout = Duration::from_millis(1500);
    config.status_interval = Duration::from_millis(200);
    config.drain_timeout = Duration::from_secs(5);
    config.session_stop_grace = Duration::from_millis(500);
    config.reconnect = ReconnectPolicy {
        max_retries: None,
        first: Duration::from_millis(50),
        base: Duration::from_millis(100),
        cap: Duration::from_millis(500),
        seed: Some(7),
    };
    config
}

pub struct RunningWorker {
    pub handle: WorkerHandle,
    pub task: JoinHandle<Result<(), WorkerError>>,
}

impl RunningWorker {
    pub async fn finish(self, within: Duration) -> Result<(), WorkerError> {
        tokio::time::timeout(within, self.task)
            .await
            .expect("worker stops in time")
            .expect("worker task does not panic")
    }
}

pub fn spawn_worker(config: WorkerConfig, handler: impl JobHandler) -> RunningWorker {
    let worker = Worker::new(config, Arc::new(handler)).expect("valid worker config");
    let handle = worker.handle();
    let task = tokio::spawn(worker.run());
    RunningWorker { handle, task }
}

/// Spawns a worker and waits for its first registration.
pub async fn registered_worker(
    server: &LoopbackHandle,
    config: WorkerConfig,
    handler: impl JobHandler,
) -> RunningWorker {
    let worker = spawn_worker(config, handler);
    assert!(
        worker.handle.wait_registrations(1, WAIT).await,
        "worker registers"
    );
    let _ = server;
    worker
}

pub async fn wait_for_status(
    server: &LoopbackHandle,
    job_id: &str,
    status: proto::JobStatus,
) -> bool {
    let job_id = job_id.to_string();
    server
        .wait_until(WAIT, |r| {
            r.job_updates
                .iter()
                .any(|(_, u)| u.job_id == job_id && u.status == status as i32)
        })
        .await
}

pub fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    let rank = ((p / 100.0) * samples.len() as f64).ceil() as usize;
    samples[rank.clamp(1, samples.len()) - 1]
}

/// `voxguard start` as a user runs it: the real binary, a clean environment
/// with only PATH and the three LIVEKIT_* variables for `server`. Callers
/// add their own variables and pipes.
pub fn voxguard_start(server: &LoopbackHandle) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_voxguard"));
    command
        .arg("start")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("LIVEKIT_URL", server.url())
        .env("LIVEKIT_API_KEY", &server.config().api_key)
        .env("LIVEKIT_API_SECRET", &server.config().api_secret)
        .kill_on_drop(true);
    command
}
