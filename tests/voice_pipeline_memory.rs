//! What one call's voice pipeline holds on its own (issue target: at most
//! 256 KiB per call, the phrase cache counted once per worker): many
//! pipelines started side by side, each fed a line of real speech (so its
//! jitter buffer, decoder, resampler, VAD and recognizer path have all
//! run), then the process's resident memory divided by the pipelines.
//! Every call also streams to Deepgram (the speech simulator, run as
//! `voxguard speech-sim` in a process of its own, so only the pipelines'
//! side is counted); `VOXGUARD_FIGURE_RECOGNIZER=0` measures the pipeline
//! without a recognizer.
//!
//! `VOXGUARD_FIGURE_PIPELINES=N cargo test --release --test
//! voice_pipeline_memory -- --nocapture` prints the figure for N pipelines.

#[path = "media_support.rs"]
mod media_support;
#[path = "speech_support/mod.rs"]
mod speech_support;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use voxguard::media::opus::EncoderConfig;
use voxguard::media::packetize;
use voxguard::session::io::channel;
use voxguard::speech::PhraseCache;
use voxguard::voice::call::{CallLinks, DEFAULT_WAITING, ToRoom, VoiceSettings, Voices, run};
use voxguard::voice::listener::InboundPacket;

use media_support::speech_48k;
use speech_support::{espeak, guard, registry, sim, stt_chain, tts_chain};
use voxguard::speech::stt::{DeepgramSettings, DeepgramStt, SttBackend, SttProvider};
use voxguard::testbed::speech::SpeechSimCredentials;

/// `voxguard speech-sim` on a free loopback port, and its Deepgram URL.
fn speech_sim_process() -> (KillOnDrop, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_voxguard"))
        .args(["speech-sim", "--addr", &format!("127.0.0.1:{port}")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("voxguard speech-sim starts");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "speech-sim never listened"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (
        KillOnDrop(child),
        format!("ws://127.0.0.1:{port}/v1/listen"),
    )
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0)
        * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_s_voice_pipeline_streaming_to_deepgram_holds_at_most_256_kib() {
    let pipelines: usize = std::env::var("VOXGUARD_FIGURE_PIPELINES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let registry = registry();
    // The recognizer is the speech simulator's Deepgram in a process of
    // its own (`voxguard speech-sim`), so only the pipelines' side of each
    // stream is counted — or none, the default figure.
    let with_recognizer = std::env::var("VOXGUARD_FIGURE_RECOGNIZER").as_deref() != Ok("0");
    let sim = sim().await;
    let recognizer = with_recognizer.then(speech_sim_process);
    let voices = Voices {
        stt: recognizer.as_ref().map(|(_, url)| {
            let mut settings =
                DeepgramSettings::new(url.clone(), SpeechSimCredentials::default().deepgram);
            settings.endpointing = Duration::from_millis(300);
            stt_chain(vec![SttBackend {
                provider: Arc::new(SttProvider::Deepgram(DeepgramStt::new(settings))),
                guard: guard(&registry, "stt.deepgram"),
            }])
        }),
        tts: Arc::new(tts_chain(vec![espeak(&registry)])),
        phrases: PhraseCache::empty(Vec::new(), Vec::new()),
        voice_trouble: Vec::new().into(),
        cannot_hear: Vec::new().into(),
        fillers: Vec::new().into(),
        still_working: Vec::new().into(),
        waiting: DEFAULT_WAITING,
    };
    let text = "we are about eight people";
    let speech = speech_48k(text);
    sim.register_utterance(
        text,
        &voxguard::media::wav::Pcm {
            sample_rate: 48_000,
            samples: speech.clone(),
        },
    );
    let line: Arc<[bytes::Bytes]> = packetize(EncoderConfig::default(), 48_000, &speech)
        .unwrap()
        .into();
    // One pipeline first, so what every call shares (code pages, the
    // runtime, the encoder's tables) is in the baseline.
    let mut calls = Vec::new();
    let start = |seed: u64, calls: &mut Vec<_>| {
        let (session_io, transport) = channel(64);
        let (audio, caller_audio) = mpsc::channel(64);
        let (typed, caller_text) = mpsc::channel(8);
        let (room_tx, room) = mpsc::channel::<ToRoom>(1024);
        let links = CallLinks {
            caller_audio,
            caller_text,
            room: room_tx,
            session: transport,
        };
        tokio::spawn(run(VoiceSettings::default(), voices.clone(), links, seed));
        calls.push((audio, typed, room, session_io));
    };
    start(0, &mut calls);
    let feed = |audio: mpsc::Sender<InboundPacket>, line: Arc<[bytes::Bytes]>| async move {
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        for (i, payload) in line.iter().enumerate() {
            tick.tick().await;
            let sequence = i as u16 + 1;
            let packet = InboundPacket {
                ssrc: 7,
                sequence,
                timestamp: u32::from(sequence) * 960,
                payload: payload.clone(),
            };
            if audio.send(packet).await.is_err() {
                break;
            }
        }
    };
    feed(calls[0].0.clone(), line.clone()).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss_bytes();
    for seed in 1..=pipelines as u64 {
        start(seed, &mut calls);
    }
    let feeding: Vec<_> = calls[1..]
        .iter()
        .map(|c| tokio::spawn(feed(c.0.clone(), line.clone())))
        .collect();
    let mut peak = 0;
    for task in feeding {
        task.await.unwrap();
        peak = peak.max(rss_bytes());
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = rss_bytes().max(peak);
    let per_call = after.saturating_sub(before) / pipelines as u64;
    println!(
        "voice pipeline{}: {pipelines} pipelines, {:.1} KiB resident per call (process {:.1} → {:.1} MiB)",
        if with_recognizer {
            " streaming to Deepgram"
        } else {
            ""
        },
        per_call as f64 / 1024.0,
        before as f64 / 1048576.0,
        after as f64 / 1048576.0
    );
    // The turn's replay audio is counted at its peak (the line is being
    // said); between turns a call holds less.
    assert!(
        per_call <= 256 * 1024,
        "{} KiB per pipeline",
        per_call / 1024
    );
    drop(calls);
    drop(recognizer);
}
