//! The worker's metrics and the process-wide Prometheus recorder that every
//! layer (breakers, tools, sessions) reports through; `/metrics` renders it.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub const SESSIONS_ACTIVE: &str = "voxguard_worker_sessions_active";
pub const JOBS_TOTAL: &str = "voxguard_worker_jobs_total";
pub const AVAILABILITY_SECONDS: &str = "voxguard_worker_availability_seconds";
pub const RECONNECTS_TOTAL: &str = "voxguard_worker_reconnects_total";
pub const REGISTERED: &str = "voxguard_worker_registered";

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process-wide Prometheus handle. The first call installs the recorder;
/// later calls (other tests, other layers) get the same handle. If another
/// global recorder was installed first, the handle still renders, but only
/// what was recorded through it.
pub fn prometheus() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full(AVAILABILITY_SECONDS.into()),
                &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0, 3.0],
            )
            .expect("bucket list is non-empty");
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed; /metrics shows only the worker's own view");
        }
        handle
    })
}

pub fn sessions_active(count: usize) {
    metrics::gauge!(SESSIONS_ACTIVE).set(count as f64);
}

pub fn job_finished(status: &'static str) {
    metrics::counter!(JOBS_TOTAL, "status" => status).increment(1);
}

pub fn availability_answered(latency: Duration, accepted: bool) {
    let outcome = if accepted { "accepted" } else { "rejected" };
    metrics::histogram!(AVAILABILITY_SECONDS, "outcome" => outcome).record(latency.as_secs_f64());
}

pub fn reconnect(reason: &'static str) {
    metrics::counter!(RECONNECTS_TOTAL, "reason" => reason).increment(1);
}

pub fn registered(is_registered: bool) {
    metrics::gauge!(REGISTERED).set(if is_registered { 1.0 } else { 0.0 });
}
