//! One call's voice pipeline on its own (no room): the caller's speech as
//! Opus packets in, the speech simulator as recognizer and voice, and the
//! test playing the session. Real espeak-ng speech, real sockets, real time.

#[path = "media_support.rs"]
mod media_support;
#[path = "speech_support/mod.rs"]
mod speech_support;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::time::Instant;
use voxguard::media::opus::{Decoder, EncoderConfig, SAMPLES_PER_FRAME};
use voxguard::media::{Pcm, packetize};
use voxguard::recovery::{LadderTiming, SpeechKind};
use voxguard::session::io::ToolFinished;
use voxguard::session::io::channel;
use voxguard::session::{AgentEvent, AgentState, CallerEvent};
use voxguard::speech::PhraseCache;
use voxguard::speech::cache::render_one;
use voxguard::speech::tts::TtsLimits;
use voxguard::testbed::speech::SpeechSimulator;
use voxguard::testbed::speech::{FaultSpec, FaultUpdate, Latency};
use voxguard::voice::call::{
    CallLinks, DEFAULT_WAITING, ToRoom, VoiceError, VoiceReport, VoiceSettings, Voices, run,
};
use voxguard::voice::listener::InboundPacket;
use voxguard::voice::speaking::CaptionUpdate;

use media_support::{at_rate, speak, system_deps};
use speech_support::{deepgram, espeak, openai_tts, registry, sim, stt_chain, tts_chain};

struct Call {
    pipeline: tokio::task::JoinHandle<Result<VoiceReport, VoiceError>>,
    audio: mpsc::Sender<InboundPacket>,
    room: mpsc::Receiver<ToRoom>,
    to_agent: mpsc::Sender<AgentEvent>,
    from_caller: mpsc::Receiver<CallerEvent>,
    typed: mpsc::Sender<String>,
}

async fn call() -> (Call, Arc<SpeechSimulator>) {
    call_with(&[], DEFAULT_WAITING).await
}

/// A call whose phrase cache holds `fillers` (rendered by the simulator's
/// voice before any fault is set), with `waiting` as the ladder of a wait
/// on a slow voice.
async fn call_with(fillers: &[&str], waiting: LadderTiming) -> (Call, Arc<SpeechSimulator>) {
    call_with_voices(fillers, waiting, false).await
}

/// A call whose first voice is the simulator's; with `local_fallback`, the
/// local espeak-ng voice follows it.
async fn call_with_voices(
    fillers: &[&str],
    waiting: LadderTiming,
    local_fallback: bool,
) -> (Call, Arc<SpeechSimulator>) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("VOXGUARD_LOG"))
        .with_test_writer()
        .try_init();
    system_deps();
    let sim = Arc::new(sim().await);
    let registry = registry();
    let texts: Vec<String> = fillers.iter().map(|f| f.to_string()).collect();
    let phrases = PhraseCache::empty(texts.clone(), vec!["openai"]);
    let voice = openai_tts(&sim, &registry);
    for text in &texts {
        let rendered = render_one(&voice, text, TtsLimits::default())
            .await
            .expect("the filler renders");
        phrases.insert(text, rendered);
    }
    let voices = Voices {
        stt: Some(stt_chain(vec![deepgram(&sim, &registry)])),
        tts: Arc::new(tts_chain(if local_fallback {
            vec![voice, espeak(&registry)]
        } else {
            vec![voice]
        })),
        phrases,
        voice_trouble: Vec::new().into(),
        cannot_hear: Vec::new().into(),
        fillers: texts.clone().into(),
        still_working: texts.into(),
        waiting,
    };
    let (session_io, transport) = channel(64);
    let (audio, caller_audio) = mpsc::channel(64);
    let (typed, caller_text) = mpsc::channel(8);
    let (room_tx, room) = mpsc::channel(1024);
    let links = CallLinks {
        caller_audio,
        caller_text,
        room: room_tx,
        session: transport,
    };
    let pipeline = tokio::spawn(run(VoiceSettings::default(), voices, links, 7));
    let call = Call {
        pipeline,
        audio,
        room,
        to_agent: session_io.outbound,
        from_caller: session_io.inbound,
        typed,
    };
    (call, sim)
}

