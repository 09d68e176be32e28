//! The Guard end to end, on tokio's paused clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::time::sleep;
use voxguard::resilience::{
    BackoffKind, BreakerState, BudgetConfig, CallError, Clock, Deadline, ErrorKind, Guard,
    GuardConfig, Outcome, Rejection, RetryBudget, Retryability,
};

const MS: Duration = Duration::from_millis(1);

fn config() -> GuardConfig {
    GuardConfig::for_service("crm")
}

/// A backoff that always sleeps exactly 100 ms (decorrelated with base = cap).
fn fixed_backoff_config() -> GuardConfig {
    let mut config = config();
    config.retry.backoff.kind = BackoffKind::Decorrelated;
    config.retry.backoff.cap = config.retry.backoff.base;
    config
}

fn guard(config: GuardConfig) -> Arc<Guard> {
    Guard::builder(config)
        .seed(42)
        .build()
        .expect("valid config")
}

fn unavailable() -> CallError {
    CallError::from_status(503, None, None)
}

fn kinds<T>(outcome: &Outcome<T>) -> Vec<Option<ErrorKind>> {
    outcome.attempts.iter().map(|a| a.error).collect()
}

/// An operation that answers `script[attempt - 1]` after `latency`, counting its attempts.
async fn scripted(
    calls: &AtomicU32,
    latency: Duration,
    script: &[Result<u32, CallError>],
) -> Result<u32, CallError> {
    let n = calls.fetch_add(1, Ordering::SeqCst) as usize;
    sleep(latency).await;
    script[n.min(script.len() - 1)].clone()
}

#[tokio::test(start_paused = true)]
async fn a_success_is_one_attempt_at_offset_zero() {
    let outcome = guard(config())
        .call(
            Deadline::after(3500 * MS),
            Retryability::Transient,
            |_| async { Ok::<_, CallError>(7) },
        )
        .await;
    assert_eq!(outcome.result, Ok(7));
    assert_eq!(outcome.attempts.len(), 1);
    assert_eq!(outcome.attempts[0].started, Duration::ZERO);
    assert!(!outcome.retried());
}

