//! Circuit breaker transitions, on a manual clock.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use voxguard::resilience::{
    BreakerConfig, BreakerEvent, BreakerRegistry, BreakerState, CallResult, CircuitBreaker, Clock,
    ManualClock, Rejection, TransitionReason,
};

const MS: Duration = Duration::from_millis(1);
const FAST: Duration = Duration::from_millis(10);
const SLOW: Duration = Duration::from_millis(150);
use CallResult::{Failure, Success};

fn config() -> BreakerConfig {
    BreakerConfig {
        consecutive_failures: 3,
        window_size: 10,
        min_calls: 5,
        failure_rate: 0.5,
        slow_call_threshold: 100 * MS,
        slow_call_rate: 0.6,
        open_base: 1000 * MS,
        open_cap: 8000 * MS,
        half_open_probes: 2,
    }
}

struct Rig {
    breaker: CircuitBreaker,
    clock: ManualClock,
    events: Arc<Mutex<Vec<BreakerEvent>>>,
}

fn rig(config: BreakerConfig) -> Rig {
    let clock = ManualClock::new();
    let breaker = CircuitBreaker::new("crm", config, Clock::from(clock.clone()));
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    breaker.subscribe(Arc::new(move |e: &BreakerEvent| {
        sink.lock().unwrap().push(e.clone())
    }));
    Rig {
        breaker,
        clock,
        events,
    }
}

impl Rig {
    fn call(&self, result: CallResult, duration: Duration) {
        self.breaker
            .try_acquire()
            .expect("admitted")
            .record(result, duration);
    }

    fn reasons(&self) -> Vec<(BreakerState, BreakerState, TransitionReason)> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .map(|e| (e.from, e.to, e.reason.clone()))
            .collect()
    }

    fn open_to_half_open(&self) {
        let wait = self
            .breaker
            .open_until()
            .expect("open")
            .saturating_sub(self.clock_now());
        self.clock.advance(wait);
    }

    fn clock_now(&self) -> Duration {
        Duration::from_nanos(self.clock.now_nanos())
    }
}

fn no_consecutive_trip() -> BreakerConfig {
    BreakerConfig {
        consecutive_failures: 100,
        ..config()
    }
}

#[test]
fn opens_after_the_consecutive_failure_threshold() {
    let rig = rig(config());
    rig.call(Failure, FAST);
    rig.call(Failure, FAST);
    assert_eq!(rig.breaker.state(), BreakerState::Closed);
    rig.call(Failure, FAST);
    assert_eq!(rig.breaker.state(), BreakerState::Open);
    assert_eq!(
        rig.reasons(),
        vec![(
            BreakerState::Closed,
            BreakerState::Open,
            TransitionReason::ConsecutiveFailures(3)
        )]
    );
    assert_eq!(
        rig.breaker.try_acquire().unwrap_err(),
        Rejection::BreakerOpen
    );
}

#[test]
fn a_success_resets_the_consecutive_failure_count() {
    let rig = rig(BreakerConfig {
        failure_rate: 1.0,
        ..config()
    });
    for result in [Failure, Failure, Success, Failure, Failure] {
        rig.call(result, FAST);
    }
    assert_eq!(rig.breaker.state(), BreakerState::Closed);
}

#[test]
fn opens_when_the_window_failure_rate_is_reached() {
    let rig = rig(no_consecutive_trip());
    for result in [Success, Failure, Success, Failure, Success] {
        rig.call(result, FAST);
    }
    assert_eq!(
        rig.breaker.state(),
        BreakerState::Closed,
        "2 of 5 is under 50%"
    );
    rig.call(Failure, FAST);
    assert_eq!(
        rig.reasons()[0].2,
        TransitionReason::FailureRate {
            failures: 3,
            calls: 6
        }
    );
}

#[test]
fn rates_are_not_judged_before_min_calls_and_are_judged_at_min_calls() {
    let rig = rig(no_consecutive_trip());
    for _ in 0..4 {
        rig.call(Failure, FAST);
    }
    assert_eq!(
        rig.breaker.state(),
        BreakerState::Closed,
        "4 calls is under min_calls"
    );
    rig.call(Success, FAST);
    assert_eq!(
        rig.reasons()[0].2,
        TransitionReason::FailureRate {
            failures: 4,
            calls: 5
        }
    );
}

#[test]
fn failures_older_than_the_window_are_forgotten() {
    let rig = rig(no_consecutive_trip());
    for round in 0..5 {
        for _ in 0..6 {
            rig.call(Success, FAST);
        }
        for _ in 0..4 {
            rig.call(Failure, FAST);
        }
        assert_eq!(
            rig.breaker.state(),
            BreakerState::Closed,
            "round {round}: at most 4 of 10"
        );
    }
}

