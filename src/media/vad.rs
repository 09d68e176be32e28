//! Voice activity on 16 kHz audio: a per-frame speech probability from
//! `earshot` (a small pure-Rust neural detector over mel features), a
//! loudness floor so that faint noise is never speech, and hysteresis that
//! turns frame decisions into speech start and end events timestamped in
//! samples since the stream began.
//!
//! Speech starts once frames have been speech for `activation` (the start
//! is dated back to the first of them) and ends once they have been
//! silence for `deactivation` (dated to the first silent frame).
//!
//! The detector rests while the stream is quiet: after `rest_after` of
//! frames below `rest_below_dbfs` (well under the loudness floor, so none
//! of them could be speech) it stops scoring and starts afresh at the next
//! louder frame, as at the start of a stream. A caller who listens, or
//! sends nothing, costs no model time.
//!
//! ```
//! use voxguard::media::vad::{Vad, VadConfig};
//!
//! let mut vad = Vad::new(VadConfig::default());
//! let decision = vad.push(&[0i16; 320])?; // 20 ms of silence at 16 kHz
//! assert!(!decision.speech && decision.event.is_none());
//! # Ok::<(), voxguard::media::vad::VadError>(())
//! ```

use std::time::Duration;

use super::frame::{FrameLength, level_dbfs};

/// The rate the detector runs at.
pub const SAMPLE_RATE: u32 = 16_000;
/// earshot scores blocks of 16 ms.
const BLOCK: usize = 256;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum VadError {
    #[error("the VAD takes {expected} samples (a {ms} ms frame at 16 kHz), not {got}")]
    FrameLength {
        expected: usize,
        got: usize,
        ms: u32,
    },
    #[error("the VAD runs at 16 kHz; resample {got} Hz audio first")]
    SampleRate { got: u32 },
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VadConfig {
    pub frame: FrameLength,
    /// Probability (0-1) from which a frame counts as speech.
    pub threshold: f32,
    /// Frames quieter than this (RMS) are silence whatever the detector says.
    pub min_level_dbfs: f32,
    /// How long speech must last before it starts.
    pub activation: Duration,
    /// How long silence must last before speech ends.
    pub deactivation: Duration,
    /// Frames quieter than this (RMS) let the detector rest once they
    /// have lasted `rest_after`; `f32::NEG_INFINITY` keeps it scoring
    /// every frame.
    pub rest_below_dbfs: f32,
    pub rest_after: Duration,
}

impl Default for VadConfig {
    fn default() -> Self {
        VadConfig {
            frame: FrameLength::Ms20,
            threshold: 0.5,
            min_level_dbfs: -50.0,
            activation: Duration::from_millis(60),
            deactivation: Duration::from_millis(400),
            rest_below_dbfs: -60.0,
            rest_after: Duration::from_millis(300),
        }
    }
}

/// A change of state, at a position counted in samples at 16 kHz since the
/// stream began.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VadEvent {
    SpeechStart { at: u64 },
    SpeechEnd { at: u64 },
}

impl VadEvent {
    /// The event's position as time since the stream began.
    pub fn time(self) -> Duration {
        let (VadEvent::SpeechStart { at } | VadEvent::SpeechEnd { at }) = self;
        Duration::from_micros(at * 1_000_000 / u64::from(SAMPLE_RATE))
    }
}

/// What the VAD made of one frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FrameDecision {
    /// The detector's speech probability for the newest audio.
    pub probability: f32,
    /// This frame, on its own, is speech.
    pub speech: bool,
    /// A start or end the frame completed.
    pub event: Option<VadEvent>,
}

/// Turns per-frame decisions into start and end events; no audio inside,
/// so it is tested with decisions alone.
#[derive(Debug, Clone)]
pub struct Hysteresis {
    activation_frames: u32,
    deactivation_frames: u32,
    frame_samples: u64,
    speaking: bool,
    /// Consecutive frames disagreeing with the current state, and where
    /// the first of them began.
    run: u32,
    run_start: u64,
    position: u64,
}

