//! Speech-to-text providers and the chain that keeps a caller's words when
//! one of them fails.
//!
//! - [`DeepgramStt`]: streaming over WebSocket, interim and final results;
//! - [`OpenAiStt`]: one turn's audio (cut by the VAD) posted as WAV.
//!
//! Both are fed 16 kHz mono linear16. The [`SttChain`] runs them in order
//! under their guards, keeps the turn's audio in a [`TurnBuffer`] and replays
//! it into the next provider (or the same one, reconnected) when a stream
//! breaks.

pub mod chain;
pub mod deepgram;
pub mod openai;
pub mod turn;
mod worker;

use std::sync::Arc;

use crate::resilience::{CallError, Guard};

pub use chain::{SttChain, SttChainSettings, SttEvent, SttHandle, SttInputError};
pub use deepgram::{DeepgramSettings, DeepgramStt};
pub use openai::{OpenAiStt, OpenAiSttSettings};
pub use turn::TurnBuffer;

/// One configured recognizer.
#[derive(Debug)]
pub enum SttProvider {
    Deepgram(DeepgramStt),
    OpenAi(OpenAiStt),
}

impl SttProvider {
    /// The provider's breaker and metrics name (`stt.deepgram`, `stt.openai`).
    pub fn name(&self) -> &'static str {
        match self {
            SttProvider::Deepgram(_) => deepgram::NAME,
            SttProvider::OpenAi(_) => openai::NAME,
        }
    }

    /// Whether it streams (results while the caller speaks) or transcribes whole turns.
    pub fn is_streaming(&self) -> bool {
        matches!(self, SttProvider::Deepgram(_))
    }
}

/// A recognizer and the guard its calls run under.
#[derive(Clone)]
pub struct SttBackend {
    pub provider: Arc<SttProvider>,
    pub guard: Arc<Guard>,
}

impl std::fmt::Debug for SttBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SttBackend")
            .field("provider", &self.provider)
            .field("breaker", &self.guard.breaker().state())
            .finish()
    }
}

/// Every failure of one turn, by provider, when none could transcribe it.
pub type ProviderErrors = Vec<(&'static str, CallError)>;
