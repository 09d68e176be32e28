//! Invariants of the resilience engine, checked on arbitrary inputs.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use proptest::prelude::*;
use voxguard::resilience::{
    BackoffKind, BreakerConfig, BreakerEvent, BreakerState, CallError, CallResult, CircuitBreaker,
    Clock, Deadline, Guard, GuardConfig, ManualClock, Permit, Retryability,
};

const MS: Duration = Duration::from_millis(1);
fn ms_(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

/// Timers may fire up to one tick late.
const SCHEDULING_MARGIN: Duration = Duration::from_millis(1);

#[derive(Debug, Clone)]
enum Answer {
    Ok,
    Hang,
    Refused,
    Unavailable,
    RateLimited(u64),
    Decode,
}

impl Answer {
    fn result(&self) -> Result<(), CallError> {
        match self {
            Answer::Ok | Answer::Hang => Ok(()),
            Answer::Refused => Err(CallError::Connect {
                detail: "refused".into(),
                sent: false,
            }),
            Answer::Unavailable => Err(CallError::from_status(503, None, None)),
            Answer::RateLimited(ms) => Err(CallError::RateLimited {
                retry_after: Some(ms_(*ms)),
            }),
            Answer::Decode => Err(CallError::Decode {
                detail: "garbled".into(),
            }),
        }
    }
}

fn answer() -> impl Strategy<Value = Answer> {
    prop_oneof![
        Just(Answer::Ok),
        Just(Answer::Hang),
        Just(Answer::Refused),
        Just(Answer::Unavailable),
        (0u64..3000).prop_map(Answer::RateLimited),
        Just(Answer::Decode),
    ]
}

fn retryability() -> impl Strategy<Value = Retryability> {
    prop_oneof![
        Just(Retryability::Transient),
        Just(Retryability::Unambiguous),
        Just(Retryability::Never)
    ]
}

#[derive(Debug, Clone)]
struct Scenario {
    budget_ms: u64,
    max_attempts: u32,
    attempt_timeout_ms: u64,
    decorrelated: bool,
    base_ms: u64,
    cap_extra_ms: u64,
    retryability: Retryability,
    script: Vec<(u64, Answer)>,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        0u64..5000,
        1u32..5,
        1u64..2000,
        any::<bool>(),
        0u64..500,
        0u64..1000,
        retryability(),
        prop::collection::vec((0u64..3000, answer()), 1..6),
    )
        .prop_map(
            |(
                budget_ms,
                max_attempts,
                attempt_timeout_ms,
                decorrelated,
                base_ms,
                cap_extra_ms,
                retryability,
                script,
            )| {
                Scenario {
                    budget_ms,
                    max_attempts,
                    attempt_timeout_ms,
                    decorrelated,
                    base_ms,
                    cap_extra_ms,
                    retryability,
                    script,
                }
            },
        )
}

fn guard_for(s: &Scenario, seed: u64) -> Arc<Guard> {
    let mut config = GuardConfig::for_service("prop");
    config.retry.max_attempts = s.max_attempts;
    config.retry.attempt_timeout = ms_(s.attempt_timeout_ms);
    config.retry.backoff.kind = if s.decorrelated {
        BackoffKind::Decorrelated
    } else {
        BackoffKind::Full
    };
    config.retry.backoff.base = ms_(s.base_ms);
    config.retry.backoff.cap = ms_(s.base_ms + s.cap_extra_ms);
    Guard::builder(config).seed(seed).build().expect("valid")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn a_guarded_call_always_returns_by_its_deadline(s in scenario(), seed in any::<u64>()) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
        runtime.block_on(async {
            let guard = guard_for(&s, seed);
            let budget = ms_(s.budget_ms);
            let deadline = Deadline::after(budget);
            let script = s.script.clone();
            let outcome = guard
                .call(deadline, s.retryability, |ctx| {
                    let (latency_ms, answer) = script[(ctx.attempt as usize - 1) % script.len()].clone();
                    async move {
                        tokio::time::sleep(ms_(latency_ms)).await;
                        if matches!(answer, Answer::Hang) {
                            std::future::pending::<()>().await;
                        }
                        answer.result()
                    }
                })
                .await;
            prop_assert!(outcome.elapsed <= budget + SCHEDULING_MARGIN, "{:?} > {:?}", outcome.elapsed, budget);
            prop_assert!(outcome.attempts.len() <= s.max_attempts as usize);
            for attempt in &outcome.attempts {
                prop_assert!(attempt.started + attempt.duration <= budget + SCHEDULING_MARGIN);
                prop_assert!(attempt.duration <= ms_(s.attempt_timeout_ms) + SCHEDULING_MARGIN);
            }
            if s.retryability == Retryability::Never {
                prop_assert!(outcome.attempts.len() <= 1);
            }
            Ok(())
        })?;
    }
}

