//! The worker keeps its sessions through connection trouble: drops, garbage
//! and oversized frames, a silent (half-open) server, a missed registration
//! and rejected credentials.

mod support;

use std::time::{Duration, Instant};

use livekit_protocol as proto;
use proto::JobStatus;
use support::*;
use voxguard::testbed::livekit::LoopbackConfig;
use voxguard::worker::{ConnectError, HoldUntilCallerLeaves, ScriptedJob, WorkerError};

/// Starts a worker with one running session and returns it with the job id.
async fn worker_with_a_running_session(
    server: &voxguard::testbed::livekit::LoopbackHandle,
) -> (RunningWorker, String) {
    let worker = registered_worker(server, worker_config(server), HoldUntilCallerLeaves).await;
    let job = server
        .dispatch_job("room-keep", "caller")
        .await
        .expect("job accepted");
    let agent = job.participant_identity.clone();
    assert!(
        server
            .wait_until(WAIT, |r| r
                .attribute_updates
                .iter()
                .any(|(_, who, _, v)| *who == agent && v == "listening"))
            .await
    );
    (worker, job.job_id)
}

async fn assert_reconnected_keeping(
    server: &voxguard::testbed::livekit::LoopbackHandle,
    worker: &RunningWorker,
    job_id: &str,
) {
    assert!(
        worker.handle.wait_registrations(2, WAIT).await,
        "worker registers again"
    );
    let records = server.records();
    assert_eq!(records.registrations.len(), 2);
    assert_ne!(
        records.registrations[0].worker_id, records.registrations[1].worker_id,
        "a new worker id per connection"
    );
    assert!(
        server
            .wait_until(WAIT, |r| r.migrations.iter().any(|(id, m)| *id
                == r.registrations[1].worker_id
                && m.job_ids == [job_id]))
            .await,
        "MigrateJobRequest names the running job on the new connection"
    );
    assert_eq!(
        worker.handle.snapshot().running_job_ids,
        vec![job_id.to_string()],
        "the session survived"
    );
    assert!(!server.job_statuses(job_id).contains(&JobStatus::JsFailed));
}

#[tokio::test]
async fn a_dropped_connection_is_re_established_without_losing_the_running_session() {
    let server = loopback().await;
    let (worker, job_id) = worker_with_a_running_session(&server).await;

    assert_eq!(server.drop_connections(), 1);
    assert_reconnected_keeping(&server, &worker, &job_id).await;

    // The session still ends normally and its status reaches the new connection.
    server.participant_leaves("room-keep", "caller");
    assert!(wait_for_status(&server, &job_id, JobStatus::JsSuccess).await);
    let records = server.records();
    let (reporter, _) = records
        .job_updates
        .iter()
        .find(|(_, u)| u.status == JobStatus::JsSuccess as i32)
        .unwrap();
    assert_eq!(*reporter, records.registrations[1].worker_id);
    worker.handle.shutdown_now();
}

#[tokio::test]
async fn a_closed_connection_is_re_established_too() {
    let server = loopback().await;
    let (worker, job_id) = worker_with_a_running_session(&server).await;
    assert_eq!(server.close_connections(), 1);
    assert_reconnected_keeping(&server, &worker, &job_id).await;
    worker.handle.shutdown_now();
}

#[tokio::test]
async fn a_garbage_frame_from_the_server_causes_a_reconnect_not_a_panic() {
    let server = loopback().await;
    let (worker, job_id) = worker_with_a_running_session(&server).await;
    assert_eq!(server.send_garbage(), 1);
    assert_reconnected_keeping(&server, &worker, &job_id).await;
    assert!(!worker.task.is_finished());
    worker.handle.shutdown_now();
}

#[tokio::test]
async fn an_oversized_frame_from_the_server_causes_a_reconnect_not_a_panic() {
    let server = loopback().await;
    let (worker, job_id) = worker_with_a_running_session(&server).await;
    assert_eq!(server.send_oversized(4 << 20), 1);
    assert_reconnected_keeping(&server, &worker, &job_id).await;
    assert!(!worker.task.is_finished());
    worker.handle.shutdown_now();
}

#[tokio::test]
async fn a_silent_server_is_detected_as_a_dead_link_within_the_ping_timeout() {
    let server = loopback().await;
    let (worker, job_id) = worker_with_a_running_session(&server).await;
    let went_silent = Instant::now();
    assert_eq!(server.silence_connections(), 1);
    // Nothing closes the socket: only the worker's own timeout can notice.
    assert!(worker.handle.wait_registrations(2, WAIT).await);
    let noticed = went_silent.elapsed();
    assert!(
        noticed >= Duration::from_millis(1200),
        "not before ping_timeout (1.5 s) minus one ping interval: {noticed:?}"
    );
    assert!(
        noticed < Duration::from_secs(4),
        "soon after ping_timeout: {noticed:?}"
    );
    assert_reconnected_keeping(&server, &worker, &job_id).await;
    worker.handle.shutdown_now();
}

#[tokio::test]
async fn a_worker_that_gets_no_registration_answer_is_closed_by_the_server_and_retries() {
    let server = loopback_with(LoopbackConfig {
        register_timeout: Duration::from_millis(300),
        ..LoopbackConfig::default()
    })
    .await;
    server.set_answer_register(false);
    let worker = spawn_worker(worker_config(&server), HoldUntilCallerLeaves);
    assert!(server.wait_until(WAIT, |r| r.register_timeouts >= 1).await);
    assert_eq!(worker.handle.registrations(), 0);
    server.set_answer_register(true);
    assert!(worker.handle.wait_registrations(1, WAIT).await);
    worker.handle.shutdown_now();
}

#[tokio::test]
async fn rejected_credentials_are_retried_with_backoff_and_reported_clearly() {
    let server = loopback().await;
    let mut config = worker_config(&server);
    config.api_secret = voxguard::worker::Secret::new("not-the-secret");
    config.reconnect.max_retries = Some(4);
    let started = Instant::now();
    let worker = spawn_worker(config, HoldUntilCallerLeaves);

    let outcome = worker.finish(WAIT).await;
    let elapsed = started.elapsed();
    let Err(WorkerError::GaveUp { attempts, last }) = outcome else {
        panic!("expected GaveUp, got {outcome:?}")
    };
    assert_eq!(attempts, 4);
    assert_eq!(last, ConnectError::Unauthorized { status: 401 });
    let message = last.to_string();
    assert!(
        message.contains("LIVEKIT_API_KEY") && message.contains("LIVEKIT_API_SECRET"),
        "{message}"
    );
    assert_eq!(
        server.records().auth_failures,
        5,
        "one first attempt plus four retries"
    );
    // Backoff 50 ms, then 50–100, 100–200, 200–400 ms: never a tight loop.
    assert!(
        elapsed >= Duration::from_millis(400),
        "retries were spaced out: {elapsed:?}"
    );
    assert!(server.records().registrations.is_empty());
}

#[tokio::test]
async fn tokens_are_minted_fresh_for_every_connection() {
    let server = loopback().await;
    let worker = registered_worker(
        &server,
        worker_config(&server),
        ScriptedJob::succeeding_after(Duration::ZERO),
    )
    .await;
    // A second connection authenticates again (the first token is not reused after expiry windows).
    server.drop_connections();
    assert!(worker.handle.wait_registrations(2, WAIT).await);
    assert_eq!(server.records().auth_failures, 0);
    worker.handle.shutdown_now();
}
