//! A Redis outage costs no caller turn. Each test starts a `redis-server` of
//! its own and pauses it with SIGSTOP, the way a stalled Redis (a long
//! fork, a VM pause, a network partition) looks to a worker: connections stay
//! open, requests queue unanswered, and everything queued runs when it
//! resumes. While it is paused the worker runs alone; when it is back, what
//! the worker learned alone stands and nothing queued during the pause
//! overrides it.

#[path = "fleet_support.rs"]
mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::*;
use voxguard::fleet::{BackendKind, Fleet, FleetConfig, SessionWrite};
use voxguard::resilience::{BreakerEvent, BreakerState, BudgetConfig, CallResult};

/// A worker's fleet on the test's own Redis, with its own key prefix.
fn own_fleet(redis: &OwnRedis, test: &str) -> (Fleet, String) {
    let prefix = unique_prefix(test);
    let fleet = Fleet::new(FleetConfig {
        url: redis.url.clone(),
        ..config(BackendKind::Redis, &prefix)
    })
    .expect("valid URL");
    (fleet, prefix)
}

/// Every transition of `breaker` from now on, with when it happened.
fn transitions(
    breaker: &voxguard::resilience::CircuitBreaker,
) -> Arc<Mutex<Vec<(Instant, BreakerState, String)>>> {
    let seen: Arc<Mutex<Vec<(Instant, BreakerState, String)>>> = Arc::default();
    let sink = seen.clone();
    breaker.subscribe(Arc::new(move |event: &BreakerEvent| {
        sink.lock()
            .unwrap()
            .push((Instant::now(), event.to, format!("{:?}", event.reason)));
    }));
    seen
}

/// The fleet's shared state of the `crm` breaker, read from Redis.
async fn shared_state(redis: &OwnRedis, prefix: &str) -> Option<String> {
    let mut connection = redis.connection().await;
    redis::cmd("HGET")
        .arg(format!("{prefix}:breaker:crm"))
        .arg("state")
        .query_async(&mut connection)
        .await
        .expect("HGET")
}

