//! Opus at 48 kHz mono, the codec of WebRTC audio: an encoder tuned for
//! speech (VOIP, ~32 kbit/s, in-band FEC) and a decoder that conceals lost
//! packets or recovers them from the next packet's FEC data.
//!
//! libopus is opened at run time (see [`ffi`]): voxguard builds without it,
//! and the first encoder or decoder returns [`OpusError::LibraryMissing`],
//! naming the package to install, on a machine that lacks it.
//!
//! ```no_run
//! use voxguard::media::opus::{Decoder, Encoder, EncoderConfig, MAX_PACKET, SAMPLES_PER_FRAME};
//!
//! let mut encoder = Encoder::new(EncoderConfig::default())?;
//! let mut decoder = Decoder::new()?;
//! let frame = [0i16; SAMPLES_PER_FRAME];
//! let mut packet = [0u8; MAX_PACKET];
//! let len = encoder.encode(&frame, &mut packet)?;
//! let mut heard = [0i16; SAMPLES_PER_FRAME];
//! decoder.decode(&packet[..len], &mut heard)?;
//! decoder.conceal(&mut heard)?; // the next packet was lost
//! # Ok::<(), voxguard::media::opus::OpusError>(())
//! ```

mod ffi;

use std::ffi::{c_int, c_void};
use std::ptr::NonNull;

use ffi::Opus;

/// The only rate voxguard runs Opus at (WebRTC's clock rate for Opus).
pub const SAMPLE_RATE: u32 = 48_000;
/// One 20 ms frame at 48 kHz.
pub const SAMPLES_PER_FRAME: usize = 960;
/// Room for any single-frame packet (RFC 6716 caps a frame at 1275 bytes).
pub const MAX_PACKET: usize = 1500;
/// The longest packet Opus allows, 120 ms, in samples at 48 kHz.
pub const MAX_PACKET_SAMPLES: usize = 5760;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpusError {
    #[error("libopus is not installed or cannot be opened ({tried}); {hint}", hint = ffi::INSTALL_HINT)]
    LibraryMissing { tried: String },
    #[error("Opus {setting} must be in {range}, not {got}")]
    Config {
        setting: &'static str,
        range: &'static str,
        got: u32,
    },
    #[error("libopus could not create {what}: {message} ({code})")]
    Create {
        what: &'static str,
        code: i32,
        message: String,
    },
    #[error(
        "an Opus frame is 2.5, 5, 10, 20, 40 or 60 ms (120, 240, 480, 960, 1920 or 2880 samples at 48 kHz, a third of that at 16 kHz), not {got} samples at {rate} Hz"
    )]
    FrameSize { got: usize, rate: u32 },
    #[error("Opus takes and gives audio at 8000, 12000, 16000, 24000 or 48000 Hz, not {got}")]
    Rate { got: u32 },
    #[error("an empty packet is not Opus; report a lost packet with `conceal` instead")]
    EmptyPacket,
    #[error("a {len}-byte packet is not valid Opus: {message}")]
    InvalidPacket { len: usize, message: String },
    #[error("the packet holds {samples} samples but the output has room for {room}")]
    OutputTooSmall { samples: usize, room: usize },
    #[error("libopus failed to {what}: {message} ({code})")]
    Codec {
        what: &'static str,
        code: i32,
        message: String,
    },
}

/// How the encoder is tuned. The defaults suit a phone-like voice call on a
/// network that loses a few packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncoderConfig {
    /// Target bitrate, 6 000 to 510 000 bit/s.
    pub bitrate_bps: u32,
    /// Carry a low-bitrate copy of each frame in the next packet.
    pub inband_fec: bool,
    /// The loss the encoder plans for (0-100 %); FEC is only sent above 0.
    pub expected_packet_loss_percent: u8,
    /// 0 (cheapest) to 10 (best). The default, 1, is what fits 200 calls
    /// on two cores: complexity 2 and up cost twice the CPU or more for
    /// speech at this bitrate (see `benches/media.rs`).
    pub complexity: u8,
    /// Send almost nothing during silence.
    pub dtx: bool,
}

impl Default for EncoderConfig {
    fn default() -> Self {
        EncoderConfig {
            bitrate_bps: 32_000,
            inband_fec: true,
            expected_packet_loss_percent: 10,
            complexity: 1,
            dtx: false,
        }
    }
}

