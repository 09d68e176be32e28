//! The metrics the resilience engine emits, captured with a local recorder.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use voxguard::resilience::{
    CallError, CircuitBreaker, Clock, Deadline, Guard, GuardConfig, ManualClock, Retryability,
    metrics_listener, tracing_listener,
};

/// Remembers which metrics were touched, as `name{label=value,...}`.
#[derive(Default)]
struct KeyLog(Mutex<Vec<String>>);

impl KeyLog {
    fn note(&self, key: &metrics::Key) {
        let labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        self.0
            .lock()
            .unwrap()
            .push(format!("{}{{{}}}", key.name(), labels.join(",")));
    }
}

impl KeyLog {
    fn keys(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

impl metrics::Recorder for KeyLog {
    fn describe_counter(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_gauge(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_histogram(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn register_counter(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Counter {
        self.note(key);
        metrics::Counter::noop()
    }
    fn register_gauge(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
        self.note(key);
        metrics::Gauge::noop()
    }
    fn register_histogram(
        &self,
        key: &metrics::Key,
        _: &metrics::Metadata<'_>,
    ) -> metrics::Histogram {
        self.note(key);
        metrics::Histogram::noop()
    }
}

#[test]
fn the_metrics_subscriber_labels_transitions_by_service_and_states() {
    let breaker = CircuitBreaker::new(
        "crm",
        GuardConfig::for_service("crm").breaker,
        Clock::from(ManualClock::new()),
    );
    breaker.subscribe(metrics_listener());
    breaker.subscribe(tracing_listener());
    let log = KeyLog::default();
    metrics::with_local_recorder(&log, || breaker.force_open("test"));
    assert_eq!(
        log.keys(),
        vec![
            "voxguard_breaker_transitions_total{service=crm,from=closed,to=open,reason=forced}"
                .to_string(),
            "voxguard_breaker_state{service=crm}".to_string(),
        ]
    );
}

#[test]
fn a_guard_reports_attempt_outcomes_latency_retries_and_rejections() {
    let log = Arc::new(KeyLog::default());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    metrics::with_local_recorder(&*log, || {
        runtime.block_on(async {
            let guard = Guard::with_seed(GuardConfig::for_service("crm"), 1);
            let deadline = Deadline::after(Duration::from_millis(3500));
            let mut failures = 1;
            let outcome = guard
                .call(deadline, Retryability::Transient, |_| {
                    let fail = failures > 0;
                    failures -= 1;
                    async move {
                        if fail {
                            Err(CallError::from_status(503, None, None))
                        } else {
                            Ok(())
                        }
                    }
                })
                .await;
            assert!(outcome.retried() && outcome.result.is_ok());
            guard.breaker().force_open("test");
            let rejected = guard
                .call(deadline, Retryability::Transient, |_| async {
                    Ok::<_, CallError>(())
                })
                .await;
            assert!(rejected.result.is_err());
        })
    });
    let keys = log.keys();
    for expected in [
        "voxguard_guard_attempts_total{service=crm,outcome=ok}",
        "voxguard_guard_attempt_duration_seconds{service=crm}",
        "voxguard_guard_attempts_total{service=crm,outcome=status}",
        "voxguard_guard_retries_total{service=crm}",
        "voxguard_guard_rejections_total{service=crm,reason=breaker_open}",
    ] {
        assert!(
            keys.iter().any(|k| k == expected),
            "missing {expected} in {keys:?}"
        );
    }
}