async fn rejoined(fleet: &Fleet, within_limit: Duration) -> Duration {
    within(within_limit, || fleet.health().connected)
        .await
        .unwrap_or_else(|| panic!("not rejoined within {within_limit:?}: {:?}", fleet.health()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trip_made_while_redis_is_paused_keeps_its_own_open_period_when_the_worker_rejoins() {
    let redis = OwnRedis::start().await;
    let (fleet, _) = own_fleet(&redis, "trip-paused");
    let open_base = Duration::from_secs(3);
    let crm = breaker("crm", open_base);
    fleet.share_breaker(crm.clone());
    fleet.sync_now().await.expect("Redis answers");

    redis.pause();
    let tripped = Instant::now();
    fail_three_times(&crm);
    assert_eq!(crm.state(), BreakerState::Open);
    tokio::time::sleep(Duration::from_millis(800)).await;
    redis.resume();
    rejoined(&fleet, Duration::from_secs(6)).await;
    within(Duration::from_secs(10), || crm.try_acquire().is_ok())
        .await
        .expect("the breaker lets a probe through");

    let waited = tripped.elapsed();
    assert!(
        waited < open_base + Duration::from_millis(600),
        "the service was failed fast for {waited:?} after a trip whose open period is {open_base:?}: \
         rejoining restarted the open period"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_breaker_that_recovered_while_redis_was_paused_is_not_reopened_when_the_worker_rejoins() {
    let redis = OwnRedis::start().await;
    let (fleet, prefix) = own_fleet(&redis, "recovered-paused");
    let crm = breaker("crm", Duration::from_millis(400));
    fleet.share_breaker(crm.clone());
    fleet.sync_now().await.expect("Redis answers");
    fail_three_times(&crm);
    fleet.sync_now().await.expect("the trip is published");

    redis.pause();
    // Alone, the worker probes the service once the open period is over and
    // closes its breaker: the service is back.
    within(Duration::from_secs(5), || {
        if let Ok(permit) = crm.try_acquire() {
            permit.record(CallResult::Success, Duration::from_millis(5));
        }
        crm.state() == BreakerState::Closed
    })
    .await
    .expect("the breaker closes on its own probes");
    let seen = transitions(&crm);
    tokio::time::sleep(Duration::from_millis(500)).await;
    redis.resume();
    rejoined(&fleet, Duration::from_secs(6)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let after: Vec<_> = seen.lock().unwrap().clone();
    assert!(
        after.is_empty(),
        "a recovered breaker was moved by the fleet on rejoin: {after:?}"
    );
    assert!(crm.try_acquire().is_ok());
    assert_eq!(
        shared_state(&redis, &prefix).await.as_deref(),
        Some("closed"),
        "the fleet learned that the service recovered"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_that_redis_runs_after_the_worker_gave_up_on_it_changes_nothing() {
    let redis = OwnRedis::start().await;
    let (fleet, prefix) = own_fleet(&redis, "late-sync");
    let crm = breaker("crm", Duration::from_millis(300));
    fleet.share_breaker(crm.clone());
    fleet.sync_now().await.expect("Redis answers");

    redis.pause();
    // The trip is sent at once and waits, unanswered, in Redis' socket.
    fail_three_times(&crm);
    within(Duration::from_secs(5), || {
        if let Ok(permit) = crm.try_acquire() {
            permit.record(CallResult::Success, Duration::from_millis(5));
        }
        crm.state() == BreakerState::Closed
    })
    .await
    .expect("the breaker recovers alone");
    let seen = transitions(&crm);
    redis.resume();
    rejoined(&fleet, Duration::from_secs(6)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    assert_ne!(
        shared_state(&redis, &prefix).await.as_deref(),
        Some("open"),
        "the trip the worker gave up on was applied when Redis resumed"
    );
    let after: Vec<_> = seen.lock().unwrap().clone();
    assert!(after.is_empty(), "{after:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_redis_is_paused_retries_are_judged_by_the_local_budget_at_once() {
    let redis = OwnRedis::start().await;
    let (fleet, _) = own_fleet(&redis, "budget-paused");
    let budget = fleet.retry_budget(
        "crm",
        BudgetConfig {
            retry_ratio: 0.2,
            min_retries_per_sec: 5,
            window: Duration::from_secs(10),
        },
    );
    fleet.sync_now().await.expect("Redis answers");
    assert!(budget.is_shared());

    redis.pause();
    let local = within(Duration::from_secs(2), || !budget.is_shared()).await;

    redis.resume();
    let local = local.expect("the budget stays on a fleet grant nobody can renew");
    assert!(
        local < Duration::from_millis(300),
        "retries waited {local:?} on a fleet grant that could not be renewed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_call_after_redis_resumes_reaches_it_though_a_connection_attempt_gave_up_during_the_pause()
 {
    let redis = OwnRedis::start().await;
    // Nothing shared: the only Redis calls are the test's own.
    let (fleet, _) = own_fleet(&redis, "reconnect");
    let state = serde_json::json!({ "turn": 1 });
    let ttl = Duration::from_secs(60);
    assert_eq!(
        fleet.save_session("room", &state, ttl).await,
        SessionWrite::Stored
    );

    redis.pause();
    // The first call times out on the open connection; the second starts a
    // new connection attempt, which gives up (after 2 s) while Redis is
    // still stopped. Two failures leave the Redis breaker closed.
    assert_eq!(fleet.load_session("room").await, None);
    assert_eq!(fleet.load_session("room").await, None);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    redis.resume();

    assert_eq!(
        fleet.save_session("room", &state, ttl).await,
        SessionWrite::Stored,
        "the call failed on the attempt that gave up while Redis was stopped"
    );
}
