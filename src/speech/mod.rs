//! Speech providers as risky calls: speech-to-text and text-to-speech
//! providers, each under its own [`Guard`](crate::resilience::Guard) (its
//! breaker named `stt.deepgram`, `tts.openai`, ...), fallback chains in each
//! direction, and the phrase audio cache that lets recovery lines play even
//! when every voice is down.
//!
//! Speech knows providers, the resilience engine and audio; it does not know
//! sessions, LiveKit or configuration files. The composition root builds
//! [`SpeechSettings`](settings::SpeechSettings) from the config and calls
//! [`SpeechStack::build`](settings::SpeechStack::build).
//!
//! Audio crosses this layer at each provider's native rate, tagged: STT takes
//! 16 kHz mono s16 ([`STT_SAMPLE_RATE`]); each voice gives whatever it speaks
//! (24 kHz for OpenAI `pcm`, 22 050 Hz for espeak-ng). The voice pipeline
//! resamples.

pub mod cache;
pub mod http;
pub mod metrics;
pub mod pcm;
pub mod probe;
pub mod settings;
pub mod store;
pub mod stt;
pub mod text;
pub mod tts;

pub use cache::{CacheReport, PhraseCache};
pub use settings::{SpeechSettings, SpeechStack, SttSettings, TtsSettings};
pub use store::PhraseStore;

/// The rate every STT provider is fed: 16 kHz mono linear16.
pub const STT_SAMPLE_RATE: u32 = 16_000;
