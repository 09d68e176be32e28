//! Text-to-speech voices: each turns one sentence into a stream of PCM
//! chunks tagged with their sample rate, and every way it can fail is a
//! classified [`CallError`] so the [`TtsChain`](chain::TtsChain) can move to
//! the next voice.
//!
//! - [`OpenAiTts`]: `POST {base}/audio/speech` with `response_format: "pcm"`
//!   (s16le mono at 24 kHz, streamed), for OpenAI and compatible servers;
//! - [`CartesiaTts`]: Cartesia's `/tts/websocket`, one context per sentence,
//!   base64 PCM chunks at the rate the request declares, `done` at the end;
//! - [`EspeakTts`]: the local `espeak-ng` program, WAV on its stdout,
//!   streamed as it comes; no network, no key.
//!
//! The first chunk is what a guard waits for ([`first_audio`]): connecting,
//! being refused, hanging and answering with no audio all happen before it.

pub mod cartesia;
pub mod chain;
pub mod espeak;
pub mod openai;

use std::time::Duration;

use crate::resilience::{AttemptCtx, CallError};

pub use cartesia::{CartesiaSettings, CartesiaTts};
pub use chain::{SpokenChunk, TtsChain, TtsChainError, TtsEvent, TtsReport, TtsVoice};
pub use espeak::{EspeakSettings, EspeakTts};
pub use openai::{OpenAiTts, OpenAiTtsSettings};

/// A piece of synthesized speech: mono s16 at `sample_rate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TtsChunk {
    pub sample_rate: u32,
    pub samples: Vec<i16>,
}

impl TtsChunk {
    pub fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.samples.len() as f64 / f64::from(self.sample_rate.max(1)))
    }
}

/// Bounds on one sentence's synthesis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TtsLimits {
    /// A sentence producing more audio than this is an endless stream.
    pub max_audio_per_sentence: Duration,
    /// After the first chunk, the longest wait for the next one.
    pub chunk_stall: Duration,
}

impl Default for TtsLimits {
    fn default() -> Self {
        TtsLimits {
            max_audio_per_sentence: Duration::from_secs(30),
            chunk_stall: Duration::from_secs(2),
        }
    }
}

/// One configured voice.
#[derive(Debug)]
pub enum TtsProvider {
    OpenAi(OpenAiTts),
    Cartesia(CartesiaTts),
    Espeak(EspeakTts),
}

impl TtsProvider {
    /// The provider's breaker and metrics name (`tts.openai`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            TtsProvider::OpenAi(_) => openai::NAME,
            TtsProvider::Cartesia(_) => cartesia::NAME,
            TtsProvider::Espeak(_) => espeak::NAME,
        }
    }

    /// Everything that shapes this voice's sound (the phrase store files
    /// its lines under it).
    pub fn identity(&self) -> String {
        match self {
            TtsProvider::OpenAi(voice) => voice.identity(),
            TtsProvider::Cartesia(voice) => voice.identity(),
            TtsProvider::Espeak(voice) => voice.identity(),
        }
    }

    /// Start synthesizing `text` within the attempt's time.
    pub async fn open(
        &self,
        ctx: &AttemptCtx,
        text: &str,
        limits: TtsLimits,
    ) -> Result<TtsStream, CallError> {
        match self {
            TtsProvider::OpenAi(voice) => {
                voice.open(ctx, text, limits).await.map(TtsStream::OpenAi)
            }
            TtsProvider::Cartesia(voice) => voice
                .open(ctx, text, limits)
                .await
                .map(|s| TtsStream::Cartesia(Box::new(s))),
            TtsProvider::Espeak(voice) => {
                voice.open(ctx, text, limits).await.map(TtsStream::Espeak)
            }
        }
    }
}

/// Audio on its way from a voice.
#[derive(Debug)]
pub enum TtsStream {
    OpenAi(openai::OpenAiStream),
    /// Boxed: a socket is much larger than the other streams.
    Cartesia(Box<cartesia::CartesiaStream>),
    Espeak(espeak::EspeakStream),
}

impl TtsStream {
    /// The next chunk, `None` once the sentence is complete (and checked:
    /// some audio, whole samples), or the classified failure.
    pub async fn next(&mut self) -> Result<Option<TtsChunk>, CallError> {
        match self {
            TtsStream::OpenAi(stream) => stream.next().await,
            TtsStream::Cartesia(stream) => stream.next().await,
            TtsStream::Espeak(stream) => stream.next().await,
        }
    }
}

/// Open a stream and wait for its first chunk: the part of a synthesis a
/// guard runs as an attempt (a voice that answers with no audio fails here).
pub async fn first_audio(
    provider: &TtsProvider,
    ctx: &AttemptCtx,
    text: &str,
    limits: TtsLimits,
) -> Result<(TtsChunk, TtsStream), CallError> {
    let mut stream = provider.open(ctx, text, limits).await?;
    match stream.next().await? {
        Some(chunk) => Ok((chunk, stream)),
        None => Err(crate::speech::pcm::AudioFault::ZeroAudio.into_error(provider.name())),
    }
}