#[derive(Debug, Clone)]
enum Step {
    Acquire,
    Record {
        slot: usize,
        failed: bool,
        slow: bool,
    },
    Drop {
        slot: usize,
    },
    Advance {
        ms: u64,
    },
    ForceOpen,
    ForceHalfOpen,
    ForceClosed,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => Just(Step::Acquire),
        4 => (0usize..8, any::<bool>(), prop::bool::weighted(0.2)).prop_map(|(slot, failed, slow)| Step::Record { slot, failed, slow }),
        1 => (0usize..8).prop_map(|slot| Step::Drop { slot }),
        2 => (0u64..3000).prop_map(|ms| Step::Advance { ms }),
        1 => Just(Step::ForceOpen),
        1 => Just(Step::ForceHalfOpen),
        1 => Just(Step::ForceClosed),
    ]
}

fn breaker_config(probes: u32) -> BreakerConfig {
    BreakerConfig {
        consecutive_failures: 3,
        window_size: 6,
        min_calls: 4,
        failure_rate: 0.5,
        slow_call_threshold: 100 * MS,
        slow_call_rate: 0.5,
        open_base: 500 * MS,
        open_cap: 2000 * MS,
        half_open_probes: probes,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn half_open_never_admits_more_than_its_probes_and_only_valid_transitions_happen(
        probes in 1u32..4,
        steps in prop::collection::vec(step(), 1..120),
    ) {
        let clock = ManualClock::new();
        let breaker = CircuitBreaker::new("prop", breaker_config(probes), Clock::from(clock.clone()));
        let events = Arc::new(Mutex::new(Vec::<BreakerEvent>::new()));
        let sink = events.clone();
        breaker.subscribe(Arc::new(move |e: &BreakerEvent| sink.lock().unwrap().push(e.clone())));

        // Each held permit is tagged with the half-open period it was admitted in.
        let mut held: Vec<(Permit<'_>, usize)> = Vec::new();
        for step in steps {
            match step {
                Step::Acquire => {
                    let period = half_open_periods(&events);
                    if let Ok(permit) = breaker.try_acquire() {
                        let period = if permit.is_probe() { half_open_periods(&events) } else { period };
                        held.push((permit, period));
                    }
                }
                Step::Record { slot, failed, slow } if !held.is_empty() => {
                    let (permit, _) = held.remove(slot % held.len());
                    let result = if failed { CallResult::Failure } else { CallResult::Success };
                    permit.record(result, if slow { 150 * MS } else { 10 * MS });
                }
                Step::Drop { slot } if !held.is_empty() => {
                    drop(held.remove(slot % held.len()));
                }
                Step::Advance { ms } => clock.advance(ms_(ms)),
                Step::ForceOpen => breaker.force_open("prop"),
                Step::ForceHalfOpen => breaker.force_half_open("prop"),
                Step::ForceClosed => breaker.force_closed("prop"),
                _ => {}
            }
            if breaker.state() == BreakerState::HalfOpen {
                let current = half_open_periods(&events);
                let probes_now = held.iter().filter(|(p, period)| p.is_probe() && *period == current).count();
                prop_assert!(probes_now <= probes as usize, "{probes_now} probes held, {probes} allowed");
            }
        }

        let events = events.lock().unwrap();
        let mut state = BreakerState::Closed;
        for event in events.iter() {
            prop_assert_eq!(event.from, state, "events form a chain");
            prop_assert!(event.reason.is_forced() || event.from.can_move_to(event.to), "invalid {:?}", event);
            prop_assert_ne!(event.from, event.to);
            state = event.to;
        }
        prop_assert_eq!(state, breaker.state());
    }
}

fn half_open_periods(events: &Mutex<Vec<BreakerEvent>>) -> usize {
    events
        .lock()
        .unwrap()
        .iter()
        .filter(|e| e.to == BreakerState::HalfOpen)
        .count()
}