impl EncoderConfig {
    fn validate(&self) -> Result<(), OpusError> {
        let check = |setting, range, got: u32, ok: bool| {
            if ok {
                Ok(())
            } else {
                Err(OpusError::Config {
                    setting,
                    range,
                    got,
                })
            }
        };
        check(
            "bitrate_bps",
            "6000..=510000",
            self.bitrate_bps,
            (6_000..=510_000).contains(&self.bitrate_bps),
        )?;
        let loss = self.expected_packet_loss_percent;
        check(
            "expected_packet_loss_percent",
            "0..=100",
            loss.into(),
            loss <= 100,
        )?;
        check(
            "complexity",
            "0..=10",
            self.complexity.into(),
            self.complexity <= 10,
        )
    }
}

/// The version string of the libopus in use, e.g. `libopus 1.3.1`.
pub fn library_version() -> Result<String, OpusError> {
    Ok(ffi::opus()?.version())
}

fn check_rate(rate: u32) -> Result<(), OpusError> {
    match rate {
        8_000 | 12_000 | 16_000 | 24_000 | 48_000 => Ok(()),
        got => Err(OpusError::Rate { got }),
    }
}

/// `samples` as a frame size at `rate`, if it is one Opus allows.
fn frame_size(samples: usize, rate: u32) -> Result<c_int, OpusError> {
    let at_48k = samples * (SAMPLE_RATE / rate) as usize;
    match at_48k {
        120 | 240 | 480 | 960 | 1920 | 2880 => Ok(samples as c_int),
        _ => Err(OpusError::FrameSize { got: samples, rate }),
    }
}

/// A mono Opus encoder (one per outgoing track). It takes audio at 48 kHz,
/// or at 8, 12, 16 or 24 kHz ([`Encoder::at_rate`]): the packets are the
/// same Opus either way, on WebRTC's 48 kHz clock, and a lower input rate
/// spares the encoder the work of a band the source never had.
pub struct Encoder {
    opus: &'static Opus,
    state: NonNull<c_void>,
    rate: u32,
}

// SAFETY: an encoder's state is plain memory owned by this value; libopus
// keeps no thread-local or shared state for it.
unsafe impl Send for Encoder {}

impl Encoder {
    /// An encoder taking 48 kHz audio.
    pub fn new(config: EncoderConfig) -> Result<Encoder, OpusError> {
        Encoder::at_rate(SAMPLE_RATE, config)
    }

    /// An encoder taking audio at `rate` (8, 12, 16, 24 or 48 kHz): a 20 ms
    /// frame is `rate / 50` samples.
    pub fn at_rate(rate: u32, config: EncoderConfig) -> Result<Encoder, OpusError> {
        config.validate()?;
        check_rate(rate)?;
        let opus = ffi::opus()?;
        let mut code: c_int = 0;
        // SAFETY: valid rate/channels/application; `code` outlives the call.
        let state =
            unsafe { (opus.encoder_create)(rate as i32, 1, ffi::OPUS_APPLICATION_VOIP, &mut code) };
        let state = match NonNull::new(state) {
            Some(state) if code == ffi::OPUS_OK => state,
            _ => {
                return Err(OpusError::Create {
                    what: "an encoder",
                    code,
                    message: opus.describe(code),
                });
            }
        };
        let mut encoder = Encoder { opus, state, rate };
        encoder.ctl(ffi::OPUS_SET_SIGNAL_REQUEST, ffi::OPUS_SIGNAL_VOICE)?;
        encoder.ctl(ffi::OPUS_SET_VBR_REQUEST, 1)?;
        encoder.ctl(ffi::OPUS_SET_BITRATE_REQUEST, config.bitrate_bps as c_int)?;
        encoder.ctl(ffi::OPUS_SET_COMPLEXITY_REQUEST, config.complexity.into())?;
        encoder.ctl(ffi::OPUS_SET_INBAND_FEC_REQUEST, config.inband_fec.into())?;
        encoder.ctl(ffi::OPUS_SET_DTX_REQUEST, config.dtx.into())?;
        encoder.set_expected_packet_loss(config.expected_packet_loss_percent)?;
        Ok(encoder)
    }

    /// Re-plan for the loss a receiver reports (RTCP), 0-100 %.
    pub fn set_expected_packet_loss(&mut self, percent: u8) -> Result<(), OpusError> {
        if percent > 100 {
            return Err(OpusError::Config {
                setting: "expected_packet_loss_percent",
                range: "0..=100",
                got: percent.into(),
            });
        }
        self.ctl(ffi::OPUS_SET_PACKET_LOSS_PERC_REQUEST, percent.into())
    }

    /// Samples the encoder delays its input by (its look-ahead).
    pub fn lookahead(&mut self) -> Result<usize, OpusError> {
        let mut samples: i32 = 0;
        // SAFETY: OPUS_GET_LOOKAHEAD takes one `opus_int32 *`.
        let code = unsafe {
            (self.opus.encoder_ctl)(
                self.state.as_ptr(),
                ffi::OPUS_GET_LOOKAHEAD_REQUEST,
                &mut samples as *mut i32,
            )
        };
        self.check(code, "read the look-ahead")?;
        Ok(samples.max(0) as usize)
    }

