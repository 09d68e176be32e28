//! Shared state for a fleet of workers: circuit breakers, retry budgets and
//! resumable conversations, in process (the default) or in Redis.
//!
//! Every worker keeps its own local [`CircuitBreaker`]s and pays no network
//! round trip on a call. A [`Fleet`] runs one sync task that, every
//! `sync_interval` (and at once on a local transition), publishes local
//! transitions and window counts and mirrors the fleet's state locally.
//!
//! **Consistency.** Shared transitions are atomic (one Lua script per sync,
//! ordered by a generation number). A breaker opened by one worker fails
//! fast on every reachable worker within `sync_interval` + two backend round
//! trips (< 100 ms with the 50 ms default). After the open period, exactly
//! one worker wins a probe lease and sends the breaker's `half_open_probes`
//! probes; the others stay open until it closes or reopens the breaker (or
//! its lease lapses). The fleet window sums every worker's counts over a
//! time window and may open the breaker up to one round after the fleet
//! crosses a threshold. Retry budgets are exact: retries are spent from
//! grants taken from the fleet. Redis is guarded by its own breaker and a
//! `redis_timeout` on every call; without it, each worker runs alone on its
//! local breakers and budgets and rejoins when Redis is back. What it
//! learned alone stands: a trip keeps the open period it has left, a breaker
//! that recovered on its own probes closes the fleet's (once nobody else may
//! probe), and a sync Redis runs after its worker gave up on it changes
//! nothing.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use std::sync::Arc;
//! use voxguard::fleet::{Fleet, FleetConfig};
//! use voxguard::resilience::{CircuitBreaker, Clock, GuardConfig};
//! let fleet = Fleet::new(FleetConfig::default()).expect("the memory backend needs no URL");
//! let crm = Arc::new(CircuitBreaker::new("crm", GuardConfig::for_service("crm").breaker, Clock::tokio()));
//! fleet.share_breaker(crm.clone());
//! fleet.save_session("room-7", &serde_json::json!({"turn": 3}), std::time::Duration::from_secs(600)).await;
//! assert_eq!(fleet.load_session("room-7").await, Some(serde_json::json!({"turn": 3})));
//! # }
//! ```

mod budget;
mod config;
mod memory;
mod redis_store;
mod rules;
mod session;
mod sync;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::*};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::AbortHandle;
use tokio::time::Instant;

pub use budget::SharedRetryBudget;
pub use config::{BackendKind, FleetConfig, FleetConfigError, FleetError, FleetHealth};
pub use memory::MemoryStore;
pub use redis_store::RedisStore;
pub use session::SessionWrite;

use crate::resilience::{
    BreakerRegistry, BreakerState, BreakerTally, BudgetConfig, CircuitBreaker,
};
use rules::{BreakerRules, BudgetRules, BudgetView, Intent, SharedView};
use session::SessionQueue;
use sync::BreakerLink;

/// The store behind a fleet.
#[derive(Debug, Clone)]
pub enum FleetBackend {
    Memory(Arc<MemoryStore>),
    Redis(Arc<RedisStore>),
}

impl FleetBackend {
    pub fn kind(&self) -> BackendKind {
        match self {
            FleetBackend::Memory(_) => BackendKind::Memory,
            FleetBackend::Redis(_) => BackendKind::Redis,
        }
    }

    async fn sync_breaker(
        &self,
        service: &str,
        instance: &str,
        intent: Intent,
        deltas: BreakerTally,
        rules: &BreakerRules,
    ) -> Result<SharedView, FleetError> {
        match self {
            FleetBackend::Memory(m) => Ok(m.sync_breaker(service, instance, intent, deltas, rules)),
            FleetBackend::Redis(r) => {
                r.sync_breaker(service, instance, intent, deltas, rules)
                    .await
            }
        }
    }

