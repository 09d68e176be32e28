//! The breaker's count-based sliding window: a ring of atomic slots, one per
//! recent call, with running failure and slow counts. Lock-free.
//!
//! A slot holds the outcome bits of one call. Writers claim a slot with one
//! `fetch_add` on the index and only touch the slot (and the counters) when
//! the outcome differs from what the slot held, so a run of fast successes
//! costs one `fetch_add` and one load per call.

use std::sync::atomic::{AtomicI32, AtomicU8, AtomicU64, Ordering::Relaxed};

pub(crate) const FAILED: u8 = 1;
pub(crate) const SLOW: u8 = 2;

/// What the window held right after a call was recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WindowCounts {
    pub calls: u32,
    pub failures: u32,
    pub slow: u32,
}

#[derive(Debug)]
pub(crate) struct SlidingWindow {
    slots: Box<[AtomicU8]>,
    next: AtomicU64,
    // Signed: concurrent writers may apply their deltas out of order, so a
    // count can dip below zero for an instant; readers clamp at zero.
    failures: AtomicI32,
    slow: AtomicI32,
    // Cumulative since creation (never cleared), for the fleet's shared window.
    cleared_calls: AtomicU64,
    total_failures: AtomicU64,
    total_slow: AtomicU64,
}

impl SlidingWindow {
    pub fn new(size: u32) -> Self {
        let size = size.max(1) as usize;
        SlidingWindow {
            slots: (0..size).map(|_| AtomicU8::new(0)).collect(),
            next: AtomicU64::new(0),
            failures: AtomicI32::new(0),
            slow: AtomicI32::new(0),
            cleared_calls: AtomicU64::new(0),
            total_failures: AtomicU64::new(0),
            total_slow: AtomicU64::new(0),
        }
    }

    /// Record one call's outcome bits; returns how many calls the window now
    /// holds (the failure and slow counts are read separately, on demand).
    #[inline(always)]
    pub fn push(&self, outcome: u8) -> u32 {
        let index = self.next.fetch_add(1, Relaxed);
        let len = self.slots.len() as u64;
        let slot = &self.slots[(index % len) as usize];
        if outcome != 0 || slot.load(Relaxed) != 0 {
            self.tally_bad(outcome);
            let previous = slot.swap(outcome, Relaxed);
            self.apply_delta(previous, outcome);
        }
        (index + 1).min(len) as u32
    }

    fn apply_delta(&self, previous: u8, outcome: u8) {
        for (bit, counter) in [(FAILED, &self.failures), (SLOW, &self.slow)] {
            match (previous & bit != 0, outcome & bit != 0) {
                (false, true) => {
                    counter.fetch_add(1, Relaxed);
                }
                (true, false) => {
                    counter.fetch_sub(1, Relaxed);
                }
                _ => {}
            }
        }
    }

    fn tally_bad(&self, outcome: u8) {
        if outcome & FAILED != 0 {
            self.total_failures.fetch_add(1, Relaxed);
        }
        if outcome & SLOW != 0 {
            self.total_slow.fetch_add(1, Relaxed);
        }
    }

    /// Count a call in the cumulative tally only (not in the window): the
    /// failure that trips the breaker on consecutive failures.
    pub fn tally_only(&self, outcome: u8) {
        self.cleared_calls.fetch_add(1, Relaxed);
        self.tally_bad(outcome);
    }

    /// Calls, failures and slow calls recorded since creation.
    pub fn tally(&self) -> (u64, u64, u64) {
        (
            self.cleared_calls.load(Relaxed) + self.next.load(Relaxed),
            self.total_failures.load(Relaxed),
            self.total_slow.load(Relaxed),
        )
    }

    pub fn counts(&self, calls: u32) -> WindowCounts {
        let read = |c: &AtomicI32| c.load(Relaxed).max(0) as u32;
        WindowCounts {
            calls,
            failures: read(&self.failures).min(calls),
            slow: read(&self.slow).min(calls),
        }
    }

    /// Forget every call. Only called while the window is not in use
    /// (the breaker is about to close); a straggler write is harmless.
    pub fn clear(&self) {
        for slot in self.slots.iter() {
            slot.store(0, Relaxed);
        }
        self.failures.store(0, Relaxed);
        self.slow.store(0, Relaxed);
        self.cleared_calls
            .fetch_add(self.next.swap(0, Relaxed), Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_forgets_calls_older_than_its_size() {
        let window = SlidingWindow::new(3);
        assert_eq!(window.push(FAILED), 1);
        window.push(FAILED | SLOW);
        window.push(0);
        assert_eq!(
            window.counts(3),
            WindowCounts {
                calls: 3,
                failures: 2,
                slow: 1
            }
        );
        window.push(0);
        window.push(0);
        assert_eq!(window.push(SLOW), 3);
        assert_eq!(
            window.counts(3),
            WindowCounts {
                calls: 3,
                failures: 0,
                slow: 1
            }
        );
    }

    #[test]
    fn the_tally_counts_every_call_and_survives_clearing() {
        let window = SlidingWindow::new(2);
        window.push(FAILED);
        window.push(SLOW);
        window.push(0);
        window.clear();
        window.push(FAILED | SLOW);
        window.tally_only(FAILED);
        assert_eq!(window.tally(), (5, 3, 2));
    }

    #[test]
    fn counts_stay_exact_under_concurrent_writers() {
        let window = SlidingWindow::new(16);
        std::thread::scope(|s| {
            for t in 0..4u8 {
                let window = &window;
                s.spawn(move || {
                    for i in 0..10_000u32 {
                        window.push(if (i + t as u32).is_multiple_of(3) {
                            FAILED
                        } else {
                            0
                        });
                    }
                });
            }
        });
        let held: u32 = window
            .slots
            .iter()
            .map(|s| (s.load(Relaxed) & FAILED) as u32)
            .sum();
        assert_eq!(window.counts(16).failures, held);
    }
}
