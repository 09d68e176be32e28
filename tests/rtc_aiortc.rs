//! Interop with an independent WebRTC implementation: aiortc (Python), in a
//! venv that tests/rtc/setup.sh creates once. aiortc offers audio and a data
//! channel and voxguard answers; voxguard offers (as a LiveKit participant's
//! publisher does) and aiortc answers. Audio and data flow both ways. Only
//! 127.0.0.1 is used on either side.

#[path = "rtc/endpoint.rs"]
mod endpoint;

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use endpoint::{Endpoint, PATIENCE};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use voxguard::room::rtc::{DataChannel, LocalTrack, OfferChanges, Role, RtcEvent, Side};

/// A 20 ms Opus frame (CELT, full band) that decodes to silence.
const OPUS_SILENCE: [u8; 3] = [0xf8, 0xff, 0xfe];

/// Runs the idempotent setup script; fails the test with its message when
/// it cannot install what is needed.
fn python() -> String {
    let script = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/..")).join("tests/rtc/setup.sh");
    let output = std::process::Command::new("bash")
        .arg(&script)
        .output()
        .expect("bash runs tests/rtc/setup.sh");
    assert!(
        output.status.success(),
        "tests/rtc/setup.sh could not prepare aiortc:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

struct Aiortc {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    seen: Vec<Value>,
}

impl Aiortc {
    fn start(mode: &str) -> Aiortc {
        let script =
            Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/..")).join("tests/rtc/aiortc_peer.py");
        let mut child = Command::new(python())
            .arg(script)
            .arg(mode)
            .args(["--frames", "25"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the venv's python starts");
        let stdin = child.stdin.take().unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        Aiortc {
            child,
            stdin,
            lines,
            seen: Vec::new(),
        }
    }

    async fn send(&mut self, message: Value) {
        let line = format!("{message}\n");
        self.stdin.write_all(line.as_bytes()).await.unwrap();
        self.stdin.flush().await.unwrap();
    }

    /// The first message (seen or coming) that matches.
    async fn expect(&mut self, what: &str, matches: impl Fn(&Value) -> bool) -> Value {
        if let Some(index) = self.seen.iter().position(&matches) {
            return self.seen.remove(index);
        }
        loop {
            let line = tokio::time::timeout(PATIENCE, self.lines.next_line())
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "aiortc sent no {what} within {PATIENCE:?}; seen {:?}",
                        self.seen
                    )
                })
                .expect("aiortc's stdout reads")
                .unwrap_or_else(|| panic!("aiortc exited before {what}; seen {:?}", self.seen));
            let message: Value = serde_json::from_str(&line).expect("aiortc speaks JSON lines");
            if matches(&message) {
                return message;
            }
            self.seen.push(message);
        }
    }

    async fn stop(mut self) {
        drop(self.stdin);
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
    }
}

fn kind(message: &Value, kind: &str) -> bool {
    message["type"] == kind
}

async fn send_silence(endpoint: &Endpoint, track: LocalTrack, frames: usize) {
    let frame: Arc<[u8]> = OPUS_SILENCE.into();
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    for _ in 0..frames {
        tick.tick().await;
        endpoint
            .handle
            .send_audio(track, frame.clone(), Duration::from_millis(20))
            .await
            .unwrap();
    }
}

async fn assert_audio_from_aiortc(endpoint: &mut Endpoint, side: Side) {
    let packets: Vec<_> = endpoint
        .collect(
            "audio from aiortc",
            25,
            |e| matches!(e, RtcEvent::Audio { side: s, .. } if *s == side),
        )
        .await
        .into_iter()
        .map(|e| match e {
            RtcEvent::Audio { packet, .. } => packet,
            _ => unreachable!(),
        })
        .collect();
    for pair in packets.windows(2) {
        assert_eq!(
            pair[1].sequence,
            pair[0].sequence + 1,
            "in order, none lost on loopback"
        );
        assert_eq!(
            pair[1].rtp_timestamp.wrapping_sub(pair[0].rtp_timestamp),
            960
        );
    }
    assert!(packets.iter().all(|p| !p.payload.is_empty()));
}

async fn assert_audio_at_aiortc(aiortc: &mut Aiortc) {
    let audio = aiortc.expect("decoded audio", |m| kind(m, "audio")).await;
    assert_eq!(audio["frames"], 25);
    let pts: Vec<i64> = audio["pts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    assert!(
        pts.windows(2).all(|w| w[1] > w[0]),
        "frames in order: {pts:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aiortc_offers_audio_and_a_data_channel_and_voxguard_answers() {
    let mut aiortc = Aiortc::start("offer");
    let offer = aiortc.expect("offer", |m| kind(m, "offer")).await;
    let mut ours = Endpoint::start(Role::Participant).await;
    let answer = ours
        .handle
        .accept_offer(Side::Subscriber, offer["sdp"].as_str().unwrap().to_owned())
        .await
        .unwrap();
    assert_eq!(
        answer.tracks.len(),
        1,
        "aiortc's sendrecv audio is ours to send on too"
    );
    aiortc
        .send(json!({"type": "answer", "sdp": answer.sdp}))
        .await;

    ours.saw("connected", |e| *e == RtcEvent::Connected(Side::Subscriber))
        .await;
    aiortc.expect("connected", |m| kind(m, "connected")).await;
    ours.saw("aiortc's channel", |e| {
        *e == RtcEvent::ChannelOpen {
            side: Side::Subscriber,
            channel: DataChannel::Reliable,
        }
    })
    .await;
    ours.next_matching("aiortc's hello", |e| {
        *e == RtcEvent::Data {
            side: Side::Subscriber,
            channel: DataChannel::Reliable,
            payload: b"hello from aiortc on _reliable".to_vec(),
        }
    })
    .await;
    ours.handle
        .send_data(
            Side::Subscriber,
            DataChannel::Reliable,
            b"hello from voxguard".to_vec(),
        )
        .await
        .unwrap();
    let data = aiortc.expect("our hello", |m| kind(m, "data")).await;
    assert_eq!(data["text"], "hello from voxguard");
    assert_eq!(data["label"], "_reliable");

    send_silence(&ours, answer.tracks[0], 60).await;
    assert_audio_at_aiortc(&mut aiortc).await;
    assert_audio_from_aiortc(&mut ours, Side::Subscriber).await;
    aiortc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn voxguard_offers_like_a_livekit_publisher_and_aiortc_answers() {
    let mut ours = Endpoint::start(Role::Participant).await;
    let offer = ours
        .handle
        .create_offer(
            Side::Publisher,
            OfferChanges::publish_audio("PA_agent", "TR_agent"),
        )
        .await
        .unwrap()
        .expect("an offer");
    let mut aiortc = Aiortc::start("answer");
    aiortc
        .send(json!({"type": "offer", "sdp": offer.sdp}))
        .await;
    let answer = aiortc.expect("answer", |m| kind(m, "answer")).await;
    ours.handle
        .accept_answer(Side::Publisher, answer["sdp"].as_str().unwrap().to_owned())
        .await
        .unwrap();

    ours.saw("connected", |e| *e == RtcEvent::Connected(Side::Publisher))
        .await;
    for channel in [DataChannel::Reliable, DataChannel::Lossy] {
        ours.saw("channel open", |e| {
            *e == RtcEvent::ChannelOpen {
                side: Side::Publisher,
                channel,
            }
        })
        .await;
        let hello = format!("hello from aiortc on {}", channel.label()).into_bytes();
        ours.saw("aiortc's hello", |e| {
            *e == RtcEvent::Data {
                side: Side::Publisher,
                channel,
                payload: hello.clone(),
            }
        })
        .await;
        let text = format!("hello from voxguard on {}", channel.label());
        ours.handle
            .send_data(Side::Publisher, channel, text.clone().into_bytes())
            .await
            .unwrap();
        let data = aiortc
            .expect("our hello", |m| {
                kind(m, "data") && m["text"] == text.as_str()
            })
            .await;
        assert_eq!(data["label"], channel.label());
    }

    send_silence(&ours, offer.tracks[0], 60).await;
    assert_audio_at_aiortc(&mut aiortc).await;
    aiortc.stop().await;
}
