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
/// 1 for the fleet's backend (label `backend`: memory | redis), 0 for the other.
pub const FLEET_BACKEND: &str = "voxguard_fleet_backend";
/// 1 while the last sync round reached the fleet's backend.
pub const FLEET_CONNECTED: &str = "voxguard_fleet_connected";
/// The breaker guarding Redis: 0 closed, 1 half-open, 2 open.
pub const FLEET_REDIS_BREAKER: &str = "voxguard_fleet_redis_breaker_state";
pub const FLEET_LAST_SYNC_AGE: &str = "voxguard_fleet_last_sync_age_seconds";
/// Saved conversations waiting for Redis to come back.
pub const FLEET_QUEUED_SESSIONS: &str = "voxguard_fleet_queued_sessions";

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

/// The fleet backend's health as gauges, fresh for each scrape.
pub fn fleet_health(health: &crate::fleet::FleetHealth) {
    use crate::fleet::BackendKind;
    use crate::resilience::BreakerState;
    for kind in [BackendKind::Memory, BackendKind::Redis] {
        let name = match kind {
            BackendKind::Memory => "memory",
            BackendKind::Redis => "redis",
        };
        let active = if kind == health.backend { 1.0 } else { 0.0 };
        metrics::gauge!(FLEET_BACKEND, "backend" => name).set(active);
    }
    metrics::gauge!(FLEET_CONNECTED).set(if health.connected { 1.0 } else { 0.0 });
    let breaker = match health.redis_breaker {
        BreakerState::Closed => 0.0,
        BreakerState::HalfOpen => 1.0,
        BreakerState::Open => 2.0,
    };
    metrics::gauge!(FLEET_REDIS_BREAKER).set(breaker);
    let age = health
        .last_sync_age_ms
        .map_or(f64::INFINITY, |ms| ms as f64 / 1000.0);
    metrics::gauge!(FLEET_LAST_SYNC_AGE).set(age);
    metrics::gauge!(FLEET_QUEUED_SESSIONS).set(health.queued_sessions as f64);
}

/// Whether each service behind the agent is configured (1) or left out (0),
/// fresh for each scrape. Breaker states have their own gauges.
pub fn services(services: &[super::ServiceStatus]) {
    for service in services {
        metrics::gauge!("voxguard_service_configured", "service" => service.name.clone())
            .set(if service.configured { 1.0 } else { 0.0 });
    }
}