#[test]
fn slow_successes_open_it_on_the_slow_call_rate() {
    let rig = rig(config());
    for duration in [SLOW, SLOW, FAST, FAST] {
        rig.call(Success, duration);
    }
    assert_eq!(rig.breaker.state(), BreakerState::Closed);
    rig.call(Success, SLOW);
    assert_eq!(
        rig.reasons()[0].2,
        TransitionReason::SlowCallRate { slow: 3, calls: 5 }
    );
}

#[test]
fn open_rejects_until_its_duration_elapses_then_admits_probes_half_open() {
    let rig = rig(config());
    rig.breaker.force_open("test");
    rig.clock.advance(999 * MS);
    assert_eq!(
        rig.breaker.try_acquire().unwrap_err(),
        Rejection::BreakerOpen
    );
    rig.clock.advance(MS);
    let probe = rig.breaker.try_acquire().expect("probe admitted");
    assert!(probe.is_probe());
    assert_eq!(rig.breaker.state(), BreakerState::HalfOpen);
    assert_eq!(
        rig.reasons()[1],
        (
            BreakerState::Open,
            BreakerState::HalfOpen,
            TransitionReason::OpenElapsed
        )
    );
}

#[test]
fn half_open_admits_exactly_the_configured_probes() {
    let rig = rig(config());
    rig.breaker.force_open("test");
    rig.open_to_half_open();
    let first = rig.breaker.try_acquire().unwrap();
    let second = rig.breaker.try_acquire().unwrap();
    assert_eq!(
        rig.breaker.try_acquire().unwrap_err(),
        Rejection::BreakerOpen
    );
    first.record(Success, FAST);
    assert_eq!(
        rig.breaker.try_acquire().unwrap_err(),
        Rejection::BreakerOpen,
        "a used probe slot is not reissued"
    );
    second.record(Success, FAST);
    assert_eq!(rig.breaker.state(), BreakerState::Closed);
    assert_eq!(
        rig.reasons().last().unwrap().2,
        TransitionReason::ProbesSucceeded
    );
}

#[test]
fn a_failed_probe_reopens_it() {
    let rig = rig(config());
    rig.breaker.force_open("test");
    rig.open_to_half_open();
    let probe = rig.breaker.try_acquire().unwrap();
    probe.record(Failure, FAST);
    assert_eq!(rig.breaker.state(), BreakerState::Open);
    assert_eq!(
        rig.reasons().last().unwrap().2,
        TransitionReason::ProbeFailed
    );
}

#[test]
fn a_slow_successful_probe_counts_as_failed() {
    let rig = rig(config());
    rig.breaker.force_open("test");
    rig.open_to_half_open();
    rig.breaker.try_acquire().unwrap().record(Success, SLOW);
    assert_eq!(rig.breaker.state(), BreakerState::Open);
}

#[test]
fn a_dropped_probe_permit_frees_its_slot_and_counts_as_nothing() {
    let rig = rig(config());
    rig.breaker.force_open("test");
    rig.open_to_half_open();
    let kept = rig.breaker.try_acquire().unwrap();
    drop(rig.breaker.try_acquire().unwrap());
    let replacement = rig
        .breaker
        .try_acquire()
        .expect("the cancelled probe's slot is free again");
    assert_eq!(rig.breaker.state(), BreakerState::HalfOpen);
    kept.record(Success, FAST);
    replacement.record(Success, FAST);
    assert_eq!(rig.breaker.state(), BreakerState::Closed);
}

#[test]
fn the_open_duration_doubles_on_each_reopening_up_to_the_cap_and_resets_once_closed() {
    let rig = rig(config());
    for _ in 0..3 {
        rig.call(Failure, FAST);
    }
    let mut open_for = Vec::new();
    for _ in 0..5 {
        open_for.push(rig.breaker.open_until().unwrap() - rig.clock_now());
        rig.open_to_half_open();
        rig.breaker.try_acquire().unwrap().record(Failure, FAST);
    }
    let secs: Vec<u64> = open_for.iter().map(|d| d.as_secs()).collect();
    assert_eq!(secs, vec![1, 2, 4, 8, 8]);

    rig.open_to_half_open();
    rig.call(Success, FAST);
    rig.call(Success, FAST);
    assert_eq!(rig.breaker.state(), BreakerState::Closed);
    for _ in 0..3 {
        rig.call(Failure, FAST);
    }
    assert_eq!(
        rig.breaker.open_until().unwrap() - rig.clock_now(),
        1000 * MS,
        "back to open_base after closing"
    );
}

#[test]
fn closing_forgets_the_window() {
    let rig = rig(no_consecutive_trip());
    for _ in 0..4 {
        rig.call(Failure, FAST);
    }
    rig.breaker.force_open("test");
    rig.breaker.force_closed("test");
    rig.call(Failure, FAST);
    for _ in 0..4 {
        rig.call(Success, FAST);
    }
    assert_eq!(
        rig.breaker.state(),
        BreakerState::Closed,
        "1 of 5 since closing"
    );
}

