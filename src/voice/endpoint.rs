//! Endpointing: when the caller's turn is over. Voice activity says when
//! speech stops; the recognizer says what was said. A turn ends when both
//! agree: speech stopped at least `min_delay` ago and the recognizer's final
//! words for it are in — or, if the words are late, `max_delay` after speech
//! stopped with whatever words there are (LiveKit Agents' min and max
//! endpointing delays, 0.5 s and 3 s by default).
//!
//! Sans-IO: inputs carry their time, [`Endpointer::poll`] is asked at the
//! deadline [`Endpointer::next_deadline`] gives.
//!
//! ```
//! use std::time::Duration;
//! use tokio::time::Instant;
//! use voxguard::voice::endpoint::{Endpointer, EndpointSettings, TurnEnd};
//! let mut turns = Endpointer::new(EndpointSettings::default());
//! let t0 = Instant::now();
//! turns.speech_started(t0);
//! turns.speech_ended(t0 + Duration::from_millis(1000));
//! // The recognizer answers the end-of-turn with its final words.
//! turns.final_words("we're about eight people", t0 + Duration::from_millis(1100));
//! assert_eq!(turns.poll(t0 + Duration::from_millis(1400)), None);
//! let end = turns.poll(t0 + Duration::from_millis(1500)).unwrap();
//! assert_eq!(end, TurnEnd { text: "we're about eight people".into(), speech_ended: t0 + Duration::from_millis(1000), waited_for_words: false });
//! ```

use std::time::Duration;

use tokio::time::Instant;

/// How long the endpointer waits after speech stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndpointSettings {
    /// The least silence after speech before the turn may end.
    pub min_delay: Duration,
    /// The most silence after speech before the turn ends, words or not.
    pub max_delay: Duration,
}

impl Default for EndpointSettings {
    fn default() -> Self {
        EndpointSettings {
            min_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(3),
        }
    }
}

/// A finished caller turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnEnd {
    /// Every final word of the turn, in order.
    pub text: String,
    /// When the caller stopped speaking (mouth-to-ear is measured from here).
    pub speech_ended: Instant,
    /// The words came after `min_delay` (the recognizer was the slow part).
    pub waited_for_words: bool,
}

/// What the turn is waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Nobody is talking and nothing is pending.
    Idle,
    Speaking,
    /// Speech stopped at this time; the turn ends once the words are in.
    Ended(Instant),
}

/// One caller's turns, from voice activity and recognizer results.
#[derive(Debug)]
pub struct Endpointer {
    settings: EndpointSettings,
    phase: Phase,
    /// Final words of the current turn.
    words: String,
    /// Words the recognizer has finalized since speech last stopped; a final
    /// that arrives after the stop means the recognizer caught up.
    final_since_stop: bool,
    /// The latest interim words not yet made final.
    interim: String,
}

impl Endpointer {
    pub fn new(settings: EndpointSettings) -> Endpointer {
        Endpointer {
            settings,
            phase: Phase::Idle,
            words: String::new(),
            final_since_stop: false,
            interim: String::new(),
        }
    }

    pub fn settings(&self) -> EndpointSettings {
        self.settings
    }

    /// Voice activity: the caller started (or resumed) speaking. A turn whose
    /// end was pending goes on.
    pub fn speech_started(&mut self, _at: Instant) {
        self.phase = Phase::Speaking;
        self.final_since_stop = false;
    }

    /// Voice activity: the caller stopped speaking.
    pub fn speech_ended(&mut self, at: Instant) {
        if self.phase == Phase::Speaking {
            self.phase = Phase::Ended(at);
            self.final_since_stop = false;
        }
    }

    /// The recognizer's words so far for the speech in progress, not final.
    pub fn interim_words(&mut self, text: &str, _at: Instant) {
        self.interim.clear();
        self.interim.push_str(text.trim());
    }

    /// The recognizer finalized `text` (possibly empty: it heard no words).
    pub fn final_words(&mut self, text: &str, _at: Instant) {
        let text = text.trim();
        if !text.is_empty() {
            if !self.words.is_empty() {
                self.words.push(' ');
            }
            self.words.push_str(text);
        }
        self.interim.clear();
        if matches!(self.phase, Phase::Ended(_)) {
            self.final_since_stop = true;
        }
        if self.phase == Phase::Idle && !self.words.is_empty() {
            // Words without voice activity (the recognizer heard what the
            // VAD missed): their end is now.
            self.phase = Phase::Ended(_at);
            self.final_since_stop = true;
        }
    }

    /// Whether the caller is speaking or a turn end is pending.
    pub fn in_turn(&self) -> bool {
        self.phase != Phase::Idle
    }