/// `text` as a caller would say it: espeak-ng speech, registered with the
/// simulator's recognizer, as 48 kHz Opus packets.
fn caller_line(sim: &SpeechSimulator, text: &str) -> Vec<Bytes> {
    let speech = speak(text);
    sim.register_utterance(
        text,
        &Pcm {
            sample_rate: 16_000,
            samples: at_rate(&speech, 16_000),
        },
    );
    packetize(
        EncoderConfig::default(),
        speech.sample_rate,
        &speech.samples,
    )
    .unwrap()
}

fn silence(frames: usize) -> Vec<Bytes> {
    packetize(
        EncoderConfig::default(),
        48_000,
        &vec![0i16; SAMPLES_PER_FRAME * frames],
    )
    .unwrap()
}

/// Send packets at 20 ms, numbered from `first`.
async fn send_paced(audio: &mpsc::Sender<InboundPacket>, packets: &[Bytes], first: u16) -> u16 {
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let mut sequence = first;
    for payload in packets {
        tick.tick().await;
        let packet = InboundPacket {
            ssrc: 42,
            sequence,
            timestamp: u32::from(sequence) * 960,
            payload: payload.clone(),
        };
        if audio.send(packet).await.is_err() {
            break;
        }
        sequence = sequence.wrapping_add(1);
    }
    sequence
}

