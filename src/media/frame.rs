//! Audio frames: mono signed 16-bit PCM at a known sample rate, 10 or 20 ms
//! long. Every stage of the audio path (Opus, resampling, VAD, playout)
//! speaks in these.

use std::time::Duration;

/// How long one frame lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameLength {
    Ms10,
    Ms20,
}

impl FrameLength {
    pub fn duration(self) -> Duration {
        match self {
            FrameLength::Ms10 => Duration::from_millis(10),
            FrameLength::Ms20 => Duration::from_millis(20),
        }
    }

    /// Samples per frame at `sample_rate` (22 050 Hz gives 220 or 441).
    pub fn samples_at(self, sample_rate: u32) -> usize {
        let ms = match self {
            FrameLength::Ms10 => 10,
            FrameLength::Ms20 => 20,
        };
        (sample_rate as usize * ms) / 1000
    }
}

/// One frame of mono s16 audio. The buffer is reused: stages write into a
/// frame they own instead of allocating a new one for every 20 ms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioFrame {
    sample_rate: u32,
    length: FrameLength,
    samples: Vec<i16>,
}

impl AudioFrame {
    /// A silent frame.
    pub fn silence(sample_rate: u32, length: FrameLength) -> AudioFrame {
        AudioFrame {
            sample_rate,
            length,
            samples: vec![0; length.samples_at(sample_rate)],
        }
    }

    /// A frame holding `samples`, which must be exactly one frame long.
    pub fn from_samples(
        sample_rate: u32,
        length: FrameLength,
        samples: Vec<i16>,
    ) -> Result<AudioFrame, FrameError> {
        let expected = length.samples_at(sample_rate);
        if samples.len() != expected {
            return Err(FrameError::Length {
                expected,
                got: samples.len(),
                sample_rate,
            });
        }
        Ok(AudioFrame {
            sample_rate,
            length,
            samples,
        })
    }

    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    pub fn length(&self) -> FrameLength {
        self.length
    }

    pub fn duration(&self) -> Duration {
        self.length.duration()
    }

    pub fn samples(&self) -> &[i16] {
        &self.samples
    }

    /// Write access to the samples; the frame's length cannot change.
    pub fn samples_mut(&mut self) -> &mut [i16] {
        &mut self.samples
    }

    /// Zero every sample.
    pub fn clear(&mut self) {
        self.samples.fill(0);
    }

    /// Root-mean-square level in dBFS (−∞ for digital silence, 0 for a
    /// full-scale square wave).
    pub fn level_dbfs(&self) -> f32 {
        level_dbfs(&self.samples)
    }
}

/// Root-mean-square level of `samples` in dBFS.
pub fn level_dbfs(samples: &[i16]) -> f32 {
    if samples.is_empty() {
        return f32::NEG_INFINITY;
    }
    let energy: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    let rms = (energy / samples.len() as f64).sqrt();
    if rms == 0.0 {
        f32::NEG_INFINITY
    } else {
        (20.0 * (rms / 32768.0).log10()) as f32
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("a frame at {sample_rate} Hz holds {expected} samples, not {got}")]
    Length {
        expected: usize,
        got: usize,
        sample_rate: u32,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_sizes_follow_the_sample_rate() {
        assert_eq!(FrameLength::Ms20.samples_at(48_000), 960);
        assert_eq!(FrameLength::Ms10.samples_at(16_000), 160);
        assert_eq!(FrameLength::Ms20.samples_at(22_050), 441);
    }

    #[test]
    fn a_frame_of_the_wrong_length_is_refused() {
        let err = AudioFrame::from_samples(16_000, FrameLength::Ms20, vec![0; 100]).unwrap_err();
        assert_eq!(
            err,
            FrameError::Length {
                expected: 320,
                got: 100,
                sample_rate: 16_000
            }
        );
    }

    #[test]
    fn silence_is_minus_infinity_and_full_scale_is_zero_dbfs() {
        let mut frame = AudioFrame::silence(48_000, FrameLength::Ms10);
        assert_eq!(frame.level_dbfs(), f32::NEG_INFINITY);
        for (i, s) in frame.samples_mut().iter_mut().enumerate() {
            *s = if i % 2 == 0 { i16::MAX } else { -i16::MAX };
        }
        assert!(frame.level_dbfs().abs() < 0.01, "{}", frame.level_dbfs());
    }
}
