//! A spoken call end to end: `voxguard start` as its own process, its
//! recognizer pointed at the speech simulator (the Deepgram protocol), a
//! scripted WebRTC caller in a room of the stand-in. The caller speaks a
//! turn; the agent hears it through the room and answers out loud; the
//! caller talks over the answer; the agent stops, and its caption of the
//! interrupted sentence holds only the words the caller heard.

#[path = "media_support.rs"]
mod media_support;
mod support;

use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;
use voxguard::media::opus::EncoderConfig;
use voxguard::media::{Pcm, packetize};
use voxguard::testbed::livekit::{AUDIBLE_DBFS, LoopbackConfig, LoopbackServer, ScriptedCaller};
use voxguard::testbed::speech::SpeechSimulator;

const LIMIT: Duration = Duration::from_secs(30);

/// `text` spoken by espeak-ng, registered with the simulator's recognizer,
/// as 20 ms Opus packets.
fn line(sim: &SpeechSimulator, text: &str) -> Vec<Bytes> {
    let speech = media_support::speak(text);
    sim.register_utterance(
        text,
        &Pcm {
            sample_rate: 16_000,
            samples: media_support::at_rate(&speech, 16_000),
        },
    );
    packetize(
        EncoderConfig::default(),
        speech.sample_rate,
        &speech.samples,
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_hears_a_spoken_turn_answers_and_stops_when_talked_over() {
    media_support::system_deps();
    let sim = SpeechSimulator::start(([127, 0, 0, 1], 0).into(), 11)
        .await
        .expect("speech simulator");
    let server =
        LoopbackServer::start_isolated(([127, 0, 0, 1], 0).into(), LoopbackConfig::default())
            .await
            .unwrap();
    let mut worker = support::voxguard_start(&server)
        .env("VOXGUARD_HEALTH_ADDR", "127.0.0.1:0")
        .env("VOXGUARD_STT", "deepgram")
        .env("VOXGUARD_DEEPGRAM_URL", sim.deepgram_url())
        .env("DEEPGRAM_API_KEY", sim.credentials().deepgram.expose())
        .env(
            "VOXGUARD_LOG",
            std::env::var("VOXGUARD_LOG").unwrap_or("error".into()),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    assert!(
        server
            .wait_until(Duration::from_secs(20), |r| r.registrations.len() == 1)
            .await
    );
    let first = line(&sim, "we are a team of twelve people");
    let over = line(&sim, "wait, actually, can I ask something else first");

    let caller = ScriptedCaller::join(&server, "spoken", "caller")
        .await
        .unwrap();
    assert!(caller.microphone_ready(LIMIT).await);
    let started = Instant::now();
    server.dispatch_job("spoken", "caller").await.unwrap();
    let greeting = caller
        .until_quiet(started, Duration::from_millis(1200), LIMIT)
        .await;
    let greeting_captions = greeting.captions.len();
    assert!(greeting_captions > 0, "the greeting is captioned");

    // A spoken turn: the agent recognizes it and answers out loud.
    let said = caller.say(&first).await;
    let answer = caller
        .until_quiet(said, Duration::from_millis(1200), LIMIT)
        .await;
    let answered = answer
        .first_audible_after(said)
        .expect("the agent answers the spoken turn out loud");
    let new_captions: Vec<&String> = answer.captions[greeting_captions..]
        .iter()
        .map(|(_, text)| text)
        .collect();
    assert!(
        new_captions
            .iter()
            .any(|t| t.contains("12") || t.to_lowercase().contains("twelve")),
        "the answer shows the agent heard the words: {new_captions:?}"
    );
    eprintln!(
        "end of the caller's speech → first audible answer: {:?} (captions {new_captions:?})",
        answered - said
    );
    assert!(
        answered - said < Duration::from_secs(2),
        "the turn ends on the recognizer's final words, not at the 3 s endpointing cap: {:?}",
        answered - said
    );

    // Talk over the next answer: type to make the agent speak, then speak
    // over it as soon as it is audible.
    let typed = caller
        .type_text("documents are mostly invoices and contracts")
        .await;
    let mut speaking_since = None;
    while typed.elapsed() < LIMIT {
        if let Some(at) = caller.recording().first_audible_after(typed) {
            speaking_since = Some(at);
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let speaking_since = speaking_since.expect("the agent answers the chat");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let barge_in = Instant::now();
    let captions_before = caller.recording().captions.len();
    caller.say(&over).await;
    let after = caller
        .until_quiet(barge_in, Duration::from_millis(1500), LIMIT)
        .await;
    // The agent's audio stopped soon after the caller started talking.
    let stopped = after
        .packets
        .iter()
        .filter(|p| p.at >= barge_in && p.level_dbfs > AUDIBLE_DBFS)
        .take_while(|p| p.at < barge_in + Duration::from_secs(3))
        .last()
        .map(|p| p.at - barge_in);
    eprintln!(
        "agent audible {:?} after the chat; caller talked over it; last agent audio {stopped:?} after the caller began",
        speaking_since - typed
    );
    assert!(
        stopped.is_some_and(|d| d < Duration::from_millis(1500)),
        "the agent stops talking when talked over: last audio {stopped:?} after the caller began"
    );
    let cut: Vec<&String> = after.captions[captions_before..]
        .iter()
        .map(|(_, text)| text)
        .collect();
    eprintln!("captions after the barge-in: {cut:?}");
    let interrupted = cut.first().expect("the interrupted sentence is captioned");
    assert!(
        !interrupted.trim_end().ends_with(['.', '?', '!']),
        "the caption holds only what the caller heard, cut mid-sentence: {interrupted:?}"
    );
    let _ = worker.kill().await;
}
