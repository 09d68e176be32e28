//! The current turn's audio, kept so a turn whose recognizer fails can be
//! replayed into the next one (or the same one reconnected) and no word is
//! lost.
//!
//! Memory: a fixed ring allocated once per call, never grown. Audio is kept
//! as 16 kHz G.711 μ-law, one byte a sample (16 KB/s instead of 32 KB/s of
//! linear16): [`DEFAULT_REPLAY`] of 8 s is 128 000 bytes, half of the voice
//! pipeline's 256 KiB per-call target, where linear16 would need the whole
//! budget for the same reach. Eight seconds covers what is at risk: audio
//! the recognizer has not yet finalized, which Deepgram releases at every
//! endpoint and phrase boundary (`is_final`), so the unfinalized tail is
//! normally a few seconds. μ-law is what telephone networks carry and their
//! recognizers transcribe; the loss applies only to replayed audio, live
//! audio goes out as linear16. Audio older than the ring that was never
//! finalized is reported as lost, never silently dropped.

use std::time::Duration;

use crate::media::wav;
use crate::speech::STT_SAMPLE_RATE;
use crate::speech::pcm::mulaw;

/// How much unfinalized audio a call keeps for replay.
pub const DEFAULT_REPLAY: Duration = Duration::from_secs(8);

/// A ring of the turn's audio with absolute sample positions.
#[derive(Debug)]
pub struct TurnBuffer {
    ring: Box<[u8]>,
    /// Samples ever pushed (absolute position of the next sample).
    end: u64,
    /// Samples before this position have been transcribed and delivered.
    finalized: u64,
}

impl TurnBuffer {
    /// A ring holding `reach` of 16 kHz audio (at least 100 ms).
    pub fn new(reach: Duration) -> TurnBuffer {
        let samples = ((reach.as_secs_f64() * f64::from(STT_SAMPLE_RATE)) as usize).max(1_600);
        TurnBuffer {
            ring: vec![0u8; samples].into_boxed_slice(),
            end: 0,
            finalized: 0,
        }
    }

    /// Bytes held, allocated once.
    pub fn memory_bytes(&self) -> usize {
        self.ring.len()
    }

    pub fn capacity(&self) -> u64 {
        self.ring.len() as u64
    }

    /// Append 16 kHz samples (no allocation).
    pub fn push(&mut self, samples: &[i16]) {
        let cap = self.ring.len();
        let mut at = (self.end % cap as u64) as usize;
        let mut rest = samples;
        // At most two contiguous runs: up to the ring's end, then from its start.
        while !rest.is_empty() {
            let run = rest.len().min(cap - at);
            for (slot, &sample) in self.ring[at..at + run].iter_mut().zip(&rest[..run]) {
                *slot = mulaw::encode(sample);
            }
            at = (at + run) % cap;
            rest = &rest[run..];
        }
        self.end += samples.len() as u64;
    }

    pub fn end(&self) -> u64 {
        self.end
    }

    pub fn finalized(&self) -> u64 {
        self.finalized
    }

    /// The earliest sample still held that has not been finalized.
    pub fn replay_from(&self) -> u64 {
        self.finalized.max(self.end.saturating_sub(self.capacity()))
    }

    /// Unfinalized samples that fell out of the ring before being transcribed.
    pub fn lost(&self) -> u64 {
        self.replay_from() - self.finalized
    }

    /// Samples pushed but not yet finalized and still held.
    pub fn unfinalized(&self) -> u64 {
        self.end - self.replay_from()
    }

    /// Everything before `position` has been transcribed and delivered.
    pub fn finalize_upto(&mut self, position: u64) {
        self.finalized = self.finalized.max(position.min(self.end));
    }

    /// Decode up to `max` held samples starting at `from` into `out`;
    /// returns the position after the last one decoded.
    pub fn read(&self, from: u64, max: usize, out: &mut Vec<i16>) -> u64 {
        let start = from.max(self.end.saturating_sub(self.capacity()));
        let stop = self.end.min(start.saturating_add(max as u64));
        let cap = self.ring.len() as u64;
        out.extend((start..stop).map(|at| mulaw::decode(self.ring[(at % cap) as usize])));
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
    fn the_ring_never_grows() {
        let mut turn = TurnBuffer::new(DEFAULT_REPLAY);
        let before = turn.memory_bytes();
        for _ in 0..1_000 {
            turn.push(&[100; 320]);
        }
        assert_eq!(turn.memory_bytes(), before);
        assert_eq!(before, 128_000);
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
