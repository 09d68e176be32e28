//! Bulkhead: a cap on concurrent calls per service.
//!
//! Lock-free: one atomic counter, claimed by compare-exchange so it never
//! exceeds the cap. A full bulkhead rejects at once instead of queueing.
//!
//! ```
//! use voxguard::resilience::{Bulkhead, Rejection};
//! let bulkhead = Bulkhead::new(1);
//! let slot = bulkhead.try_acquire().unwrap();
//! assert_eq!(bulkhead.try_acquire().unwrap_err(), Rejection::BulkheadFull);
//! drop(slot);
//! assert!(bulkhead.try_acquire().is_ok());
//! ```

use std::sync::atomic::{AtomicU32, Ordering::*};

use super::error::Rejection;

#[derive(Debug)]
pub struct Bulkhead {
    capacity: u32,
    in_flight: AtomicU32,
}

/// One occupied slot; freed on drop.
#[must_use = "the slot is freed as soon as the permit is dropped"]
#[derive(Debug)]
pub struct BulkheadPermit<'a> {
    bulkhead: &'a Bulkhead,
}

impl Bulkhead {
    pub fn new(capacity: u32) -> Self {
        Bulkhead {
            capacity,
            in_flight: AtomicU32::new(0),
        }
    }

    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Relaxed)
    }

    /// Take a slot, or fail fast with [`Rejection::BulkheadFull`].
    #[inline]
    pub fn try_acquire(&self) -> Result<BulkheadPermit<'_>, Rejection> {
        let mut current = self.in_flight.load(Relaxed);
        loop {
            if current >= self.capacity {
                return Err(Rejection::BulkheadFull);
            }
            match self
                .in_flight
                .compare_exchange_weak(current, current + 1, Acquire, Relaxed)
            {
                Ok(_) => return Ok(BulkheadPermit { bulkhead: self }),
                Err(actual) => current = actual,
            }
        }
    }
}

impl Drop for BulkheadPermit<'_> {
    #[inline]
    fn drop(&mut self) {
        self.bulkhead.in_flight.fetch_sub(1, Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_bulkhead_rejects_and_a_released_slot_is_reusable() {
        let bulkhead = Bulkhead::new(2);
        let a = bulkhead.try_acquire().unwrap();
        let _b = bulkhead.try_acquire().unwrap();
        assert_eq!(bulkhead.try_acquire().unwrap_err(), Rejection::BulkheadFull);
        drop(a);
        assert_eq!(bulkhead.in_flight(), 1);
        assert!(bulkhead.try_acquire().is_ok());
    }

    #[test]
    fn concurrent_holders_never_exceed_the_capacity() {
        let bulkhead = Bulkhead::new(3);
        let peak = AtomicU32::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..20_000 {
                        if let Ok(_slot) = bulkhead.try_acquire() {
                            peak.fetch_max(bulkhead.in_flight(), Relaxed);
                        }
                    }
                });
            }
        });
        assert!(peak.load(Relaxed) <= 3);
        assert_eq!(bulkhead.in_flight(), 0);
    }
}
