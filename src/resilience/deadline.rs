//! A monotonic point in time by which a call must be resolved.
//!
//! Deadlines use tokio's clock, so tests on a paused clock are exact.
//! A child deadline never outlives its parent.
//!
//! ```
//! use std::time::Duration;
//! use voxguard::resilience::Deadline;
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let call = Deadline::after(Duration::from_millis(3500));
//! let attempt = call.child(Duration::from_secs(10));
//! assert_eq!(attempt, call, "clamped to the call's deadline");
//! # }
//! ```

use std::time::Duration;
use tokio::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Deadline {
    at: Instant,
}

impl Deadline {
    /// A deadline `budget` from now.
    pub fn after(budget: Duration) -> Self {
        Deadline {
            at: Instant::now() + budget,
        }
    }

    /// A deadline at a given instant.
    pub fn at(at: Instant) -> Self {
        Deadline { at }
    }

    pub fn instant(&self) -> Instant {
        self.at
    }

    /// Time left; zero once passed.
    pub fn remaining(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }

    pub fn is_expired(&self) -> bool {
        Instant::now() >= self.at
    }

    /// Whether `needed` fits in what is left.
    pub fn fits(&self, needed: Duration) -> bool {
        Instant::now() + needed <= self.at
    }

    /// A deadline `budget` from now, clamped so it never outlives `self`.
    pub fn child(&self, budget: Duration) -> Deadline {
        Deadline {
            at: (Instant::now() + budget).min(self.at),
        }
    }

    /// The earlier of two deadlines.
    pub fn min(self, other: Deadline) -> Deadline {
        Deadline {
            at: self.at.min(other.at),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn remaining_counts_down_and_saturates_at_zero() {
        let d = Deadline::after(Duration::from_millis(100));
        tokio::time::advance(Duration::from_millis(40)).await;
        assert_eq!(d.remaining(), Duration::from_millis(60));
        tokio::time::advance(Duration::from_millis(100)).await;
        assert_eq!(d.remaining(), Duration::ZERO);
        assert!(d.is_expired());
    }

    #[tokio::test(start_paused = true)]
    async fn a_child_never_outlives_its_parent() {
        let parent = Deadline::after(Duration::from_millis(100));
        assert_eq!(parent.child(Duration::from_secs(5)), parent);
        let short = parent.child(Duration::from_millis(30));
        assert_eq!(short.remaining(), Duration::from_millis(30));
    }

    #[tokio::test(start_paused = true)]
    async fn fits_is_inclusive_of_the_deadline_itself() {
        let d = Deadline::after(Duration::from_millis(100));
        assert!(d.fits(Duration::from_millis(100)));
        assert!(!d.fits(Duration::from_millis(101)));
    }
}