async fn next_caller_event(call: &mut Call, within: Duration) -> Option<CallerEvent> {
    tokio::time::timeout(within, call.from_caller.recv())
        .await
        .ok()
        .flatten()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_callers_words_become_a_turn_and_the_answer_plays_with_captions() {
    let (mut call, sim) = call().await;
    let line = "we are about eight people";
    let mut packets = silence(15);
    packets.extend(caller_line(&sim, line));
    packets.extend(silence(80));
    let audio = call.audio.clone();
    let speaking = tokio::spawn(async move { send_paced(&audio, &packets, 1).await });

    let turn = next_caller_event(&mut call, Duration::from_secs(8)).await;
    assert_eq!(
        turn,
        Some(CallerEvent::User { text: line.into() }),
        "the turn ends with the recognizer's words"
    );

    let answer = "Eight people, got it. How many documents a month?";
    call.to_agent
        .send(AgentEvent::Speech {
            text: answer.into(),
            kind: SpeechKind::Answer,
            interruptible: true,
        })
        .await
        .unwrap();
    let mut packets_out = Vec::new();
    let mut captions = String::new();
    let mut closed = 0;
    let mut states = Vec::new();
    let started = Instant::now();
    while closed < 2 && started.elapsed() < Duration::from_secs(15) {
        match tokio::time::timeout(Duration::from_secs(5), call.room.recv()).await {
            Ok(Some(ToRoom::Audio(packet))) => packets_out.push((Instant::now(), packet)),
            Ok(Some(ToRoom::Caption(CaptionUpdate::Text { delta, .. }))) => {
                captions.push_str(&delta)
            }
            Ok(Some(ToRoom::Caption(CaptionUpdate::Close { .. }))) => {
                closed += 1;
                captions.push(' ');
            }
            Ok(Some(ToRoom::State(state))) => states.push(state),
            Ok(Some(_)) => {}
            _ => break,
        }
    }
    speaking.abort();
    assert_eq!(closed, 2, "one caption segment per sentence, each closed");
    assert_eq!(
        captions.split_whitespace().collect::<Vec<_>>(),
        answer.split_whitespace().collect::<Vec<_>>()
    );
    assert!(states.contains(&AgentState::Speaking), "{states:?}");
    // Paced: packets 20 ms apart on average, audible when decoded.
    let span = packets_out.last().unwrap().0 - packets_out[0].0;
    let expected = Duration::from_millis(20) * (packets_out.len() as u32 - 1);
    assert!(
        span + Duration::from_millis(60) >= expected
            && span <= expected + Duration::from_millis(200),
        "{} packets over {span:?}",
        packets_out.len()
    );
    let mut decoder = Decoder::new().unwrap();
    let mut pcm = vec![0i16; SAMPLES_PER_FRAME];
    let mut loud = 0;
    for (_, packet) in &packets_out {
        decoder.decode(packet, &mut pcm).unwrap();
        if voxguard::media::level_dbfs(&pcm) > -40.0 {
            loud += 1;
        }
    }
    assert!(
        loud > packets_out.len() / 3,
        "{loud} of {} packets audible",
        packets_out.len()
    );
}

/// The whole process stalls (its one runtime thread blocked, as a starved
/// worker is) for a second in the middle of the caller's line while the
/// packets keep coming: when it runs again, the audio that waited is late,
/// not lost, and the turn has every word.
#[tokio::test(flavor = "current_thread")]
async fn a_worker_that_stalls_mid_line_still_hears_the_whole_line() {
    let (mut call, sim) = call().await;
    let line = "we are about eight people and we use HubSpot";
    let mut packets = silence(15);
    packets.extend(caller_line(&sim, line));
    packets.extend(silence(100));
    let audio = call.audio.clone();
    // The caller's side runs on its own thread, in real time.
    let sender = std::thread::spawn(move || {
        let started = std::time::Instant::now();
        for (i, payload) in packets.into_iter().enumerate() {
            let due = started + Duration::from_millis(20 * i as u64);
            std::thread::sleep(due.saturating_duration_since(std::time::Instant::now()));
            let packet = InboundPacket {
                ssrc: 42,
                sequence: i as u16 + 1,
                timestamp: (i as u32 + 1) * 960,
                payload,
            };
            if audio.blocking_send(packet).is_err() {
                break;
            }
        }
    });
    // Into the line (0.3 s of silence first), then the stall.
    tokio::time::sleep(Duration::from_millis(900)).await;
    std::thread::sleep(Duration::from_millis(1_000));
    let turn = next_caller_event(&mut call, Duration::from_secs(8)).await;
    assert_eq!(turn, Some(CallerEvent::User { text: line.into() }));
    // The session hangs up; the pipeline reports what it took in.
    let Call {
        pipeline, to_agent, ..
    } = call;
    drop(to_agent);
    let report = tokio::time::timeout(Duration::from_secs(10), pipeline)
        .await
        .expect("the pipeline ends with its session")
        .unwrap()
        .unwrap();
    // Nothing the caller sent was skipped for want of room or concealed as
    // missing (before the catch-up, a 1 s stall cost some 20 frames of
    // each); the buffer may trim one frame to bring its delay back.
    let heard = report.caller_audio;
    assert!(
        heard.lost == 0 && heard.concealed == 0 && heard.dropped <= 1,
        "{heard:?}"
    );
    // The caller's thread ends once the pipeline has let go of its audio.
    let _ = sender.join();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_talking_over_the_agent_stops_it_and_the_session_learns_what_was_heard() {
    let (mut call, sim) = call().await;
    let answer = "Your plan renews next month and includes ten seats. \
                  It also covers the archive add-on. \
                  Would you like me to book a call with your account manager?";
    call.to_agent
        .send(AgentEvent::Speech {
            text: answer.into(),
            kind: SpeechKind::Answer,
            interruptible: true,
        })
        .await
        .unwrap();
    // Wait for the agent's audio to start, then talk over it.
    let mut first_audio = None;
    while first_audio.is_none() {
        if let Some(ToRoom::Audio(_)) =
            tokio::time::timeout(Duration::from_secs(5), call.room.recv())
                .await
                .expect("the agent speaks")
        {
            first_audio = Some(Instant::now());
        }
    }
    let line = "wait, how many seats";
    let mut packets = caller_line(&sim, line);
    packets.extend(silence(80));
    let audio = call.audio.clone();
    let talk_started = Instant::now() + Duration::from_millis(600);
    let room_watch = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(600)).await;
        send_paced(&audio, &packets, 1).await
    });
    let mut last_audio = Instant::now();
    let mut heard = None;
    let mut turn = None;
    let deadline = Instant::now() + Duration::from_secs(12);
    while (heard.is_none() || turn.is_none()) && Instant::now() < deadline {
        tokio::select! {
            Some(item) = call.room.recv() => {
                if let ToRoom::Audio(_) = item {
                    last_audio = Instant::now();
                }
            }
            Some(event) = call.from_caller.recv() => match event {
                CallerEvent::Interrupt { heard: lines } => heard = Some(lines),
                CallerEvent::User { text } => turn = Some(text),
                other => panic!("unexpected {other:?}"),
            },
        }
    }
    room_watch.abort();
    let heard = heard.expect("the interruption reached the session");
    assert_eq!(heard.len(), 1, "{heard:?}");
    assert_eq!(heard[0].spoken, answer);
    assert!(
        answer.starts_with(&heard[0].heard) && heard[0].heard.len() < answer.len(),
        "heard a prefix: {:?}",
        heard[0].heard
    );
    let stopped_after = last_audio.saturating_duration_since(talk_started);
    assert!(
        stopped_after < Duration::from_millis(1200),
        "the agent stopped {stopped_after:?} after the caller started"
    );
    assert_eq!(turn.as_deref(), Some(line));
}

