//! The speech simulator seen by independent clients: a plain WebSocket
//! client speaking Deepgram's documented messages, plain HTTP requests for
//! the OpenAI-compatible endpoints, and the admin API. Close codes and
//! payload shapes are what the real services send.

mod speech_support;

use std::time::Duration;

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use speech_support::*;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::{self, Message};
use voxguard::media::wav;
use voxguard::testbed::speech::{DropClose, FaultSpec, FaultUpdate, voice};

const QUERY: &str = "?encoding=linear16&sample_rate=16000&channels=1&interim_results=true&endpointing=300&utterance_end_ms=1000&vad_events=true";

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn open(url: &str, key: &str) -> Result<Socket, tungstenite::Error> {
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Authorization", format!("Token {key}").parse().unwrap());
    tokio_tungstenite::connect_async(request)
        .await
        .map(|(s, _)| s)
}

async fn send_audio(socket: &mut Socket, samples: &[i16]) {
    for chunk in samples.chunks(1600) {
        let bytes: Vec<u8> = chunk.iter().flat_map(|s| s.to_le_bytes()).collect();
        socket.send(Message::binary(bytes)).await.unwrap();
    }
}

/// JSON messages until the close frame; returns them and the close code.
async fn read_to_close(socket: &mut Socket) -> (Vec<Value>, Option<u16>) {
    let mut messages = Vec::new();
    loop {
        match tokio::time::timeout(WAIT, socket.next())
            .await
            .expect("bounded")
        {
            Some(Ok(Message::Text(text))) => messages.push(serde_json::from_str(&text).unwrap()),
            Some(Ok(Message::Close(frame))) => return (messages, frame.map(|f| u16::from(f.code))),
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return (messages, None),
        }
    }
}

