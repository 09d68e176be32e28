//! Retry budget: retries may be at most `retry_ratio` × recent first attempts,
//! plus a floor of `min_retries_per_sec`, over a sliding time window.
//!
//! Each first attempt deposits, each retry withdraws. The window is split
//! into ten slices of atomic counters; the oldest slice is recycled as time
//! moves on (under a tiny lock taken once per slice, never per call), so the
//! window covers between nine and ten slices of history.
//!
//! ```
//! use std::time::Duration;
//! use voxguard::resilience::{BudgetConfig, Clock, ManualClock, RetryBudget};
//! let config = BudgetConfig { retry_ratio: 0.5, min_retries_per_sec: 0, window: Duration::from_secs(10) };
//! let budget = RetryBudget::new(config, Clock::from(ManualClock::new()));
//! budget.deposit();
//! budget.deposit();
//! assert!(budget.try_withdraw());
//! assert!(!budget.try_withdraw());
//! ```
//!
//! A [`Guard`](super::Guard) spends from its own `RetryBudget` unless it is
//! given another [`RetryBudgetSource`] (e.g. one shared by a fleet of workers).

use std::fmt::Debug;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::*};
use std::time::Duration;

use super::clock::{Clock, as_nanos};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BudgetConfig {
    /// Retries allowed as a fraction of recent first attempts (e.g. 0.2).
    pub retry_ratio: f64,
    /// Retries always allowed per second, whatever the traffic.
    pub min_retries_per_sec: u32,
    /// How far back "recent" reaches.
    pub window: Duration,
}

impl BudgetConfig {
    /// Retries the floor alone allows over one window.
    pub fn floor_per_window(&self) -> u64 {
        (f64::from(self.min_retries_per_sec) * self.window.as_secs_f64()) as u64
    }
}

/// Where a guard records first attempts and pays for retries. Both calls
/// must be cheap and must never wait: they sit on every guarded call's path.
pub trait RetryBudgetSource: Send + Sync + Debug {
    /// Record a first attempt.
    fn deposit(&self);
    /// Take one retry; `false` when the budget is spent.
    fn try_withdraw(&self) -> bool;
    /// Retries that could be taken right now.
    fn available(&self) -> u64;
}

impl RetryBudgetSource for RetryBudget {
    fn deposit(&self) {
        RetryBudget::deposit(self);
    }

    fn try_withdraw(&self) -> bool {
        RetryBudget::try_withdraw(self)
    }

    fn available(&self) -> u64 {
        RetryBudget::available(self)
    }
}

const SLICES: u64 = 10;

#[derive(Debug, Default)]
struct Slice {
    /// Which slice of time this holds (0 = never used).
    epoch: AtomicU64,
    deposits: AtomicU32,
    withdrawals: AtomicU32,
}

#[derive(Debug)]
pub struct RetryBudget {
    config: BudgetConfig,
    clock: Clock,
    slice_nanos: u64,
    slices: [Slice; SLICES as usize],
    recycling: Mutex<()>,
}

impl RetryBudget {
    pub fn new(config: BudgetConfig, clock: Clock) -> Self {
        RetryBudget {
            config,
            clock,
            slice_nanos: (as_nanos(config.window) / SLICES).max(1),
            slices: Default::default(),
            recycling: Mutex::new(()),
        }
    }

    pub fn config(&self) -> &BudgetConfig {
        &self.config
    }

    /// Record a first attempt.
    #[inline]
    pub fn deposit(&self) {
        self.deposit_at(self.clock.now_nanos());
    }

    /// Record a first attempt at `now_nanos` on the budget's clock.
    #[inline]
    pub fn deposit_at(&self, now_nanos: u64) {
        self.current_slice(now_nanos).deposits.fetch_add(1, Relaxed);
    }

    /// Take one retry from the budget; `false` when it is spent.
    pub fn try_withdraw(&self) -> bool {
        let now = self.clock.now_nanos();
        let slice = self.current_slice(now);
        slice.withdrawals.fetch_add(1, AcqRel);
        let (deposits, withdrawals) = self.totals(now);
        if withdrawals <= self.allowed(deposits) {
            return true;
        }
        slice.withdrawals.fetch_sub(1, AcqRel);
        false
    }

