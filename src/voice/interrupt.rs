//! Interruptions: the caller talking over the agent. Speech from the caller
//! lasting `min_duration` while the agent speaks pauses the agent at once;
//! once the recognizer hears words in it, the interruption is real and the
//! rest of the agent's speech is dropped; if the caller stops and no words
//! come within `false_timeout`, it was a cough or a "mm-hm" and the agent
//! resumes where it paused (LiveKit Agents' `min_interruption_duration`,
//! 0.5 s, and `false_interruption_timeout`, 2 s).
//!
//! ```
//! use std::time::Duration;
//! use tokio::time::Instant;
//! use voxguard::voice::interrupt::{Interruptions, InterruptSettings, Verdict};
//! let mut barge = Interruptions::new(InterruptSettings::default());
//! let t0 = Instant::now();
//! barge.agent_speaking(true, true);
//! barge.caller_started(t0);
//! assert_eq!(barge.poll(t0 + Duration::from_millis(500)), Some(Verdict::Pause));
//! barge.words_heard(t0 + Duration::from_millis(700));
//! assert_eq!(barge.poll(t0 + Duration::from_millis(700)), Some(Verdict::Interrupt));
//! ```

use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InterruptSettings {
    /// Caller speech at least this long while the agent speaks pauses it.
    pub min_duration: Duration,
    /// A pause with no words this long after the caller stopped resumes the agent.
    pub false_timeout: Duration,
}

impl Default for InterruptSettings {
    fn default() -> Self {
        InterruptSettings {
            min_duration: Duration::from_millis(500),
            false_timeout: Duration::from_secs(2),
        }
    }
}

/// What the playout should do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Stop the agent's audio now; it may resume.
    Pause,
    /// The caller really interrupted: drop the rest of what was to be said.
    Interrupt,
    /// It was not an interruption: carry on from where the audio paused.
    Resume,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// The agent is silent, or speaking and the caller is not.
    Quiet,
    /// The caller started talking over the agent at this time.
    Overlap { since: Instant },
    /// The agent is paused; `quiet_since` is when the caller stopped.
    Paused { quiet_since: Option<Instant> },
}

/// One call's barge-in detector.
#[derive(Debug)]
pub struct Interruptions {
    settings: InterruptSettings,
    state: State,
    agent_speaking: bool,
    interruptible: bool,
    caller_speaking: bool,
    words: bool,
    /// Decided on an input (and when), waiting for `poll`.
    decided: Option<(Verdict, Instant)>,
}

impl Interruptions {
    pub fn new(settings: InterruptSettings) -> Interruptions {
        Interruptions {
            settings,
            state: State::Quiet,
            agent_speaking: false,
            interruptible: true,
            caller_speaking: false,
            words: false,
            decided: None,
        }
    }

    /// Whether the agent's audio is playing, and whether what it says may be
    /// talked over (news the caller must hear in full may not).
    pub fn agent_speaking(&mut self, speaking: bool, interruptible: bool) {
        self.agent_speaking = speaking;
        self.interruptible = interruptible;
        if !speaking && !matches!(self.state, State::Paused { .. }) {
            self.state = State::Quiet;
        }
    }

    /// Voice activity: the caller started talking.
    pub fn caller_started(&mut self, at: Instant) {
        self.caller_speaking = true;
        self.words = false;
        match self.state {
            State::Quiet if self.agent_speaking && self.interruptible => {
                self.state = State::Overlap { since: at };
            }
            State::Paused { .. } => self.state = State::Paused { quiet_since: None },
            _ => {}
        }
    }

    /// Voice activity: the caller stopped talking.
    pub fn caller_stopped(&mut self, at: Instant) {
        self.caller_speaking = false;
        match self.state {
            State::Overlap { .. } => self.state = State::Quiet,
            State::Paused { .. } => {
                self.state = State::Paused {
                    quiet_since: Some(at),
                }
            }
            State::Quiet => {}
        }
    }