#[tokio::test(start_paused = true)]
async fn a_transient_failure_is_retried_after_a_jittered_backoff() {
    let calls = AtomicU32::new(0);
    let script = [Err(unavailable()), Ok(1)];
    let outcome = guard(config())
        .call(Deadline::after(3500 * MS), Retryability::Transient, |_| {
            scripted(&calls, 50 * MS, &script)
        })
        .await;
    assert_eq!(outcome.result, Ok(1));
    assert_eq!(kinds(&outcome), vec![Some(ErrorKind::Status), None]);
    let gap = outcome.attempts[1].started - outcome.attempts[0].duration;
    assert!(
        gap <= 100 * MS,
        "first full-jitter sleep is at most base: {gap:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_permanent_error_is_not_retried() {
    let calls = AtomicU32::new(0);
    let script = [Err(CallError::Decode {
        detail: "not json".into(),
    })];
    let outcome = guard(config())
        .call(Deadline::after(3500 * MS), Retryability::Transient, |_| {
            scripted(&calls, 10 * MS, &script)
        })
        .await;
    assert_eq!(outcome.result.unwrap_err().kind(), ErrorKind::Decode);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn attempts_stop_at_max_attempts() {
    let calls = AtomicU32::new(0);
    let script = [Err(unavailable())];
    let outcome = guard(config())
        .call(Deadline::after(3500 * MS), Retryability::Transient, |_| {
            scripted(&calls, 10 * MS, &script)
        })
        .await;
    assert_eq!(outcome.result, Err(unavailable()));
    assert_eq!(outcome.attempts.len(), 2);
}

#[tokio::test(start_paused = true)]
async fn unambiguous_calls_retry_a_refused_connection_but_not_a_timeout() {
    let refused = CallError::Connect {
        detail: "refused".into(),
        sent: false,
    };
    let calls = AtomicU32::new(0);
    let script = [Err(refused), Ok(1)];
    let outcome = guard(config())
        .call(
            Deadline::after(3500 * MS),
            Retryability::Unambiguous,
            |_| scripted(&calls, 10 * MS, &script),
        )
        .await;
    assert_eq!(outcome.result, Ok(1));

    let outcome = guard(config())
        .call(
            Deadline::after(3500 * MS),
            Retryability::Unambiguous,
            |_| std::future::pending::<Result<(), CallError>>(),
        )
        .await;
    assert_eq!(outcome.result, Err(CallError::Timeout { after: 1000 * MS }));
    assert_eq!(
        outcome.attempts.len(),
        1,
        "a timed-out write may have happened: never retried"
    );
}

#[tokio::test(start_paused = true)]
async fn never_retryable_calls_make_one_attempt() {
    let calls = AtomicU32::new(0);
    let script = [Err(unavailable()), Ok(1)];
    let outcome = guard(config())
        .call(Deadline::after(3500 * MS), Retryability::Never, |_| {
            scripted(&calls, 10 * MS, &script)
        })
        .await;
    assert_eq!(outcome.result, Err(unavailable()));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_that_fits_is_honoured_exactly() {
    let calls = AtomicU32::new(0);
    let script = [
        Err(CallError::RateLimited {
            retry_after: Some(700 * MS),
        }),
        Ok(1),
    ];
    let outcome = guard(config())
        .call(Deadline::after(3500 * MS), Retryability::Transient, |_| {
            scripted(&calls, 30 * MS, &script)
        })
        .await;
    assert_eq!(outcome.result, Ok(1));
    assert_eq!(outcome.attempts[1].started, 30 * MS + 700 * MS);
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_that_does_not_fit_fails_fast_as_rate_limited() {
    let calls = AtomicU32::new(0);
    let limited = CallError::RateLimited {
        retry_after: Some(2 * 1000 * MS),
    };
    let script = [Err(limited.clone())];
    let outcome = guard(config())
        .call(Deadline::after(1500 * MS), Retryability::Transient, |_| {
            scripted(&calls, 30 * MS, &script)
        })
        .await;
    assert_eq!(outcome.result, Err(limited));
    assert_eq!(outcome.elapsed, 30 * MS, "no sleep was started");
}

#[tokio::test(start_paused = true)]
async fn no_attempt_starts_when_a_minimal_useful_attempt_does_not_fit() {
    let calls = AtomicU32::new(0);
    let outcome = guard(config())
        .call(Deadline::after(99 * MS), Retryability::Transient, |_| {
            scripted(&calls, MS, &[Ok(1)])
        })
        .await;
    assert_eq!(
        outcome.result,
        Err(CallError::Rejected(Rejection::Deadline))
    );
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    assert!(outcome.attempts.is_empty());
}

#[tokio::test(start_paused = true)]
async fn an_attempt_timeout_is_clamped_to_the_deadline() {
    let outcome = guard(config())
        .call(
            Deadline::after(600 * MS),
            Retryability::Transient,
            |ctx| async move {
                assert_eq!(ctx.timeout, 600 * MS);
                std::future::pending::<Result<(), CallError>>().await
            },
        )
        .await;
    assert_eq!(outcome.result, Err(CallError::Timeout { after: 600 * MS }));
    assert_eq!(outcome.elapsed, 600 * MS);
}

#[tokio::test(start_paused = true)]
async fn no_sleep_starts_unless_sleep_plus_a_minimal_attempt_fits() {
    let hang = |_| std::future::pending::<Result<(), CallError>>();
    let short = guard(fixed_backoff_config())
        .call(Deadline::after(1199 * MS), Retryability::Transient, hang)
        .await;
    assert_eq!(
        short.attempts.len(),
        1,
        "1000 ms timeout + 100 ms sleep + 100 ms attempt > 1199 ms"
    );
    assert_eq!(short.elapsed, 1000 * MS);

    let fits = guard(fixed_backoff_config())
        .call(Deadline::after(1200 * MS), Retryability::Transient, hang)
        .await;
    assert_eq!(fits.attempts.len(), 2);
    assert_eq!(fits.attempts[1].started, 1100 * MS);
    assert_eq!(
        fits.attempts[1].duration,
        100 * MS,
        "the second attempt is clamped to the deadline"
    );
    assert_eq!(fits.elapsed, 1200 * MS);
}

#[tokio::test(start_paused = true)]
async fn an_open_breaker_rejects_fast_without_calling() {
    let guard = guard(config());
    guard.breaker().force_open("test");
    let calls = AtomicU32::new(0);
    let outcome = guard
        .call(Deadline::after(3500 * MS), Retryability::Transient, |_| {
            scripted(&calls, MS, &[Ok(1)])
        })
        .await;
    assert_eq!(
        outcome.result,
        Err(CallError::Rejected(Rejection::BreakerOpen))
    );
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn a_breaker_opened_between_attempts_stops_the_retry() {
    let guard = guard(config());
    let breaker = guard.breaker().clone();
    let outcome = guard
        .call(Deadline::after(3500 * MS), Retryability::Transient, |_| {
            breaker.force_open("opened elsewhere");
            async { Err::<(), _>(unavailable()) }
        })
        .await;
    assert_eq!(
        outcome.result,
        Err(CallError::Rejected(Rejection::BreakerOpen))
    );
    assert_eq!(outcome.attempts.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn one_request_s_own_retries_cannot_open_its_breaker() {
    let guard = guard(config());
    let outcome = guard
        .call(
            Deadline::after(3500 * MS),
            Retryability::Transient,
            |_| async { Err::<(), _>(unavailable()) },
        )
        .await;
    assert_eq!(outcome.attempts.len(), 2);
    assert_eq!(guard.breaker().state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn slow_successes_are_reported_to_the_breaker_with_their_duration() {
    let mut config = config();
    config.retry.attempt_timeout = 3000 * MS;
    config.breaker.slow_call_threshold = 100 * MS;
    config.breaker.min_calls = 3;
    let guard = guard(config);
    for _ in 0..3 {
        let outcome = guard
            .call(
                Deadline::after(3500 * MS),
                Retryability::Transient,
                |_| async {
                    sleep(200 * MS).await;
                    Ok::<_, CallError>(())
                },
            )
            .await;
        assert!(outcome.result.is_ok());
    }
    assert_eq!(guard.breaker().state(), BreakerState::Open);
}

#[tokio::test(start_paused = true)]
async fn a_full_bulkhead_rejects_fast_and_a_finished_call_frees_its_slot() {
    let mut config = config();
    config.bulkhead_size = 1;
    let guard = guard(config);
    let holder = tokio::spawn({
        let guard = guard.clone();
        async move {
            guard
                .call(
                    Deadline::after(3500 * MS),
                    Retryability::Transient,
                    |_| async {
                        sleep(500 * MS).await;
                        Ok::<_, CallError>(())
                    },
                )
                .await
        }
    });
    tokio::task::yield_now().await;
    let rejected = guard
        .call(
            Deadline::after(3500 * MS),
            Retryability::Transient,
            |_| async { Ok::<_, CallError>(()) },
        )
        .await;
    assert_eq!(
        rejected.result,
        Err(CallError::Rejected(Rejection::BulkheadFull))
    );
    assert!(holder.await.unwrap().result.is_ok());
    assert_eq!(guard.bulkhead().in_flight(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_call_frees_its_bulkhead_slot() {
    let guard = guard(config());
    let call = guard.call(Deadline::after(3500 * MS), Retryability::Transient, |_| {
        std::future::pending::<Result<(), _>>()
    });
    assert!(tokio::time::timeout(10 * MS, call).await.is_err());
    assert_eq!(guard.bulkhead().in_flight(), 0);
}

#[tokio::test(start_paused = true)]
async fn an_exhausted_retry_budget_refuses_the_retry() {
    let mut config = config();
    config.budget.retry_ratio = 0.0;
    config.budget.min_retries_per_sec = 0;
    let guard = guard(config);
    let outcome = guard
        .call(
            Deadline::after(3500 * MS),
            Retryability::Transient,
            |_| async { Err::<(), _>(unavailable()) },
        )
        .await;
    assert_eq!(
        outcome.result,
        Err(CallError::Rejected(Rejection::BudgetExhausted))
    );
    assert_eq!(outcome.attempts.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn the_same_seed_gives_the_same_retry_timeline() {
    let run = || async {
        let outcome = guard(config())
            .call(
                Deadline::after(3500 * MS),
                Retryability::Transient,
                |_| async { Err::<(), _>(unavailable()) },
            )
            .await;
        outcome.attempts[1].started
    };
    assert_eq!(run().await, run().await);
}

#[test]
fn an_invalid_config_is_refused_by_the_builder() {
    let mut config = config();
    config.breaker.consecutive_failures = 2;
    let error = Guard::builder(config).build().err().expect("refused");
    assert_eq!(error.field, "breaker.consecutive_failures");
}

#[test]
fn a_guarded_call_can_be_spawned_on_a_multi_thread_runtime() {
    fn assert_send<T: Send>(_: &T) {}
    let guard = guard(config());
    let call = guard.call(
        Deadline::after(3500 * MS),
        Retryability::Transient,
        |_| async { Ok::<_, CallError>(1) },
    );
    assert_send(&call);
}

/// Ten calls through `guard` that succeed at once.
async fn ten_successes(guard: &Guard) {
    for _ in 0..10 {
        let outcome = guard
            .call(
                Deadline::after(3500 * MS),
                Retryability::Transient,
                |_| async { Ok::<_, CallError>(1) },
            )
            .await;
        assert_eq!(outcome.result, Ok(1));
    }
}

/// A guard with a 100 ms backoff that spends from `budget`.
fn guard_on(budget: &Arc<RetryBudget>) -> Arc<Guard> {
    Guard::builder(fixed_backoff_config())
        .seed(42)
        .retry_budget(budget.clone())
        .build()
        .expect("valid config")
}

fn shared_budget() -> Arc<RetryBudget> {
    let config = BudgetConfig {
        retry_ratio: 0.2,
        min_retries_per_sec: 0,
        window: Duration::from_secs(10),
    };
    Arc::new(RetryBudget::new(config, Clock::tokio()))
}

#[tokio::test(start_paused = true)]
async fn a_guard_given_a_budget_deposits_its_first_attempts_there() {
    let shared = shared_budget();
    let guard = guard_on(&shared);
    ten_successes(&guard).await;
    assert_eq!(shared.available(), 2, "20% of 10 first attempts");
    assert_eq!(guard.budget_source().available(), 2);
    assert_eq!(
        guard.budget().available(),
        guard.config().budget.floor_per_window(),
        "the private budget saw none of them"
    );
}

#[tokio::test(start_paused = true)]
async fn guards_sharing_a_budget_spend_the_same_retries() {
    let shared = shared_budget();
    let (guard_a, guard_b) = (guard_on(&shared), guard_on(&shared));
    ten_successes(&guard_a).await;
    let failing_once = || {
        let calls = AtomicU32::new(0);
        move |_| {
            let first = calls.fetch_add(1, Ordering::SeqCst) == 0;
            async move { if first { Err(unavailable()) } else { Ok(2) } }
        }
    };
    for _ in 0..2 {
        let outcome = guard_a
            .call(
                Deadline::after(3500 * MS),
                Retryability::Transient,
                failing_once(),
            )
            .await;
        assert_eq!(outcome.result, Ok(2));
        assert!(outcome.retried());
    }
    let outcome = guard_b
        .call(
            Deadline::after(3500 * MS),
            Retryability::Transient,
            failing_once(),
        )
        .await;
    assert_eq!(
        outcome.result,
        Err(CallError::Rejected(Rejection::BudgetExhausted)),
        "A spent the shared budget's two retries"
    );
    assert_eq!(outcome.attempts.len(), 1);
}
