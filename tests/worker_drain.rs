//! Graceful drain (SIGTERM) and the health endpoints through a worker's life:
//! not registered, ready, draining, stopped.

mod support;

use std::time::{Duration, Instant};

use livekit_protocol as proto;
use proto::JobStatus;
use reqwest::StatusCode;
use support::*;
use tokio::sync::mpsc;
use voxguard::testbed::livekit::DispatchError;
use voxguard::worker::{
    HealthServer, HoldUntilCallerLeaves, ScriptedJob, Worker, WorkerError, run_until,
};

#[tokio::test]
async fn drain_refuses_new_jobs_lets_the_running_session_finish_and_returns_ok() {
    let server = loopback().await;
    let worker = registered_worker(
        &server,
        worker_config(&server),
        ScriptedJob::succeeding_after(Duration::from_millis(800)),
    )
    .await;
    let job = server.dispatch_job("room-drain", "caller").await.unwrap();
    assert!(wait_for_status(&server, &job.job_id, JobStatus::JsRunning).await);

    worker.handle.drain();
    let full = proto::WorkerStatus::WsFull as i32;
    assert!(
        server
            .wait_until(WAIT, |r| r
                .worker_statuses
                .iter()
                .any(|(_, s)| s.draining && s.status == Some(full)))
            .await
    );
    assert_eq!(
        server.dispatch_job("room-new", "late-caller").await,
        Err(DispatchError::Declined)
    );
    assert!(
        server
            .job_statuses(&job.job_id)
            .ends_with(&[JobStatus::JsRunning]),
        "still running during the drain"
    );

    assert!(worker.finish(WAIT).await.is_ok());
    assert!(wait_for_status(&server, &job.job_id, JobStatus::JsSuccess).await);
    assert_eq!(
        server.job_statuses(&job.job_id),
        vec![JobStatus::JsRunning, JobStatus::JsSuccess]
    );
}

#[tokio::test]
async fn drain_timeout_ends_the_remaining_sessions_with_a_final_status() {
    let server = loopback().await;
    let mut config = worker_config(&server);
    config.drain_timeout = Duration::from_millis(300);
    let stubborn = ScriptedJob {
        duration: Duration::from_secs(60),
        failure: None,
        honours_cancel: false,
    };
    let worker = registered_worker(&server, config, stubborn).await;
    let job = server.dispatch_job("room-long", "caller").await.unwrap();
    assert!(wait_for_status(&server, &job.job_id, JobStatus::JsRunning).await);

    let started = Instant::now();
    worker.handle.drain();
    assert!(
        worker.finish(WAIT).await.is_ok(),
        "a drain always ends with Ok"
    );
    // drain_timeout (300 ms) + session_stop_grace (500 ms), with slack.
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(
        wait_for_status(&server, &job.job_id, JobStatus::JsFailed).await,
        "the cut-off session is reported FAILED"
    );
}

#[tokio::test]
async fn a_drain_with_no_sessions_returns_at_once() {
    let server = loopback().await;
    let worker = registered_worker(&server, worker_config(&server), HoldUntilCallerLeaves).await;
    worker.handle.drain();
    assert!(worker.finish(Duration::from_secs(2)).await.is_ok());
}

#[tokio::test]
async fn first_signal_drains_second_signal_interrupts() {
    let server = loopback().await;
    let worker = Worker::new(
        worker_config(&server),
        std::sync::Arc::new(ScriptedJob::succeeding_after(Duration::from_secs(60))),
    )
    .unwrap();
    let handle = worker.handle();
    let (signal_tx, signal_rx) = mpsc::unbounded_channel::<()>();
    let signals = std::sync::Arc::new(tokio::sync::Mutex::new(signal_rx));
    let task = tokio::spawn(run_until(worker, move || {
        let signals = signals.clone();
        async move {
            signals.lock().await.recv().await;
        }
    }));
    assert!(handle.wait_registrations(1, WAIT).await);
    let job = server.dispatch_job("room-sig", "caller").await.unwrap();
    assert!(wait_for_status(&server, &job.job_id, JobStatus::JsRunning).await);

    signal_tx.send(()).unwrap();
    assert!(
        server
            .wait_until(WAIT, |r| r.worker_statuses.iter().any(|(_, s)| s.draining))
            .await
    );
    assert!(handle.snapshot().draining);
    assert!(!task.is_finished(), "the session keeps the drain open");

    signal_tx.send(()).unwrap();
    let outcome = tokio::time::timeout(Duration::from_secs(2), task)
        .await
        .expect("second signal exits at once")
        .unwrap();
    assert!(matches!(outcome, Err(WorkerError::Interrupted)));
}

async fn get(client: &reqwest::Client, base: &str, path: &str) -> (StatusCode, String) {
    let response = client
        .get(format!("{base}{path}"))
        .send()
        .await
        .expect("health server answers");
    let status = response.status();
    (status, response.text().await.unwrap())
}

