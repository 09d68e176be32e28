//! One call's recognition task: the turn buffer, the live stream, and the
//! failover that replays unfinalized audio into whichever recognizer takes
//! over (see [`SttChain`](super::SttChain) for the behaviour).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::chain::{Command, Inbox, SttChain, SttEvent, batch_samples};
use super::deepgram::{DeepgramMessage, DeepgramStream};
use super::turn::{TurnBuffer, samples_to_duration};
use super::{ProviderErrors, SttProvider};
use crate::edge::websocket as close;
use crate::resilience::{BreakerState, CallError, Deadline, Rejection, Retryability};
use crate::speech::tts::chain::report_mid_stream;
use crate::speech::{STT_SAMPLE_RATE, metrics};

struct Live {
    stream: DeepgramStream,
    /// Absolute turn position of the stream's first sample.
    origin: u64,
    last_sent: Instant,
    /// Set when audio went out while a first result is awaited.
    awaiting_since: Option<Instant>,
    awaiting: bool,
    /// Whether this stream was asked for the turn's final result.
    finalize_sent: bool,
    /// The first audio sent since the stream last said anything.
    unanswered_since: Option<Instant>,
}

pub(super) struct Worker {
    chain: Arc<SttChain>,
    events: mpsc::Sender<SttEvent>,
    turn: TurnBuffer,
    /// The latest samples, linear, not yet sent to the live stream.
    pending: Vec<i16>,
    scratch: Vec<i16>,
    current: usize,
    live: Option<Live>,
    reconnects: u32,
    unavailable_since: Option<Instant>,
    /// The failure that started the current failover, reported once a
    /// recognizer takes over.
    failing: Option<(&'static str, CallError)>,
    errors: ProviderErrors,
    /// The turn ended and its final result has not been delivered yet: a
    /// recognizer taking over must finish it.
    finalize_pending: bool,
}

async fn next_message(live: &mut Option<Live>) -> Result<Option<DeepgramMessage>, CallError> {
    match live {
        Some(live) => live.stream.next_message().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl Worker {
    pub(super) fn new(chain: Arc<SttChain>, events: mpsc::Sender<SttEvent>) -> Worker {
        let batch = batch_samples(chain.settings());
        Worker {
            turn: TurnBuffer::new(chain.settings().replay),
            pending: Vec::with_capacity(batch + 320),
            scratch: Vec::with_capacity(batch * 4),
            chain,
            events,
            current: 0,
            live: None,
            reconnects: 0,
            unavailable_since: None,
            failing: None,
            errors: Vec::new(),
            finalize_pending: false,
        }
    }

    pub(super) async fn run(mut self, inbox: Arc<Inbox>) {
        self.serve(&inbox).await;
        inbox.close();
    }

    async fn serve(&mut self, inbox: &Inbox) {
        if self.backend_streams(self.current) {
            self.connect().await;
        }
        loop {
            let keepalive_at = self
                .live
                .as_ref()
                .map(|l| l.last_sent + self.chain.settings().keepalive_every);
            let hung_at = self
                .live
                .as_ref()
                .and_then(|l| l.unanswered_since)
                .map(|since| since + self.chain.settings().result_timeout);
            tokio::select! {
                command = inbox.recv() => match command {
                    Some(Command::Audio(block)) => self.on_audio(&block.samples[..block.len]).await,
                    Some(Command::EndTurn) => self.on_end_turn().await,
                    Some(Command::HangUp) | None => {
                        self.hang_up().await;
                        return;
                    }
                },
                message = next_message(&mut self.live), if self.live.is_some() => {
                    self.on_message(message).await;
                }
                () = sleep_until(keepalive_at), if keepalive_at.is_some() => self.keep_alive().await,
                () = sleep_until(hung_at), if hung_at.is_some() => {
                    let after = self.chain.settings().result_timeout;
                    self.fail(CallError::Timeout { after }).await;
                }
            }
            self.settle().await;
        }
    }

    /// Finish an ended turn on whichever recognizer now holds it: ask a
    /// stream that was not yet asked, or transcribe with a batch recognizer.
    async fn settle(&mut self) {
        for _ in 0..=self.chain.backends().len() + 1 {
            if !self.finalize_pending {
                return;
            }
            let batch =
                self.current < self.chain.backends().len() && !self.backend_streams(self.current);
            match self.live.as_mut() {
                Some(live) if live.finalize_sent => return,
                Some(live) => {
                    live.finalize_sent = true;
                    if let Err(error) = live.stream.finalize().await {
                        self.fail(error).await;
                    }
                }
                None if batch => self.transcribe_turn().await,
                None => return,
            }
        }
    }

    fn backend_streams(&self, at: usize) -> bool {
        self.chain
            .backends()
            .get(at)
            .is_some_and(|b| b.provider.is_streaming())
    }

    fn name(&self, at: usize) -> &'static str {
        self.chain.backends()[at].provider.name()
    }

    fn waiting_to_retry(&self) -> bool {
        self.unavailable_since
            .is_some_and(|since| since.elapsed() < self.chain.settings().retry_unavailable_after)
    }

    async fn emit(&self, event: SttEvent) {
        let _ = self.events.send(event).await;
    }

    async fn on_audio(&mut self, samples: &[i16]) {
        if self.turn.unfinalized() == 0 && self.live.is_none() {
            // A new turn starts: on the primary, if it is back.
            self.turn_ended();
        }
        self.turn.push(samples);
        self.pending.extend_from_slice(samples);
        if self.live.is_none() {
            if !self.waiting_to_retry()
                && (self.backend_streams(self.current)
                    || self.current >= self.chain.backends().len())
            {
                self.connect().await;
            }
            if self.live.is_none() {
                // Held in the turn buffer; a stream that opens later replays it.
                self.pending.clear();
            }
            return;
        }
        if self.pending.len() >= batch_samples(self.chain.settings())
            && let Err(error) = self.send_pending().await
        {
            self.fail(error).await;
        }
    }

    /// Send the pending samples to the live stream (dropped when there is none).
    async fn send_pending(&mut self) -> Result<(), CallError> {
        let Some(live) = self.live.as_mut() else {
            self.pending.clear();
            return Ok(());
        };
        if self.pending.is_empty() {
            return Ok(());
        }
        let result = live.stream.send_audio(&self.pending).await;
        self.pending.clear();
        live.last_sent = Instant::now();
        live.unanswered_since.get_or_insert(live.last_sent);
        if live.awaiting && live.awaiting_since.is_none() {
            live.awaiting_since = Some(live.last_sent);
        }
        result
    }

    /// Open a stream on the first recognizer from `current` that works, and
    /// replay the unfinalized audio into it. Moving to a batch recognizer
    /// needs no connection: it transcribes at the end of the turn.
    async fn connect(&mut self) {
        let backends = self.chain.backends().len();
        if self.current >= backends {
            self.current = 0;
        }
        let last = backends.saturating_sub(1);
        while self.current < backends {
            let at = self.current;
            let backend = self.chain.backends()[at].clone();
            let name = backend.provider.name();
            let SttProvider::Deepgram(deepgram) = backend.provider.as_ref() else {
                // A batch recognizer takes over at the end of the turn; the
                // failover is reported once it has transcribed it.
                return;
            };
            if backend.guard.breaker().state() == BreakerState::Open && at < last {
                self.errors
                    .push((name, CallError::Rejected(Rejection::BreakerOpen)));
                self.current += 1;
                continue;
            }
            let deadline = Deadline::after(self.chain.settings().connect_budget);
            let outcome = backend
                .guard
                .call(deadline, Retryability::Transient, |ctx| async move {
                    deepgram.connect(&ctx).await
                })
                .await;
            match outcome.result {
                Ok(stream) => {
                    let origin = self.turn.replay_from();
                    self.live = Some(Live {
                        stream,
                        origin,
                        last_sent: Instant::now(),
                        awaiting_since: None,
                        awaiting: true,
                        finalize_sent: false,
                        unanswered_since: None,
                    });
                    let replayed = self.replay(origin).await;
                    if self.live.is_some() {
                        self.took_over(at, replayed).await;
                    }
                    return;
                }
                Err(error) => {
                    metrics::error(name, &error);
                    tracing::warn!(provider = name, %error, "recognizer could not be reached");
                    self.errors.push((name, error.clone()));
                    if self.failing.is_none() {
                        self.failing = Some((name, error));
                    }
                    self.current += 1;
                }
            }
        }
        self.all_failed().await;
    }

    /// Send the held audio from `origin` up to the pending samples, then
    /// those; returns how many samples were replayed from the buffer.
    async fn replay(&mut self, origin: u64) -> u64 {
        let replay_end = self.turn.end() - self.pending.len() as u64;
        let batch = batch_samples(self.chain.settings()) * 4;
        let mut position = origin;
        while position < replay_end {
            self.scratch.clear();
            let max = batch.min((replay_end - position) as usize);
            position = self.turn.read(position, max, &mut self.scratch);
            let Some(live) = self.live.as_mut() else {
                return 0;
            };
            if let Err(error) = live.stream.send_audio(&self.scratch).await {
                self.fail_without_reconnect(error).await;
                return 0;
            }
            live.last_sent = Instant::now();
            live.unanswered_since.get_or_insert(live.last_sent);
        }
        if let Err(error) = self.send_pending().await {
            self.fail_without_reconnect(error).await;
            return 0;
        }
        replay_end - origin
    }

    /// `at` took over: report the failover that led here, if any.
    async fn took_over(&mut self, at: usize, replayed: u64) {
        self.current = at;
        self.errors.clear();
        let name = self.name(at);
        if replayed > 0 {
            metrics::replayed(name, samples_to_duration(replayed));
        }
        let lost = self.turn.lost();
        if lost > 0 {
            metrics::replay_lost(samples_to_duration(lost));
        }
        if let Some((from, error)) = self.failing.take() {
            if from != name {
                metrics::fallback("stt", from, name);
            }
            self.emit(SttEvent::Failover {
                from,
                to: name,
                error,
                replayed: samples_to_duration(replayed),
                lost: samples_to_duration(lost),
            })
            .await;
        }
        if self.unavailable_since.take().is_some() {
            self.emit(SttEvent::Recovered { provider: name }).await;
        }
    }

    async fn all_failed(&mut self) {
        self.live = None;
        self.finalize_pending = false;
        self.current = 0;
        self.failing = None;
        let errors = std::mem::take(&mut self.errors);
        let first_time = self.unavailable_since.is_none();
        self.unavailable_since = Some(Instant::now());
        if first_time {
            tracing::warn!(
                providers = errors.len(),
                "every recognizer failed; keeping the caller's audio"
            );
            self.emit(SttEvent::Unavailable { errors }).await;
        }
    }

    /// The live stream failed: tell its breaker, then reconnect or move on
    /// at once when a turn is in flight (its audio is replayed); between
    /// turns the next audio reconnects.
    async fn fail(&mut self, error: CallError) {
        self.fail_without_reconnect(error).await;
        if self.turn.unfinalized() > 0 || self.finalize_pending {
            self.connect().await;
        }
    }

    async fn fail_without_reconnect(&mut self, error: CallError) {
        let at = self
            .current
            .min(self.chain.backends().len().saturating_sub(1));
        let backend = &self.chain.backends()[at];
        let name = backend.provider.name();
        metrics::error(name, &error);
        tracing::warn!(provider = name, %error, "recognizer stream failed");
        report_mid_stream(&backend.guard, &error, Duration::ZERO);
        self.live = None;
        self.reconnects += 1;
        let same_again =
            error.is_transient() && self.reconnects <= self.chain.settings().reconnects_per_turn;
        if !same_again {
            self.current = at + 1;
        }
        self.errors.push((name, error.clone()));
        self.failing = Some((name, error));
    }

    async fn keep_alive(&mut self) {
        let Some(live) = self.live.as_mut() else {
            return;
        };
        live.last_sent = Instant::now();
        if let Err(error) = live.stream.keep_alive().await {
            self.fail(error).await;
        }
    }

    async fn on_end_turn(&mut self) {
        self.finalize_pending = true;
        if self.live.is_none() && self.backend_streams(self.current) && !self.waiting_to_retry() {
            self.connect().await;
        }
        if let Err(error) = self.send_pending().await {
            self.fail(error).await;
        }
    }

    /// Transcribe the unfinalized audio with the batch recognizers from `current`.
    async fn transcribe_turn(&mut self) {
        if self.turn.unfinalized() == 0 {
            self.finalize_pending = false;
            return;
        }
        let backends = self.chain.backends().len();
        while self.current < backends {
            let at = self.current;
            let backend = self.chain.backends()[at].clone();
            let name = backend.provider.name();
            let SttProvider::OpenAi(openai) = backend.provider.as_ref() else {
                // A stream takes over; `settle` asks it for the final result.
                self.connect().await;
                return;
            };
            let audio = self.turn.unfinalized();
            let wav = self.turn.unfinalized_wav();
            let deadline = Deadline::after(self.chain.settings().transcribe_budget);
            let wav = &wav;
            let outcome = backend
                .guard
                .call(deadline, Retryability::Transient, |ctx| async move {
                    openai.transcribe(&ctx, wav).await
                })
                .await;
            match outcome.result {
                Ok(text) => {
                    metrics::stt_first_result(name, outcome.elapsed);
                    self.took_over(at, audio).await;
                    self.turn.finalize_upto(self.turn.end());
                    self.finalize_pending = false;
                    if !text.is_empty() {
                        self.emit(SttEvent::Final {
                            provider: name,
                            text,
                            speech_final: true,
                            from_finalize: true,
                        })
                        .await;
                    }
                    self.turn_ended();
                    return;
                }
                Err(error) => {
                    metrics::error(name, &error);
                    tracing::warn!(provider = name, %error, "turn could not be transcribed");
                    self.errors.push((name, error.clone()));
                    if self.failing.is_none() {
                        self.failing = Some((name, error));
                    }
                    self.current += 1;
                }
            }
        }
        self.all_failed().await;
    }

    /// A turn was delivered: the next one starts fresh, on the primary if
    /// its breaker is closed again.
    fn turn_ended(&mut self) {
        self.reconnects = 0;
        if self.current > 0
            && self.chain.backends()[0].guard.breaker().state() == BreakerState::Closed
        {
            tracing::info!(
                provider = self.name(0),
                "returning to the primary recognizer"
            );
            self.live = None;
            self.current = 0;
        }
    }

    async fn on_message(&mut self, message: Result<Option<DeepgramMessage>, CallError>) {
        let name = self.name(self.current);
        if let Some(live) = self.live.as_mut() {
            live.unanswered_since = None;
        }
        let message = match message {
            Ok(Some(message)) => message,
            Ok(None) => {
                self.live = None;
                if self.turn.unfinalized() > 0 {
                    self.fail(close::ended_early(name)).await;
                }
                return;
            }
            Err(error) => {
                self.fail(error).await;
                return;
            }
        };
        match message {
            DeepgramMessage::Results {
                transcript,
                is_final,
                speech_final,
                from_finalize,
                start,
                duration,
            } => {
                if let Some(live) = self.live.as_mut() {
                    if !transcript.is_empty()
                        && let Some(since) = live.awaiting_since.take()
                    {
                        live.awaiting = false;
                        metrics::stt_first_result(name, since.elapsed());
                    }
                    if is_final {
                        let end = live.origin
                            + ((start + duration) * f64::from(STT_SAMPLE_RATE)).round() as u64;
                        self.turn.finalize_upto(end);
                    }
                }
                // The answer to a Finalize is passed on even without words:
                // it tells the endpointer the recognizer has caught up.
                if !transcript.is_empty() || (is_final && from_finalize) {
                    let event = if is_final {
                        SttEvent::Final {
                            provider: name,
                            text: transcript,
                            speech_final,
                            from_finalize,
                        }
                    } else {
                        SttEvent::Interim {
                            provider: name,
                            text: transcript,
                        }
                    };
                    self.emit(event).await;
                }
                if from_finalize {
                    self.finalize_pending = false;
                    // Answered: the next turn's end asks again.
                    if let Some(live) = self.live.as_mut() {
                        live.finalize_sent = false;
                    }
                }
                if speech_final || from_finalize {
                    if let Some(live) = self.live.as_mut() {
                        live.awaiting = true;
                        live.awaiting_since = None;
                    }
                    self.turn_ended();
                }
            }
            DeepgramMessage::UtteranceEnd { .. } => {
                self.emit(SttEvent::UtteranceEnd { provider: name }).await;
            }
            DeepgramMessage::SpeechStarted { .. } => {
                self.emit(SttEvent::SpeechStarted { provider: name }).await;
            }
            DeepgramMessage::Metadata | DeepgramMessage::Other => {}
        }
    }

    async fn hang_up(&mut self) {
        let _ = self.send_pending().await;
        let Some(mut live) = self.live.take() else {
            return;
        };
        if live.stream.close_stream().await.is_err() {
            return;
        }
        let name = self.name(self.current);
        let drain = tokio::time::sleep(self.chain.settings().hang_up_drain);
        tokio::pin!(drain);
        loop {
            tokio::select! {
                () = &mut drain => return,
                message = live.stream.next_message() => match message {
                    Ok(Some(DeepgramMessage::Results { transcript, is_final: true, speech_final, from_finalize, .. }))
                        if !transcript.is_empty() =>
                    {
                        self.emit(SttEvent::Final { provider: name, text: transcript, speech_final, from_finalize }).await;
                    }
                    Ok(Some(_)) => {}
                    Ok(None) | Err(_) => return,
                },
            }
        }
    }
}
