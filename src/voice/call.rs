//! One call's voice: the task between a room's audio and a session's text.
//!
//! In: the caller's Opus packets (→ [`Listener`] → recognizer and turn
//! taking), the caller's typed text (`lk.chat`), and the session's events
//! (lines to say, its state). Out: paced Opus packets and captions for the
//! room, the agent's state as the caller should see it, and caller turns
//! and interruptions for the session.
//!
//! Every wait is bounded by the next deadline of one of the pieces (the
//! 20 ms listening tick, the outbox, the endpointer, the barge-in detector);
//! nothing here blocks on a provider: voices speak in tasks of their own,
//! read only as fast as the outbox plays (at most `ahead` of audio queued).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::media::Packetizer;
use crate::media::jitter::{JitterConfig, JitterStats};
use crate::media::opus::EncoderConfig;
use crate::media::vad::VadConfig;
use crate::recovery::{LadderTiming, SpeechKind};
use crate::session::{AgentEvent, AgentState, CallerEvent, TransportIo};
use crate::speech::PhraseCache;
use crate::speech::stt::{SttChain, SttEvent, SttHandle};
use crate::speech::text;
use crate::speech::tts::{TtsChain, TtsChainError, TtsEvent, TtsReport};

use super::endpoint::{EndpointSettings, Endpointer};
use super::interrupt::{InterruptSettings, Interruptions, Verdict};
use super::listener::{Activity, InboundPacket, Listener, ListenerError, TICK};
use super::outbox::{FRAME, Outbox};
use super::speaking::{CaptionUpdate, Line, Lines};

/// How a call listens and speaks.
#[derive(Debug, Clone, Copy)]
pub struct VoiceSettings {
    pub endpoint: EndpointSettings,
    pub interrupt: InterruptSettings,
    pub vad: VadConfig,
    pub jitter: JitterConfig,
    pub encoder: EncoderConfig,
    /// Synthesized speech queued ahead of what plays, at most.
    pub ahead: Duration,
    /// Audio from before speech was detected, sent to the recognizer with it.
    pub preroll: Duration,
}

impl Default for VoiceSettings {
    fn default() -> Self {
        VoiceSettings {
            endpoint: EndpointSettings::default(),
            interrupt: InterruptSettings::default(),
            vad: VadConfig::default(),
            jitter: JitterConfig::default(),
            encoder: EncoderConfig::default(),
            ahead: Duration::from_secs(1),
            preroll: Duration::from_millis(300),
        }
    }
}

/// What every call of a worker shares to hear and speak.
#[derive(Clone)]
pub struct Voices {
    /// `None`: no recognizer; the caller's words come from `lk.chat`.
    pub stt: Option<Arc<SttChain>>,
    pub tts: Arc<TtsChain>,
    pub phrases: Arc<PhraseCache>,
    /// Said from the cache, once per call, when no voice can speak a line.
    pub voice_trouble: Arc<[String]>,
    /// Said from the cache, once per call, when the caller speaks and there
    /// is no recognizer to hear them.
    pub cannot_hear: Arc<[String]>,
    /// Said from the cache when a tool call starts and no voice can speak,
    /// and when the caller has waited `waiting.filler_after` on a slow
    /// voice: the caller hears at once that the agent is on it (neutral
    /// lines that promise nothing).
    pub fillers: Arc<[String]>,
    /// Said from the cache, every `waiting.filler_repeat`, while the wait
    /// on a voice goes on (neutral too).
    pub still_working: Arc<[String]>,
    /// The ladder of a wait on a voice (the speech profile's fillers).
    pub waiting: LadderTiming,
}

/// The ladder of a wait on a voice when the configuration names none (the
/// shipped `voice` profile's).
pub const DEFAULT_WAITING: LadderTiming = LadderTiming {
    filler_after: Duration::from_millis(600),
    filler_repeat: Duration::from_millis(1500),
    filler_max: 2,
    budget: Duration::from_millis(3200),
};

/// What the pipeline hands the room.
#[derive(Debug, Clone, PartialEq)]
pub enum ToRoom {
    /// One 20 ms Opus packet, due now.
    Audio(Bytes),
    Caption(CaptionUpdate),
    /// The agent's state as the caller should see it (`speaking` while its
    /// audio plays).
    State(AgentState),
    /// What the session said, as it said it: each line (before it plays),
    /// its state, tool calls, the end of the call.
    Event(AgentEvent),
}

