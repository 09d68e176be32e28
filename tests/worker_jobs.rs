//! The worker against the LiveKit stand-in: registration, availability by
//! capacity, the job status flow, the room and termination.

mod support;

use std::time::Duration;

use livekit_protocol as proto;
use proto::JobStatus;
use support::*;
use voxguard::testbed::livekit::{DispatchError, LoopbackConfig};
use voxguard::worker::{HoldUntilCallerLeaves, ScriptedJob};

#[tokio::test]
async fn registration_carries_agent_name_version_room_type_and_explicit_permissions() {
    let server = loopback().await;
    let worker = registered_worker(&server, worker_config(&server), HoldUntilCallerLeaves).await;

    let records = server.records();
    let registration = &records.registrations[0];
    assert!(registration.worker_id.starts_with("AW_"));
    assert_eq!(registration.request.agent_name, "voxguard-test");
    assert_eq!(registration.request.version, "9.9.9-test");
    assert_eq!(registration.request.r#type, proto::JobType::JtRoom as i32);
    let permissions = registration
        .request
        .allowed_permissions
        .clone()
        .expect("permissions sent explicitly");
    assert!(permissions.can_publish && permissions.can_subscribe && permissions.can_publish_data);
    assert!(
        permissions.can_update_metadata,
        "needed to publish lk.agent.state"
    );
    assert_eq!(
        worker.handle.snapshot().worker_id.as_deref(),
        Some(registration.worker_id.as_str())
    );
    worker.handle.shutdown_now();
}

#[tokio::test]
async fn worker_pings_and_reports_load_periodically() {
    let server = loopback().await;
    let worker = registered_worker(&server, worker_config(&server), HoldUntilCallerLeaves).await;
    assert!(
        server
            .wait_until(WAIT, |r| r.pings >= 2 && r.worker_statuses.len() >= 2)
            .await
    );
    let (_, status) = server.records().worker_statuses.last().cloned().unwrap();
    assert_eq!(status.status, Some(proto::WorkerStatus::WsAvailable as i32));
    assert_eq!(status.load, 0.0);
    worker.handle.shutdown_now();
}

#[tokio::test]
async fn a_successful_job_reports_running_then_success() {
    let server = loopback().await;
    let worker = registered_worker(
        &server,
        worker_config(&server),
        ScriptedJob::succeeding_after(Duration::from_millis(100)),
    )
    .await;

    let job = server
        .dispatch_job("room-ok", "caller-1")
        .await
        .expect("job accepted");
    assert!(wait_for_status(&server, &job.job_id, JobStatus::JsSuccess).await);
    assert_eq!(
        server.job_statuses(&job.job_id),
        vec![JobStatus::JsRunning, JobStatus::JsSuccess]
    );
    assert!(
        server
            .records()
            .room_leaves
            .iter()
            .any(|(room, who)| room == "room-ok" && *who == job.participant_identity)
    );
    worker.handle.shutdown_now();
}

#[tokio::test]
async fn a_failing_job_reports_failed_with_the_error_text() {
    let server = loopback().await;
    let handler = ScriptedJob::failing_after(Duration::from_millis(50), "crm lookup exploded");
    let worker = registered_worker(&server, worker_config(&server), handler).await;

    let job = server.dispatch_job("room-fail", "caller-1").await.unwrap();
    assert!(wait_for_status(&server, &job.job_id, JobStatus::JsFailed).await);
    let records = server.records();
    let failed = records
        .job_updates
        .iter()
        .find(|(_, u)| u.job_id == job.job_id && u.status == JobStatus::JsFailed as i32);
    assert_eq!(failed.unwrap().1.error, "crm lookup exploded");
    assert_eq!(server.job_statuses(&job.job_id)[0], JobStatus::JsRunning);
    worker.handle.shutdown_now();
}

#[tokio::test]
async fn availability_is_declined_beyond_max_sessions_and_accepted_again_when_a_slot_frees() {
    let server = loopback().await;
    let mut config = worker_config(&server);
    config.max_sessions = 2;
    let worker = registered_worker(&server, config, HoldUntilCallerLeaves).await;

    let first = server.dispatch_job("room-a", "alice").await.unwrap();
    server.dispatch_job("room-b", "bob").await.unwrap();
    assert_eq!(
        server.dispatch_job("room-c", "carol").await,
        Err(DispatchError::Declined)
    );
    assert!(
        server
            .wait_until(WAIT, |r| r.worker_statuses.last().is_some_and(|(_, s)| s
                .status
                == Some(proto::WorkerStatus::WsFull as i32)))
            .await
    );

    // Alice hangs up once the agent is in her room (a caller who leaves
    // before the agent arrives is another story).
    assert!(
        server
            .wait_until(WAIT, |r| r
                .room_joins
                .iter()
                .any(|(room, _)| room == "room-a"))
            .await
    );
    assert!(server.participant_leaves("room-a", "alice"));
    assert!(wait_for_status(&server, &first.job_id, JobStatus::JsSuccess).await);
    tokio::time::timeout(WAIT, async {
        while worker.handle.snapshot().active_jobs != 1 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap();
    assert!(server.dispatch_job("room-d", "dave").await.is_ok());
    worker.handle.shutdown_now();
}

#[tokio::test]
async fn status_is_full_at_the_configured_load_threshold() {
    let server = loopback().await;
    let mut config = worker_config(&server);
    config.max_sessions = 4;
    config.load_full_threshold = 0.5;
    let worker = registered_worker(&server, config, HoldUntilCallerLeaves).await;
    server.dispatch_job("room-1", "a").await.unwrap();
    server.dispatch_job("room-2", "b").await.unwrap();
    let full = proto::WorkerStatus::WsFull as i32;
    assert!(
        server
            .wait_until(WAIT, |r| r
                .worker_statuses
                .last()
                .is_some_and(|(_, s)| s.status == Some(full) && s.load == 0.5))
            .await
    );
    worker.handle.shutdown_now();
}

#[tokio::test]
async fn the_agent_joins_the_room_publishes_its_state_and_ends_when_the_caller_leaves() {
    let server = loopback().await;
    let worker = registered_worker(&server, worker_config(&server), HoldUntilCallerLeaves).await;

    let job = server.dispatch_job("room-call", "caller-7").await.unwrap();
    let agent = job.participant_identity.clone();
    assert!(
        server
            .wait_until(WAIT, |r| r.attribute_updates.iter().any(
                |(_, who, k, v)| *who == agent && k == "lk.agent.state" && v == "listening"
            ))
            .await
    );
    let states: Vec<String> = server
        .records()
        .attribute_updates
        .iter()
        .map(|(_, _, _, v)| v.clone())
        .collect();
    assert_eq!(states, vec!["initializing", "listening"]);
    assert_eq!(
        server
            .participant_attributes("room-call", &agent)
            .get("lk.agent_name")
            .map(String::as_str),
        Some("voxguard-test")
    );
    // The status travels on the worker's connection, the attribute on the
    // room's: no order between them.
    assert!(wait_for_status(&server, &job.job_id, JobStatus::JsRunning).await);
    assert_eq!(server.job_statuses(&job.job_id), vec![JobStatus::JsRunning]);

    server.participant_leaves("room-call", "caller-7");
    assert!(wait_for_status(&server, &job.job_id, JobStatus::JsSuccess).await);
    assert!(
        server
            .wait_until(WAIT, |r| r.room_leaves.iter().any(|(_, who)| *who == agent))
            .await
    );
    worker.handle.shutdown_now();
}

#[tokio::test]
async fn job_termination_cancels_the_session_which_then_reports_success() {
    let server = loopback().await;
    let worker = registered_worker(
        &server,
        worker_config(&server),
        ScriptedJob::succeeding_after(Duration::from_secs(60)),
    )
    .await;
    let job = server.dispatch_job("room-term", "caller").await.unwrap();
    let agent = job.participant_identity.clone();
    assert!(
        server
            .wait_until(WAIT, |r| r
                .attribute_updates
                .iter()
                .any(|(_, who, _, v)| *who == agent && v == "listening"))
            .await
    );

    assert!(server.terminate_job(&job.job_id));
    assert!(wait_for_status(&server, &job.job_id, JobStatus::JsSuccess).await);
    assert_eq!(worker.handle.snapshot().active_jobs, 0);
    worker.handle.shutdown_now();
}

#[tokio::test]
async fn a_session_ignoring_termination_is_cut_off_after_the_grace_and_reported_failed() {
    let server = loopback().await;
    let stubborn = ScriptedJob {
        duration: Duration::from_secs(60),
        failure: None,
        honours_cancel: false,
    };
    let worker = registered_worker(&server, worker_config(&server), stubborn).await;
    let job = server
        .dispatch_job("room-stubborn", "caller")
        .await
        .unwrap();
    let agent = job.participant_identity.clone();
    assert!(
        server
            .wait_until(WAIT, |r| r
                .attribute_updates
                .iter()
                .any(|(_, who, _, v)| *who == agent && v == "listening"))
            .await
    );

    server.terminate_job(&job.job_id);
    assert!(wait_for_status(&server, &job.job_id, JobStatus::JsFailed).await);
    let records = server.records();
    let (_, failed) = records
        .job_updates
        .iter()
        .find(|(_, u)| u.status == JobStatus::JsFailed as i32)
        .unwrap();
    assert!(
        failed.error.contains("did not stop"),
        "error names the cause: {}",
        failed.error
    );
    worker.handle.shutdown_now();
}

#[tokio::test]
async fn a_late_availability_answer_loses_the_job() {
    let server = loopback_with(LoopbackConfig {
        availability_timeout: Duration::from_millis(300),
        ..LoopbackConfig::default()
    })
    .await;
    let worker = registered_worker(&server, worker_config(&server), HoldUntilCallerLeaves).await;
    // A silent server never reads the answer: to it, the worker answered too late.
    server.silence_connections();
    let outcome = server.dispatch_job("room-late", "caller").await;
    assert_eq!(
        outcome,
        Err(DispatchError::AvailabilityTimeout(Duration::from_millis(
            300
        )))
    );
    assert_eq!(server.records().lost_jobs, 1);
    assert!(server.job_statuses("AJ_late").is_empty());
    worker.handle.shutdown_now();
}