    /// Retries still available right now.
    pub fn available(&self) -> u64 {
        let (deposits, withdrawals) = self.totals(self.clock.now_nanos());
        self.allowed(deposits).saturating_sub(withdrawals)
    }

    fn allowed(&self, deposits: u64) -> u64 {
        (deposits as f64 * self.config.retry_ratio) as u64 + self.config.floor_per_window()
    }

    fn totals(&self, now_nanos: u64) -> (u64, u64) {
        let epoch = self.epoch_of(now_nanos);
        self.slices
            .iter()
            .filter(|s| {
                let e = s.epoch.load(Acquire);
                e != 0 && e + SLICES > epoch
            })
            .fold((0, 0), |(d, w), s| {
                (
                    d + u64::from(s.deposits.load(Relaxed)),
                    w + u64::from(s.withdrawals.load(Relaxed)),
                )
            })
    }

    fn epoch_of(&self, now_nanos: u64) -> u64 {
        now_nanos / self.slice_nanos + 1
    }

    #[inline]
    fn current_slice(&self, now_nanos: u64) -> &Slice {
        let epoch = self.epoch_of(now_nanos);
        let slice = &self.slices[(epoch % SLICES) as usize];
        if slice.epoch.load(Acquire) < epoch {
            self.recycle(slice, epoch);
        }
        slice
    }

    #[cold]
    fn recycle(&self, slice: &Slice, epoch: u64) {
        let _held = self
            .recycling
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if slice.epoch.load(Acquire) < epoch {
            slice.deposits.store(0, Relaxed);
            slice.withdrawals.store(0, Relaxed);
            slice.epoch.store(epoch, Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resilience::clock::ManualClock;

    const SEC: Duration = Duration::from_secs(1);

    fn budget(ratio: f64, floor: u32) -> (RetryBudget, ManualClock) {
        let manual = ManualClock::new();
        let config = BudgetConfig {
            retry_ratio: ratio,
            min_retries_per_sec: floor,
            window: 10 * SEC,
        };
        (RetryBudget::new(config, manual.clone().into()), manual)
    }

    #[test]
    fn retries_are_limited_to_the_ratio_of_first_attempts() {
        let (budget, _) = budget(0.2, 0);
        for _ in 0..10 {
            budget.deposit();
        }
        assert!(budget.try_withdraw());
        assert!(budget.try_withdraw());
        assert!(
            !budget.try_withdraw(),
            "20% of 10 first attempts is 2 retries"
        );
    }

    #[test]
    fn the_floor_allows_retries_without_traffic() {
        let (budget, _) = budget(0.2, 1);
        let granted = (0..20).filter(|_| budget.try_withdraw()).count();
        assert_eq!(granted, 10, "1 retry/s over a 10 s window");
    }

    #[test]
    fn deposits_expire_after_the_window() {
        let (budget, clock) = budget(1.0, 0);
        budget.deposit();
        clock.advance(11 * SEC);
        assert_eq!(budget.available(), 0);
        assert!(!budget.try_withdraw());
        budget.deposit();
        assert!(budget.try_withdraw());
    }

    #[test]
    fn old_deposits_and_withdrawals_leave_the_window_together() {
        let (budget, clock) = budget(0.5, 0);
        budget.deposit();
        budget.deposit();
        assert!(budget.try_withdraw());
        clock.advance(5 * SEC);
        budget.deposit();
        budget.deposit();
        assert!(budget.try_withdraw());
        assert!(!budget.try_withdraw());
        clock.advance(6 * SEC);
        assert_eq!(
            budget.available(),
            0,
            "only the second slice counts: 2 deposits × 0.5 − 1 withdrawal"
        );
    }

    #[test]
    fn concurrent_withdrawals_never_overdraw() {
        let (budget, _) = budget(0.1, 0);
        for _ in 0..1000 {
            budget.deposit();
        }
        let granted = AtomicU32::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..100 {
                        if budget.try_withdraw() {
                            granted.fetch_add(1, Relaxed);
                        }
                    }
                });
            }
        });
        assert!(granted.load(Relaxed) <= 100);
    }
}
