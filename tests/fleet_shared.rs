//! The fleet's shared state, specified once and run against both backends:
//! the in-process store and a real Redis (required; see `fleet_support.rs`).

#[path = "fleet_support.rs"]
mod support;

use std::time::Duration;

use serde_json::json;
use support::*;
use voxguard::fleet::{BackendKind, SessionWrite};
use voxguard::resilience::{BudgetConfig, CallResult};

const MS: Duration = Duration::from_millis(1);

/// Run one async specification against both backends.
macro_rules! on_both_backends {
    ($spec:ident) => {
        mod $spec {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn memory() {
                super::$spec(BackendKind::Memory).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn redis() {
                super::$spec(BackendKind::Redis).await;
            }
        }
    };
}

async fn finish(kind: BackendKind, prefix: &str) {
    if kind == BackendKind::Redis {
        cleanup(prefix).await;
    }
}

on_both_backends!(a_trip_in_one_worker_fails_fast_in_the_other_within_100ms);
async fn a_trip_in_one_worker_fails_fast_in_the_other_within_100ms(kind: BackendKind) {
    let prefix = unique_prefix("trip");
    let (a, b) = pair(kind, &prefix).await;
    let (crm_a, crm_b) = (breaker("crm", 5000 * MS), breaker("crm", 5000 * MS));
    a.share_breaker(crm_a.clone());
    b.share_breaker(crm_b.clone());
    a.sync_now().await.expect("A joins the fleet");
    b.sync_now().await.expect("B joins the fleet");
    assert!(crm_b.try_acquire().is_ok(), "B starts closed");

    fail_three_times(&crm_a);
    let took = within(1000 * MS, || crm_b.try_acquire().is_err())
        .await
        .expect("B never failed fast after A tripped");
    assert!(took < 100 * MS, "B failed fast only after {took:?}");
    finish(kind, &prefix).await;
}

/// Trip A, wait until B is open too, then let both try calls every 2 ms for
/// `watch` after the open period, then record `verdict` on every probe (or
/// drop them unrecorded); returns the probes admitted on A and on B.
async fn probes_admitted(
    a_breaker: &voxguard::resilience::CircuitBreaker,
    b_breaker: &voxguard::resilience::CircuitBreaker,
    watch: Duration,
    verdict: Option<CallResult>,
) -> (u32, u32) {
    fail_three_times(a_breaker);
    within(1000 * MS, || b_breaker.try_acquire().is_err())
        .await
        .expect("B opens");
    let (mut on_a, mut on_b) = (0, 0);
    let start = std::time::Instant::now();
    let mut held = Vec::new();
    while start.elapsed() < watch {
        if let Ok(permit) = a_breaker.try_acquire() {
            on_a += 1;
            held.push(permit);
        }
        if let Ok(permit) = b_breaker.try_acquire() {
            on_b += 1;
            held.push(permit);
        }
        tokio::time::sleep(2 * MS).await;
    }
    for permit in held {
        if let Some(result) = verdict {
            permit.record(result, 5 * MS);
        }
    }
    (on_a, on_b)
}

on_both_backends!(after_the_open_period_the_fleet_sends_exactly_n_probes);
async fn after_the_open_period_the_fleet_sends_exactly_n_probes(kind: BackendKind) {
    let prefix = unique_prefix("probes");
    let (a, b) = pair(kind, &prefix).await;
    let (crm_a, crm_b) = (breaker("crm", 300 * MS), breaker("crm", 300 * MS));
    a.share_breaker(crm_a.clone());
    b.share_breaker(crm_b.clone());
    a.sync_now().await.expect("A joins");
    b.sync_now().await.expect("B joins");

    let (on_a, on_b) = probes_admitted(&crm_a, &crm_b, 1000 * MS, None).await;
    assert_eq!(
        on_a + on_b,
        crm_a.config().half_open_probes,
        "the fleet, not each worker, sends the probes (A sent {on_a}, B sent {on_b})"
    );
    finish(kind, &prefix).await;
}

on_both_backends!(successful_probes_close_the_breaker_on_every_worker);
async fn successful_probes_close_the_breaker_on_every_worker(kind: BackendKind) {
    let prefix = unique_prefix("close");
    let (a, b) = pair(kind, &prefix).await;
    let (crm_a, crm_b) = (breaker("crm", 300 * MS), breaker("crm", 300 * MS));
    a.share_breaker(crm_a.clone());
    b.share_breaker(crm_b.clone());
    a.sync_now().await.expect("A joins");
    b.sync_now().await.expect("B joins");

    probes_admitted(&crm_a, &crm_b, 800 * MS, Some(CallResult::Success)).await;
    let took = within(1000 * MS, || {
        crm_a.try_acquire().is_ok() && crm_b.try_acquire().is_ok()
    })
    .await
    .expect("both workers close after the probes succeed");
    assert!(
        took < 100 * MS,
        "closing reached both workers only after {took:?}"
    );
    finish(kind, &prefix).await;
}

on_both_backends!(the_fleet_window_opens_on_failures_no_single_worker_saw_enough_of);
async fn the_fleet_window_opens_on_failures_no_single_worker_saw_enough_of(kind: BackendKind) {
    let prefix = unique_prefix("window");
    let (a, b) = pair(kind, &prefix).await;
    let (crm_a, crm_b) = (breaker("crm", 5000 * MS), breaker("crm", 5000 * MS));
    a.share_breaker(crm_a.clone());
    b.share_breaker(crm_b.clone());

    // Each worker: 6 calls, every other one failing — below min_calls (10)
    // locally, but 6 failures in 12 calls (50%) across the fleet.
    for breaker in [&crm_a, &crm_b] {
        for i in 0..6 {
            let result = if i % 2 == 0 {
                CallResult::Failure
            } else {
                CallResult::Success
            };
            breaker
                .try_acquire()
                .expect("closed")
                .record(result, 5 * MS);
        }
    }
    assert!(
        crm_a.try_acquire().is_ok() && crm_b.try_acquire().is_ok(),
        "locally still closed"
    );
    let took = within(1000 * MS, || {
        crm_a.try_acquire().is_err() && crm_b.try_acquire().is_err()
    })
    .await;
    assert!(took.is_some(), "the fleet window never opened the breakers");
    finish(kind, &prefix).await;
}

on_both_backends!(retries_are_budgeted_across_the_fleet);
async fn retries_are_budgeted_across_the_fleet(kind: BackendKind) {
    let prefix = unique_prefix("budget");
    let (a, b) = pair(kind, &prefix).await;
    let config = BudgetConfig {
        retry_ratio: 0.2,
        min_retries_per_sec: 0,
        window: Duration::from_secs(10),
    };
    let (budget_a, budget_b) = (a.retry_budget("crm", config), b.retry_budget("crm", config));
    for _ in 0..10 {
        budget_a.deposit();
    }
    a.sync_now().await.expect("A syncs");
    b.sync_now().await.expect("B syncs");

    let (mut on_a, mut on_b) = (0, 0);
    let start = std::time::Instant::now();
    while start.elapsed() < 400 * MS {
        on_a += u32::from(budget_a.try_withdraw());
        on_b += u32::from(budget_b.try_withdraw());
        tokio::time::sleep(5 * MS).await;
    }
    assert_eq!(
        on_a + on_b,
        2,
        "20% of the fleet's 10 first attempts (A {on_a}, B {on_b})"
    );
    assert!(
        on_b >= 1,
        "B made no first attempts: its retries come from the fleet"
    );
    finish(kind, &prefix).await;
}

on_both_backends!(a_conversation_saved_by_a_dead_worker_resumes_on_another);
async fn a_conversation_saved_by_a_dead_worker_resumes_on_another(kind: BackendKind) {
    let prefix = unique_prefix("resume");
    let (a, b) = pair(kind, &prefix).await;
    let state = json!({"turn": 4, "transcript": ["hi", "looking you up"], "slots": {"email": "x"}});
    assert_eq!(
        a.save_session("room-r", &state, Duration::from_secs(60))
            .await,
        SessionWrite::Stored
    );
    drop(a);

    assert_eq!(b.load_session("room-r").await, Some(state));
    b.delete_session("room-r").await;
    assert_eq!(b.load_session("room-r").await, None, "deleted");
    finish(kind, &prefix).await;
}

on_both_backends!(a_saved_conversation_expires_after_its_ttl);
async fn a_saved_conversation_expires_after_its_ttl(kind: BackendKind) {
    let prefix = unique_prefix("ttl");
    let (a, b) = pair(kind, &prefix).await;
    a.save_session("room-t", &json!({"turn": 1}), 100 * MS)
        .await;
    assert!(b.load_session("room-t").await.is_some());
    tokio::time::sleep(250 * MS).await;
    assert_eq!(b.load_session("room-t").await, None);
    finish(kind, &prefix).await;
}

on_both_backends!(a_breaker_already_open_when_shared_opens_the_fleet);
async fn a_breaker_already_open_when_shared_opens_the_fleet(kind: BackendKind) {
    let prefix = unique_prefix("join");
    let (a, b) = pair(kind, &prefix).await;
    let (crm_a, crm_b) = (breaker("crm", 5000 * MS), breaker("crm", 5000 * MS));
    b.share_breaker(crm_b.clone());
    b.sync_now().await.expect("B joins");
    fail_three_times(&crm_a);

    a.share_breaker(crm_a.clone());
    let opened = within(1000 * MS, || crm_b.try_acquire().is_err()).await;
    assert!(
        opened.is_some(),
        "A joined with an open breaker: the fleet opens"
    );
    assert!(crm_a.try_acquire().is_err(), "and A stays open");
    finish(kind, &prefix).await;
}