#[tokio::test]
async fn health_endpoints_follow_the_worker_through_its_phases() {
    let server = loopback().await;
    let worker = Worker::new(
        worker_config(&server),
        std::sync::Arc::new(ScriptedJob::succeeding_after(Duration::from_millis(600))),
    )
    .unwrap();
    let handle = worker.handle();
    let health = HealthServer::start("127.0.0.1:0".parse().unwrap(), handle.clone())
        .await
        .unwrap();
    let base = format!("http://{}", health.local_addr());
    let client = reqwest::Client::new();

    // Before the worker runs: alive, not ready.
    assert_eq!(get(&client, &base, "/").await.0, StatusCode::OK);
    assert_eq!(get(&client, &base, "/health/live").await.0, StatusCode::OK);
    assert_eq!(
        get(&client, &base, "/health/ready").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );

    let task = tokio::spawn(worker.run());
    assert!(handle.wait_registrations(1, WAIT).await);
    assert_eq!(get(&client, &base, "/health/ready").await.0, StatusCode::OK);

    let job = server.dispatch_job("room-health", "caller").await.unwrap();
    assert!(wait_for_status(&server, &job.job_id, JobStatus::JsRunning).await);
    let (status, body) = get(&client, &base, "/worker").await;
    assert_eq!(status, StatusCode::OK);
    let view: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(view["agent_name"], "voxguard-test");
    assert_eq!(view["active_jobs"], 1);
    assert_eq!(view["load"], 0.5);
    assert_eq!(view["status"], "available");
    assert_eq!(view["draining"], false);
    assert_eq!(view["connected"], true);
    assert_eq!(
        view["worker_id"],
        server.records().registrations[0].worker_id.as_str()
    );

    let (status, metrics) = get(&client, &base, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        metrics.contains("voxguard_worker_availability_seconds_bucket"),
        "{metrics}"
    );
    assert!(
        metrics.contains("voxguard_worker_sessions_active"),
        "{metrics}"
    );

    // Draining: still alive, no longer ready.
    handle.drain();
    assert_eq!(get(&client, &base, "/health/live").await.0, StatusCode::OK);
    let (status, body) = get(&client, &base, "/health/ready").await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "draining")
    );
    let (_, view) = get(&client, &base, "/worker").await;
    assert!(view.contains("\"status\":\"full\""), "{view}");

    assert!(
        tokio::time::timeout(WAIT, task)
            .await
            .unwrap()
            .unwrap()
            .is_ok()
    );
    let (_, metrics) = get(&client, &base, "/metrics").await;
    assert!(
        metrics.contains("voxguard_worker_jobs_total{status=\"success\"}"),
        "{metrics}"
    );
}

#[tokio::test]
async fn readiness_drops_while_the_link_is_down() {
    let server = loopback().await;
    let worker = registered_worker(&server, worker_config(&server), HoldUntilCallerLeaves).await;
    let health = HealthServer::start("127.0.0.1:0".parse().unwrap(), worker.handle.clone())
        .await
        .unwrap();
    let base = format!("http://{}", health.local_addr());
    let client = reqwest::Client::new();
    assert_eq!(get(&client, &base, "/health/ready").await.0, StatusCode::OK);
    server.set_answer_register(false);
    server.drop_connections();
    tokio::time::timeout(WAIT, async {
        while worker.handle.snapshot().connected {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap();
    assert_eq!(
        get(&client, &base, "/health/ready").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    server.set_answer_register(true);
    assert!(worker.handle.wait_registrations(2, WAIT).await);
    assert_eq!(get(&client, &base, "/health/ready").await.0, StatusCode::OK);
    worker.handle.shutdown_now();
}

#[tokio::test]
async fn a_drain_while_disconnected_still_lets_the_session_finish_and_returns_ok() {
    let server = loopback().await;
    let worker = registered_worker(
        &server,
        worker_config(&server),
        ScriptedJob::succeeding_after(Duration::from_millis(600)),
    )
    .await;
    let job = server.dispatch_job("room-offline", "caller").await.unwrap();
    assert!(wait_for_status(&server, &job.job_id, JobStatus::JsRunning).await);

    server.set_answer_register(false);
    server.drop_connections();
    let handle = worker.handle.clone();
    handle.drain();
    assert!(
        worker.finish(WAIT).await.is_ok(),
        "the drain completes even without a LiveKit connection"
    );
    assert_eq!(handle.snapshot().active_jobs, 0);
    assert!(!handle.snapshot().connected);
}

#[tokio::test]
async fn run_serves_health_on_the_configured_address_until_it_stops() {
    let server = loopback().await;
    let mut config = worker_config(&server);
    config.health_addr = Some("127.0.0.1:0".parse().unwrap());
    let worker = registered_worker(&server, config, HoldUntilCallerLeaves).await;
    let addr = worker
        .handle
        .health_addr()
        .expect("health server started by run");
    let client = reqwest::Client::new();
    let base = format!("http://{addr}");
    assert_eq!(get(&client, &base, "/health/ready").await.0, StatusCode::OK);

    worker.handle.drain();
    worker.finish(WAIT).await.unwrap();
    assert!(
        client
            .get(format!("{base}/health/live"))
            .send()
            .await
            .is_err(),
        "the health server stops with the worker"
    );
}
