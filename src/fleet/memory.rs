//! The in-process backend: shared state for the workers of one process (dev,
//! console, simulate) and for tests that run two fleets side by side.
//!
//! Breakers and budgets follow the same rules as Redis (`rules.rs`) under a
//! lock; sessions live in a concurrent map and expire by TTL on read. A
//! saved conversation is kept as its compact JSON text, as Redis keeps it:
//! a parsed `serde_json::Value` tree of the same state takes several times
//! the memory, once per running call.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dashmap::DashMap;
use tokio::time::Instant;

use super::rules::{
    self, BreakerRules, BudgetRules, BudgetView, Intent, SharedBreaker, SharedBudget, SharedView,
};
use crate::resilience::BreakerTally;

/// Saved conversations are swept for expired ones each time their count
/// reaches a multiple of this.
const SWEEP_EVERY: usize = 64;

/// Shared state held in this process. Clone the `Arc` to share it between
/// several [`Fleet`](super::Fleet)s.
#[derive(Debug)]
pub struct MemoryStore {
    origin: Instant,
    breakers: Mutex<HashMap<String, SharedBreaker>>,
    budgets: Mutex<HashMap<String, SharedBudget>>,
    sessions: DashMap<String, (Box<str>, Instant)>,
}

impl MemoryStore {
    pub fn new() -> Arc<Self> {
        Arc::new(MemoryStore {
            origin: Instant::now(),
            breakers: Mutex::default(),
            budgets: Mutex::default(),
            sessions: DashMap::new(),
        })
    }

    fn now_ms(&self) -> u64 {
        rules::millis(self.origin.elapsed())
    }

    pub(crate) fn sync_breaker(
        &self,
        service: &str,
        instance: &str,
        intent: Intent,
        deltas: BreakerTally,
        rules: &BreakerRules,
    ) -> SharedView {
        let now = self.now_ms();
        let mut breakers = self.breakers.lock().unwrap_or_else(|p| p.into_inner());
        let shared = breakers.entry(service.to_string()).or_default();
        rules::sync_breaker(shared, instance, intent, deltas, rules, now)
    }

    pub(crate) fn sync_budget(
        &self,
        service: &str,
        deposits: u64,
        returned: u64,
        rules: &BudgetRules,
    ) -> BudgetView {
        let now = self.now_ms();
        let mut budgets = self.budgets.lock().unwrap_or_else(|p| p.into_inner());
        let budget = budgets.entry(service.to_string()).or_default();
        rules::sync_budget(budget, deposits, returned, rules, now)
    }

    pub(crate) fn save_session(&self, room: &str, json: String, ttl: Duration) {
        let now = Instant::now();
        let previous = self
            .sessions
            .insert(room.to_string(), (json.into_boxed_str(), now + ttl));
        // Calls that were stopped and never picked up again are never read:
        // sweep expired states now and then so a long-running worker does
        // not keep them.
        if previous.is_none() && self.sessions.len().is_multiple_of(SWEEP_EVERY) {
            self.sessions.retain(|_, (_, expires)| *expires > now);
        }
    }

    /// Saved conversations held, expired or not.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    pub(crate) fn load_session(&self, room: &str) -> Option<String> {
        let now = Instant::now();
        let live = self
            .sessions
            .get(room)
            .map(|entry| (entry.1 > now).then(|| entry.0.to_string()));
        match live {
            Some(Some(json)) => Some(json),
            Some(None) => {
                self.sessions
                    .remove_if(room, |_, (_, expires)| *expires <= now);
                None
            }
            None => None,
        }
    }

    pub(crate) fn delete_session(&self, room: &str) {
        self.sessions.remove(room);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn expired_conversations_nobody_reads_are_swept() {
        let store = MemoryStore::new();
        for room in 0..SWEEP_EVERY - 1 {
            store.save_session(
                &format!("stopped-{room}"),
                room.to_string(),
                Duration::from_millis(1),
            );
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
        store.save_session("live", "\"on\"".into(), Duration::from_secs(60));
        assert_eq!(store.session_count(), 1, "only the live call is kept");
        assert_eq!(store.load_session("live").as_deref(), Some("\"on\""));
    }
}