impl Hysteresis {
    pub fn new(config: &VadConfig) -> Hysteresis {
        let frame = config.frame.duration();
        let frames = |d: Duration| d.as_micros().div_ceil(frame.as_micros()).max(1) as u32;
        Hysteresis {
            activation_frames: frames(config.activation),
            deactivation_frames: frames(config.deactivation),
            frame_samples: config.frame.samples_at(SAMPLE_RATE) as u64,
            speaking: false,
            run: 0,
            run_start: 0,
            position: 0,
        }
    }

    pub fn is_speaking(&self) -> bool {
        self.speaking
    }

    /// Samples seen so far.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// The next frame is (or is not) speech.
    pub fn push(&mut self, speech: bool) -> Option<VadEvent> {
        let frame_start = self.position;
        self.position += self.frame_samples;
        if speech == self.speaking {
            self.run = 0;
            return None;
        }
        if self.run == 0 {
            self.run_start = frame_start;
        }
        self.run += 1;
        let needed = if self.speaking {
            self.deactivation_frames
        } else {
            self.activation_frames
        };
        if self.run < needed {
            return None;
        }
        self.speaking = speech;
        self.run = 0;
        Some(if speech {
            VadEvent::SpeechStart { at: self.run_start }
        } else {
            VadEvent::SpeechEnd { at: self.run_start }
        })
    }

    /// The stream ended: close open speech where the audio stopped.
    pub fn finish(&mut self) -> Option<VadEvent> {
        if !self.speaking {
            return None;
        }
        self.speaking = false;
        let at = if self.run > 0 {
            self.run_start
        } else {
            self.position
        };
        self.run = 0;
        Some(VadEvent::SpeechEnd { at })
    }
}

/// Voice activity for one 16 kHz stream.
pub struct Vad {
    config: VadConfig,
    detector: Box<earshot::Detector>,
    block: [i16; BLOCK],
    filled: usize,
    probability: f32,
    hysteresis: Hysteresis,
    /// Quiet frames in a row, and how many let the detector rest.
    quiet_frames: u32,
    rest_after_frames: u32,
    resting: bool,
    /// Blocks the detector scored.
    scored_blocks: u64,
}

impl Vad {
    pub fn new(config: VadConfig) -> Vad {
        let frame = config.frame.duration().as_micros();
        Vad {
            hysteresis: Hysteresis::new(&config),
            rest_after_frames: config.rest_after.as_micros().div_ceil(frame) as u32,
            config,
            detector: earshot::Detector::default_boxed(),
            block: [0; BLOCK],
            filled: 0,
            probability: 0.0,
            quiet_frames: 0,
            resting: false,
            scored_blocks: 0,
        }
    }

    /// How many 16 ms blocks the detector has scored (it rests in quiet).
    pub fn scored_blocks(&self) -> u64 {
        self.scored_blocks
    }

    pub fn config(&self) -> &VadConfig {
        &self.config
    }

    pub fn is_speaking(&self) -> bool {
        self.hysteresis.is_speaking()
    }

    /// Judge the next frame (10 or 20 ms at 16 kHz, as configured).
    pub fn push(&mut self, frame: &[i16]) -> Result<FrameDecision, VadError> {
        let expected = self.config.frame.samples_at(SAMPLE_RATE);
        if frame.len() != expected {
            return Err(VadError::FrameLength {
                expected,
                got: frame.len(),
                ms: self.config.frame.duration().as_millis() as u32,
            });
        }
        let level = level_dbfs(frame);
        // Never above the loudness floor: a resting frame cannot be speech.
        if level < self.config.rest_below_dbfs.min(self.config.min_level_dbfs) {
            self.quiet_frames = self.quiet_frames.saturating_add(1);
        } else {
            self.quiet_frames = 0;
        }
        if self.quiet_frames > self.rest_after_frames {
            if !self.resting {
                // What it heard is over: the next sound starts afresh.
                self.resting = true;
                self.detector.reset();
                self.filled = 0;
                self.probability = 0.0;
            }
            return Ok(FrameDecision {
                probability: 0.0,
                speech: false,
                event: self.hysteresis.push(false),
            });
        }
        self.resting = false;
        let mut newest: Option<f32> = None;
        let mut rest = frame;
        while !rest.is_empty() {
            let take = (BLOCK - self.filled).min(rest.len());
            self.block[self.filled..self.filled + take].copy_from_slice(&rest[..take]);
            self.filled += take;
            rest = &rest[take..];
            if self.filled == BLOCK {
                let score = self.detector.predict_i16(&self.block);
                self.scored_blocks += 1;
                newest = Some(newest.map_or(score, |s: f32| s.max(score)));
                self.filled = 0;
            }
        }
        if let Some(score) = newest {
            self.probability = score;
        }
        let loud_enough = level >= self.config.min_level_dbfs;
        let speech = loud_enough && self.probability >= self.config.threshold;
        Ok(FrameDecision {
            probability: self.probability,
            speech,
            event: self.hysteresis.push(speech),
        })
    }

