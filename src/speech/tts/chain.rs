//! The TTS fallback chain: an ordered list of voices, each under its own
//! guard. An answer is spoken sentence by sentence; a voice whose breaker is
//! open is skipped; a voice that fails (refused, hung, zero audio, bad
//! audio, dropped mid-sentence) hands the sentence, from its start, to the
//! next voice, which keeps the rest of the answer. Every wait is bounded, so
//! nothing here can deadlock: first audio by the sentence's budget, each
//! later chunk by the stall timeout, and a listener that goes away (the
//! caller interrupted) ends the answer at once.
//!
//! ```no_run
//! # async fn demo(chain: voxguard::speech::tts::TtsChain) {
//! use voxguard::speech::tts::TtsEvent;
//! let (tx, mut rx) = tokio::sync::mpsc::channel(16);
//! let speaking = tokio::spawn(async move { chain.speak("Hello. One moment.", &tx).await });
//! while let Some(event) = rx.recv().await {
//!     if let TtsEvent::Audio(chunk) = event {
//!         println!("{} samples at {} Hz from {}", chunk.chunk.samples.len(), chunk.chunk.sample_rate, chunk.voice);
//!     }
//! }
//! # let _ = speaking.await; }
//! ```

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{TtsChunk, TtsLimits, TtsProvider, TtsStream, first_audio};
use crate::resilience::{
    BreakerState, CallError, CallResult, Deadline, Guard, Rejection, Retryability,
};
use crate::speech::metrics;
use crate::speech::text::{self, TextError};

/// A voice and the guard its calls run under.
pub struct TtsVoice {
    pub provider: TtsProvider,
    pub guard: Arc<Guard>,
}

impl std::fmt::Debug for TtsVoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TtsVoice")
            .field("provider", &self.provider)
            .field("breaker", &self.guard.breaker().state())
            .finish()
    }
}

/// Audio of one sentence from one voice.
#[derive(Debug, Clone, PartialEq)]
pub struct SpokenChunk {
    /// Index of the sentence in the answer.
    pub sentence: usize,
    pub voice: &'static str,
    pub chunk: TtsChunk,
}

/// What a listener (the playout) receives while an answer is spoken.
#[derive(Debug, Clone, PartialEq)]
pub enum TtsEvent {
    Audio(SpokenChunk),
    /// The sentence's audio sent so far is incomplete: the voice failed in
    /// the middle of it. It is spoken again, from its start, by `voice`.
    SentenceRestarted {
        sentence: usize,
        voice: &'static str,
    },
    /// A voice failed (or was skipped) and the next one takes over.
    Fallback {
        sentence: usize,
        from: &'static str,
        to: &'static str,
        error: CallError,
    },
}

