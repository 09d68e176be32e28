//! The STT fallback chain: one task per call that feeds the caller's audio
//! to the first recognizer that works, keeps the turn's audio in a
//! [`TurnBuffer`], and when a stream breaks (a 1006 drop, a 1011 close, a
//! read that times out, garbage on the socket) reconnects the same
//! recognizer once or moves to the next, replaying the audio not yet
//! finalized so no word is lost. A recognizer whose breaker is open is
//! skipped; after a turn ends on a fallback, the chain returns to the
//! primary as soon as its breaker is closed again (the
//! [prober](crate::speech::probe) closes it).
//!
//! When every recognizer has failed the chain says so once
//! ([`SttEvent::Unavailable`]) and keeps the audio; the caller's words can
//! still come from LiveKit's `lk.chat` text meanwhile.
//!
//! Audio frames go in through [`SttHandle::push`] by value into a bounded
//! channel (no allocation per frame); events come out of a bounded channel.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::worker::Worker;
use super::{ProviderErrors, SttBackend};
use crate::media::AudioFrame;
use crate::resilience::CallError;
use crate::speech::STT_SAMPLE_RATE;

/// Samples one command carries at most (20 ms at 16 kHz).
const BLOCK: usize = 320;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SttChainSettings {
    /// The deadline for (re)connecting a stream, retries included.
    pub connect_budget: Duration,
    /// The deadline for transcribing one turn with a batch recognizer.
    pub transcribe_budget: Duration,
    /// A KeepAlive goes out when no audio was sent for this long.
    pub keepalive_every: Duration,
    /// Audio is sent in messages of this much (batching frames).
    pub send_every: Duration,
    /// How much unfinalized audio is kept for replay.
    pub replay: Duration,
    /// A stream that takes audio but sends nothing back for this long is
    /// treated as hung (a stream silently connected but deaf).
    pub result_timeout: Duration,
    /// Reconnects of the same recognizer per turn before moving on.
    pub reconnects_per_turn: u32,
    /// After every recognizer failed, wait this long before trying again.
    pub retry_unavailable_after: Duration,
    /// On hang-up, how long to wait for the last results.
    pub hang_up_drain: Duration,
    /// Audio frames queued for the chain's task before `push` refuses more.
    pub queue_frames: usize,
}

impl Default for SttChainSettings {
    fn default() -> Self {
        SttChainSettings {
            connect_budget: Duration::from_millis(1500),
            transcribe_budget: Duration::from_millis(3000),
            keepalive_every: Duration::from_secs(4),
            send_every: Duration::from_millis(40),
            result_timeout: Duration::from_secs(5),
            replay: super::turn::DEFAULT_REPLAY,
            reconnects_per_turn: 1,
            retry_unavailable_after: Duration::from_secs(1),
            hang_up_drain: Duration::from_secs(2),
            queue_frames: 200,
        }
    }
}

/// What the chain tells the voice pipeline.
#[derive(Debug, Clone, PartialEq)]
pub enum SttEvent {
    SpeechStarted {
        provider: &'static str,
    },
    Interim {
        provider: &'static str,
        text: String,
    },
    Final {
        provider: &'static str,
        text: String,
        /// The recognizer's endpointing saw the end of an utterance.
        speech_final: bool,
        /// The answer to an explicit end of turn.
        from_finalize: bool,
    },
    UtteranceEnd {
        provider: &'static str,
    },
    /// A recognizer failed; `to` took over with the unfinalized audio replayed.
    Failover {
        from: &'static str,
        to: &'static str,
        error: CallError,
        replayed: Duration,
        /// Unfinalized audio that no longer fit the turn buffer.
        lost: Duration,
    },
    /// Every recognizer failed; audio is kept and they are retried.
    Unavailable {
        errors: ProviderErrors,
    },
    /// A recognizer works again after [`SttEvent::Unavailable`].
    Recovered {
        provider: &'static str,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SttInputError {
    #[error("STT takes {expected} Hz audio, this frame is at {got} Hz; resample it first")]
    WrongRate { expected: u32, got: u32 },
    #[error("the recognizer's queue is full ({0} frames); it is not keeping up")]
    Backlogged(usize),
    #[error("the recognizer chain has stopped")]
    Stopped,
}

/// The ordered recognizers, shared by every call.
#[derive(Debug)]
pub struct SttChain {
    backends: Vec<SttBackend>,
    settings: SttChainSettings,
}

impl SttChain {
    pub fn new(backends: Vec<SttBackend>, settings: SttChainSettings) -> Arc<SttChain> {
        Arc::new(SttChain { backends, settings })
    }

