//! `FleetBreakerSync`: one task per fleet that keeps every shared breaker,
//! retry budget and queued session write in step with the backend.
//!
//! Each round, per service: derive what the local breaker did since the last
//! round (an [`Intent`]), push it with the window counts recorded since, and
//! apply the shared state that comes back — remote opens as
//! `force_open_for(remaining + hold)`, remote closes as `force_closed`, a won
//! probe lease as `force_half_open`. Local transitions wake the task at once,
//! so a trip is published within one Redis round trip; other workers apply it
//! on their next round (at most `sync_interval` later).

use std::sync::atomic::Ordering::*;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::Notify;

use super::rules::{BreakerRules, Intent, SharedView};
use super::{FleetBackend, FleetError, FleetInner};
use crate::resilience::{
    BreakerEvent, BreakerState, BreakerTally, CircuitBreaker, TransitionReason,
};

/// Forced transitions made by the fleet carry this prefix, so the sync task
/// does not publish its own mirroring back.
pub(super) const FLEET_REASON: &str = "fleet:";

#[derive(Debug)]
pub(super) struct BreakerLink {
    pub breaker: Arc<CircuitBreaker>,
    pub rules: BreakerRules,
    view: Mutex<LinkView>,
    /// An operator's forced transition waiting to be published.
    operator: Mutex<Option<Intent>>,
}

/// What this worker last agreed with the fleet.
#[derive(Debug, Clone, Copy)]
struct LinkView {
    generation: u64,
    local: BreakerState,
    owner: bool,
    tally: BreakerTally,
}

impl BreakerLink {
    pub fn new(breaker: Arc<CircuitBreaker>, rules: BreakerRules) -> Arc<Self> {
        // Joining counts as coming from closed: a breaker already open
        // publishes its trip instead of being closed by the fleet.
        let view = LinkView {
            generation: 0,
            local: BreakerState::Closed,
            owner: false,
            tally: breaker.tally(),
        };
        Arc::new(BreakerLink {
            breaker,
            rules,
            view: Mutex::new(view),
            operator: Mutex::new(None),
        })
    }

    /// Wake the sync task on every local transition; remember operator forces.
    pub fn listen(self: &Arc<Self>, wake: Arc<Notify>) {
        let link: Weak<BreakerLink> = Arc::downgrade(self);
        self.breaker
            .subscribe(Arc::new(move |event: &BreakerEvent| {
                let Some(link) = link.upgrade() else { return };
                if let TransitionReason::Forced(why) = &event.reason {
                    if why.starts_with(FLEET_REASON) {
                        return;
                    }
                    link.note_operator(event.to);
                }
                wake.notify_one();
            }));
    }

    fn note_operator(&self, to: BreakerState) {
        let intent = match to {
            BreakerState::Open => {
                let now = self.breaker.clock().now();
                let until = self.breaker.open_until().unwrap_or(now);
                Intent::ForceOpen(until.saturating_sub(now))
            }
            BreakerState::Closed => Intent::ForceClosed,
            BreakerState::HalfOpen => return,
        };
        *lock(&self.operator) = Some(intent);
    }

    /// How much longer the local breaker stays open.
    fn open_left(&self) -> Duration {
        let now = self.breaker.clock().now();
        self.breaker
            .open_until()
            .map_or(Duration::ZERO, |until| until.saturating_sub(now))
    }

    /// One round for this service: publish, pull, apply.
    pub async fn sync(
        &self,
        backend: &FleetBackend,
        instance: &str,
        hold: Duration,
    ) -> Result<(), FleetError> {
        let view = *lock(&self.view);
        let local = self.breaker.state();
        let tally = self.breaker.tally();
        let operator = lock(&self.operator).take();
        let intent =
            operator.unwrap_or_else(|| intent_of(view.local, local, view.owner, self.open_left()));
        let deltas = BreakerTally {
            calls: tally.calls.saturating_sub(view.tally.calls),
            failures: tally.failures.saturating_sub(view.tally.failures),
            slow: tally.slow.saturating_sub(view.tally.slow),
        };
        let shared = match backend
            .sync_breaker(
                self.breaker.service(),
                instance,
                intent,
                deltas,
                &self.rules,
            )
            .await
        {
            Ok(shared) => shared,
            Err(error) => {
                if let Some(op) = operator {
                    lock(&self.operator).get_or_insert(op);
                }
                return Err(error);
            }
        };
        let left = self.apply(&shared, view.generation, local, hold);
        *lock(&self.view) = LinkView {
            generation: shared.generation,
            local: left,
            owner: shared.owner_is_me,
            tally,
        };
        Ok(())
    }