/// How an answer went.
#[derive(Debug, Clone, PartialEq)]
pub struct TtsReport {
    pub sentences: usize,
    /// From the call to the first chunk of the first sentence.
    pub first_audio: Duration,
    /// The voice that spoke each sentence.
    pub voices: Vec<&'static str>,
    pub fallbacks: u32,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TtsChainError {
    #[error(transparent)]
    Text(#[from] TextError),
    #[error("no voice could speak sentence {sentence}: {}", describe(.errors))]
    AllVoicesFailed {
        sentence: usize,
        errors: Vec<(&'static str, CallError)>,
    },
    #[error("the listener went away (the answer was interrupted)")]
    ListenerGone,
    #[error("no voice is configured")]
    NoVoices,
}

fn describe(errors: &[(&'static str, CallError)]) -> String {
    errors
        .iter()
        .map(|(voice, error)| format!("{voice}: {error}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// An ordered list of voices; cheap to share (`Arc`) between sessions.
#[derive(Debug)]
pub struct TtsChain {
    voices: Vec<TtsVoice>,
    limits: TtsLimits,
    first_audio_budget: Duration,
    reserve_per_later_voice: Duration,
}

impl TtsChain {
    /// `first_audio_budget` bounds the wait for a sentence's first audio
    /// across every voice tried; each voice but the last leaves
    /// `reserve_per_later_voice` of it for each voice after it.
    pub fn new(
        voices: Vec<TtsVoice>,
        limits: TtsLimits,
        first_audio_budget: Duration,
        reserve_per_later_voice: Duration,
    ) -> Self {
        TtsChain {
            voices,
            limits,
            first_audio_budget,
            reserve_per_later_voice,
        }
    }

    pub fn voices(&self) -> &[TtsVoice] {
        &self.voices
    }

    pub fn limits(&self) -> TtsLimits {
        self.limits
    }

    /// Speak `text`, sending its audio to `out` sentence by sentence.
    pub async fn speak(
        &self,
        text: &str,
        out: &mpsc::Sender<TtsEvent>,
    ) -> Result<TtsReport, TtsChainError> {
        if self.voices.is_empty() {
            return Err(TtsChainError::NoVoices);
        }
        let sentences = text::sentences(text)?;
        let started = Instant::now();
        let mut report = TtsReport {
            sentences: sentences.len(),
            first_audio: Duration::ZERO,
            voices: Vec::with_capacity(sentences.len()),
            fallbacks: 0,
        };
        let mut voice_at = 0;
        let mut first_heard = None;
        for (index, sentence) in sentences.iter().enumerate() {
            voice_at = self
                .speak_sentence(
                    index,
                    sentence,
                    voice_at,
                    out,
                    &mut report,
                    &mut first_heard,
                )
                .await?;
            report.voices.push(self.voices[voice_at].provider.name());
        }
        report.first_audio = first_heard.map_or(Duration::ZERO, |at: Instant| at - started);
        Ok(report)
    }

    /// Speak one sentence starting with voice `from`; returns the voice that spoke it.
    async fn speak_sentence(
        &self,
        index: usize,
        sentence: &str,
        from: usize,
        out: &mpsc::Sender<TtsEvent>,
        report: &mut TtsReport,
        first_heard: &mut Option<Instant>,
    ) -> Result<usize, TtsChainError> {
        let mut errors = Vec::new();
        let mut deadline = Deadline::after(self.first_audio_budget);
        let mut restarted = false;
        let last = self.voices.len() - 1;
        for at in from..self.voices.len() {
            let voice = &self.voices[at];
            let name = voice.provider.name();
            if restarted {
                send(
                    out,
                    TtsEvent::SentenceRestarted {
                        sentence: index,
                        voice: name,
                    },
                )
                .await?;
            }
            let result = if voice.guard.breaker().state() == BreakerState::Open && at < last {
                Err(Failure::BeforeAudio(CallError::Rejected(
                    Rejection::BreakerOpen,
                )))
            } else {
                let reserve = self.reserve_per_later_voice * (last - at) as u32;
                let voice_deadline = Deadline::at(
                    deadline
                        .instant()
                        .checked_sub(reserve)
                        .unwrap_or(deadline.instant()),
                );
                self.play(index, sentence, voice, voice_deadline, out, first_heard)
                    .await
            };
            let error = match result {
                Ok(()) => return Ok(at),
                Err(Failure::ListenerGone) => return Err(TtsChainError::ListenerGone),
                Err(Failure::BeforeAudio(error)) => error,
                Err(Failure::MidSentence(error)) => {
                    restarted = true;
                    // The caller already heard part of it: the next voice
                    // gets a fresh first-audio budget.
                    deadline = Deadline::after(self.first_audio_budget);
                    error
                }
            };
            metrics::error(name, &error);
            tracing::warn!(voice = name, sentence = index, %error, "voice failed");
            if let Some(next) = self.voices.get(at + 1) {
                let to = next.provider.name();
                metrics::fallback("tts", name, to);
                report.fallbacks += 1;
                send(
                    out,
                    TtsEvent::Fallback {
                        sentence: index,
                        from: name,
                        to,
                        error: error.clone(),
                    },
                )
                .await?;
            }
            errors.push((name, error));
        }
        Err(TtsChainError::AllVoicesFailed {
            sentence: index,
            errors,
        })
    }

    /// One voice speaks one sentence to its end.
    async fn play(
        &self,
        index: usize,
        sentence: &str,
        voice: &TtsVoice,
        deadline: Deadline,
        out: &mpsc::Sender<TtsEvent>,
        first_heard: &mut Option<Instant>,
    ) -> Result<(), Failure> {
        let name = voice.provider.name();
        let asked = Instant::now();
        let limits = self.limits;
        let outcome = voice
            .guard
            .call(deadline, Retryability::Transient, |ctx| async move {
                first_audio(&voice.provider, &ctx, sentence, limits).await
            })
            .await;
        let (chunk, mut stream) = outcome.result.map_err(Failure::BeforeAudio)?;
        metrics::tts_first_audio(name, asked.elapsed());
        first_heard.get_or_insert_with(Instant::now);
        let streaming = Instant::now();
        self.forward(index, name, chunk, out).await?;
        loop {
            match stream.next().await {
                Ok(Some(chunk)) => self.forward(index, name, chunk, out).await?,
                Ok(None) => return Ok(()),
                Err(error) => {
                    report_mid_stream(&voice.guard, &error, streaming.elapsed());
                    drop_stream(stream);
                    return Err(Failure::MidSentence(error));
                }
            }
        }
    }

    async fn forward(
        &self,
        sentence: usize,
        voice: &'static str,
        chunk: TtsChunk,
        out: &mpsc::Sender<TtsEvent>,
    ) -> Result<(), Failure> {
        out.send(TtsEvent::Audio(SpokenChunk {
            sentence,
            voice,
            chunk,
        }))
        .await
        .map_err(|_| Failure::ListenerGone)
    }
}

enum Failure {
    BeforeAudio(CallError),
    MidSentence(CallError),
    ListenerGone,
}

async fn send(out: &mpsc::Sender<TtsEvent>, event: TtsEvent) -> Result<(), TtsChainError> {
    out.send(event)
        .await
        .map_err(|_| TtsChainError::ListenerGone)
}

/// A failure after the guard's attempt succeeded still says something about
/// the provider's health: its breaker hears of it.
pub(crate) fn report_mid_stream(guard: &Guard, error: &CallError, took: Duration) {
    if let Ok(permit) = guard.breaker().try_acquire() {
        permit.record(CallResult::of::<()>(&Err(error.clone())), took);
    }
}

fn drop_stream(stream: TtsStream) {
    // Dropping kills a child process and closes a socket.
    drop(stream);
}