#[tokio::test]
async fn the_listen_endpoint_answers_deepgrams_documented_messages() {
    let sim = sim().await;
    let speech = say(&sim, "please call me back tomorrow");
    let url = format!("{}{QUERY}", sim.deepgram_url());
    let mut socket = open(&url, sim.credentials().deepgram.expose())
        .await
        .unwrap();
    send_audio(&mut socket, &speech).await;
    socket
        .send(Message::text(r#"{"type":"KeepAlive"}"#))
        .await
        .unwrap();
    send_audio(&mut socket, &vec![0; 16 * 1_300]).await;
    socket
        .send(Message::text(r#"{"type":"Finalize"}"#))
        .await
        .unwrap();
    socket
        .send(Message::text(r#"{"type":"CloseStream"}"#))
        .await
        .unwrap();
    let (messages, close) = read_to_close(&mut socket).await;
    assert_eq!(close, Some(1000));
    let kinds: Vec<&str> = messages
        .iter()
        .map(|m| m["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.first(), Some(&"SpeechStarted"));
    assert_eq!(kinds.last(), Some(&"Metadata"));
    assert!(kinds.contains(&"UtteranceEnd"), "{kinds:?}");
    let final_result = messages
        .iter()
        .find(|m| m["type"] == "Results" && m["speech_final"] == true)
        .expect("a speech_final result");
    assert_eq!(
        final_result["channel"]["alternatives"][0]["transcript"],
        "please call me back tomorrow"
    );
    assert_eq!(final_result["is_final"], true);
    assert!(final_result["start"].is_f64() && final_result["duration"].is_f64());
    let interim = messages
        .iter()
        .find(|m| m["type"] == "Results" && m["is_final"] == false)
        .expect("an interim result");
    let words = interim["channel"]["alternatives"][0]["transcript"]
        .as_str()
        .unwrap();
    assert!("please call me back tomorrow".starts_with(words), "{words}");
    assert!(
        messages.iter().any(|m| m["from_finalize"] == true),
        "Finalize is answered"
    );
}

#[tokio::test]
async fn the_handshake_refuses_a_wrong_key_and_bad_parameters() {
    let sim = sim().await;
    let url = format!("{}{QUERY}", sim.deepgram_url());
    match open(&url, "wrong").await {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 401),
        other => panic!("expected 401, got {:?}", other.map(|_| ())),
    }
    let bad = format!("{}?encoding=opus&sample_rate=16000", sim.deepgram_url());
    match open(&bad, sim.credentials().deepgram.expose()).await {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 400),
        other => panic!("expected 400, got {:?}", other.map(|_| ())),
    }
}

#[tokio::test]
async fn a_rate_limited_handshake_says_when_to_come_back() {
    let sim = sim().await;
    sim.set_faults(FaultUpdate::provider(
        "deepgram",
        FaultSpec {
            rate_limit_rate: 1.0,
            retry_after_secs: 3,
            ..FaultSpec::default()
        },
    ))
    .unwrap();
    let url = format!("{}{QUERY}", sim.deepgram_url());
    match open(&url, sim.credentials().deepgram.expose()).await {
        Err(tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 429);
            assert_eq!(response.headers()["retry-after"], "3");
        }
        other => panic!("expected 429, got {:?}", other.map(|_| ())),
    }
}

#[tokio::test]
async fn dropped_streams_close_with_1011_or_vanish_without_a_close_frame() {
    let sim = sim().await;
    let speech = say(&sim, "I need to change my booking");
    let url = format!("{}{QUERY}", sim.deepgram_url());
    for (close, expected) in [
        (DropClose::ServerError1011, Some(1011)),
        (DropClose::Abnormal1006, None),
    ] {
        sim.set_faults(FaultUpdate::provider(
            "deepgram",
            FaultSpec {
                drop_rate: 1.0,
                drop_close: close,
                drop_after_ms: 500,
                ..FaultSpec::default()
            },
        ))
        .unwrap();
        let mut socket = open(&url, sim.credentials().deepgram.expose())
            .await
            .unwrap();
        send_audio(&mut socket, &speech).await;
        let (_, code) = read_to_close(&mut socket).await;
        assert_eq!(code, expected, "{close:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn an_idle_stream_is_closed_with_1011_net_0001() {
    let sim = sim().await;
    let url = format!("{}{QUERY}", sim.deepgram_url());
    let mut socket = open(&url, sim.credentials().deepgram.expose())
        .await
        .unwrap();
    let frame = tokio::time::timeout(Duration::from_secs(30), socket.next())
        .await
        .expect("closed before 30 s")
        .expect("a frame")
        .expect("not an error");
    let Message::Close(Some(frame)) = frame else {
        panic!("expected a close frame, got {frame:?}")
    };
    assert_eq!(u16::from(frame.code), 1011);
    assert_eq!(frame.reason.as_str(), "NET-0001");
}

#[tokio::test]
async fn transcriptions_answer_the_registered_words_of_a_multipart_wav() {
    let sim = sim().await;
    say(&sim, "yes that works for me");
    let audio = wav::write(16_000, &voice::synthesize("yes that works for me", 16_000));
    let body =
        voxguard::speech::stt::openai::multipart("b0undary", &[("model", "whisper-1")], &audio);
    let client = reqwest::Client::new();
    let url = format!("{}/audio/transcriptions", sim.openai_base_url());
    let answer: Value = client
        .post(&url)
        .bearer_auth(sim.credentials().openai.expose())
        .header("content-type", "multipart/form-data; boundary=b0undary")
        .body(body.clone())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer, json!({"text": "yes that works for me"}));
    let refused = client
        .post(&url)
        .bearer_auth("sk-wrong")
        .header("content-type", "multipart/form-data; boundary=b0undary")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let error: Value = refused.json().await.unwrap();
    assert_eq!(error["error"]["code"], "invalid_api_key");
}

#[tokio::test]
async fn speech_answers_raw_pcm_proportional_to_the_text() {
    let sim = sim().await;
    let response = reqwest::Client::new()
        .post(format!("{}/audio/speech", sim.openai_base_url()))
        .bearer_auth(sim.credentials().openai.expose())
        .json(&json!({"model": "gpt-4o-mini-tts", "input": "Hello!", "voice": "alloy", "response_format": "pcm"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let bytes = response.bytes().await.unwrap();
    assert_eq!(bytes.len(), 6 * 24_000 * 65 / 1000 * 2);
}

#[tokio::test]
async fn the_admin_api_registers_utterances_and_refuses_bad_faults() {
    let sim = sim().await;
    let client = reqwest::Client::new();
    let audio = wav::write(16_000, &voice::synthesize("hello", 16_000));
    let created = client
        .post(format!("{}/_sim/utterances", sim.base_url()))
        .json(&json!({"text": "hello", "wav_base64": base64::engine::general_purpose::STANDARD.encode(&audio)}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let listed: Value = client
        .get(format!("{}/_sim/utterances", sim.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed[0]["text"], "hello");
    let silent = wav::write(16_000, &[0; 16_000]);
    let refused = client
        .post(format!("{}/_sim/utterances", sim.base_url()))
        .json(&json!({"text": "nothing", "wav_base64": base64::engine::general_purpose::STANDARD.encode(&silent)}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    let bad = client
        .put(format!("{}/_sim/faults", sim.base_url()))
        .json(&json!({"providers": {"whisper": {"error_rate": 1.0}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let good: Value = client
        .put(format!("{}/_sim/faults", sim.base_url()))
        .json(&json!({"preset": "stt-drop"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        good["providers"]["deepgram"]["drop_close"],
        "server_error_1011"
    );
}
