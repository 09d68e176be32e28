//! Callers that speak (`simulate --media audio`): each is a WebRTC
//! participant of the LiveKit stand-in that says its lines as Opus audio,
//! waits for the agent to listen (`lk.agent.state`) before each line, talks
//! over the agent when its plan says so, and records what it received: the
//! agent's audible audio as time spans and every caption. Times are Unix
//! microseconds, so the worker's side (which knows when each tool call
//! started) can line them up with what the caller heard even when the
//! callers run in the `voxguard sim-peer` child process.
//!
//! The lines are spoken by espeak-ng, rendered once per run, and registered
//! with the speech simulator, whose recognizer answers with their words.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::media::opus::EncoderConfig;
use crate::media::packetize;
use crate::media::wav::{self, Pcm};
use crate::room::{AGENT_STATE_ATTRIBUTE, RoomEvent};
use crate::testbed::livekit::{LoopbackHandle, Recording, ScriptedCaller};
use crate::testbed::speech::SpeechSimulator;

/// Agent packets closer than this belong to one stretch of audio: a lost
/// packet or two is not silence.
const SPAN_GAP: Duration = Duration::from_millis(100);
/// How long a caller waits for the agent to take a line and answer it
/// before it moves on (the line is then likely lost).
const TURN_LIMIT: Duration = Duration::from_secs(25);
/// A spoken line the agent did not take within this (it stayed
/// listening) is typed on `lk.chat` instead, as a person would once the
/// agent says it cannot hear them.
const UNHEARD_AFTER: Duration = Duration::from_secs(4);
/// How long after the agent starts answering a caller talks over it.
const BARGE_AFTER: Duration = Duration::from_millis(400);
/// The whole call, at most.
pub const VOICE_CALL_LIMIT: Duration = Duration::from_secs(180);
/// What a false interruption sounds like: a hum, no words.
const HUM: &str = "mmmmm hmmmm";
/// The speaking rate of the callers' voice (words per minute).
const CALLER_WPM: &str = "170";

/// Every line's audio, rendered once per run.
#[derive(Clone, Default)]
pub struct SpokenLines {
    lines: HashMap<String, Arc<[Bytes]>>,
    hum: Option<Arc<[Bytes]>>,
}

impl SpokenLines {
    /// Speaks each of `texts` with espeak-ng, registers it with `speech`'s
    /// recognizer (the hum with no words) and keeps its Opus packets.
    pub async fn render(texts: &[String], speech: &SpeechSimulator) -> Result<SpokenLines, String> {
        let mut spoken = SpokenLines::default();
        for text in texts {
            if spoken.lines.contains_key(text) {
                continue;
            }
            let pcm = speak(text).await?;
            speech.register_utterance(text, &pcm);
            spoken.lines.insert(text.clone(), packets_of(&pcm)?);
        }
        let hum = speak(HUM).await?;
        speech.register_utterance("", &hum);
        spoken.hum = Some(packets_of(&hum)?);
        Ok(spoken)
    }

    fn line(&self, text: &str) -> Result<Arc<[Bytes]>, String> {
        self.lines
            .get(text)
            .cloned()
            .ok_or_else(|| format!("no audio was rendered for the line {text:?}"))
    }
}

/// `text` as espeak-ng says it (22 050 Hz mono).
async fn speak(text: &str) -> Result<Pcm, String> {
    let output = tokio::process::Command::new("espeak-ng")
        .args(["-v", "en-us", "-s", CALLER_WPM, "--stdout", text])
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| {
            format!(
                "the callers' voice needs espeak-ng ({e}); run scripts/install-system-deps.sh \
                 (apt-get install espeak-ng)"
            )
        })?;
    if !output.status.success() {
        return Err(format!(
            "espeak-ng could not say {text:?}: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    wav::parse(&output.stdout).map_err(|e| format!("espeak-ng's audio for {text:?}: {e}"))
}

/// `pcm` in 20 ms Opus packets.
fn packets_of(pcm: &Pcm) -> Result<Arc<[Bytes]>, String> {
    packetize(EncoderConfig::default(), pcm.sample_rate, &pcm.samples)
        .map(Arc::from)
        .map_err(|e| format!("the callers' audio could not be encoded: {e}"))
}

/// How a caller talks over the agent, once in its call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BargeIn {
    /// Says line `line` while the agent is still answering the line before.
    Real { line: usize },
    /// Hums over the agent's answer to the line before `line` (no words:
    /// the agent should carry on), then says `line` as usual.
    False { line: usize },
}

/// One spoken call.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VoiceCallPlan {
    pub room: String,
    pub identity: String,
    pub lines: Vec<String>,
    /// Pause between the agent listening and the caller speaking.
    pub think_ms: u64,
    pub barge_in: Option<BargeIn>,
}