#[test]
fn a_verdict_from_an_earlier_closed_period_is_ignored() {
    let rig = rig(config());
    let stale = rig.breaker.try_acquire().unwrap();
    rig.call(Failure, FAST);
    rig.call(Failure, FAST);
    rig.breaker.force_open("test");
    rig.breaker.force_closed("test");
    stale.record(Failure, FAST);
    rig.call(Failure, FAST);
    rig.call(Failure, FAST);
    assert_eq!(rig.breaker.state(), BreakerState::Closed);
}

#[test]
fn forced_transitions_are_events_and_forcing_the_current_state_is_a_no_op() {
    let rig = rig(config());
    rig.breaker.force_closed("already closed");
    rig.breaker.force_open("fleet says open");
    rig.breaker.force_open("again");
    rig.breaker.force_open_for(30 * 1000 * MS, "extend");
    assert_eq!(rig.breaker.open_until(), Some(30 * 1000 * MS));
    rig.breaker.force_half_open("operator");
    rig.breaker.force_closed("operator");
    let moves: Vec<_> = rig
        .reasons()
        .into_iter()
        .map(|(f, t, r)| (f, t, r.is_forced()))
        .collect();
    use BreakerState::*;
    assert_eq!(
        moves,
        vec![
            (Closed, Open, true),
            (Open, HalfOpen, true),
            (HalfOpen, Closed, true)
        ]
    );
}

#[test]
fn registry_breakers_are_per_service_and_share_subscribers() {
    let clock = ManualClock::new();
    let registry = BreakerRegistry::new(Clock::from(clock));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    registry.subscribe(Arc::new(move |e: &BreakerEvent| {
        sink.lock().unwrap().push(e.service.to_string())
    }));
    let crm = registry.get_or_register("crm", config());
    let calendar = registry.get_or_register("calendar", config());
    assert!(Arc::ptr_eq(
        &crm,
        &registry.get_or_register("crm", config())
    ));
    crm.force_open("test");
    calendar.force_open("test");
    assert_eq!(
        *seen.lock().unwrap(),
        vec!["crm".to_string(), "calendar".to_string()]
    );
    assert_eq!(
        registry.states(),
        vec![
            ("calendar".into(), BreakerState::Open),
            ("crm".into(), BreakerState::Open)
        ]
    );
}

#[test]
fn under_contention_exactly_one_thread_opens_it() {
    let rig = rig(BreakerConfig {
        window_size: 64,
        min_calls: 32,
        ..config()
    });
    std::thread::scope(|s| {
        for t in 0..4u32 {
            let breaker = &rig.breaker;
            s.spawn(move || {
                for i in 0..50_000u32 {
                    if let Ok(permit) = breaker.try_acquire() {
                        let result = if (i + t) % 4 == 0 { Success } else { Failure };
                        permit.record(result, FAST);
                    }
                }
            });
        }
    });
    let events = rig.reasons();
    assert_eq!(
        events.len(),
        1,
        "the clock never moves, so it opens once and stays open: {events:?}"
    );
    assert_eq!(
        (events[0].0, events[0].1),
        (BreakerState::Closed, BreakerState::Open)
    );
}

#[test]
fn under_contention_half_open_admits_exactly_the_probes() {
    let rig = rig(BreakerConfig {
        half_open_probes: 3,
        ..config()
    });
    rig.breaker.force_open("test");
    rig.open_to_half_open();
    let admitted = std::sync::atomic::AtomicU32::new(0);
    std::thread::scope(|s| {
        let mut holders = Vec::new();
        for _ in 0..4 {
            holders.push(s.spawn(|| {
                let mut held = Vec::new();
                for _ in 0..1000 {
                    if let Ok(permit) = rig.breaker.try_acquire() {
                        admitted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        held.push(permit);
                    }
                }
                held
            }));
        }
        // Permits are kept until every thread is done: a dropped probe would free its slot.
        let held: Vec<_> = holders
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        assert_eq!(held.len(), 3);
    });
    assert_eq!(admitted.into_inner(), 3);
}

#[test]
fn concurrent_successes_keep_it_closed_with_no_events() {
    let rig = rig(config());
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..50_000 {
                    rig.breaker.try_acquire().unwrap().record(Success, FAST);
                }
            });
        }
    });
    assert_eq!(rig.breaker.state(), BreakerState::Closed);
    assert!(rig.reasons().is_empty());
}

#[test]
fn the_broadcast_subscriber_forwards_events_to_async_consumers() {
    let rig = rig(config());
    let (sender, mut receiver) = tokio::sync::broadcast::channel(8);
    rig.breaker
        .subscribe(voxguard::resilience::broadcast_listener(sender));
    rig.breaker.force_open("fleet");
    let event = receiver.try_recv().expect("delivered");
    assert_eq!(
        (event.from, event.to),
        (BreakerState::Closed, BreakerState::Open)
    );
    assert_eq!(event.reason, TransitionReason::Forced("fleet".into()));
}
