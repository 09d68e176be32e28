//! Capped exponential backoff with full or decorrelated jitter.
//!
//! A [`Backoff`] holds the state of one call's retries; every sleep is drawn
//! from a caller-supplied RNG so a seeded run is reproducible.
//!
//! ```
//! use std::time::Duration;
//! use rand::{SeedableRng, rngs::SmallRng};
//! use voxguard::resilience::{Backoff, BackoffConfig, BackoffKind};
//! let config = BackoffConfig { kind: BackoffKind::Full, base: Duration::from_millis(100), cap: Duration::from_millis(400) };
//! let mut backoff = Backoff::new(config);
//! let mut rng = SmallRng::seed_from_u64(7);
//! assert!(backoff.next_sleep(&mut rng) <= Duration::from_millis(100));
//! assert!(backoff.next_sleep(&mut rng) <= Duration::from_millis(200));
//! ```

use std::time::Duration;

use rand::Rng;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackoffKind {
    /// sleep = random(0, min(cap, base × 2^n))
    Full,
    /// sleep = min(cap, random(base, previous × 3))
    Decorrelated,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BackoffConfig {
    pub kind: BackoffKind,
    pub base: Duration,
    pub cap: Duration,
}

impl BackoffConfig {
    /// The longest any single sleep can be. Both kinds are bounded by `cap`.
    pub fn max_sleep(&self) -> Duration {
        self.cap
    }
}

/// The backoff state of one call: how many sleeps were drawn and the last one.
#[derive(Debug, Clone)]
pub struct Backoff {
    config: BackoffConfig,
    sleeps: u32,
    previous: Duration,
}

impl Backoff {
    pub fn new(config: BackoffConfig) -> Self {
        Backoff {
            config,
            sleeps: 0,
            previous: config.base,
        }
    }

    /// How many sleeps have been drawn so far.
    pub fn sleeps(&self) -> u32 {
        self.sleeps
    }

    /// Draw the next sleep. Never exceeds `cap`.
    pub fn next_sleep<R: Rng + ?Sized>(&mut self, rng: &mut R) -> Duration {
        let BackoffConfig { kind, base, cap } = self.config;
        let sleep = match kind {
            BackoffKind::Full => {
                let ceiling = base
                    .saturating_mul(1u32.checked_shl(self.sleeps).unwrap_or(u32::MAX))
                    .min(cap);
                uniform(rng, Duration::ZERO, ceiling)
            }
            BackoffKind::Decorrelated => {
                let upper = self.previous.saturating_mul(3).max(base);
                uniform(rng, base, upper).min(cap)
            }
        };
        self.sleeps = self.sleeps.saturating_add(1);
        self.previous = sleep;
        sleep
    }
}

/// A uniformly random duration in `[low, high]` at nanosecond resolution.
fn uniform<R: Rng + ?Sized>(rng: &mut R, low: Duration, high: Duration) -> Duration {
    if high <= low {
        return low;
    }
    let span = u64::try_from((high - low).as_nanos()).unwrap_or(u64::MAX);
    low + Duration::from_nanos(rng.random_range(0..=span))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    const MS: Duration = Duration::from_millis(1);

    fn config(kind: BackoffKind) -> BackoffConfig {
        BackoffConfig {
            kind,
            base: 100 * MS,
            cap: 400 * MS,
        }
    }

    #[test]
    fn full_jitter_stays_under_the_doubling_ceiling_and_the_cap() {
        let mut rng = SmallRng::seed_from_u64(1);
        for _ in 0..200 {
            let mut backoff = Backoff::new(config(BackoffKind::Full));
            for ceiling in [100 * MS, 200 * MS, 400 * MS, 400 * MS, 400 * MS] {
                assert!(backoff.next_sleep(&mut rng) <= ceiling);
            }
        }
    }

    #[test]
    fn full_jitter_actually_spreads_sleeps() {
        let mut rng = SmallRng::seed_from_u64(2);
        let sleeps: Vec<_> = (0..50)
            .map(|_| Backoff::new(config(BackoffKind::Full)).next_sleep(&mut rng))
            .collect();
        assert!(sleeps.iter().any(|s| *s < 30 * MS));
        assert!(sleeps.iter().any(|s| *s > 70 * MS));
    }

    #[test]
    fn decorrelated_jitter_stays_between_base_and_cap() {
        let mut rng = SmallRng::seed_from_u64(3);
        let mut backoff = Backoff::new(config(BackoffKind::Decorrelated));
        let mut previous = 100 * MS;
        for _ in 0..100 {
            let sleep = backoff.next_sleep(&mut rng);
            assert!(sleep >= 100 * MS && sleep <= 400 * MS);
            assert!(sleep <= previous * 3);
            previous = sleep;
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_sleeps() {
        let draw = |seed| {
            let mut rng = SmallRng::seed_from_u64(seed);
            let mut backoff = Backoff::new(config(BackoffKind::Decorrelated));
            (0..5)
                .map(|_| backoff.next_sleep(&mut rng))
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(9), draw(9));
        assert_ne!(draw(9), draw(10));
    }

    #[test]
    fn huge_retry_counts_do_not_overflow() {
        let mut rng = SmallRng::seed_from_u64(4);
        let mut backoff = Backoff::new(config(BackoffKind::Full));
        for _ in 0..100 {
            assert!(backoff.next_sleep(&mut rng) <= 400 * MS);
        }
    }
}