/// A line the caller said.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SaidLine {
    pub text: String,
    pub start_us: u64,
    pub end_us: u64,
    /// When the agent was seen listening again after it (its answer was over).
    pub answered_us: Option<u64>,
    /// Said over the agent's speech.
    pub over_agent: bool,
    /// The agent did not take it: the caller typed it on `lk.chat`.
    pub typed: bool,
}

/// A time the caller talked over the agent.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BargeInRecord {
    pub real: bool,
    pub start_us: u64,
}

/// Everything one spoken call's caller observed.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct VoiceCallRecord {
    pub said: Vec<SaidLine>,
    /// Stretches of audible agent audio, `[start, end]` in Unix µs.
    pub audible: Vec<[u64; 2]>,
    pub barge_ins: Vec<BargeInRecord>,
    /// Completed captions, in order of arrival.
    pub captions: Vec<String>,
    pub packets: u64,
    pub undecodable: u32,
    /// The agent's audio was first heard (the greeting).
    pub greeted_us: Option<u64>,
    pub dispatched_us: u64,
    pub timed_out: bool,
    pub error: Option<String>,
}

/// Instants of this process as Unix microseconds.
#[derive(Clone, Copy)]
struct Clock {
    instant: Instant,
    unix_us: u64,
}

impl Clock {
    fn now() -> Clock {
        Clock {
            instant: Instant::now(),
            unix_us: unix_us(),
        }
    }

    fn us(&self, at: Instant) -> u64 {
        match at.checked_duration_since(self.instant) {
            Some(after) => self.unix_us + after.as_micros() as u64,
            None => self
                .unix_us
                .saturating_sub(self.instant.duration_since(at).as_micros() as u64),
        }
    }
}

/// Now, in Unix microseconds.
pub fn unix_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// The state the caller sees once the agent has left the room.
const GONE: &str = "gone";

/// The agent's state as the caller sees it, with a count of changes.
type AgentStates = watch::Receiver<(u64, String)>;

/// Joins `plan.room`, has a job dispatched for it, talks, leaves, and
/// returns what the caller observed. Never fails: what went wrong is in
/// the record.
pub async fn call(
    server: &LoopbackHandle,
    lines: &SpokenLines,
    plan: &VoiceCallPlan,
) -> VoiceCallRecord {
    let clock = Clock::now();
    let mut record = VoiceCallRecord::default();
    let caller = match ScriptedCaller::join(server, &plan.room, &plan.identity).await {
        Ok(caller) => caller,
        Err(error) => {
            record.error = Some(format!("the caller could not join: {error}"));
            return record;
        }
    };
    let states = watch_agent_state(&caller);
    let outcome = tokio::time::timeout(
        VOICE_CALL_LIMIT,
        talk(server, &caller, states, lines, plan, clock, &mut record),
    )
    .await;
    match outcome {
        Err(_) => record.timed_out = true,
        Ok(Err(error)) => record.error = Some(error),
        Ok(Ok(())) => {}
    }
    caller.leave().await;
    finish(&caller.recording(), clock, &mut record);
    record
}

