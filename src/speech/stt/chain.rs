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
        let inbox = Arc::new(Inbox::new(self.settings.queue_frames.max(1)));
        let (events, outbox) = mpsc::channel(64);
        let worker = Worker::new(self.clone(), events);
        let task = tokio::spawn(worker.run(inbox.clone()));
        (
            SttHandle {
                commands: InboxSender(inbox),
                task,
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

/// The commands from a call to its recognition task, in order. A bounded
/// queue that holds what is waiting (normally a frame or two, a few dozen
/// while a stream connects) rather than a channel's blocks of 32 slots:
/// with a frame in every slot, those were 40 KiB a call.
#[derive(Debug)]
pub(super) struct Inbox {
    state: std::sync::Mutex<InboxState>,
    ready: tokio::sync::Notify,
    capacity: usize,
}

#[derive(Debug, Default)]
struct InboxState {
    queue: std::collections::VecDeque<Command>,
    /// The call let go of its handle.
    senders_gone: bool,
    /// The recognition task stopped.
    receiver_gone: bool,
}

impl Inbox {
    fn new(capacity: usize) -> Inbox {
        Inbox {
            state: std::sync::Mutex::default(),
            ready: tokio::sync::Notify::new(),
            capacity,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, InboxState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queue `command`; audio is refused beyond the capacity, the rare
    /// control commands never are.
    fn send(&self, command: Command) -> Result<(), SttInputError> {
        let mut state = self.state();
        if state.receiver_gone {
            return Err(SttInputError::Stopped);
        }
        if matches!(command, Command::Audio(_)) && state.queue.len() >= self.capacity {
            return Err(SttInputError::Backlogged(self.capacity));
        }
        state.queue.push_back(command);
        drop(state);
        self.ready.notify_one();
        Ok(())
    }

    /// The next command; `None` once the call let go and all were taken.
    pub(super) async fn recv(&self) -> Option<Command> {
        loop {
            {
                let mut state = self.state();
                if let Some(command) = state.queue.pop_front() {
                    return Some(command);
                }
                if state.senders_gone {
                    return None;
                }
            }
            // A notification sent since the check above is kept as a permit.
            self.ready.notified().await;
        }
    }

    /// The recognition task is done: later sends fail, the queue is freed.
    pub(super) fn close(&self) {
        let mut state = self.state();
        state.receiver_gone = true;
        state.queue = std::collections::VecDeque::new();
    }
}

/// The call's end of the inbox; dropping it tells the task no more come.
#[derive(Debug)]
struct InboxSender(Arc<Inbox>);

impl Drop for InboxSender {
    fn drop(&mut self) {
        self.0.state().senders_gone = true;
        self.0.ready.notify_one();
    }
}

/// One call's way into its recognition task.
#[derive(Debug)]
pub struct SttHandle {
    commands: InboxSender,
    task: JoinHandle<()>,
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
            self.commands.0.send(Command::Audio(block))?;
        }
        Ok(())
    }

    /// The caller's turn ended (the VAD and endpointing say so): ask for
    /// the final transcript of everything sent.
    pub async fn end_turn(&self) -> Result<(), SttInputError> {
        self.commands.0.send(Command::EndTurn)
    }

    /// The caller hung up: send what is left, collect the last results,
    /// close the stream. Bounded by the drain time.
    pub async fn hang_up(self) {
        let _ = self.commands.0.send(Command::HangUp);
        let mut task = self.task;
        if tokio::time::timeout(self.drain + Duration::from_secs(1), &mut task)
            .await
            .is_err()
        {
            task.abort();
        }
    }
}
