//! A service's retry budget shared across the fleet.
//!
//! Retries never wait on the network: each sync returns this worker's unused
//! grant to the fleet and takes half of what the fleet may still retry, and
//! `try_withdraw` spends from that local grant with one atomic. The fleet can
//! therefore never retry more than its budget allows. While the fleet is out
//! of reach (from the first failed sync round, or no sync for `stale_after`),
//! the worker falls back to its own local [`RetryBudget`]: a grant nobody can
//! renew would otherwise run dry and refuse retries a caller needs.

use std::sync::atomic::{AtomicU64, Ordering::*};
use std::time::Duration;

use crate::resilience::budget::RetryBudgetSource;
use crate::resilience::{BudgetConfig, Clock, RetryBudget};

use super::rules::BudgetRules;

#[derive(Debug)]
pub struct SharedRetryBudget {
    service: String,
    local: RetryBudget,
    pub(super) rules: BudgetRules,
    /// Retries granted to this worker and not spent yet.
    pub(super) granted: AtomicU64,
    /// First attempts not yet pushed to the fleet.
    pub(super) pending_deposits: AtomicU64,
    /// Clock time of the last successful sync, in ns (0: never).
    last_sync: AtomicU64,
    clock: Clock,
    stale_after: Duration,
}

impl SharedRetryBudget {
    pub(super) fn new(
        service: &str,
        config: BudgetConfig,
        state_ttl: Duration,
        stale_after: Duration,
    ) -> Self {
        let clock = Clock::tokio();
        SharedRetryBudget {
            service: service.to_string(),
            local: RetryBudget::new(config, clock.clone()),
            rules: BudgetRules::new(&config, state_ttl),
            granted: AtomicU64::new(0),
            pending_deposits: AtomicU64::new(0),
            last_sync: AtomicU64::new(0),
            clock,
            stale_after,
        }
    }

    pub fn service(&self) -> &str {
        &self.service
    }

    /// Record a first attempt (locally, and for the fleet on the next sync).
    pub fn deposit(&self) {
        self.local.deposit();
        self.pending_deposits.fetch_add(1, Relaxed);
    }

    /// Take one retry: from this worker's fleet grant while the fleet is in
    /// reach, else from the local budget. Never waits.
    pub fn try_withdraw(&self) -> bool {
        if !self.is_shared() {
            return self.local.try_withdraw();
        }
        self.granted
            .fetch_update(AcqRel, Acquire, |n| n.checked_sub(1))
            .is_ok()
    }

    /// Retries this worker may take right now without asking anyone.
    pub fn available(&self) -> u64 {
        if self.is_shared() {
            self.granted.load(Acquire)
        } else {
            self.local.available()
        }
    }

    /// Whether the fleet's budget applies (a sync succeeded recently).
    pub fn is_shared(&self) -> bool {
        let last = self.last_sync.load(Acquire);
        last != 0
            && self.clock.now_nanos().saturating_sub(last) <= self.stale_after.as_nanos() as u64
    }

    pub(super) fn mark_synced(&self) {
        self.last_sync.store(self.clock.now_nanos().max(1), Release);
    }

    /// The fleet is out of reach: judge retries locally until the next sync.
    pub(super) fn mark_unsynced(&self) {
        self.last_sync.store(0, Release);
    }
}

/// Lets a [`Guard`](crate::resilience::Guard) spend from the fleet's budget
/// (see [`GuardBuilder::retry_budget`](crate::resilience::GuardBuilder::retry_budget)).
impl RetryBudgetSource for SharedRetryBudget {
    fn deposit(&self) {
        SharedRetryBudget::deposit(self);
    }

    fn try_withdraw(&self) -> bool {
        SharedRetryBudget::try_withdraw(self)
    }

    fn available(&self) -> u64 {
        SharedRetryBudget::available(self)
    }
}