async fn talk(
    server: &LoopbackHandle,
    caller: &ScriptedCaller,
    mut states: AgentStates,
    lines: &SpokenLines,
    plan: &VoiceCallPlan,
    clock: Clock,
    record: &mut VoiceCallRecord,
) -> Result<(), String> {
    if !caller.microphone_ready(Duration::from_secs(10)).await {
        return Err("the caller's microphone was not accepted".into());
    }
    record.dispatched_us = unix_us();
    server
        .dispatch_job(&plan.room, &plan.identity)
        .await
        .map_err(|e| format!("no job for the room: {e}"))?;
    // The greeting: wait for the agent to speak, then to listen.
    let dispatched = Instant::now();
    let deadline = dispatched + TURN_LIMIT;
    while !caller.heard_since(dispatched) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    wait_state(&mut states, "speaking").await;
    wait_state(&mut states, "listening").await;
    let mut mark = Mark::now(&states, caller);
    let think = Duration::from_millis(plan.think_ms);
    for (index, text) in plan.lines.iter().enumerate() {
        let audio = lines.line(text)?;
        let mut over_agent = false;
        match plan.barge_in {
            Some(BargeIn::Real { line }) if line == index && index > 0 => {
                // The agent is answering the previous line: cut in.
                over_agent = agent_started(caller, record, BARGE_AFTER).await;
                if over_agent {
                    record.barge_ins.push(BargeInRecord {
                        real: true,
                        start_us: unix_us(),
                    });
                }
            }
            Some(BargeIn::False { line }) if line == index && index > 0 => {
                if agent_started(caller, record, BARGE_AFTER).await
                    && let Some(hum) = &lines.hum
                {
                    record.barge_ins.push(BargeInRecord {
                        real: false,
                        start_us: unix_us(),
                    });
                    caller.say(hum).await;
                }
                answered(&mut states, caller, mark).await;
                note_answered(record);
                tokio::time::sleep(think).await;
            }
            _ => {
                if index > 0 {
                    answered(&mut states, caller, mark).await;
                    note_answered(record);
                }
                tokio::time::sleep(think).await;
            }
        }
        let before = Mark::now(&states, caller);
        let start_us = unix_us();
        let ended = caller.say(&audio).await;
        mark = Mark::now(&states, caller);
        let mut said = SaidLine {
            text: text.clone(),
            start_us,
            end_us: clock.us(ended),
            answered_us: None,
            over_agent,
            typed: false,
        };
        // A line the agent never took (it stayed listening) is typed.
        if !over_agent && !took_turn(&states, caller, before, UNHEARD_AFTER).await {
            caller.type_text(text).await;
            said.typed = true;
        }
        record.said.push(said);
    }
    answered(&mut states, caller, mark).await;
    note_answered(record);
    Ok(())
}

/// The agent has answered the last line said (it listens again).
fn note_answered(record: &mut VoiceCallRecord) {
    if let Some(last) = record.said.last_mut() {
        last.answered_us.get_or_insert(unix_us());
    }
}

/// Follows the agent's `lk.agent.state` in the room.
fn watch_agent_state(caller: &ScriptedCaller) -> AgentStates {
    let (tx, rx) = watch::channel((0u64, String::new()));
    let mut events = caller.room().events();
    let own = caller.room().local_identity().to_owned();
    tokio::spawn(async move {
        let mut changes = 0u64;
        let mut agent: Option<String> = None;
        loop {
            match events.recv().await {
                Ok(RoomEvent::AttributesChanged {
                    identity,
                    attributes,
                }) if identity != own => {
                    if let Some(state) = attributes.get(AGENT_STATE_ATTRIBUTE) {
                        changes += 1;
                        agent.get_or_insert(identity);
                        if tx.send((changes, state.clone())).is_err() {
                            break;
                        }
                    }
                }
                // The agent hung up: nothing more will be answered.
                Ok(RoomEvent::ParticipantLeft { identity, .. })
                    if agent.as_deref() == Some(identity.as_str()) =>
                {
                    changes += 1;
                    let _ = tx.send((changes, GONE.into()));
                    break;
                }
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            }
        }
    });
    rx
}

/// Waits (at most [`TURN_LIMIT`]) until the agent's state is `wanted`.
async fn wait_state(states: &mut AgentStates, wanted: &str) -> bool {
    let wait = states.wait_for(|(_, state)| state == wanted || state == GONE);
    matches!(tokio::time::timeout(TURN_LIMIT, wait).await, Ok(Ok(_)))
}

/// Where the caller is in the conversation: the agent's state changes seen
/// and the captions read when the caller last spoke.
#[derive(Clone, Copy)]
struct Mark {
    changes: u64,
    captions: usize,
    /// The agent was listening then.
    listening: bool,
}