    /// Judge an [`AudioFrame`](super::AudioFrame), which must be 16 kHz.
    pub fn push_frame(&mut self, frame: &super::AudioFrame) -> Result<FrameDecision, VadError> {
        if frame.sample_rate() != SAMPLE_RATE {
            return Err(VadError::SampleRate {
                got: frame.sample_rate(),
            });
        }
        self.push(frame.samples())
    }

    /// The stream ended: close open speech.
    pub fn finish(&mut self) -> Option<VadEvent> {
        self.hysteresis.finish()
    }

    /// Start over for a new stream (positions restart at 0).
    pub fn reset(&mut self) {
        self.detector.reset();
        self.filled = 0;
        self.probability = 0.0;
        self.quiet_frames = 0;
        self.resting = false;
        self.hysteresis = Hysteresis::new(&self.config);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(hysteresis: &mut Hysteresis, pattern: &str) -> Vec<VadEvent> {
        pattern
            .chars()
            .filter_map(|c| hysteresis.push(c == 'S'))
            .collect()
    }

    fn config(activation_ms: u64, deactivation_ms: u64) -> VadConfig {
        VadConfig {
            activation: Duration::from_millis(activation_ms),
            deactivation: Duration::from_millis(deactivation_ms),
            ..VadConfig::default()
        }
    }

    #[test]
    fn speech_starts_after_the_activation_time_dated_to_its_first_frame() {
        let mut h = Hysteresis::new(&config(60, 100));
        // 20 ms frames: three speech frames are 60 ms.
        let events = run(&mut h, "..SS.SSS");
        assert_eq!(events, [VadEvent::SpeechStart { at: 5 * 320 }]);
    }

    #[test]
    fn a_pause_shorter_than_the_deactivation_time_does_not_end_speech() {
        let mut h = Hysteresis::new(&config(20, 100));
        let events = run(&mut h, "S....S.....");
        assert_eq!(
            events,
            [
                VadEvent::SpeechStart { at: 0 },
                VadEvent::SpeechEnd { at: 6 * 320 }
            ]
        );
    }

    #[test]
    fn finishing_closes_open_speech_where_it_stopped() {
        let mut h = Hysteresis::new(&config(20, 200));
        run(&mut h, "SSS..");
        assert_eq!(h.finish(), Some(VadEvent::SpeechEnd { at: 3 * 320 }));
        assert_eq!(h.finish(), None);
    }

    #[test]
    fn frames_of_the_wrong_length_are_refused() {
        let mut vad = Vad::new(VadConfig::default());
        assert_eq!(
            vad.push(&[0; 160]),
            Err(VadError::FrameLength {
                expected: 320,
                got: 160,
                ms: 20
            })
        );
        let frame = super::super::AudioFrame::silence(48_000, FrameLength::Ms20);
        assert_eq!(
            vad.push_frame(&frame),
            Err(VadError::SampleRate { got: 48_000 })
        );
    }

    #[test]
    fn faint_sound_is_never_speech_whatever_the_detector_says() {
        let mut vad = Vad::new(VadConfig {
            frame: FrameLength::Ms10,
            ..VadConfig::default()
        });
        let whisper: Vec<i16> = (0..160)
            .map(|i| if i % 2 == 0 { 20 } else { -20 })
            .collect();
        for _ in 0..100 {
            assert!(!vad.push(&whisper).unwrap().speech);
        }
    }
}