    async fn sync_budget(
        &self,
        service: &str,
        deposits: u64,
        returned: u64,
        rules: &BudgetRules,
    ) -> Result<BudgetView, FleetError> {
        match self {
            FleetBackend::Memory(m) => Ok(m.sync_budget(service, deposits, returned, rules)),
            FleetBackend::Redis(r) => r.sync_budget(service, deposits, returned, rules).await,
        }
    }
}

/// A handle on the fleet's shared state; clones share it. Dropping the last
/// clone stops the sync task.
#[derive(Debug, Clone)]
pub struct Fleet {
    inner: Arc<FleetInner>,
}

#[derive(Debug)]
struct FleetInner {
    config: FleetConfig,
    backend: FleetBackend,
    instance: String,
    links: Mutex<Vec<Arc<BreakerLink>>>,
    budgets: Mutex<Vec<Arc<SharedRetryBudget>>>,
    sessions: SessionQueue,
    wake: Arc<Notify>,
    connected: AtomicBool,
    errors: AtomicU64,
    last_sync: Mutex<Option<Instant>>,
    task: Mutex<Option<AbortHandle>>,
    round: tokio::sync::Mutex<()>,
}

impl Drop for FleetInner {
    fn drop(&mut self) {
        if let Some(task) = lock(&self.task).take() {
            task.abort();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl Fleet {
    /// The fleet the config asks for: a fresh in-process store, or Redis at
    /// `url` (connected lazily; an unreachable Redis is not an error here).
    /// Must be called inside a tokio runtime: it spawns the sync task.
    pub fn new(config: FleetConfig) -> Result<Fleet, FleetError> {
        let backend = match config.backend {
            BackendKind::Memory => FleetBackend::Memory(MemoryStore::new()),
            BackendKind::Redis => FleetBackend::Redis(Arc::new(RedisStore::open(
                &config.url,
                &config.key_prefix,
                config.redis_timeout,
            )?)),
        };
        Ok(Fleet::with_backend(config, backend))
    }

    /// A fleet over an existing backend (e.g. one [`MemoryStore`] shared by
    /// several fleets in one process).
    pub fn with_backend(config: FleetConfig, backend: FleetBackend) -> Fleet {
        let wake = Arc::new(Notify::new());
        let inner = Arc::new(FleetInner {
            instance: format!("{}-{:08x}", std::process::id(), rand::random::<u32>()),
            links: Mutex::default(),
            budgets: Mutex::default(),
            sessions: SessionQueue::new(config.session_queue),
            wake: wake.clone(),
            connected: AtomicBool::new(backend.kind() == BackendKind::Memory),
            errors: AtomicU64::new(0),
            last_sync: Mutex::new(None),
            task: Mutex::new(None),
            round: tokio::sync::Mutex::new(()),
            backend,
            config,
        });
        let interval = inner.config.sync_interval.max(Duration::from_millis(1));
        let task = tokio::spawn(sync::run(Arc::downgrade(&inner), wake, interval));
        *lock(&inner.task) = Some(task.abort_handle());
        Fleet { inner }
    }

    pub fn config(&self) -> &FleetConfig {
        &self.inner.config
    }

    pub fn backend(&self) -> &FleetBackend {
        &self.inner.backend
    }

    /// This worker's name in the shared state (unique per fleet handle).
    pub fn instance(&self) -> &str {
        &self.inner.instance
    }

    /// Share this breaker's state and window with the fleet under its service
    /// name (sharing the same breaker twice is a no-op).
    pub fn share_breaker(&self, breaker: Arc<CircuitBreaker>) {
        if lock(&self.inner.links)
            .iter()
            .any(|link| Arc::ptr_eq(&link.breaker, &breaker))
        {
            return;
        }
        let rules = BreakerRules::new(
            breaker.config(),
            self.inner.config.window,
            self.inner.config.probe_lease,
            self.inner.config.state_ttl,
        );
        let link = BreakerLink::new(breaker, rules);
        link.listen(self.inner.wake.clone());
        lock(&self.inner.links).push(link);
        self.inner.wake.notify_one();
    }

    /// Share every breaker currently in `registry`.
    pub fn share_registry(&self, registry: &BreakerRegistry) {
        for (service, _) in registry.states() {
            if let Some(breaker) = registry.get(&service) {
                self.share_breaker(breaker);
            }
        }
    }

    /// The service's retry budget, shared across the fleet.
    pub fn retry_budget(&self, service: &str, config: BudgetConfig) -> Arc<SharedRetryBudget> {
        let stale_after = (self.inner.config.sync_interval * 20).max(Duration::from_secs(1));
        let budget = Arc::new(SharedRetryBudget::new(
            service,
            config,
            self.inner.config.state_ttl,
            stale_after,
        ));
        lock(&self.inner.budgets).push(budget.clone());
        self.inner.wake.notify_one();
        budget
    }

    /// Run one sync round now (the task runs them on its own; this is for
    /// start-up and tests).
    pub async fn sync_now(&self) -> Result<(), FleetError> {
        let result = self.inner.sync_round().await;
        self.inner.note_round(result.clone());
        result
    }

    /// Stop syncing for good, then delete every key under this fleet's
    /// prefix; returns how many were deleted. For runs that own their
    /// prefix, such as `voxguard simulate` — never for a fleet of workers
    /// sharing production state.
    pub async fn stop_and_purge(&self, limit: Duration) -> Result<u64, FleetError> {
        if let Some(task) = lock(&self.inner.task).take() {
            task.abort();
        }
        // Wait out a round already under way, so nothing it writes lands
        // after the keys are gone.
        let _round = self.inner.round.lock().await;
        match &self.inner.backend {
            FleetBackend::Memory(_) => Ok(0),
            FleetBackend::Redis(redis) => redis.purge(limit).await,
        }
    }

    pub fn health(&self) -> FleetHealth {
        let inner = &self.inner;
        FleetHealth {
            backend: inner.backend.kind(),
            connected: inner.connected.load(Acquire),
            redis_breaker: match &inner.backend {
                FleetBackend::Memory(_) => BreakerState::Closed,
                FleetBackend::Redis(r) => r.breaker().state(),
            },
            last_sync_age_ms: lock(&inner.last_sync).map(|at| rules::millis(at.elapsed())),
            errors: inner.errors.load(Relaxed),
            queued_sessions: inner.sessions.len(),
        }
    }
}

impl FleetInner {
    fn note_error(&self, error: &FleetError) {
        self.errors.fetch_add(1, Relaxed);
        metrics::counter!("voxguard_fleet_errors_total").increment(1);
        tracing::debug!(%error, "fleet backend call failed");
    }

    fn note_round(&self, result: Result<(), FleetError>) {
        let was_connected = self.connected.swap(result.is_ok(), AcqRel);
        match &result {
            Ok(()) => {
                *lock(&self.last_sync) = Some(Instant::now());
                if !was_connected {
                    tracing::info!(backend = ?self.backend.kind(), "fleet state reachable: rejoined");
                }
            }
            Err(error) => {
                self.note_error(error);
                for budget in lock(&self.budgets).iter() {
                    budget.mark_unsynced();
                }
                if was_connected {
                    tracing::warn!(%error, "fleet state out of reach: workers run on local state");
                }
            }
        }
        let age = lock(&self.last_sync).map(|at| at.elapsed().as_secs_f64());
        metrics::gauge!("voxguard_fleet_connected").set(if result.is_ok() { 1.0 } else { 0.0 });
        metrics::gauge!("voxguard_fleet_last_sync_age_seconds").set(age.unwrap_or(f64::INFINITY));
        metrics::gauge!("voxguard_fleet_queued_sessions").set(self.sessions.len() as f64);
        if let FleetBackend::Redis(r) = &self.backend {
            let level = match r.breaker().state() {
                BreakerState::Closed => 0.0,
                BreakerState::HalfOpen => 1.0,
                BreakerState::Open => 2.0,
            };
            metrics::gauge!("voxguard_fleet_redis_breaker_state").set(level);
        }
    }
}
