//! `/call`, the dev page's spoken call, at its edges: what the server says
//! when the page's first frame is not an offer, when the offer cannot be
//! answered, and when this machine cannot carry spoken calls (the page then
//! makes a typed call, which still works). The spoken call itself, in a
//! real browser, is `tests/dev_browser.rs`.

#[path = "media_support.rs"]
mod media_support;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};
use voxguard::config::Config;
use voxguard::dev::{self, DevStack, VoiceAvailability};

const WAIT: Duration = Duration::from_secs(10);

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

async fn dev_stack(adjust: impl FnOnce(&mut Config)) -> DevStack {
    let mut config = Config::embedded_default().expect("embedded config");
    adjust(&mut config);
    dev::start(&config, "127.0.0.1:0".parse().unwrap(), 42)
        .await
        .expect("dev stack starts")
}

/// The page's speech and model cards.
async fn speech_cards(http: &reqwest::Client, base: &str) -> Vec<Value> {
    http.get(format!("{base}/api/speech"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn open(stack: &DevStack, path: &str) -> Socket {
    let url = format!("ws://{}{path}", stack.addr);
    connect_async(url.as_str()).await.expect("ws connects").0
}

/// Every JSON frame until the server closes, and the close code and reason.
async fn frames_until_close(ws: &mut Socket) -> (Vec<Value>, u16, String) {
    let mut frames = Vec::new();
    loop {
        let message = tokio::time::timeout(WAIT, ws.next())
            .await
            .unwrap_or_else(|_| panic!("the socket was not closed within {WAIT:?}: {frames:?}"));
        match message {
            Some(Ok(Message::Text(text))) => frames.push(serde_json::from_str(&text).unwrap()),
            Some(Ok(Message::Close(Some(frame)))) => {
                return (frames, u16::from(frame.code), frame.reason.to_string());
            }
            Some(Ok(Message::Close(None))) => panic!("closed without a code"),
            Some(Ok(_)) => {}
            Some(Err(err)) => panic!("the connection failed instead of closing: {err}"),
            None => panic!("the connection ended without a close frame"),
        }
    }
}

async fn send(ws: &mut Socket, frame: Value) {
    ws.send(Message::Text(frame.to_string().into()))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_that_does_not_start_with_an_offer_is_closed_with_the_frame_it_needs() {
    let stack = dev_stack(|_| {}).await;
    assert_eq!(stack.state.voice, VoiceAvailability::Ready);
    let mut ws = open(&stack, "/call").await;
    send(&mut ws, json!({"type": "user", "text": "hello?"})).await;
    let (frames, code, reason) = frames_until_close(&mut ws).await;
    assert_eq!(code, 1002, "{reason}");
    assert!(
        frames[0]["message"]
            .as_str()
            .is_some_and(|m| m.contains(r#"{"type":"offer","sdp":"#)),
        "the error shows the frame a call starts with: {frames:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offer_that_cannot_be_answered_is_refused_with_the_reason() {
    let stack = dev_stack(|_| {}).await;
    let mut ws = open(&stack, "/call").await;
    send(
        &mut ws,
        json!({"type": "offer", "sdp": "v=0\r\nthis is not a description\r\n"}),
    )
    .await;
    let (frames, code, reason) = frames_until_close(&mut ws).await;
    assert_eq!(code, 1008, "{reason}");
    assert_eq!(frames[0]["type"], "error");
    assert!(
        frames[0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("offer")),
        "{frames:?}"
    );
    assert!(
        stack.state.loopback.records().room_joins.is_empty(),
        "no room was joined for a refused offer"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_voice_that_runs_the_page_is_told_what_to_install_and_typed_calls_still_work() {
    let stack = dev_stack(|config| {
        config.speech.espeak.program = "/nonexistent/espeak-ng".into();
    })
    .await;
    let VoiceAvailability::Missing(why) = &stack.state.voice else {
        panic!("a voice that does not run leaves spoken calls unavailable");
    };
    assert!(why.contains("apt-get install espeak-ng"), "{why}");

    let mut ws = open(&stack, "/call").await;
    let (frames, code, _) = frames_until_close(&mut ws).await;
    assert_eq!(code, 1000);
    assert_eq!(frames[0]["type"], "unavailable");
    assert!(
        frames[0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("espeak-ng")),
        "{frames:?}"
    );

    // The typed call the page falls back to.
    let mut typed = open(&stack, "/ws").await;
    send(
        &mut typed,
        json!({"type": "user", "text": "we're about eight people"}),
    )
    .await;
    let answered = tokio::time::timeout(WAIT, async {
        while let Some(Ok(message)) = typed.next().await {
            if let Message::Text(text) = message {
                let frame: Value = serde_json::from_str(&text).unwrap();
                if frame["type"] == "speech"
                    && frame["text"].as_str().is_some_and(|t| t.contains('8'))
                {
                    return true;
                }
            }
        }
        false
    })
    .await;
    assert_eq!(answered, Ok(true), "the typed call is answered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_speech_cards_fault_button_sets_the_simulators_fault_for_that_provider() {
    use std::sync::Arc;
    use voxguard::config::CredentialRef;
    use voxguard::testbed::speech::SpeechSimulator;

    let speech = Arc::new(
        SpeechSimulator::start(([127, 0, 0, 1], 0).into(), 3)
            .await
            .expect("speech simulator"),
    );
    let key = std::env::temp_dir().join(format!("voxguard-dev-call-key-{}", std::process::id()));
    std::fs::write(&key, speech.credentials().deepgram.expose()).unwrap();
    let mut config = Config::embedded_default().expect("embedded config");
    config.speech.stt = vec!["deepgram".into()];
    config.speech.deepgram.url = speech.deepgram_url();
    config.speech.deepgram.credentials = CredentialRef::File(key.clone());
    let options = dev::DevOptions {
        speech_sim: Some(speech.clone()),
        ..dev::DevOptions::default()
    };
    let stack = dev::start_with(&config, "127.0.0.1:0".parse().unwrap(), 42, options)
        .await
        .expect("dev stack starts");
    let _ = std::fs::remove_file(&key);
    let http = reqwest::Client::new();
    let base = format!("http://{}", stack.addr);

    let cards = speech_cards(&http, &base).await;
    let card = |name: &str| cards.iter().find(|c| c["name"] == name).cloned();
    let deepgram = card("stt.deepgram").expect("a recognizer card");
    assert_eq!(deepgram["breaker"], "closed");
    assert_eq!(
        deepgram["faults"],
        json!(["healthy", "slow", "errors", "hang", "drop", "outage"])
    );
    assert_eq!(deepgram["simulated"], true);
    let espeak = card("tts.espeak").expect("a voice card");
    assert_eq!(
        espeak["faults"],
        json!([]),
        "the local voice has no simulator"
    );
    assert_eq!(espeak["simulated"], false);
    assert_eq!(card("llm").expect("a model card")["configured"], false);

    let set = http
        .put(format!("{base}/api/speech/faults"))
        .json(&json!({"provider": "stt.deepgram", "fault": "hang"}))
        .send()
        .await
        .unwrap();
    assert_eq!(set.status(), 200);
    assert_eq!(speech.faults().spec_for("deepgram").hang_rate, 1.0);
    assert_eq!(speech.faults().spec_for("cartesia").hang_rate, 0.0);

    let refused = http
        .put(format!("{base}/api/speech/faults"))
        .json(&json!({"provider": "tts.espeak", "fault": "hang"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
}

/// `voxguard dev` as the README runs it, on a machine with no voice key:
/// the banner names the simulated network voice, its card offers faults,
/// and one click breaks it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn voxguard_dev_with_no_voice_key_offers_a_simulated_voice_to_break() {
    use tokio::io::{AsyncBufReadExt, BufReader};

    media_support::system_deps();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_voxguard"))
        .arg("dev")
        .env("VOXGUARD_DEV_ADDR", format!("127.0.0.1:{port}"))
        .env_remove("LIVEKIT_URL")
        .env_remove("OPENAI_API_KEY")
        .env_remove("CARTESIA_API_KEY")
        .env_remove("DEEPGRAM_API_KEY")
        .env_remove("VOXGUARD_TTS")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("voxguard dev starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut banner = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let done = line.contains("press Ctrl-C");
            banner.push(line);
            if done {
                break;
            }
        }
    })
    .await;
    assert!(read.is_ok(), "no full banner within 30 s: {banner:?}");
    let voices = banner
        .iter()
        .find(|l| l.contains("voices: a simulated network voice"))
        .unwrap_or_else(|| panic!("the banner names no simulated voice: {banner:?}"));
    assert!(voices.contains("then the local voice"), "{voices}");

    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let cards = speech_cards(&http, &base).await;
    let card = |name: &str| cards.iter().find(|c| c["name"] == name).cloned();
    let simulated = card("tts.openai").expect("the simulated voice's card");
    assert_eq!(simulated["simulated"], true);
    assert_eq!(simulated["configured"], true);
    assert!(
        simulated["faults"]
            .as_array()
            .is_some_and(|f| f.contains(&json!("hang"))),
        "{simulated}"
    );
    let local = card("tts.espeak").expect("the local voice's card");
    assert_eq!(local["simulated"], false);
    let set = http
        .put(format!("{base}/api/speech/faults"))
        .json(&json!({"provider": "tts.openai", "fault": "hang"}))
        .send()
        .await
        .unwrap();
    assert_eq!(set.status(), 200);
    let cards = speech_cards(&http, &base).await;
    let simulated = cards.iter().find(|c| c["name"] == "tts.openai").unwrap();
    assert_eq!(simulated["fault"], "hang");
    child.kill().await.ok();
}
