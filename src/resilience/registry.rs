//! Named circuit breakers, one per service, sharing one list of event subscribers.
//!
//! ```
//! use voxguard::resilience::{BreakerRegistry, BreakerState, Clock, GuardConfig, tracing_listener};
//! let registry = BreakerRegistry::new(Clock::monotonic());
//! registry.subscribe(tracing_listener());
//! let crm = registry.get_or_register("crm", GuardConfig::for_service("crm").breaker);
//! assert_eq!(crm.state(), BreakerState::Closed);
//! ```

use std::sync::Arc;

use dashmap::DashMap;

use super::breaker::{BreakerConfig, BreakerState, CircuitBreaker};
use super::breaker_events::{BreakerListener, Listeners};
use super::clock::Clock;

#[derive(Debug)]
pub struct BreakerRegistry {
    breakers: DashMap<Arc<str>, Arc<CircuitBreaker>>,
    listeners: Arc<Listeners>,
    clock: Clock,
}

impl BreakerRegistry {
    pub fn new(clock: Clock) -> Self {
        BreakerRegistry {
            breakers: DashMap::new(),
            listeners: Listeners::new(),
            clock,
        }
    }

    /// Attach a subscriber to every breaker, present and future.
    pub fn subscribe(&self, listener: BreakerListener) {
        self.listeners.subscribe(listener);
    }

    /// The service's breaker, created with `config` if it does not exist yet
    /// (an existing breaker keeps its configuration and state).
    pub fn get_or_register(&self, service: &str, config: BreakerConfig) -> Arc<CircuitBreaker> {
        if let Some(existing) = self.breakers.get(service) {
            return existing.clone();
        }
        self.breakers
            .entry(Arc::from(service))
            .or_insert_with(|| {
                Arc::new(CircuitBreaker::with_listeners(
                    service,
                    config,
                    self.clock.clone(),
                    self.listeners.clone(),
                ))
            })
            .clone()
    }

    pub fn get(&self, service: &str) -> Option<Arc<CircuitBreaker>> {
        self.breakers.get(service).map(|b| b.clone())
    }

    /// Every service's current state, sorted by service name.
    pub fn states(&self) -> Vec<(String, BreakerState)> {
        let mut states: Vec<_> = self
            .breakers
            .iter()
            .map(|e| (e.key().to_string(), e.value().state()))
            .collect();
        states.sort_by(|a, b| a.0.cmp(&b.0));
        states
    }
}
