//! The latency ladder's schedule, shared by everything the caller waits on
//! (a tool call, a model thinking): no outcome by `filler_after` → a filler
//! line; then a "still working" line every `filler_repeat`; at most
//! `filler_max` lines in all.
//!
//! ```
//! use std::time::Duration;
//! use tokio::time::Instant;
//! use voxguard::recovery::{Category, Ladder, LadderTiming};
//! let timing = LadderTiming {
//!     filler_after: Duration::from_millis(600),
//!     filler_repeat: Duration::from_millis(1500),
//!     filler_max: 2,
//!     budget: Duration::from_millis(3200),
//! };
//! let started = Instant::now();
//! let mut ladder = Ladder::start(timing, started);
//! assert_eq!(ladder.next_due(), Some(started + Duration::from_millis(600)));
//! assert_eq!(ladder.step().category, Category::Filler);
//! assert_eq!(ladder.next_due(), Some(started + Duration::from_millis(2100)));
//! assert_eq!(ladder.step().category, Category::StillWorking);
//! assert_eq!(ladder.next_due(), None);
//! ```

use tokio::time::Instant;

use super::phrases::Category;
use super::speech::SpeechKind;
use super::tool::LadderTiming;

/// One line of the ladder: what to draw and how to mark it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rung {
    pub category: Category,
    pub kind: SpeechKind,
}

/// Where a wait is on its ladder.
#[derive(Debug, Clone)]
pub struct Ladder {
    timing: LadderTiming,
    spoken: u32,
    next_at: Instant,
}

impl Ladder {
    pub fn start(timing: LadderTiming, started: Instant) -> Ladder {
        Ladder {
            timing,
            spoken: 0,
            next_at: started + timing.filler_after,
        }
    }

    /// When the next line is due; `None` once `filler_max` lines were said.
    pub fn next_due(&self) -> Option<Instant> {
        (self.spoken < self.timing.filler_max).then_some(self.next_at)
    }

    /// The line due now; moves the schedule to the next one.
    pub fn step(&mut self) -> Rung {
        let rung = if self.spoken == 0 {
            Rung {
                category: Category::Filler,
                kind: SpeechKind::Filler,
            }
        } else {
            Rung {
                category: Category::StillWorking,
                kind: SpeechKind::StillWorking,
            }
        };
        self.spoken += 1;
        self.next_at += self.timing.filler_repeat;
        rung
    }

    /// Lines said so far.
    pub fn spoken(&self) -> u32 {
        self.spoken
    }
}

/// Sleep until `due`, or forever when nothing is due (a `select!` arm).
pub async fn until_due(due: Option<Instant>) {
    match due {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_ladder_with_no_fillers_is_never_due() {
        let timing = LadderTiming {
            filler_after: Duration::from_millis(600),
            filler_repeat: Duration::from_millis(1500),
            filler_max: 0,
            budget: Duration::from_secs(3),
        };
        assert_eq!(Ladder::start(timing, Instant::now()).next_due(), None);
    }
}