    /// Whether the current turn has any words yet (final or interim).
    pub fn has_words(&self) -> bool {
        !self.words.is_empty() || !self.interim.is_empty()
    }

    /// When [`Endpointer::poll`] should be called next.
    pub fn next_deadline(&self) -> Option<Instant> {
        match self.phase {
            Phase::Ended(at) if self.final_since_stop => Some(at + self.settings.min_delay),
            Phase::Ended(at) => Some(at + self.settings.max_delay),
            _ => None,
        }
    }

    /// The turn, if it is over at `now`. A turn with no words at all (noise,
    /// a cough) ends without a [`TurnEnd`] and is forgotten.
    pub fn poll(&mut self, now: Instant) -> Option<TurnEnd> {
        let Phase::Ended(stopped) = self.phase else {
            return None;
        };
        let settled = self.final_since_stop && now >= stopped + self.settings.min_delay;
        let gave_up = now >= stopped + self.settings.max_delay;
        if !settled && !gave_up {
            return None;
        }
        let mut text = std::mem::take(&mut self.words);
        if text.is_empty() && gave_up {
            // The recognizer never finalized: its last interim words are
            // better than dropping what the caller said.
            text = std::mem::take(&mut self.interim);
        }
        self.interim.clear();
        self.phase = Phase::Idle;
        self.final_since_stop = false;
        (!text.is_empty()).then_some(TurnEnd {
            text,
            speech_ended: stopped,
            waited_for_words: !settled,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_turn_ends_min_delay_after_speech_when_the_words_are_in() {
        let mut turns = Endpointer::new(EndpointSettings::default());
        let t0 = Instant::now();
        turns.speech_started(t0);
        turns.speech_ended(t0 + ms(800));
        turns.final_words("hello there", t0 + ms(850));
        assert_eq!(turns.next_deadline(), Some(t0 + ms(1300)));
        assert_eq!(turns.poll(t0 + ms(1299)), None);
        let end = turns.poll(t0 + ms(1300)).expect("turn over");
        assert_eq!(end.text, "hello there");
        assert!(!end.waited_for_words);
        assert!(!turns.in_turn());
    }

    #[test]
    fn late_words_end_the_turn_when_they_arrive() {
        let mut turns = Endpointer::new(EndpointSettings::default());
        let t0 = Instant::now();
        turns.speech_started(t0);
        turns.speech_ended(t0 + ms(500));
        assert_eq!(turns.poll(t0 + ms(1500)), None, "no words yet");
        turns.final_words("slow recognizer", t0 + ms(1600));
        let end = turns.poll(t0 + ms(1600)).expect("words settle it");
        assert_eq!(end.text, "slow recognizer");
    }

    #[test]
    fn without_final_words_the_turn_ends_at_max_delay_with_the_interim_ones() {
        let mut turns = Endpointer::new(EndpointSettings::default());
        let t0 = Instant::now();
        turns.speech_started(t0);
        turns.interim_words("we use hub", t0 + ms(300));
        turns.speech_ended(t0 + ms(600));
        assert_eq!(turns.next_deadline(), Some(t0 + ms(3600)));
        assert_eq!(turns.poll(t0 + ms(3599)), None);
        let end = turns.poll(t0 + ms(3600)).expect("max delay");
        assert_eq!(end.text, "we use hub");
        assert!(end.waited_for_words);
    }

    #[test]
    fn speaking_again_before_the_end_keeps_one_turn() {
        let mut turns = Endpointer::new(EndpointSettings::default());
        let t0 = Instant::now();
        turns.speech_started(t0);
        turns.final_words("we're about", t0 + ms(400));
        turns.speech_ended(t0 + ms(500));
        turns.speech_started(t0 + ms(700));
        assert_eq!(turns.poll(t0 + ms(1200)), None, "still talking");
        turns.final_words("eight people", t0 + ms(1400));
        turns.speech_ended(t0 + ms(1500));
        assert_eq!(turns.poll(t0 + ms(1900)), None);
        turns.final_words("", t0 + ms(1550));
        assert_eq!(
            turns.poll(t0 + ms(2000)).map(|t| t.text),
            Some("we're about eight people".to_string())
        );
    }

    #[test]
    fn noise_without_words_ends_no_turn() {
        let mut turns = Endpointer::new(EndpointSettings::default());
        let t0 = Instant::now();
        turns.speech_started(t0);
        turns.speech_ended(t0 + ms(200));
        assert_eq!(turns.poll(t0 + ms(3200)), None);
        assert!(!turns.in_turn(), "the noise is forgotten");
    }
}