impl Mark {
    fn now(states: &AgentStates, caller: &ScriptedCaller) -> Mark {
        let (changes, state) = states.borrow().clone();
        Mark {
            changes,
            captions: caller.captions_read().0,
            listening: state == "listening",
        }
    }
}

/// How long a caller reading the agent's answer waits for more of it.
const READING: Duration = Duration::from_millis(400);

/// Waits (at most [`TURN_LIMIT`]) until the agent, busy at `mark` (the
/// end of the caller's line) or busy since (it took the turn, or its
/// answer came as captions: with no voice it answers in text), is
/// listening again, its captions done.
async fn answered(states: &mut AgentStates, caller: &ScriptedCaller, mark: Mark) -> bool {
    let deadline = Instant::now() + TURN_LIMIT;
    let mut left = !mark.listening;
    while Instant::now() < deadline {
        let (changes, state) = states.borrow_and_update().clone();
        if state == GONE {
            return true;
        }
        if changes > mark.changes && state != "listening" {
            left = true;
        }
        let (captions, last_caption) = caller.captions_read();
        let read =
            captions > mark.captions && last_caption.is_some_and(|at| at.elapsed() >= READING);
        if state == "listening" && (left || read) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// Whether the agent took the turn after `mark` (left listening, or
/// answered in captions) within `limit`.
async fn took_turn(
    states: &AgentStates,
    caller: &ScriptedCaller,
    mark: Mark,
    limit: Duration,
) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        let (changes, state) = states.borrow().clone();
        if state == GONE
            || (changes > mark.changes && state != "listening")
            || caller.captions_read().0 > mark.captions
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// Waits until the agent's answer to the last line is audible, then
/// `after` more; false if it did not start within [`TURN_LIMIT`].
async fn agent_started(caller: &ScriptedCaller, record: &VoiceCallRecord, after: Duration) -> bool {
    let Some(last) = record.said.last() else {
        return false;
    };
    let since = Instant::now() - Duration::from_micros(unix_us().saturating_sub(last.end_us));
    let deadline = Instant::now() + TURN_LIMIT;
    while Instant::now() < deadline {
        if caller.heard_since(since) {
            tokio::time::sleep(after).await;
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// Turns the caller's recording into the record's spans and captions.
fn finish(recording: &Recording, clock: Clock, record: &mut VoiceCallRecord) {
    record.packets = recording.packets.len() as u64;
    record.undecodable = recording.undecodable;
    record.audible = audible_spans(
        recording
            .packets
            .iter()
            .filter(|p| p.level_dbfs > crate::testbed::livekit::AUDIBLE_DBFS)
            .map(|p| clock.us(p.at)),
    );
    record.greeted_us = record
        .audible
        .iter()
        .find(|span| span[1] >= record.dispatched_us)
        .map(|span| span[0]);
    record.captions = recording
        .captions
        .iter()
        .map(|(_, text)| text.clone())
        .collect();
}

/// Audible packet arrivals (in order) as spans: a packet lasts 20 ms and
/// packets less than [`SPAN_GAP`] apart join one span.
pub fn audible_spans(arrivals: impl Iterator<Item = u64>) -> Vec<[u64; 2]> {
    let frame = 20_000;
    let gap = SPAN_GAP.as_micros() as u64;
    let mut spans: Vec<[u64; 2]> = Vec::new();
    for at in arrivals {
        match spans.last_mut() {
            Some(span) if at <= span[1] + gap => span[1] = span[1].max(at + frame),
            _ => spans.push([at, at + frame]),
        }
    }
    spans
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_close_together_are_one_span_and_a_gap_splits_them() {
        let ms = |v: u64| v * 1000;
        let spans = audible_spans([0, 20, 40, 100, 300, 320].into_iter().map(ms));
        assert_eq!(spans, vec![[0, ms(120)], [ms(300), ms(340)]]);
    }

    #[test]
    fn the_clock_maps_instants_both_ways_of_its_anchor() {
        let clock = Clock::now();
        let later = clock.instant + Duration::from_millis(5);
        assert_eq!(clock.us(later), clock.unix_us + 5_000);
        if let Some(earlier) = clock.instant.checked_sub(Duration::from_millis(5)) {
            assert_eq!(clock.us(earlier), clock.unix_us - 5_000);
        }
    }
}
