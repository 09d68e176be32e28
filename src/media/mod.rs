//! Audio with no network: frames, WAV, Opus, resampling, voice activity,
//! jitter buffering and paced playout. Nothing here knows about voice
//! agents, speech providers or LiveKit.

pub mod frame;
pub mod jitter;
pub mod level;
pub mod opus;
pub mod playout;
pub mod resample;
pub mod vad;
pub mod wav;

pub use frame::{AudioFrame, FrameError, FrameLength, level_dbfs};
pub use wav::{Pcm, WavError};
