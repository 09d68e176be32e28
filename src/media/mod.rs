//! Audio with no network: frames, WAV, Opus, resampling, voice activity,
//! jitter buffering, paced playout and level measurement. Nothing here
//! knows about voice agents, speech providers or LiveKit, and nothing
//! imports another voxguard module (a test holds that).
//!
//! The receive path is `jitter` → `opus::Decoder` → `resample` (48 kHz to
//! the recognizer's rate) → `vad`; the send path is `resample` (the
//! voice's rate to 48 kHz) → `playout` → `opus::Encoder`, or, for speech
//! queued as packets, `packetizer` (resample, frame and encode ahead). Every stage works
//! in place on buffers its caller reuses: nothing allocates per frame.

pub mod frame;
pub mod jitter;
pub mod level;
pub mod opus;
pub mod packetizer;
pub mod playout;
pub mod resample;
pub mod vad;
pub mod wav;

pub use frame::{AudioFrame, FrameError, FrameLength, level_dbfs};
pub use jitter::{JitterBuffer, JitterConfig, JitterStats, RtpPacket};
pub use opus::OpusError;
pub use packetizer::{EncodeError, Packetizer, packetize};
pub use playout::{Playout, PlayoutConfig, PlayoutError, PlayoutEvent, SegmentId};
pub use resample::{ResampleError, Resampler};
pub use vad::{Vad, VadConfig, VadError, VadEvent};
pub use wav::{Pcm, WavError};
