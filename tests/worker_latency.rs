//! The worker answers availability without waiting on the sessions it runs.
//! Kept in its own test binary so sibling tests do not compete for the CPU.
//!
//! The assertion is a ratio measured in one run: every answer must come back
//! in a small fraction of a session's length, which a worker that handled
//! availability behind its running sessions could not do. The absolute
//! figures (p50/p99/max) are printed for the README's performance section:
//! `cargo test --release --test worker_latency -- --nocapture`.

mod support;

use std::time::Duration;

use support::*;
use voxguard::worker::ScriptedJob;

/// How long each accepted session runs; all 200 are still running when the
/// last availability request is answered.
const SESSION: Duration = Duration::from_secs(3);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn availability_is_answered_without_waiting_on_running_sessions() {
    let server = loopback().await;
    let mut config = worker_config(&server);
    config.max_sessions = 1000;
    let worker = registered_worker(&server, config, ScriptedJob::succeeding_after(SESSION)).await;

    let started = std::time::Instant::now();
    let mut latencies = Vec::new();
    for n in 0..200 {
        let job = server
            .dispatch_job(&format!("room-{n}"), "caller")
            .await
            .expect("accepted");
        latencies.push(job.availability_latency);
    }
    let dispatching = started.elapsed();
    let p50 = percentile(&mut latencies, 50.0);
    let p99 = percentile(&mut latencies, 99.0);
    let max = *latencies.last().unwrap();
    println!(
        "availability over 200 requests while sessions run: p50 {p50:?}, p99 {p99:?}, max {max:?}"
    );
    assert!(
        dispatching < SESSION,
        "dispatching 200 jobs took {dispatching:?}; the first sessions ended before the last \
         request, so the run no longer measures availability under load"
    );
    assert!(
        max * 10 < SESSION,
        "an availability answer took {max:?}, over a tenth of a session's {SESSION:?}: \
         availability is waiting on running sessions"
    );
    worker.handle.shutdown_now();
}
