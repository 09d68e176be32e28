//! Speech at whatever rate it comes, as 20 ms Opus packets (on WebRTC's
//! 48 kHz clock): resampled, cut into frames, encoded — for audio streamed
//! as it is made and for whole clips encoded once and replayed many times.
//!
//! The encoder takes 24 kHz: voices speak at 22.05 kHz (espeak-ng) or
//! 24 kHz (OpenAI's and Cartesia's PCM), so nothing they say is lost, a
//! 24 kHz voice needs no resampling at all, and the encoder analyses half
//! the samples it would at 48 kHz.
//!
//! Packets are carved out of one shared arena (a few KiB at a time), so
//! encoding allocates once per ~50 packets, not per packet.

use bytes::{Bytes, BytesMut};

use super::opus::{Encoder, EncoderConfig, MAX_PACKET, OpusError};
use super::resample::{ResampleError, Resampler};

/// The rate the encoder takes.
pub const ENCODE_RATE: u32 = 24_000;
/// One 20 ms frame at [`ENCODE_RATE`].
const FRAME: usize = ENCODE_RATE as usize / 50;
const ARENA: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error(transparent)]
    Opus(#[from] OpusError),
    #[error(transparent)]
    Resample(#[from] ResampleError),
}

/// Packetizes one stream of speech (one sentence after another).
pub struct Packetizer {
    encoder: Encoder,
    resampler: Option<Resampler>,
    /// Samples at [`ENCODE_RATE`] not yet making a whole frame.
    pending: Vec<i16>,
    scratch: Vec<i16>,
    packet: Vec<u8>,
    arena: BytesMut,
}

impl Packetizer {
    pub fn new(config: EncoderConfig) -> Result<Packetizer, EncodeError> {
        Ok(Packetizer {
            encoder: Encoder::at_rate(ENCODE_RATE, config)?,
            resampler: None,
            pending: Vec::with_capacity(FRAME * 2),
            scratch: Vec::with_capacity(FRAME * 4),
            packet: vec![0; MAX_PACKET],
            arena: BytesMut::new(),
        })
    }

    /// Add `samples` at `rate`; every whole 20 ms frame goes to `out`.
    pub fn push(
        &mut self,
        rate: u32,
        samples: &[i16],
        out: &mut impl FnMut(Bytes),
    ) -> Result<(), EncodeError> {
        if rate == ENCODE_RATE {
            self.pending.extend_from_slice(samples);
        } else {
            let resampler = match &mut self.resampler {
                Some(r) if r.from_rate() == rate => r,
                slot => slot.insert(Resampler::new(rate, ENCODE_RATE)?),
            };
            self.scratch.clear();
            resampler.process(samples, &mut self.scratch);
            self.pending.extend_from_slice(&self.scratch);
        }
        self.drain(out)
    }

    /// The end of a piece of speech: the resampler's tail and a last partial
    /// frame (padded with silence) go out; the next push starts afresh.
    pub fn finish(&mut self, out: &mut impl FnMut(Bytes)) -> Result<(), EncodeError> {
        if let Some(resampler) = &mut self.resampler {
            self.scratch.clear();
            resampler.flush(&mut self.scratch);
            self.pending.extend_from_slice(&self.scratch);
            resampler.reset();
        }
        if !self.pending.is_empty() {
            let short = FRAME - self.pending.len() % FRAME;
            if short < FRAME {
                self.pending.extend(std::iter::repeat_n(0, short));
            }
        }
        self.drain(out)
    }

    /// Drop buffered audio (the speech was cut).
    pub fn clear(&mut self) {
        self.pending.clear();
        if let Some(resampler) = &mut self.resampler {
            resampler.reset();
        }
    }

    fn drain(&mut self, out: &mut impl FnMut(Bytes)) -> Result<(), EncodeError> {
        let whole = self.pending.len() / FRAME * FRAME;
        for frame in self.pending[..whole].chunks_exact(FRAME) {
            let written = self.encoder.encode(frame, &mut self.packet)?;
            if self.arena.capacity() - self.arena.len() < written {
                self.arena.reserve(ARENA.max(written));
            }
            self.arena.extend_from_slice(&self.packet[..written]);
            out(self.arena.split().freeze());
        }
        self.pending.drain(..whole);
        Ok(())
    }
}

/// Packetize a whole clip at once.
pub fn packetize(
    config: EncoderConfig,
    rate: u32,
    samples: &[i16],
) -> Result<Vec<Bytes>, EncodeError> {
    let mut encoder = Packetizer::new(config)?;
    let mut packets = Vec::with_capacity(samples.len() / (rate as usize / 50).max(1) + 2);
    let mut out = |packet| packets.push(packet);
    encoder.push(rate, samples, &mut out)?;
    encoder.finish(&mut out)?;
    Ok(packets)
}
