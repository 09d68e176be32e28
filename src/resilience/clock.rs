//! Monotonic clocks for the breaker and the retry budget, as nanoseconds since
//! an origin: tokio's clock (pausable in tests), the std monotonic clock, or a
//! manual clock that tests move by hand.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A monotonic time source read as nanoseconds since its origin.
#[derive(Debug, Clone)]
pub enum Clock {
    /// tokio's clock: real time in production, exact under `start_paused` tests.
    Tokio { origin: tokio::time::Instant },
    /// The std monotonic clock, for code outside any runtime.
    Monotonic { origin: std::time::Instant },
    /// A clock that only moves when told to.
    Manual(ManualClock),
}

impl Clock {
    /// tokio's clock, with its origin now.
    pub fn tokio() -> Self {
        Clock::Tokio {
            origin: tokio::time::Instant::now(),
        }
    }

    /// The std monotonic clock, with its origin now.
    pub fn monotonic() -> Self {
        Clock::Monotonic {
            origin: std::time::Instant::now(),
        }
    }

    /// Nanoseconds since the origin (saturating; never goes backwards).
    pub fn now_nanos(&self) -> u64 {
        match self {
            Clock::Tokio { origin } => as_nanos(origin.elapsed()),
            Clock::Monotonic { origin } => as_nanos(origin.elapsed()),
            Clock::Manual(manual) => manual.now_nanos(),
        }
    }

    /// Time since the origin.
    pub fn now(&self) -> Duration {
        Duration::from_nanos(self.now_nanos())
    }
}

impl From<ManualClock> for Clock {
    fn from(manual: ManualClock) -> Self {
        Clock::Manual(manual)
    }
}

/// A hand-driven clock shared by its clones.
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    nanos: Arc<AtomicU64>,
}

impl ManualClock {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn now_nanos(&self) -> u64 {
        self.nanos.load(Ordering::Acquire)
    }

    /// Move the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        self.nanos.fetch_add(as_nanos(by), Ordering::AcqRel);
    }
}

pub(crate) fn as_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_advanced_and_clones_share_it() {
        let manual = ManualClock::new();
        let clock = Clock::from(manual.clone());
        assert_eq!(clock.now_nanos(), 0);
        manual.advance(Duration::from_millis(5));
        assert_eq!(clock.now(), Duration::from_millis(5));
    }

    #[tokio::test(start_paused = true)]
    async fn the_tokio_clock_follows_paused_time_exactly() {
        let clock = Clock::tokio();
        tokio::time::advance(Duration::from_millis(250)).await;
        assert_eq!(clock.now(), Duration::from_millis(250));
    }
}