    /// Mirror the shared state locally; returns the local state it left.
    fn apply(
        &self,
        shared: &SharedView,
        seen: u64,
        local: BreakerState,
        hold: Duration,
    ) -> BreakerState {
        use BreakerState::*;
        let breaker = &self.breaker;
        match shared.state {
            // Only a close newer than what this worker saw overrides a local
            // trip that may not have been published yet.
            Closed if shared.generation > seen && local != Closed => {
                breaker.force_closed(format!("{FLEET_REASON} closed across the fleet"));
                Closed
            }
            Closed => local,
            HalfOpen if shared.owner_is_me => {
                if local == Open {
                    breaker.force_half_open(format!("{FLEET_REASON} won the probe lease"));
                    HalfOpen
                } else {
                    local
                }
            }
            // Open, or another worker is probing: fail fast here, a little
            // beyond the shared deadline so only the lease holder probes.
            Open | HalfOpen => {
                breaker.force_open_for(
                    shared.remaining + hold,
                    format!("{FLEET_REASON} open across the fleet"),
                );
                Open
            }
        }
    }
}

/// What the local breaker did between two rounds (the last round the fleet
/// answered, however long ago), as a request to the fleet. `open_left` is
/// how much longer the local breaker stays open.
fn intent_of(before: BreakerState, now: BreakerState, owner: bool, open_left: Duration) -> Intent {
    use BreakerState::*;
    match (before, now) {
        (Closed, Open) => Intent::Trip(open_left),
        (HalfOpen, Open) if owner => Intent::ProbeFailed,
        (HalfOpen, Closed) if owner => Intent::ProbesSucceeded,
        // Probes of its own closed it while the fleet was out of reach: the
        // service is back, which the fleet should hear rather than undo.
        (Open | HalfOpen, Closed) => Intent::Recovered,
        (_, Open | HalfOpen) => Intent::Claim,
        _ => Intent::None,
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl FleetInner {
    /// One sync round over every shared breaker, budget and queued session
    /// write, each call bounded by `redis_timeout`. Stops at the first backend error (the next round retries).
    pub(super) async fn sync_round(&self) -> Result<(), FleetError> {
        // One round at a time: two overlapping rounds would each take a grant.
        let _round = self.round.lock().await;
        let hold = self.hold();
        let links = lock(&self.links).clone();
        for link in &links {
            link.sync(&self.backend, &self.instance, hold).await?;
        }
        let budgets = lock(&self.budgets).clone();
        for budget in &budgets {
            let deposits = budget.pending_deposits.swap(0, AcqRel);
            let returned = budget.granted.swap(0, AcqRel);
            match self
                .backend
                .sync_budget(budget.service(), deposits, returned, &budget.rules)
                .await
            {
                Ok(view) => {
                    budget.granted.fetch_add(view.granted, AcqRel);
                    budget.mark_synced();
                }
                Err(error) => {
                    budget.pending_deposits.fetch_add(deposits, AcqRel);
                    budget.granted.fetch_add(returned, AcqRel);
                    return Err(error);
                }
            }
        }
        self.flush_sessions().await
    }

    /// How far past the shared deadline a worker keeps its breaker open, so
    /// it never probes on its own while the fleet is reachable.
    pub(super) fn hold(&self) -> Duration {
        self.config.sync_interval * 2 + self.config.redis_timeout
    }
}

/// The sync task: a round every `sync_interval`, and at once on a local
/// transition. Ends when the fleet is dropped.
pub(super) async fn run(fleet: Weak<FleetInner>, wake: Arc<Notify>, interval: Duration) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = wake.notified() => {}
        }
        let Some(fleet) = fleet.upgrade() else { return };
        let result = fleet.sync_round().await;
        fleet.note_round(result);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use BreakerState::*;

    const LEFT: Duration = Duration::from_millis(700);

    fn intent(before: BreakerState, now: BreakerState, owner: bool) -> Intent {
        intent_of(before, now, owner, LEFT)
    }

    #[test]
    fn local_transitions_become_requests_to_the_fleet() {
        assert_eq!(intent(Closed, Open, false), Intent::Trip(LEFT));
        assert_eq!(intent(HalfOpen, Open, true), Intent::ProbeFailed);
        assert_eq!(intent(HalfOpen, Closed, true), Intent::ProbesSucceeded);
        assert_eq!(
            intent(Open, HalfOpen, false),
            Intent::Claim,
            "probe only with the lease"
        );
        assert_eq!(
            intent(Open, Open, false),
            Intent::Claim,
            "ask again once the period ends"
        );
        assert_eq!(intent(Closed, Closed, false), Intent::None);
    }

    #[test]
    fn a_worker_without_the_lease_cannot_reopen_the_fleet_and_closes_it_only_as_recovered() {
        assert_eq!(intent(HalfOpen, Open, false), Intent::Claim);
        assert_eq!(intent(HalfOpen, Closed, false), Intent::Recovered);
        assert_eq!(intent(Open, Closed, false), Intent::Recovered);
    }
}
