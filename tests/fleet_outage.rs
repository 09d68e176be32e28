//! Redis is a risky dependency like any other: when it hangs or dies, a
//! worker's turn is never delayed beyond `redis_timeout`, its local breakers
//! keep working alone, and it rejoins the fleet's state once Redis is back.
//! Worker A reaches Redis through a proxy the test controls; B directly.

#[path = "fleet_support.rs"]
mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::*;
use voxguard::fleet::{BackendKind, Fleet, FleetConfig, SessionWrite};
use voxguard::resilience::BreakerState;

const MS: Duration = Duration::from_millis(1);
/// Scheduling slack on a busy 2-core machine, on top of `redis_timeout`.
const MARGIN: Duration = Duration::from_millis(40);

async fn a_behind_proxy_and_b_direct(prefix: &str) -> (RedisProxy, Fleet, Fleet) {
    require_redis().await;
    let proxy = RedisProxy::start().await;
    let a = Fleet::new(FleetConfig {
        url: proxy.url.clone(),
        ..config(BackendKind::Redis, prefix)
    })
    .expect("valid URL");
    let b = Fleet::new(config(BackendKind::Redis, prefix)).expect("valid URL");
    (proxy, a, b)
}

/// How long one call took.
async fn timed<T>(call: impl Future<Output = T>) -> (T, Duration) {
    let start = Instant::now();
    let value = call.await;
    (value, start.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_redis_hangs_turn_path_calls_finish_within_redis_timeout_and_breakers_work_alone() {
    let prefix = unique_prefix("hang");
    let (proxy, a, b) = a_behind_proxy_and_b_direct(&prefix).await;
    let (crm_a, crm_b) = (breaker("crm", 5000 * MS), breaker("crm", 5000 * MS));
    a.share_breaker(crm_a.clone());
    b.share_breaker(crm_b.clone());
    a.sync_now().await.expect("A joins");
    b.sync_now().await.expect("B joins");
    let limit = a.config().redis_timeout + MARGIN;

    proxy.set(ProxyMode::Stall);
    let mut slowest = Duration::ZERO;
    let mut writes = Vec::new();
    let start = Instant::now();
    while start.elapsed() < 1000 * MS {
        let state = json!({"turn": writes.len()});
        let (write, saved) = timed(a.save_session("room-h", &state, Duration::from_secs(60))).await;
        let (loaded, load) = timed(a.load_session("room-h")).await;
        let (_, admit) = timed(async { crm_a.try_acquire().is_ok() }).await;
        slowest = slowest.max(saved).max(load).max(admit);
        assert_eq!(loaded, Some(state), "A reads back its own queued write");
        writes.push(write);
        tokio::time::sleep(10 * MS).await;
    }
    assert!(
        slowest <= limit,
        "a turn-path call took {slowest:?} (limit {limit:?})"
    );
    assert!(
        writes.iter().all(|w| *w == SessionWrite::Queued),
        "Redis hangs: writes queue"
    );

    fail_three_times(&crm_a);
    assert!(
        crm_a.try_acquire().is_err(),
        "A's local breaker trips on its own"
    );
    tokio::time::sleep(200 * MS).await;
    assert!(
        crm_b.try_acquire().is_ok(),
        "B cannot hear about it while A is cut off"
    );

    let health = a.health();
    assert!(!health.connected);
    assert_eq!(health.redis_breaker, BreakerState::Open, "{health:?}");
    assert_eq!(health.queued_sessions, 1, "one queued write per room");
    assert!(health.errors > 0);
    cleanup(&prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_redis_comes_back_a_worker_rejoins_republishes_and_shares_again() {
    let prefix = unique_prefix("rejoin");
    let (proxy, a, b) = a_behind_proxy_and_b_direct(&prefix).await;
    let (crm_a, crm_b) = (breaker("crm", 5000 * MS), breaker("crm", 5000 * MS));
    let (calendar_a, calendar_b) = (
        breaker("calendar", 5000 * MS),
        breaker("calendar", 5000 * MS),
    );
    for (fleet, crm, calendar) in [(&a, &crm_a, &calendar_a), (&b, &crm_b, &calendar_b)] {
        fleet.share_breaker(crm.clone());
        fleet.share_breaker(calendar.clone());
        fleet.sync_now().await.expect("joins");
    }

    proxy.set(ProxyMode::Down);
    fail_three_times(&crm_a);
    let state = json!({"turn": 7});
    let (write, took) = timed(a.save_session("room-q", &state, Duration::from_secs(60))).await;
    assert_eq!(write, SessionWrite::Queued);
    assert!(
        took <= a.config().redis_timeout + MARGIN,
        "save took {took:?}"
    );
    tokio::time::sleep(500 * MS).await;
    assert!(
        crm_b.try_acquire().is_ok(),
        "B has not heard of A's trip yet"
    );
    assert_eq!(
        b.load_session("room-q").await,
        None,
        "the write is still queued in A"
    );

    proxy.set(ProxyMode::Pass);
    let rejoined = within(Duration::from_secs(10), || a.health().connected).await;
    assert!(rejoined.is_some(), "A never reconnected: {:?}", a.health());

    let republished = within(1000 * MS, || crm_b.try_acquire().is_err()).await;
    assert!(
        republished.is_some(),
        "A's outage-time trip reaches B after rejoining"
    );
    assert_eq!(
        b.load_session("room-q").await,
        Some(state),
        "the queued write was flushed"
    );

    fail_three_times(&calendar_a);
    let took = within(1000 * MS, || calendar_b.try_acquire().is_err())
        .await
        .expect("a trip after recovery reaches B");
    assert!(took < 100 * MS, "B failed fast only after {took:?}");
    cleanup(&prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_pointed_at_a_dead_port_starts_and_answers_at_once() {
    let fleet = Fleet::new(FleetConfig::redis("redis://127.0.0.1:1")).expect("a valid URL");
    let limit = fleet.config().redis_timeout + MARGIN;
    let (loaded, took) = timed(fleet.load_session("room-x")).await;
    assert_eq!(loaded, None);
    assert!(took <= limit, "load took {took:?}");
    let (write, took) = timed(fleet.save_session("room-x", &json!(1), 60_000 * MS)).await;
    assert_eq!(write, SessionWrite::Queued);
    assert!(took <= limit, "save took {took:?}");
    assert!(fleet.sync_now().await.is_err());
    assert!(!fleet.health().connected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_whose_handshake_outlasts_redis_timeout_is_still_joined() {
    let prefix = unique_prefix("slow-handshake");
    require_redis().await;
    let handshake = 300 * MS;
    let proxy = RedisProxy::start_with_handshake_delay(handshake).await;
    let config = FleetConfig {
        url: proxy.url.clone(),
        ..config(BackendKind::Redis, &prefix)
    };
    assert!(
        config.redis_timeout < handshake,
        "the handshake must outlast one operation's timeout for this test to mean anything"
    );
    let fleet = Fleet::new(config).expect("valid URL");
    fleet.share_breaker(breaker("crm", 5000 * MS));

    let joined = within(Duration::from_secs(5), || fleet.health().connected).await;
    assert!(
        joined.is_some(),
        "a connection slower than redis_timeout is finished in the background and used: {:?}",
        fleet.health()
    );
    cleanup(&prefix).await;
}
