//! Checking the audio a voice sends back before anyone plays it: raw
//! little-endian s16 reassembled across chunk boundaries, its rate checked,
//! its length capped, and the ways a provider can fail while answering 200
//! (no audio, a body cut mid-sample, endless audio, a wrong rate) named.

use std::time::Duration;

use crate::resilience::CallError;

/// What is wrong with audio a provider returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AudioFault {
    #[error("answered without any audio")]
    ZeroAudio,
    #[error("audio ends mid-sample (an odd number of bytes): the body was cut short")]
    Truncated,
    #[error("more than {} of audio for one sentence: the stream does not end", humantime::format_duration(*.cap))]
    Endless { cap: Duration },
    #[error("audio declared at {declared} Hz where {expected} Hz was asked for")]
    WrongRate { declared: u32, expected: u32 },
    #[error("audio at an unusable sample rate ({0} Hz)")]
    UnusableRate(u32),
    #[error("a WAV answer that cannot be read: {0}")]
    BadWav(String),
    #[error("a message that is not the protocol's: {0}")]
    Garbage(String),
}

impl AudioFault {
    /// The fault as the taxonomy's decode error, naming the provider.
    pub fn into_error(self, provider: &str) -> CallError {
        CallError::Decode {
            detail: format!("{provider}: {self}"),
        }
    }
}

/// Sample rates a voice may answer at.
pub const USABLE_RATES: std::ops::RangeInclusive<u32> = 8_000..=48_000;

/// Reassembles a byte stream of s16le mono samples and enforces a cap on
/// how much audio one sentence may produce.
#[derive(Debug, Clone)]
pub struct PcmAssembler {
    sample_rate: u32,
    carry: Option<u8>,
    produced: u64,
    cap: Duration,
    cap_samples: u64,
}

impl PcmAssembler {
    pub fn new(sample_rate: u32, cap: Duration) -> PcmAssembler {
        PcmAssembler {
            sample_rate,
            carry: None,
            produced: 0,
            cap,
            cap_samples: (cap.as_secs_f64() * f64::from(sample_rate)) as u64,
        }
    }

    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// Samples produced so far.
    pub fn produced(&self) -> u64 {
        self.produced
    }

    /// Append the samples in `bytes` to `out`; an odd trailing byte waits
    /// for the next chunk.
    pub fn push(&mut self, mut bytes: &[u8], out: &mut Vec<i16>) -> Result<(), AudioFault> {
        if let Some(low) = self.carry.take() {
            let Some((&high, rest)) = bytes.split_first() else {
                self.carry = Some(low);
                return Ok(());
            };
            out.push(i16::from_le_bytes([low, high]));
            self.produced += 1;
            bytes = rest;
        }
        let pairs = bytes.chunks_exact(2);
        if let [odd] = pairs.remainder() {
            self.carry = Some(*odd);
        }
        let before = out.len();
        out.extend(pairs.map(|b| i16::from_le_bytes([b[0], b[1]])));
        self.produced += (out.len() - before) as u64;
        if self.produced > self.cap_samples {
            return Err(AudioFault::Endless { cap: self.cap });
        }
        Ok(())
    }

    /// The stream ended: it must have carried audio and whole samples.
    pub fn finish(&self) -> Result<(), AudioFault> {
        if self.carry.is_some() {
            Err(AudioFault::Truncated)
        } else if self.produced == 0 {
            Err(AudioFault::ZeroAudio)
        } else {
            Ok(())
        }
    }
}

/// G.711 μ-law: 8 bits per sample with 13-bit dynamic range, the companding
/// telephone networks (and their speech recognizers) run on. The STT turn
/// buffer keeps audio this way to hold twice as much in the same memory.
pub mod mulaw {
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 32_635;

    pub fn encode(sample: i16) -> u8 {
        let mut value = i32::from(sample);
        let sign = if value < 0 {
            value = -value;
            0x80
        } else {
            0
        };
        value = value.min(CLIP) + BIAS;
        let exponent = (7 - ((value as u32) << 17).leading_zeros().min(7)) as i32;
        let exponent = exponent.clamp(0, 7);
        let mantissa = (value >> (exponent + 3)) & 0x0F;
        !(sign | (exponent << 4) as u8 | mantissa as u8)
    }

    pub fn decode(byte: u8) -> i16 {
        let byte = !byte;
        let sign = byte & 0x80;
        let exponent = i32::from((byte >> 4) & 0x07);
        let mantissa = i32::from(byte & 0x0F);
        let magnitude = (((mantissa << 3) + BIAS) << exponent) - BIAS;
        if sign != 0 {
            -magnitude as i16
        } else {
            magnitude as i16
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_split_across_chunks_are_reassembled() {
        let bytes: Vec<u8> = [1000i16, -2000, 3000]
            .iter()
            .flat_map(|s| s.to_le_bytes())
            .collect();
        let mut pcm = PcmAssembler::new(24_000, Duration::from_secs(1));
        let mut out = Vec::new();
        pcm.push(&bytes[..3], &mut out).unwrap();
        pcm.push(&bytes[3..], &mut out).unwrap();
        assert_eq!(out, vec![1000, -2000, 3000]);
        assert_eq!(pcm.finish(), Ok(()));
    }

    #[test]
    fn an_odd_byte_count_at_the_end_is_a_truncated_body() {
        let mut pcm = PcmAssembler::new(24_000, Duration::from_secs(1));
        pcm.push(&[1, 2, 3], &mut Vec::new()).unwrap();
        assert_eq!(pcm.finish(), Err(AudioFault::Truncated));
    }

    #[test]
    fn no_audio_at_all_is_zero_audio() {
        let pcm = PcmAssembler::new(24_000, Duration::from_secs(1));
        assert_eq!(pcm.finish(), Err(AudioFault::ZeroAudio));
    }

    #[test]
    fn audio_beyond_the_cap_is_an_endless_stream() {
        let mut pcm = PcmAssembler::new(8_000, Duration::from_millis(10));
        let mut out = Vec::new();
        let err = pcm.push(&[0u8; 2 * 81], &mut out).unwrap_err();
        assert_eq!(
            err,
            AudioFault::Endless {
                cap: Duration::from_millis(10)
            }
        );
    }

    #[test]
    fn mulaw_round_trips_within_its_quantisation_step() {
        for sample in (-32_768i32..32_768).step_by(97) {
            let sample = sample as i16;
            let back = mulaw::decode(mulaw::encode(sample));
            let error = (i32::from(back) - i32::from(sample)).abs();
            // μ-law's step grows with the magnitude: ~3% of it, at least 8.
            let allowed = (i32::from(sample).abs() / 16).max(8) + 8;
            assert!(error <= allowed, "{sample} -> {back}");
        }
        assert_eq!(mulaw::decode(mulaw::encode(0)), 0);
    }
}