    pub fn backends(&self) -> &[SttBackend] {
        &self.backends
    }

    pub fn settings(&self) -> &SttChainSettings {
        &self.settings
    }

    /// Start one call's recognition task.
    pub fn start(self: &Arc<Self>) -> (SttHandle, mpsc::Receiver<SttEvent>) {
        let (commands, inbox) = mpsc::channel(self.settings.queue_frames.max(1));
        let (events, outbox) = mpsc::channel(64);
        let worker = Worker::new(self.clone(), events);
        let task = tokio::spawn(worker.run(inbox));
        (
            SttHandle {
                commands,
                task,
                capacity: self.settings.queue_frames,
                drain: self.settings.hang_up_drain,
            },
            outbox,
        )
    }
}

pub(super) fn batch_samples(settings: &SttChainSettings) -> usize {
    ((settings.send_every.as_secs_f64() * f64::from(STT_SAMPLE_RATE)) as usize).max(160)
}

#[derive(Debug)]
pub(super) struct AudioBlock {
    pub(super) len: usize,
    pub(super) samples: [i16; BLOCK],
}

// Audio travels by value so a frame costs no allocation; the other
// commands are rare.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(super) enum Command {
    Audio(AudioBlock),
    EndTurn,
    HangUp,
}

/// One call's way into its recognition task.
#[derive(Debug)]
pub struct SttHandle {
    commands: mpsc::Sender<Command>,
    task: JoinHandle<()>,
    capacity: usize,
    drain: Duration,
}

impl SttHandle {
    /// Queue a 16 kHz frame (copied by value: no allocation).
    pub fn push(&self, frame: &AudioFrame) -> Result<(), SttInputError> {
        if frame.sample_rate() != STT_SAMPLE_RATE {
            return Err(SttInputError::WrongRate {
                expected: STT_SAMPLE_RATE,
                got: frame.sample_rate(),
            });
        }
        self.push_samples(frame.samples())
    }

    /// Queue 16 kHz samples.
    pub fn push_samples(&self, samples: &[i16]) -> Result<(), SttInputError> {
        for piece in samples.chunks(BLOCK) {
            let mut block = AudioBlock {
                len: piece.len(),
                samples: [0; BLOCK],
            };
            block.samples[..piece.len()].copy_from_slice(piece);
            self.commands
                .try_send(Command::Audio(block))
                .map_err(|error| match error {
                    mpsc::error::TrySendError::Full(_) => SttInputError::Backlogged(self.capacity),
                    mpsc::error::TrySendError::Closed(_) => SttInputError::Stopped,
                })?;
        }
        Ok(())
    }

    /// The caller's turn ended (the VAD and endpointing say so): ask for
    /// the final transcript of everything sent.
    pub async fn end_turn(&self) -> Result<(), SttInputError> {
        self.commands
            .send(Command::EndTurn)
            .await
            .map_err(|_| SttInputError::Stopped)
    }

    /// The caller hung up: send what is left, collect the last results,
    /// close the stream. Bounded by the drain time.
    pub async fn hang_up(self) {
        let _ = self.commands.send(Command::HangUp).await;
        let mut task = self.task;
        if tokio::time::timeout(self.drain + Duration::from_secs(1), &mut task)
            .await
            .is_err()
        {
            task.abort();
        }
    }
}