    /// The recognizer heard words in what the caller is saying.
    pub fn words_heard(&mut self, at: Instant) {
        self.words = true;
        if matches!(self.state, State::Paused { .. }) {
            self.state = State::Quiet;
            self.decided = Some((Verdict::Interrupt, at));
        }
    }

    /// Whether the agent is held by a possible interruption.
    pub fn is_paused(&self) -> bool {
        matches!(self.state, State::Paused { .. })
    }

    /// When [`Interruptions::poll`] should be called next.
    pub fn next_deadline(&self) -> Option<Instant> {
        if let Some((_, at)) = self.decided {
            return Some(at);
        }
        match self.state {
            State::Overlap { since } => Some(since + self.settings.min_duration),
            State::Paused {
                quiet_since: Some(quiet),
            } => Some(quiet + self.settings.false_timeout),
            _ => None,
        }
    }

    /// What to do at `now`, if anything changed.
    pub fn poll(&mut self, now: Instant) -> Option<Verdict> {
        if let Some((verdict, _)) = self.decided.take() {
            return Some(verdict);
        }
        match self.state {
            State::Overlap { since } if now >= since + self.settings.min_duration => {
                if self.words {
                    self.state = State::Quiet;
                    Some(Verdict::Interrupt)
                } else {
                    self.state = State::Paused { quiet_since: None };
                    Some(Verdict::Pause)
                }
            }
            State::Paused {
                quiet_since: Some(quiet),
            } if now >= quiet + self.settings.false_timeout => {
                self.state = State::Quiet;
                Some(Verdict::Resume)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn short_overlaps_never_pause_the_agent() {
        let mut barge = Interruptions::new(InterruptSettings::default());
        let t0 = Instant::now();
        barge.agent_speaking(true, true);
        barge.caller_started(t0);
        barge.caller_stopped(t0 + ms(300));
        assert_eq!(barge.poll(t0 + ms(600)), None);
        assert!(!barge.is_paused());
    }

    #[test]
    fn a_pause_without_words_resumes_after_the_false_timeout() {
        let mut barge = Interruptions::new(InterruptSettings::default());
        let t0 = Instant::now();
        barge.agent_speaking(true, true);
        barge.caller_started(t0);
        assert_eq!(barge.poll(t0 + ms(500)), Some(Verdict::Pause));
        barge.caller_stopped(t0 + ms(800));
        assert_eq!(barge.next_deadline(), Some(t0 + ms(2800)));
        assert_eq!(barge.poll(t0 + ms(2799)), None);
        assert_eq!(barge.poll(t0 + ms(2800)), Some(Verdict::Resume));
    }

    #[test]
    fn words_during_the_overlap_interrupt_at_min_duration() {
        let mut barge = Interruptions::new(InterruptSettings::default());
        let t0 = Instant::now();
        barge.agent_speaking(true, true);
        barge.caller_started(t0);
        barge.words_heard(t0 + ms(300));
        assert_eq!(barge.poll(t0 + ms(499)), None);
        assert_eq!(barge.poll(t0 + ms(500)), Some(Verdict::Interrupt));
    }

    #[test]
    fn lines_that_must_be_heard_in_full_are_never_paused() {
        let mut barge = Interruptions::new(InterruptSettings::default());
        let t0 = Instant::now();
        barge.agent_speaking(true, false);
        barge.caller_started(t0);
        assert_eq!(barge.poll(t0 + ms(2000)), None);
    }

    #[test]
    fn the_caller_speaking_again_while_paused_holds_the_pause() {
        let mut barge = Interruptions::new(InterruptSettings::default());
        let t0 = Instant::now();
        barge.agent_speaking(true, true);
        barge.caller_started(t0);
        assert_eq!(barge.poll(t0 + ms(500)), Some(Verdict::Pause));
        barge.caller_stopped(t0 + ms(600));
        barge.caller_started(t0 + ms(1500));
        assert_eq!(barge.poll(t0 + ms(2700)), None, "talking again: no resume");
        barge.words_heard(t0 + ms(2800));
        assert_eq!(barge.poll(t0 + ms(2800)), Some(Verdict::Interrupt));
    }
}
