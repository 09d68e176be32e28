//! The current turn's audio, kept so a turn whose recognizer fails can be
//! replayed into the next one (or the same one reconnected) and no word is
//! lost.
//!
//! Memory: only what is at risk is held — audio the recognizer has not yet
//! finalized, which Deepgram releases at every endpoint and phrase
//! boundary (`is_final`), so normally a few seconds, and nothing between
//! turns. The buffer grows with that audio up to its reach ([`DEFAULT_REPLAY`],
//! 8 s) and gives the memory back when a turn is finalized, keeping a
//! couple of seconds' room so an ordinary turn allocates nothing. Audio is
//! kept as 16 kHz G.711 μ-law, one byte a sample (16 KB/s instead of
//! 32 KB/s of linear16): the full reach is 128 000 bytes. μ-law is what
//! telephone networks carry and their recognizers transcribe; the loss
//! applies only to replayed audio, live audio goes out as linear16. Audio
//! older than the reach that was never finalized is reported as lost,
//! never silently dropped.

use std::collections::VecDeque;
use std::time::Duration;

use crate::media::wav;
use crate::speech::STT_SAMPLE_RATE;
use crate::speech::pcm::mulaw;

/// How much unfinalized audio a call keeps for replay.
pub const DEFAULT_REPLAY: Duration = Duration::from_secs(8);
/// Room kept between turns: 2 s of μ-law.
const KEPT_BETWEEN_TURNS: usize = 2 * STT_SAMPLE_RATE as usize;

/// The turn's unfinalized audio with absolute sample positions.
#[derive(Debug)]
pub struct TurnBuffer {
    /// μ-law samples at positions `end - held.len() .. end`.
    held: VecDeque<u8>,
    /// The most samples held.
    reach: usize,
    /// Samples ever pushed (absolute position of the next sample).
    end: u64,
    /// Samples before this position have been transcribed and delivered.
    finalized: u64,
}

impl TurnBuffer {
    /// A buffer reaching back `reach` of 16 kHz audio (at least 100 ms).
    /// Nothing is allocated until audio comes.
    pub fn new(reach: Duration) -> TurnBuffer {
        let samples = ((reach.as_secs_f64() * f64::from(STT_SAMPLE_RATE)) as usize).max(1_600);
        TurnBuffer {
            held: VecDeque::new(),
            reach: samples,
            end: 0,
            finalized: 0,
        }
    }

    /// Bytes allocated now.
    pub fn memory_bytes(&self) -> usize {
        self.held.capacity()
    }

    /// The most samples held.
    pub fn capacity(&self) -> u64 {
        self.reach as u64
    }

    /// Append 16 kHz samples, forgetting what falls out of the reach.
    pub fn push(&mut self, samples: &[i16]) {
        let keep = samples.len().min(self.reach);
        let overflow = (self.held.len() + keep).saturating_sub(self.reach);
        self.held.drain(..overflow);
        self.held.extend(
            samples[samples.len() - keep..]
                .iter()
                .map(|&s| mulaw::encode(s)),
        );
        self.end += samples.len() as u64;
    }

    pub fn end(&self) -> u64 {
        self.end
    }

    pub fn finalized(&self) -> u64 {
        self.finalized
    }

    /// The position of the oldest sample held.
    fn start(&self) -> u64 {
        self.end - self.held.len() as u64
    }

    /// The earliest sample still held that has not been finalized.
    pub fn replay_from(&self) -> u64 {
        self.finalized.max(self.end.saturating_sub(self.capacity()))
    }

    /// Unfinalized samples that fell out of the reach before being transcribed.
    pub fn lost(&self) -> u64 {
        self.replay_from() - self.finalized
    }

    /// Samples pushed but not yet finalized and still held.
    pub fn unfinalized(&self) -> u64 {
        self.end - self.replay_from()
    }

    /// Everything before `position` has been transcribed and delivered: it
    /// is let go, and when nothing is left the memory beyond a couple of
    /// seconds' room is given back.
    pub fn finalize_upto(&mut self, position: u64) {
        self.finalized = self.finalized.max(position.min(self.end));
        let done = self.finalized.saturating_sub(self.start()) as usize;
        self.held.drain(..done.min(self.held.len()));
        if self.held.is_empty() && self.held.capacity() > KEPT_BETWEEN_TURNS {
            self.held.shrink_to(KEPT_BETWEEN_TURNS);
        }
    }