fn speech(text: &str, kind: SpeechKind) -> AgentEvent {
    AgentEvent::Speech {
        text: text.into(),
        kind,
        interruptible: true,
    }
}

/// The simulator's voice takes `ms` to its first audio of every sentence.
fn slow_voice(sim: &SpeechSimulator, ms: u64) {
    sim.set_faults(FaultUpdate::provider(
        "openai_tts",
        FaultSpec {
            latency: Latency::Uniform {
                base_ms: ms,
                jitter_ms: 0,
            },
            ..FaultSpec::default()
        },
    ))
    .expect("a valid fault");
}

/// The captions the caller saw close, in order, until `count` closed (or
/// `within` passed), and every caller event the session got meanwhile.
async fn closed_captions(
    call: &mut Call,
    count: usize,
    within: Duration,
) -> (Vec<String>, Vec<CallerEvent>) {
    let mut closed = Vec::new();
    let mut events = Vec::new();
    let deadline = Instant::now() + within;
    while closed.len() < count {
        tokio::select! {
            item = call.room.recv() => match item {
                Some(ToRoom::Caption(CaptionUpdate::Close { text, .. })) => closed.push(text),
                Some(_) => {}
                None => break,
            },
            Some(event) = call.from_caller.recv() => events.push(event),
            () = tokio::time::sleep_until(deadline) => break,
        }
    }
    (closed, events)
}