    /// Encode one frame (usually [`SAMPLES_PER_FRAME`]) into `packet`;
    /// returns the packet's length.
    pub fn encode(&mut self, pcm: &[i16], packet: &mut [u8]) -> Result<usize, OpusError> {
        let frame = frame_size(pcm.len(), self.rate)?;
        let room = packet.len().min(i32::MAX as usize) as i32;
        // SAFETY: `pcm` holds `frame` samples and `packet` `room` bytes.
        let len = unsafe {
            (self.opus.encode)(
                self.state.as_ptr(),
                pcm.as_ptr(),
                frame,
                packet.as_mut_ptr(),
                room,
            )
        };
        self.check(len, "encode")?;
        Ok(len as usize)
    }

    fn ctl(&mut self, request: c_int, value: c_int) -> Result<(), OpusError> {
        // SAFETY: every setter voxguard uses takes one `opus_int32`.
        let code = unsafe { (self.opus.encoder_ctl)(self.state.as_ptr(), request, value) };
        self.check(code, "configure the encoder")
    }

    fn check(&self, code: c_int, what: &'static str) -> Result<(), OpusError> {
        if code < 0 {
            Err(OpusError::Codec {
                what,
                code,
                message: self.opus.describe(code),
            })
        } else {
            Ok(())
        }
    }
}

impl Drop for Encoder {
    fn drop(&mut self) {
        // SAFETY: created by opus_encoder_create, destroyed once.
        unsafe { (self.opus.encoder_destroy)(self.state.as_ptr()) }
    }
}

/// A mono Opus decoder (one per incoming track). Opus carries no fixed
/// output rate: a decoder made for 16 kHz gives a recognizer its rate
/// directly, skipping both libopus's upsampling and a resampler back down.
pub struct Decoder {
    opus: &'static Opus,
    state: NonNull<c_void>,
    rate: u32,
}

// SAFETY: as for `Encoder`.
unsafe impl Send for Decoder {}

impl Decoder {
    /// A decoder giving 48 kHz audio.
    pub fn new() -> Result<Decoder, OpusError> {
        Decoder::at_rate(SAMPLE_RATE)
    }

    /// A decoder giving audio at `rate` (8, 12, 16, 24 or 48 kHz): a 20 ms
    /// packet decodes to `rate / 50` samples.
    pub fn at_rate(rate: u32) -> Result<Decoder, OpusError> {
        check_rate(rate)?;
        let opus = ffi::opus()?;
        let mut code: c_int = 0;
        // SAFETY: valid rate and channels; `code` outlives the call.
        let state = unsafe { (opus.decoder_create)(rate as i32, 1, &mut code) };
        match NonNull::new(state) {
            Some(state) if code == ffi::OPUS_OK => Ok(Decoder { opus, state, rate }),
            _ => Err(OpusError::Create {
                what: "a decoder",
                code,
                message: opus.describe(code),
            }),
        }
    }

    /// The rate this decoder gives audio at.
    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// Decode a packet into the start of `pcm`; returns the samples written
    /// (960 for a 20 ms packet at 48 kHz). `pcm` must have room for the whole packet.
    pub fn decode(&mut self, packet: &[u8], pcm: &mut [i16]) -> Result<usize, OpusError> {
        let samples = self.samples_in(packet)?;
        if samples > pcm.len() {
            return Err(OpusError::OutputTooSmall {
                samples,
                room: pcm.len(),
            });
        }
        self.run(packet, &mut pcm[..samples], false, "decode")
    }

    /// Fill `pcm` (a lost packet's length, a multiple of 2.5 ms) with
    /// concealment continuing the audio decoded so far.
    pub fn conceal(&mut self, pcm: &mut [i16]) -> Result<usize, OpusError> {
        frame_size(pcm.len(), self.rate)?;
        self.run(&[], pcm, false, "conceal a lost packet")
    }

    /// Recover the lost packet before `next_packet` from the FEC data
    /// `next_packet` carries into `pcm` (the lost packet's length); libopus
    /// conceals instead when `next_packet` carries none. Decode
    /// `next_packet` itself afterwards, as usual.
    pub fn recover(&mut self, next_packet: &[u8], pcm: &mut [i16]) -> Result<usize, OpusError> {
        frame_size(pcm.len(), self.rate)?;
        self.samples_in(next_packet)?;
        self.run(next_packet, pcm, true, "recover a lost packet from FEC")
    }