/// One call's channels.
pub struct CallLinks {
    pub caller_audio: mpsc::Receiver<InboundPacket>,
    pub caller_text: mpsc::Receiver<String>,
    pub room: mpsc::Sender<ToRoom>,
    pub session: TransportIo,
}

/// Listening ticks a late wake-up runs at most (as many as the caller's
/// packets the room queues for the call): longer stalls skip ahead.
const CATCH_UP_TICKS: u32 = 64;

/// What happened on a call, for metrics, reports and tests.
#[derive(Debug, Clone, Default)]
pub struct VoiceReport {
    pub turns: u32,
    /// From the end of the caller's speech to the agent's first packet after it.
    pub mouth_to_ear: Vec<Duration>,
    pub interruptions: u32,
    pub false_interruptions: u32,
    pub underruns: u64,
    pub voice_fallbacks: u32,
    pub unspoken_lines: u32,
    pub recognizer_failovers: u32,
    /// The caller's audio as the jitter buffer took it: packets lost on the
    /// way, concealed, and dropped to cut delay or for want of room.
    pub caller_audio: JitterStats,
}

#[derive(Debug, thiserror::Error)]
pub enum VoiceError {
    #[error("the call's audio could not be set up")]
    Listener(#[from] ListenerError),
    #[error("the agent's speech encoder could not be set up")]
    Encoder(#[from] crate::media::EncodeError),
}

/// A line a voice is speaking, read as fast as the outbox plays.
struct Synthesis {
    line: u64,
    interruptible: bool,
    /// The sentence whose segment is open, if any.
    sentence: Option<usize>,
    events: mpsc::Receiver<TtsEvent>,
    task: JoinHandle<Result<TtsReport, TtsChainError>>,
    /// Since when nothing has played while this line waits on its voice.
    silent_since: Option<Instant>,
    /// Fillers said while waiting on it.
    fillers: u32,
}

/// Run one call until the session has ended and its last words have played.
pub async fn run(
    settings: VoiceSettings,
    voices: Voices,
    links: CallLinks,
    seed: u64,
) -> Result<VoiceReport, VoiceError> {
    let call = Call::new(settings, voices, links, seed)?;
    Ok(Box::pin(call.drive()).await)
}

struct Call {
    settings: VoiceSettings,
    voices: Voices,
    links: CallLinks,
    listener: Listener,
    stt: Option<SttHandle>,
    stt_events: Option<mpsc::Receiver<SttEvent>>,
    /// Sending the caller's audio to the recognizer (speech in progress).
    streaming: bool,
    preroll: std::collections::VecDeque<[i16; 320]>,
    endpointer: Endpointer,
    interrupts: Interruptions,
    outbox: Outbox,
    packetizer: Packetizer,
    lines: Lines,
    synthesis: Option<Synthesis>,
    next_line: u64,
    next_tick: Instant,
    session_state: AgentState,
    shown_state: Option<AgentState>,
    awaiting_first_audio: Option<Instant>,
    said_voice_trouble: bool,
    said_cannot_hear: bool,
    /// The caller has taken a turn: a wait on a voice is now their wait.
    caller_spoke: bool,
    session_open: bool,
    rng: u64,
    captions: Vec<CaptionUpdate>,
    report: VoiceReport,
}

impl Call {
    fn new(
        settings: VoiceSettings,
        voices: Voices,
        links: CallLinks,
        seed: u64,
    ) -> Result<Call, VoiceError> {
        let (stt, stt_events) = match &voices.stt {
            Some(chain) => {
                let (handle, events) = chain.start();
                (Some(handle), Some(events))
            }
            None => (None, None),
        };
        Ok(Call {
            listener: Listener::new(settings.jitter, settings.vad)?,
            packetizer: Packetizer::new(settings.encoder)?,
            endpointer: Endpointer::new(settings.endpoint),
            interrupts: Interruptions::new(settings.interrupt),
            preroll: std::collections::VecDeque::with_capacity(preroll_frames(&settings)),
            settings,
            voices,
            links,
            stt,
            stt_events,
            streaming: false,
            outbox: Outbox::new(),
            lines: Lines::default(),
            synthesis: None,
            next_line: 0,
            next_tick: Instant::now(),
            session_state: AgentState::Initializing,
            shown_state: None,
            awaiting_first_audio: None,
            said_voice_trouble: false,
            said_cannot_hear: false,
            caller_spoke: false,
            session_open: true,
            rng: seed | 1,
            captions: Vec::new(),
            report: VoiceReport::default(),
        })
    }

    async fn drive(mut self) -> VoiceReport {
        let mut audio_open = true;
        let mut text_open = true;
        loop {
            if !self.session_open && self.lines.is_idle() && !self.outbox.is_speaking() {
                break;
            }
            let now = Instant::now();
            let deadline = [
                Some(self.next_tick),
                self.outbox.next_deadline(now),
                self.endpointer.next_deadline(),
                self.interrupts.next_deadline(),
                self.voice_filler_due(),
            ]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(self.next_tick);
            let reading = self.outbox.queued_frames() < self.ahead_frames();
            tokio::select! {
                biased;
                () = tokio::time::sleep_until(deadline) => self.on_time(Instant::now()).await,
                event = self.links.session.from_session.recv(), if self.session_open => {
                    match event {
                        Some(event) => self.on_session(event).await,
                        None => self.session_open = false,
                    }
                }
                packet = self.links.caller_audio.recv(), if audio_open => match packet {
                    Some(packet) => {
                        let now = Instant::now();
                        self.listener.push(&packet, now);
                        // Packets can be seen before a timer that is long
                        // overdue: listen first, or the buffer overflows.
                        if self.next_tick + TICK <= now {
                            self.listen_until(now).await;
                        }
                    }
                    None => audio_open = false,
                },
                typed = self.links.caller_text.recv(), if text_open => match typed {
                    Some(text) => self.on_typed(text).await,
                    None => text_open = false,
                },
                event = next_stt(&mut self.stt_events) => match event {
                    Some(event) => self.on_stt(event, Instant::now()).await,
                    None => self.stt_events = None,
                },
                event = next_tts(&mut self.synthesis), if reading => self.on_tts(event).await,
            }
            self.track_voice_wait(Instant::now());
            self.show_state().await;
        }
        if let Some(stt) = self.stt.take() {
            stt.hang_up().await;
        }
        self.report.underruns = self.outbox.underruns();
        self.report.caller_audio = self.listener.stats();
        self.report
    }

    /// Runs the listening ticks due by `now`. A late wake-up (a starved
    /// worker) runs every one it missed, taking in the caller's packets that
    /// waited meanwhile: that audio is late, not lost.
    async fn listen_until(&mut self, now: Instant) {
        let mut ticks = 0;
        while self.next_tick <= now && ticks < CATCH_UP_TICKS {
            self.take_waiting_audio();
            self.listen(self.next_tick).await;
            self.next_tick += TICK;
            ticks += 1;
        }
        if ticks > 1 {
            tracing::debug!(
                ticks,
                stats = ?self.listener.stats(),
                "listening caught up after a late wake-up"
            );
        }
        if self.next_tick <= now {
            self.next_tick = now + TICK;
        }
    }

    /// The caller's packets already queued, until the jitter buffer holds
    /// the next tick's: after a stall it is fed one tick at a time, as the
    /// packets would have come, so it neither runs out of room nor trims
    /// audio for a delay that is only the stall's.
    fn take_waiting_audio(&mut self) {
        while self.listener.buffered_frames() < 2 {
            match self.links.caller_audio.try_recv() {
                Ok(packet) => {
                    self.listener.push(&packet, Instant::now());
                }
                Err(_) => break,
            }
        }
    }

    fn ahead_frames(&self) -> u32 {
        (self.settings.ahead.as_millis() / FRAME.as_millis()).max(1) as u32
    }

    /// Everything due at `now`: the listening tick, the next packet out,
    /// turn ends and barge-in verdicts.
    async fn on_time(&mut self, now: Instant) {
        self.listen_until(now).await;
        if let Some(packet) = self.outbox.next_packet(now) {
            if let Some(since) = self.awaiting_first_audio.take() {
                let delay = now.saturating_duration_since(since);
                self.report.mouth_to_ear.push(delay);
                metrics::histogram!("voxguard_mouth_to_ear_seconds").record(delay.as_secs_f64());
            }
            self.lines.played(packet.segment, &mut self.captions);
            let _ = self.links.room.send(ToRoom::Audio(packet.payload)).await;
        }
        while let Some(event) = self.outbox.pop_event() {
            if let crate::voice::outbox::OutboxEvent::Underrun { .. } = event {
                metrics::counter!("voxguard_playout_underruns_total").increment(1);
            }
            self.lines.on_event(event, &mut self.captions);
        }
        self.flush_captions().await;
        if let Some(turn) = self.endpointer.poll(now) {
            self.report.turns += 1;
            self.caller_spoke = true;
            self.awaiting_first_audio = Some(turn.speech_ended);
            self.tell_session(CallerEvent::User { text: turn.text })
                .await;
        }
        if self.voice_filler_due().is_some_and(|due| due <= now) {
            self.say_voice_filler().await;
        }
        if let Some(verdict) = self.interrupts.poll(now) {
            match verdict {
                Verdict::Pause => self.outbox.pause(),
                Verdict::Resume => {
                    self.report.false_interruptions += 1;
                    self.outbox.resume();
                }
                Verdict::Interrupt => self.cut().await,
            }
        }
        self.start_next_line().await;
    }

    /// One 20 ms tick of the caller's audio.
    async fn listen(&mut self, at: Instant) {
        let heard = match self.listener.tick(at) {
            Ok(heard) => heard,
            Err(error) => {
                tracing::warn!(%error, "caller audio could not be processed");
                return;
            }
        };
        let mut frame = [0i16; 320];
        frame.copy_from_slice(&heard.frame[..320]);
        let activity = heard.activity;
        if let Some(activity) = activity {
            tracing::debug!(?activity, "caller voice activity");
        }
        if self.preroll.len() == preroll_frames(&self.settings) {
            self.preroll.pop_front();
        }
        self.preroll.push_back(frame);
        match activity {
            Some(Activity::Started(at)) => {
                self.endpointer.speech_started(at);
                self.interrupts.caller_started(at);
                if let Some(stt) = &self.stt {
                    for frame in &self.preroll {
                        let _ = stt.push_samples(frame);
                    }
                    self.streaming = true;
                } else {
                    self.streaming = false;
                }
            }
            Some(Activity::Stopped(at)) => {
                self.endpointer.speech_ended(at);
                self.interrupts.caller_stopped(at);
                if let Some(stt) = &self.stt {
                    let _ = stt.push_samples(&frame);
                    let _ = stt.end_turn().await;
                } else {
                    self.say_once_cannot_hear().await;
                }
                self.streaming = false;
            }
            None if self.streaming => {
                if let Some(stt) = &self.stt {
                    let pushed = stt.push_samples(&frame);
                    tracing::trace!(
                        ?pushed,
                        level = crate::media::level_dbfs(&frame),
                        "frame to the recognizer"
                    );
                }
            }
            None => {}
        }
    }

    async fn on_stt(&mut self, event: SttEvent, now: Instant) {
        tracing::debug!(?event, "recognizer");
        match event {
            SttEvent::Interim { text, .. } => {
                if !text.trim().is_empty() {
                    self.endpointer.interim_words(&text, now);
                    self.interrupts.words_heard(now);
                }
            }
            SttEvent::Final { text, .. } => {
                if !text.trim().is_empty() {
                    self.interrupts.words_heard(now);
                }
                self.endpointer.final_words(&text, now);
            }
            SttEvent::Failover { from, to, .. } => {
                self.report.recognizer_failovers += 1;
                tracing::warn!(from, to, "recognizer failed over");
            }
            SttEvent::Unavailable { .. } => {
                tracing::warn!("no recognizer can hear the caller");
            }
            SttEvent::SpeechStarted { .. }
            | SttEvent::UtteranceEnd { .. }
            | SttEvent::Recovered { .. } => {}
        }
    }

    async fn on_session(&mut self, event: AgentEvent) {
        match event {
            AgentEvent::Speech {
                text,
                kind,
                interruptible,
            } => {
                // Observers learn what the line is for (a filler, a failure
                // phrase) before it plays; its words go out as captions as
                // they are heard.
                let said = AgentEvent::Speech {
                    text: text.clone(),
                    kind,
                    interruptible,
                };
                let _ = self.links.room.send(ToRoom::Event(said)).await;
                let line = Line {
                    number: self.next_line,
                    text,
                    kind,
                    interruptible,
                    from_session: true,
                };
                self.next_line += 1;
                if !line.is_filler() {
                    // The session has its next words: a filler still
                    // waiting to play would only delay them.
                    self.withdraw_fillers().await;
                }
                self.lines.push(line);
                self.start_next_line().await;
            }
            AgentEvent::State { agent_state, stage } => {
                let _ = self
                    .links
                    .room
                    .send(ToRoom::Event(AgentEvent::State { stage, agent_state }))
                    .await;
                self.session_state = agent_state;
            }
            AgentEvent::SessionEnded { .. } => {
                self.session_open = false;
                let _ = self.links.room.send(ToRoom::Event(event)).await;
            }
            AgentEvent::ToolStarted(_) if self.said_voice_trouble => {
                // No voice: the answer will come as text, but the caller
                // hears now that something is happening.
                let fillers = self.voices.fillers.clone();
                self.say_cached(&fillers, SpeechKind::Filler).await;
                let _ = self.links.room.send(ToRoom::Event(event)).await;
            }
            AgentEvent::ToolFinished(_) => {
                // Fillers for the tool that have not started are stale.
                self.withdraw_fillers().await;
                let _ = self.links.room.send(ToRoom::Event(event)).await;
            }
            other => {
                let _ = self.links.room.send(ToRoom::Event(other)).await;
            }
        }
    }

    /// Typed words from the caller: they cut in like speech would.
    async fn on_typed(&mut self, text: String) {
        let text = text.trim().to_string();
        if text.is_empty() {
            return;
        }
        self.caller_spoke = true;
        if self.outbox.is_speaking() || !self.lines.is_idle() {
            self.cut().await;
        }
        self.tell_session(CallerEvent::User { text }).await;
    }

    /// The caller interrupted: stop now, tell the session what they heard.
    async fn cut(&mut self) {
        let played = self.outbox.cut();
        if let Some(synthesis) = self.synthesis.take() {
            synthesis.task.abort();
        }
        self.packetizer.clear();
        let heard = self.lines.cut(&played, &mut self.captions);
        self.flush_captions().await;
        self.report.interruptions += 1;
        self.tell_session(CallerEvent::Interrupt { heard }).await;
    }

    /// Start the next waiting line once the one before it is fully queued.
    /// A cached filler does not wait for a voice: while the caller hears
    /// nothing, it plays ahead of lines whose voice has not answered yet.
    async fn start_next_line(&mut self) {
        while self.synthesis.is_none() {
            if self.outbox.is_speaking() && self.lines.filler_next() {
                // A filler waits for quiet, not in the outbox's queue: by
                // the time the caller would hear it, its wait may be over.
                return;
            }
            let Some(line) = self.lines.next_waiting() else {
                return;
            };
            if let Some(cached) = self.voices.phrases.lookup(&line.text) {
                self.play_cached(&line, &cached);
                continue;
            }
            let sentences = match text::sentences(&line.text) {
                Ok(sentences) => sentences,
                Err(error) => {
                    tracing::warn!(%error, "a line could not be spoken");
                    self.lines.start(&line, vec![line.text.clone()]);
                    self.lines.unspoken(line.number, 0, &mut self.captions);
                    self.report.unspoken_lines += 1;
                    continue;
                }
            };
            self.lines.start(&line, sentences);
            let (events_tx, events) = mpsc::channel(8);
            let tts = self.voices.tts.clone();
            let text = line.text.clone();
            let task = tokio::spawn(async move { tts.speak(&text, &events_tx).await });
            self.synthesis = Some(Synthesis {
                line: line.number,
                interruptible: line.interruptible && line.kind != SpeechKind::Handoff,
                sentence: None,
                events,
                task,
                silent_since: None,
                fillers: 0,
            });
        }
        if !self.outbox.is_speaking() {
            let phrases = &self.voices.phrases;
            if let Some(line) = self
                .lines
                .take_filler(|l| phrases.lookup(&l.text).is_some())
                && let Some(cached) = self.voices.phrases.lookup(&line.text)
            {
                self.play_cached(&line, &cached);
            }
        }
    }

    fn play_cached(&mut self, line: &Line, cached: &crate::speech::cache::CachedPhrase) {
        self.lines.start(line, vec![line.text.clone()]);
        let packets = cached.packets.len() as u32;
        let segment = self.lines.open_segment(line.number, 0, Some(packets));
        self.outbox
            .push_shared(segment, cached.packets.clone(), line.interruptible);
        self.lines.all_queued(line.number);
    }

    async fn tell_session(&mut self, event: CallerEvent) {
        let _ = self.links.session.to_session.send(event).await;
    }

    /// Fillers not yet started are withdrawn; the session learns that the
    /// caller never heard its own.
    async fn withdraw_fillers(&mut self) {
        let withdrawn = self.lines.withdraw_fillers();
        let lines: Vec<String> = withdrawn
            .into_iter()
            .filter(|line| line.from_session)
            .map(|line| line.text)
            .collect();
        if !lines.is_empty() {
            tracing::debug!(?lines, "fillers withdrawn before they played");
            self.tell_session(CallerEvent::Unplayed { lines }).await;
        }
    }

    /// Whether the caller is waiting on a voice with nothing playing.
    fn track_voice_wait(&mut self, now: Instant) {
        let silent = !self.outbox.is_speaking();
        if let Some(synthesis) = &mut self.synthesis {
            if silent {
                synthesis.silent_since.get_or_insert(now);
            } else {
                synthesis.silent_since = None;
            }
        }
    }

    /// When the caller, waiting on a slow voice, is due a filler.
    fn voice_filler_due(&self) -> Option<Instant> {
        let synthesis = self.synthesis.as_ref()?;
        let since = synthesis.silent_since?;
        let ladder = self.voices.waiting;
        if !self.caller_spoke || synthesis.fillers >= ladder.filler_max {
            return None;
        }
        Some(
            since
                + if synthesis.fillers == 0 {
                    ladder.filler_after
                } else {
                    ladder.filler_repeat
                },
        )
    }

    async fn say_voice_filler(&mut self) {
        let Some(synthesis) = &mut self.synthesis else {
            return;
        };
        let (lines, kind) = if synthesis.fillers == 0 {
            (self.voices.fillers.clone(), SpeechKind::Filler)
        } else {
            (self.voices.still_working.clone(), SpeechKind::StillWorking)
        };
        synthesis.fillers += 1;
        synthesis.silent_since = None;
        tracing::debug!(
            line = synthesis.line,
            "a voice is slow: a filler from the cache"
        );
        self.say_cached(&lines, kind).await;
    }

    async fn on_tts(&mut self, event: Option<TtsEvent>) {
        let Some(synthesis) = &mut self.synthesis else {
            return;
        };
        let line = synthesis.line;
        match event {
            Some(TtsEvent::Audio(chunk)) => {
                if synthesis.sentence != Some(chunk.sentence) {
                    if let Some(previous) = synthesis.sentence {
                        finish_segment(
                            &mut self.packetizer,
                            &mut self.outbox,
                            &mut self.lines,
                            line,
                            previous,
                        );
                    }
                    let segment = self.lines.open_segment(line, chunk.sentence, None);
                    self.outbox.open(segment, synthesis.interruptible);
                    synthesis.sentence = Some(chunk.sentence);
                }
                let segment = self.lines.segment_of(line, chunk.sentence);
                if let Some(segment) = segment {
                    let (outbox, lines) = (&mut self.outbox, &mut self.lines);
                    let pushed = self.packetizer.push(
                        chunk.chunk.sample_rate,
                        &chunk.chunk.samples,
                        &mut |packet| {
                            if outbox.append(segment, packet) {
                                lines.queued(segment);
                            }
                        },
                    );
                    if let Err(error) = pushed {
                        tracing::warn!(%error, "speech could not be encoded");
                    }
                }
            }
            Some(TtsEvent::SentenceRestarted { sentence, voice }) => {
                tracing::warn!(
                    sentence,
                    voice,
                    "a voice failed mid-sentence; the next one restarts it"
                );
                if synthesis.sentence == Some(sentence) {
                    finish_segment(
                        &mut self.packetizer,
                        &mut self.outbox,
                        &mut self.lines,
                        line,
                        sentence,
                    );
                    synthesis.sentence = None;
                }
            }
            Some(TtsEvent::Fallback { from, to, .. }) => {
                self.report.voice_fallbacks += 1;
                tracing::warn!(from, to, "voice fell back");
            }
            None => {
                let Some(synthesis) = self.synthesis.take() else {
                    return;
                };
                if let Some(sentence) = synthesis.sentence {
                    finish_segment(
                        &mut self.packetizer,
                        &mut self.outbox,
                        &mut self.lines,
                        line,
                        sentence,
                    );
                }
                let spoken_until = synthesis.sentence.map_or(0, |s| s + 1);
                match synthesis.task.await {
                    Ok(Ok(_report)) => self.lines.all_queued(line),
                    Ok(Err(error)) => {
                        tracing::warn!(%error, "no voice could speak a line; it goes out as text");
                        self.report.unspoken_lines += 1;
                        self.lines.unspoken(line, spoken_until, &mut self.captions);
                        self.say_once_voice_trouble().await;
                    }
                    Err(_) => self.lines.all_queued(line),
                }
                self.flush_captions().await;
                self.start_next_line().await;
            }
        }
    }

    async fn say_once_voice_trouble(&mut self) {
        if self.said_voice_trouble {
            return;
        }
        self.said_voice_trouble = true;
        let lines = self.voices.voice_trouble.clone();
        self.say_cached(&lines, SpeechKind::Failure).await;
    }

    async fn say_once_cannot_hear(&mut self) {
        if self.said_cannot_hear {
            return;
        }
        self.said_cannot_hear = true;
        let lines = self.voices.cannot_hear.clone();
        self.say_cached(&lines, SpeechKind::Failure).await;
    }

    /// Queue one of `lines` that is in the phrase cache, if any is.
    async fn say_cached(&mut self, lines: &[String], kind: SpeechKind) {
        let cached: Vec<&String> = lines
            .iter()
            .filter(|l| self.voices.phrases.lookup(l).is_some())
            .collect();
        if cached.is_empty() {
            return;
        }
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let text = cached[(self.rng % cached.len() as u64) as usize].clone();
        let number = self.next_line;
        self.next_line += 1;
        self.lines.push(Line {
            number,
            text,
            kind,
            interruptible: true,
            from_session: false,
        });
        self.start_next_line().await;
    }

    async fn flush_captions(&mut self) {
        for update in self.captions.drain(..) {
            let _ = self.links.room.send(ToRoom::Caption(update)).await;
        }
    }

    /// `speaking` while the agent's audio plays; otherwise what the session says.
    async fn show_state(&mut self) {
        self.interrupts
            .agent_speaking(self.outbox.is_speaking(), self.outbox.interruptible());
        let state = if self.outbox.is_speaking() && !self.outbox.is_paused() {
            AgentState::Speaking
        } else if self.session_state == AgentState::Listening && !self.lines.is_idle() {
            // The session is done but its words are still on their way to
            // audio: the caller should not take the turn yet.
            AgentState::Thinking
        } else {
            self.session_state
        };
        if self.shown_state != Some(state) {
            self.shown_state = Some(state);
            let _ = self.links.room.send(ToRoom::State(state)).await;
        }
    }
}

/// The end of a sentence's audio: the packetizer's tail joins its segment.
fn finish_segment(
    packetizer: &mut Packetizer,
    outbox: &mut Outbox,
    lines: &mut Lines,
    line: u64,
    sentence: usize,
) {
    let Some(segment) = lines.segment_of(line, sentence) else {
        return;
    };
    let finished = packetizer.finish(&mut |packet| {
        if outbox.append(segment, packet) {
            lines.queued(segment);
        }
    });
    if let Err(error) = finished {
        tracing::warn!(%error, "speech could not be encoded");
    }
    outbox.close(segment);
    lines.complete(segment);
}

fn preroll_frames(settings: &VoiceSettings) -> usize {
    (settings.preroll.as_millis() / TICK.as_millis()).max(1) as usize
}

async fn next_stt(events: &mut Option<mpsc::Receiver<SttEvent>>) -> Option<SttEvent> {
    match events {
        Some(events) => events.recv().await,
        None => std::future::pending().await,
    }
}

async fn next_tts(synthesis: &mut Option<Synthesis>) -> Option<TtsEvent> {
    match synthesis {
        Some(synthesis) => synthesis.events.recv().await,
        None => std::future::pending().await,
    }
}