const FILLER: &str = "Give me just a moment.";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_waiting_on_a_slow_voice_hears_a_cached_filler_before_the_answer() {
    let waiting = LadderTiming {
        filler_after: Duration::from_millis(200),
        filler_repeat: Duration::from_secs(10),
        filler_max: 1,
        budget: Duration::from_secs(3),
    };
    let (mut call, sim) = call_with(&[FILLER], waiting).await;
    let line = "what does my plan include";
    let mut packets = silence(15);
    packets.extend(caller_line(&sim, line));
    packets.extend(silence(60));
    let audio = call.audio.clone();
    let speaking = tokio::spawn(async move { send_paced(&audio, &packets, 1).await });
    let turn = next_caller_event(&mut call, Duration::from_secs(8)).await;
    assert_eq!(turn, Some(CallerEvent::User { text: line.into() }));
    speaking.await.unwrap();

    // The voice takes 700 ms to start; the caller's wait gets a filler
    // after 200 ms, from the cache, and the answer follows it.
    slow_voice(&sim, 700);
    let answer = "Ten seats and the archive add-on.";
    call.to_agent
        .send(speech(answer, SpeechKind::Answer))
        .await
        .unwrap();
    let (closed, events) = closed_captions(&mut call, 2, Duration::from_secs(10)).await;
    assert_eq!(closed, vec![FILLER.to_string(), answer.to_string()]);
    assert!(events.is_empty(), "the session said no filler: {events:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_who_typed_while_the_first_voice_hangs_hears_a_filler_then_the_next_voice() {
    let (mut call, sim) = call_with_voices(&[FILLER], DEFAULT_WAITING, true).await;
    sim.set_faults(FaultUpdate::provider(
        "openai_tts",
        FaultSpec {
            hang_rate: 1.0,
            ..FaultSpec::default()
        },
    ))
    .expect("a valid fault");
    let line = "what happens next?";
    call.typed.send(line.into()).await.unwrap();
    let turn = next_caller_event(&mut call, Duration::from_secs(2)).await;
    assert_eq!(turn, Some(CallerEvent::User { text: line.into() }));
    let answer = "We set up a demo for your team.";
    let asked = Instant::now();
    call.to_agent
        .send(speech(answer, SpeechKind::Answer))
        .await
        .unwrap();
    let first_audio = loop {
        match tokio::time::timeout(Duration::from_secs(5), call.room.recv()).await {
            Ok(Some(ToRoom::Audio(_))) => break asked.elapsed(),
            Ok(Some(_)) => {}
            other => panic!("no audio: {other:?}"),
        }
    };
    // The speech profile's filler comes 600 ms into the voice's silence.
    assert!(
        first_audio <= DEFAULT_WAITING.filler_after + Duration::from_millis(150),
        "the caller heard the agent {first_audio:?} after it started answering"
    );
    let (closed, _) = closed_captions(&mut call, 2, Duration::from_secs(10)).await;
    assert_eq!(closed, vec![FILLER.to_string(), answer.to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_filler_plays_ahead_of_a_line_still_waiting_for_its_voice() {
    let (mut call, sim) = call_with(&[FILLER], DEFAULT_WAITING).await;
    slow_voice(&sim, 700);
    let ack = "Let me look that up.";
    call.to_agent
        .send(speech(ack, SpeechKind::Answer))
        .await
        .unwrap();
    call.to_agent
        .send(speech(FILLER, SpeechKind::Filler))
        .await
        .unwrap();
    let (closed, events) = closed_captions(&mut call, 2, Duration::from_secs(10)).await;
    assert_eq!(closed, vec![FILLER.to_string(), ack.to_string()]);
    assert!(events.is_empty(), "{events:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filler_still_waiting_when_its_tool_finishes_is_withdrawn_and_the_session_told() {
    let (mut call, _sim) = call_with(&[FILLER], DEFAULT_WAITING).await;
    let ack = "Sure, let me pull up your account. It only takes a second.";
    call.to_agent
        .send(speech(ack, SpeechKind::Answer))
        .await
        .unwrap();
    // The filler comes while the acknowledgement plays; the tool finishes
    // before the acknowledgement does.
    while !matches!(
        tokio::time::timeout(Duration::from_secs(5), call.room.recv())
            .await
            .expect("the agent speaks"),
        Some(ToRoom::Audio(_))
    ) {}
    call.to_agent
        .send(speech(FILLER, SpeechKind::Filler))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    call.to_agent
        .send(AgentEvent::ToolFinished(Box::new(ToolFinished {
            call_id: "crm_lookup-1".into(),
            tool: "crm_lookup".into(),
            outcome: "ok".into(),
            elapsed_ms: 300.0,
            error: None,
        })))
        .await
        .unwrap();
    let answer = "You're on the Pro plan.";
    call.to_agent
        .send(speech(answer, SpeechKind::Answer))
        .await
        .unwrap();
    let (closed, events) = closed_captions(&mut call, 3, Duration::from_secs(12)).await;
    assert_eq!(
        events,
        vec![CallerEvent::Unplayed {
            lines: vec![FILLER.to_string()]
        }]
    );
    assert!(!closed.iter().any(|c| c == FILLER), "{closed:?}");
    assert_eq!(
        closed.last().map(String::as_str),
        Some(answer),
        "{closed:?}"
    );
}
