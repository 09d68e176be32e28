//! The fleet's shared state, specified once and run against both backends:
//! the in-process store and a real Redis (required; see `fleet_support.rs`).

#[path = "fleet_support.rs"]
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::time::Duration;

use serde_json::json;
use support::*;
use voxguard::fleet::{BackendKind, FleetConfig, SessionWrite};
use voxguard::resilience::{
    BudgetConfig, CallError, CallResult, Deadline, Guard, GuardConfig, Outcome, Rejection,
    Retryability,
};

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

/// A guard for "crm" that spends its retries from `fleet`'s shared budget
/// and sleeps only 1-2 ms between attempts.
fn fleet_guard(fleet: &voxguard::fleet::Fleet, budget: BudgetConfig) -> Arc<Guard> {
    let mut config = GuardConfig::for_service("crm");
    config.retry.backoff.base = MS;
    config.retry.backoff.cap = 2 * MS;
    Guard::builder(config)
        .seed(3)
        .retry_budget(fleet.retry_budget("crm", budget))
        .build()
        .expect("valid config")
}

/// One guarded lookup whose first attempt fails with a 503.
async fn lookup_failing_once(guard: &Guard) -> Outcome<&'static str> {
    let calls = AtomicU32::new(0);
    guard
        .call(Deadline::after(3500 * MS), Retryability::Transient, |_| {
            let first = calls.fetch_add(1, SeqCst) == 0;
            async move {
                if first {
                    Err(CallError::from_status(503, None, None))
                } else {
                    Ok("Ada")
                }
            }
        })
        .await
}

on_both_backends!(guards_on_two_workers_spend_one_fleet_retry_budget);
async fn guards_on_two_workers_spend_one_fleet_retry_budget(kind: BackendKind) {
    let prefix = unique_prefix("guard-budget");
    // Rounds run only when asked for here (the task's next tick is 1 s away),
    // so grants move exactly as the test says.
    let (a, b) = pair_with(FleetConfig {
        sync_interval: 1000 * MS,
        ..config(kind, &prefix)
    })
    .await;
    let budget = BudgetConfig {
        retry_ratio: 0.1,
        min_retries_per_sec: 0,
        window: Duration::from_secs(10),
    };
    let (guard_a, guard_b) = (fleet_guard(&a, budget), fleet_guard(&b, budget));
    tokio::time::sleep(20 * MS).await; // let the task's start-up rounds pass
    for _ in 0..30 {
        let outcome = guard_a
            .call(
                Deadline::after(3500 * MS),
                Retryability::Transient,
                |_| async { Ok::<_, CallError>("Ada") },
            )
            .await;
        assert_eq!(outcome.result, Ok("Ada"));
    }
    a.sync_now().await.expect("A syncs");
    b.sync_now().await.expect("B syncs");

    let on_b = lookup_failing_once(&guard_b).await;
    assert_eq!(on_b.result, Ok("Ada"));
    assert!(
        on_b.retried(),
        "B made one first attempt of its own: its retry was paid by A's 30"
    );

    let mut retried_on_a = 0;
    let refused_on_a = loop {
        a.sync_now().await.expect("A syncs");
        let outcome = lookup_failing_once(&guard_a).await;
        if outcome.result.is_ok() {
            retried_on_a += 1;
            assert!(retried_on_a <= 3, "A retried past the fleet's budget");
            continue;
        }
        break outcome;
    };
    assert_eq!(
        refused_on_a.result,
        Err(CallError::Rejected(Rejection::BudgetExhausted))
    );
    assert_eq!(
        retried_on_a, 2,
        "10% of the fleet's 30 first attempts is 3 retries, B took 1"
    );

    b.sync_now().await.expect("B syncs");
    let refused_on_b = lookup_failing_once(&guard_b).await;
    assert_eq!(
        refused_on_b.result,
        Err(CallError::Rejected(Rejection::BudgetExhausted)),
        "A's retries spent what was left of the fleet's budget"
    );
    assert_eq!(refused_on_b.attempts.len(), 1, "no retry ran on B");
    assert_eq!(guard_b.budget_source().available(), 0);
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