    /// Decode up to `max` held samples starting at `from` into `out`;
    /// returns the position after the last one decoded.
    pub fn read(&self, from: u64, max: usize, out: &mut Vec<i16>) -> u64 {
        let start = from.max(self.start());
        let stop = self.end.min(start.saturating_add(max as u64));
        let skip = (start - self.start()) as usize;
        let count = (stop - start) as usize;
        out.extend(
            self.held
                .range(skip..skip + count)
                .map(|&byte| mulaw::decode(byte)),
        );
        stop
    }

    /// The unfinalized audio still held, as a WAV file (for batch recognizers).
    pub fn unfinalized_wav(&self) -> Vec<u8> {
        let mut samples = Vec::with_capacity(self.unfinalized() as usize);
        self.read(self.replay_from(), usize::MAX, &mut samples);
        wav::write(STT_SAMPLE_RATE, &samples)
    }
}

/// A number of 16 kHz samples as a duration.
pub fn samples_to_duration(samples: u64) -> Duration {
    Duration::from_micros(samples * 1_000_000 / u64::from(STT_SAMPLE_RATE))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(n: usize) -> Vec<i16> {
        (0..n).map(|i| ((i % 400) as i16 - 200) * 50).collect()
    }

    #[test]
    fn unfinalized_audio_is_replayed_from_the_last_final() {
        let mut turn = TurnBuffer::new(Duration::from_secs(1));
        turn.push(&ramp(8_000));
        turn.finalize_upto(3_000);
        assert_eq!(turn.replay_from(), 3_000);
        assert_eq!(turn.unfinalized(), 5_000);
        let mut out = Vec::new();
        assert_eq!(turn.read(turn.replay_from(), usize::MAX, &mut out), 8_000);
        assert_eq!(out.len(), 5_000);
    }

    #[test]
    fn audio_that_overflows_the_ring_unfinalized_is_reported_lost() {
        let mut turn = TurnBuffer::new(Duration::from_millis(500));
        turn.push(&ramp(10_000));
        assert_eq!(turn.capacity(), 8_000);
        assert_eq!(turn.lost(), 2_000);
        assert_eq!(turn.unfinalized(), 8_000);
    }

    #[test]
    fn memory_follows_the_unfinalized_audio_up_to_the_reach() {
        let mut turn = TurnBuffer::new(DEFAULT_REPLAY);
        assert_eq!(turn.memory_bytes(), 0, "nothing before audio");
        for _ in 0..1_000 {
            turn.push(&[100; 320]);
        }
        // 20 s pushed, never finalized: the reach, 8 s, is held.
        assert_eq!(turn.unfinalized(), 128_000);
        assert!(turn.memory_bytes() >= 128_000);
        assert!(turn.memory_bytes() <= 2 * 128_000);
        turn.finalize_upto(turn.end());
        assert_eq!(turn.unfinalized(), 0);
        assert!(
            turn.memory_bytes() <= KEPT_BETWEEN_TURNS,
            "{} bytes kept after the turn",
            turn.memory_bytes()
        );
        // An ordinary 2 s turn then fits in what was kept.
        let kept = turn.memory_bytes();
        for _ in 0..100 {
            turn.push(&[100; 320]);
        }
        assert_eq!(turn.memory_bytes(), kept);
    }

    #[test]
    fn finalized_audio_is_let_go_and_reads_start_after_it() {
        let mut turn = TurnBuffer::new(Duration::from_secs(1));
        turn.push(&ramp(6_000));
        turn.finalize_upto(4_000);
        let mut out = Vec::new();
        assert_eq!(turn.read(0, usize::MAX, &mut out), 6_000);
        assert_eq!(out.len(), 2_000);
        assert_eq!(turn.unfinalized(), 2_000);
        assert_eq!(turn.lost(), 0);
    }

    #[test]
    fn the_unfinalized_wav_holds_exactly_the_unfinalized_samples() {
        let mut turn = TurnBuffer::new(Duration::from_secs(1));
        turn.push(&ramp(4_000));
        turn.finalize_upto(1_000);
        let pcm = wav::parse(&turn.unfinalized_wav()).unwrap();
        assert_eq!(pcm.sample_rate, 16_000);
        assert_eq!(pcm.samples.len(), 3_000);
    }
}