    /// Carry out one jitter-buffer tick into `pcm` (one 20 ms frame): the
    /// packet, its FEC recovery, concealment, or silence when idle; a new
    /// sender resets the decoder first. `pcm` always holds the frame to
    /// play, even on `Err` (a malformed packet is concealed and reported).
    pub fn decode_tick(
        &mut self,
        tick: &super::jitter::Tick<'_>,
        pcm: &mut [i16],
    ) -> Result<(), OpusError> {
        use super::jitter::Decode;
        if tick.new_stream {
            self.reset();
        }
        let outcome = match tick.decode {
            Decode::Packet { payload } => self.decode(payload, pcm),
            Decode::Fec { next_payload } => self.recover(next_payload, pcm),
            Decode::Conceal => self.conceal(pcm),
            Decode::Idle => {
                pcm.fill(0);
                return Ok(());
            }
        };
        match outcome {
            Ok(written) if written == pcm.len() => Ok(()),
            Ok(written) => {
                // A shorter packet than the tick (e.g. 10 ms): pad.
                pcm[written..].fill(0);
                Ok(())
            }
            Err(e) => {
                if self.conceal(pcm).is_err() {
                    pcm.fill(0);
                }
                Err(e)
            }
        }
    }

    /// Forget the audio decoded so far (a new sender on the same track).
    pub fn reset(&mut self) {
        // SAFETY: OPUS_RESET_STATE takes no argument.
        unsafe { (self.opus.decoder_ctl)(self.state.as_ptr(), ffi::OPUS_RESET_STATE) };
    }

    fn samples_in(&self, packet: &[u8]) -> Result<usize, OpusError> {
        if packet.is_empty() {
            return Err(OpusError::EmptyPacket);
        }
        let len = packet.len().min(i32::MAX as usize) as i32;
        // SAFETY: `packet` holds `len` bytes; the call only reads the TOC.
        let samples =
            unsafe { (self.opus.packet_get_nb_samples)(packet.as_ptr(), len, self.rate as i32) };
        let longest = MAX_PACKET_SAMPLES / (SAMPLE_RATE / self.rate) as usize;
        if samples <= 0 || samples as usize > longest {
            return Err(OpusError::InvalidPacket {
                len: packet.len(),
                message: self.opus.describe(if samples < 0 { samples } else { -4 }),
            });
        }
        Ok(samples as usize)
    }

    fn run(
        &mut self,
        packet: &[u8],
        pcm: &mut [i16],
        fec: bool,
        what: &'static str,
    ) -> Result<usize, OpusError> {
        let data = if packet.is_empty() {
            std::ptr::null()
        } else {
            packet.as_ptr()
        };
        // SAFETY: `packet` holds its length in bytes (or is NULL for loss);
        // `pcm` has room for the frame size passed.
        let written = unsafe {
            (self.opus.decode)(
                self.state.as_ptr(),
                data,
                packet.len() as i32,
                pcm.as_mut_ptr(),
                pcm.len() as c_int,
                fec.into(),
            )
        };
        if written < 0 {
            return Err(if written == -4 {
                OpusError::InvalidPacket {
                    len: packet.len(),
                    message: self.opus.describe(written),
                }
            } else {
                OpusError::Codec {
                    what,
                    code: written,
                    message: self.opus.describe(written),
                }
            });
        }
        Ok(written as usize)
    }
}

impl Drop for Decoder {
    fn drop(&mut self) {
        // SAFETY: created by opus_decoder_create, destroyed once.
        unsafe { (self.opus.decoder_destroy)(self.state.as_ptr()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_library_says_which_package_to_install() {
        let err = OpusError::LibraryMissing {
            tried: "libopus.so.0: cannot open shared object file".into(),
        };
        let message = err.to_string();
        assert!(message.contains("apt-get install libopus0"), "{message}");
        assert!(message.contains("libopus.so.0"), "{message}");
    }

    #[test]
    fn only_opus_frame_sizes_are_accepted() {
        assert_eq!(frame_size(960, 48_000), Ok(960));
        assert_eq!(frame_size(2_880, 48_000), Ok(2_880));
        assert_eq!(frame_size(320, 16_000), Ok(320));
        assert_eq!(frame_size(160, 8_000), Ok(160));
        assert_eq!(
            frame_size(441, 48_000),
            Err(OpusError::FrameSize {
                got: 441,
                rate: 48_000
            })
        );
        assert_eq!(frame_size(960, 16_000), Ok(960), "60 ms at 16 kHz");
        assert_eq!(
            frame_size(1_000, 16_000),
            Err(OpusError::FrameSize {
                got: 1_000,
                rate: 16_000
            })
        );
    }
}
