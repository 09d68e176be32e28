//! An independent, real LiveKit client talks to `voxguard start` through
//! the stand-in: LiveKit's official Python SDK (libwebrtc, from PyPI; see
//! tests/rtc/setup.sh) joins a room as the caller, publishes a microphone
//! track, hears the agent greet it out loud, reads its captions and state,
//! types on lk.chat and hears the answer.
//!
//! libwebrtc leaves loopback interfaces out of ICE, so everything runs in a
//! private network namespace with one veth pair (10.203.0.1 on one end)
//! that exists only inside it: no traffic leaves the test. Creating the
//! namespace needs root (CAP_SYS_ADMIN), as CI has.

#[path = "media_support.rs"]
mod media_support;
#[path = "netns_support.rs"]
mod netns_support;

use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use livekit_protocol::JobStatus;
use serde_json::Value;
use voxguard::testbed::livekit::{LoopbackConfig, LoopbackServer};

use netns_support::{ADDRESS, private_network};

fn python() -> String {
    // The tests of this binary run at once; the venv is made once.
    static PYTHON: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PYTHON.get_or_init(prepare_python).clone()
}

fn prepare_python() -> String {
    let script = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/..")).join("tests/rtc/setup.sh");
    let output = Command::new("bash")
        .arg(&script)
        .output()
        .expect("bash runs tests/rtc/setup.sh");
    assert!(
        output.status.success(),
        "tests/rtc/setup.sh could not prepare the LiveKit Python SDK:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

fn microphone_wav(dir: &Path) -> PathBuf {
    media_support::system_deps();
    let path = dir.join("caller.wav");
    let status = Command::new("espeak-ng")
        .args(["-v", "en-us", "-w"])
        .arg(&path)
        .arg("Hello, I am calling about your document service.")
        .status()
        .expect("espeak-ng runs");
    assert!(status.success());
    path
}

#[test]
fn the_official_python_sdk_talks_with_voxguard_start() {
    let _one = crate::one_at_a_time();
    let python = python();
    let dir = std::env::temp_dir().join(format!("voxguard-interop-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let wav = microphone_wav(&dir);
    let (report, agent_log) = std::thread::spawn(move || {
        private_network();
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(call(python, wav))
    })
    .join()
    .expect("the call ran");
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!("the Python SDK caller observed: {report:#}");

    let fail = |what: &str| -> String { format!("{what}: {report:#}\nagent log:\n{agent_log}") };
    assert_eq!(report["connected"], true, "{}", fail("connects"));
    assert!(
        report["agent_audible_frames"].as_u64() > Some(100),
        "{}",
        fail("hears more than a second of the agent's voice")
    );
    let captions = report["captions"].as_array().cloned().unwrap_or_default();
    // (The SDK's reader shows the header's attributes; the trailer's
    // `lk.transcription_final` is checked by voxguard's own reader.)
    assert!(
        captions.iter().any(
            |c| c["text"].as_str().is_some_and(|t| t.contains("DocuFlow"))
                && c["from"] == report["agent_identity"]
        ),
        "{}",
        fail("reads the agent's greeting as an lk.transcription caption")
    );
    // Any of the phrase book's cannot-hear lines (the choice is random).
    let cannot_hear: Vec<String> = voxguard::recovery::PhraseBook::embedded()
        .variants(voxguard::recovery::Category::CannotHear)
        .iter()
        .map(|v| v.text.clone())
        .collect();
    assert!(
        captions.iter().any(|c| c["text"]
            .as_str()
            .is_some_and(|t| t.len() > 10 && cannot_hear.iter().any(|line| line.contains(t)))),
        "{}",
        fail("the agent heard the caller's microphone (it says it cannot transcribe speech)")
    );
    let states: Vec<&str> = report["states"]
        .as_array()
        .map(|s| s.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert!(
        states.contains(&"speaking") && states.contains(&"listening"),
        "{}",
        fail("sees lk.agent.state follow the voice")
    );
    let answer = report["answer_after_chat_ms"].as_f64();
    assert!(
        answer.is_some_and(|ms| ms < 2000.0),
        "{}",
        fail("hears an answer to its lk.chat within 2 s")
    );
}

/// The stand-in and `voxguard start` in this namespace, and the Python
/// caller against them; returns the caller's report and the agent's log.
async fn call(python: String, wav: PathBuf) -> (Value, String) {
    let server = LoopbackServer::start_with(
        SocketAddr::new(IpAddr::V4(ADDRESS), 0),
        LoopbackConfig {
            media_ips: vec![IpAddr::V4(ADDRESS)],
            ..LoopbackConfig::default()
        },
    )
    .await
    .expect("the stand-in starts on the namespace's address");
    let port = server.local_addr().port();
    let mut agent = Command::new(env!("CARGO_BIN_EXE_voxguard"))
        .arg("start")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("LIVEKIT_URL", format!("ws://{ADDRESS}:{port}"))
        .env("LIVEKIT_API_KEY", &server.config().api_key)
        .env("LIVEKIT_API_SECRET", &server.config().api_secret)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("voxguard start runs");
    // Read the log as it comes, so a full pipe never stalls the agent.
    let mut stderr = agent.stderr.take().unwrap();
    let log_reader = std::thread::spawn(move || {
        let mut log = String::new();
        let _ = stderr.read_to_string(&mut log);
        log
    });
    assert!(
        server
            .wait_until(Duration::from_secs(20), |r| !r.registrations.is_empty())
            .await,
        "the worker registered"
    );
    let room = "interop-room";
    let token = server.participant_token(room, "py-caller", false).unwrap();
    let mut caller = Command::new(python)
        .arg(
            Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
                .join("tests/rtc/livekit_caller.py"),
        )
        .arg(format!("ws://{ADDRESS}:{port}"))
        .arg(token)
        .arg(&wav)
        .arg("We are a team of twelve and we handle invoices")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the Python caller starts");
    // LiveKit dispatches the agent when the caller is in the room.
    assert!(
        server
            .wait_until(Duration::from_secs(30), |r| r
                .room_joins
                .iter()
                .any(|(r, who)| r == room && who == "py-caller"))
            .await,
        "the Python caller joined"
    );
    let job = server
        .dispatch_job(room, "py-caller")
        .await
        .expect("the worker takes the job");
    let started = Instant::now();
    let output = loop {
        if let Some(_status) = caller.try_wait().unwrap() {
            break caller.wait_with_output().unwrap();
        }
        if started.elapsed() > Duration::from_secs(90) {
            let _ = caller.kill();
            break caller.wait_with_output().unwrap();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let report: Value = String::from_utf8_lossy(&output.stdout)
        .lines()
        .rev()
        .find_map(|line| serde_json::from_str(line).ok())
        .unwrap_or_else(|| {
            serde_json::json!({
                "connected": false,
                "errors": [String::from_utf8_lossy(&output.stderr)],
            })
        });
    // The caller left: the job ends, the worker drains on SIGTERM.
    let ended = server
        .wait_until(Duration::from_secs(10), |r| {
            r.job_updates
                .iter()
                .any(|(_, u)| u.job_id == job.job_id && u.status == JobStatus::JsSuccess as i32)
        })
        .await;
    // SAFETY: signalling our own child.
    unsafe {
        libc::kill(agent.id() as i32, libc::SIGTERM);
    }
    let waited = Instant::now();
    while agent.try_wait().unwrap().is_none() && waited.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = agent.kill();
    let _ = agent.wait();
    let log = log_reader.join().unwrap_or_default();
    let mut report = report;
    report["job_ended"] = Value::Bool(ended);
    (report, log)
}

/// CLOCK_MONOTONIC in seconds, the clock Python's `time.monotonic` reads.
fn monotonic() -> f64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and a valid out pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    now.tv_sec as f64 + now.tv_nsec as f64 / 1e9
}

#[test]
fn the_official_python_sdk_is_heard_whole_and_promptly() {
    let _one = crate::one_at_a_time();
    let python = python();
    let dir = std::env::temp_dir().join(format!("voxguard-interop-heard-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let wav = microphone_wav(&dir);
    let sent = {
        let bytes = std::fs::read(&wav).unwrap();
        let pcm = voxguard::media::wav::parse(&bytes).unwrap();
        media_support::at_rate(&pcm, 48_000)
    };
    let (captured, arrivals, received) = std::thread::spawn(move || {
        private_network();
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(listen_to_python(python, wav))
    })
    .join()
    .expect("the call ran");
    let _ = std::fs::remove_dir_all(&dir);

    assert!(
        captured.len() > 100,
        "the Python caller spoke: {} frames",
        captured.len()
    );
    assert!(
        arrivals.len() > 50,
        "its packets arrived: {}",
        arrivals.len()
    );
    let (lag, _) =
        voxguard::media::level::best_alignment(&sent, &received, 48_000, Duration::from_secs(2));
    let skip = (lag.as_millis() / 20) as usize;
    let aligned = &received[(skip * 960).min(received.len())..];
    let likeness = voxguard::media::level::envelope_correlation(&sent, aligned, 48_000);
    // Packet k (20 ms) after the lead-in carries the frames captured at
    // 2k and 2k+1 (10 ms each): its delay is arrival − the later capture.
    let mut delays: Vec<f64> = arrivals
        .iter()
        .skip(skip)
        .enumerate()
        .filter_map(|(k, at)| captured.get(2 * k + 1).map(|c| (at - c) * 1000.0))
        .collect();
    delays.sort_by(f64::total_cmp);
    let median = delays[delays.len() / 2];
    eprintln!(
        "the official SDK's microphone as voxguard's room heard it: {} packets, envelope \
         correlation {likeness:.3}, capture → arrival median {median:.1} ms over {} packets \
         (p90 {:.1} ms)",
        arrivals.len(),
        delays.len(),
        delays[delays.len() * 9 / 10]
    );
    assert!(delays.len() >= 50);
    assert!(
        likeness >= 0.9,
        "what arrived follows what the SDK sent: correlation {likeness:.3}"
    );
}

/// A voxguard room connection (production candidates: the namespace's
/// interface) hears the Python caller speak the WAV; returns the caller's
/// capture times, the arrival times of its packets and their decoded audio.
async fn listen_to_python(python: String, wav: PathBuf) -> (Vec<f64>, Vec<f64>, Vec<i16>) {
    use voxguard::room::{MediaOptions, RoomConnection, RoomOptions};
    let server = LoopbackServer::start_with(
        SocketAddr::new(IpAddr::V4(ADDRESS), 0),
        LoopbackConfig {
            media_ips: vec![IpAddr::V4(ADDRESS)],
            ..LoopbackConfig::default()
        },
    )
    .await
    .unwrap();
    let port = server.local_addr().port();
    let room = "heard-room";
    let token = server.participant_token(room, "listener", true).unwrap();
    let listener = RoomConnection::connect_with(
        &format!("ws://{ADDRESS}:{port}"),
        &token,
        &RoomOptions::with_media(MediaOptions::default()),
    )
    .await
    .expect("voxguard joins with the namespace's address as its candidate");
    let mut inbound = listener.take_inbound().unwrap();
    let caller_token = server.participant_token(room, "py-caller", false).unwrap();
    let mut caller = tokio::process::Command::new(python)
        .arg(
            Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
                .join("tests/rtc/livekit_caller.py"),
        )
        .arg(format!("ws://{ADDRESS}:{port}"))
        .arg(caller_token)
        .arg(&wav)
        .arg("--speak-only")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = caller.stdout.take().unwrap();
    let output = tokio::spawn(async move {
        let mut text = String::new();
        let _ = tokio::io::AsyncReadExt::read_to_string(&mut stdout, &mut text).await;
        text
    });
    let mut decoder = voxguard::media::opus::Decoder::new().unwrap();
    let mut frame = vec![0i16; 5760];
    let mut arrivals = Vec::new();
    let mut received = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        tokio::select! {
            audio = inbound.audio.recv() => {
                let Some(audio) = audio else { break };
                if audio.participant != "py-caller" {
                    continue;
                }
                arrivals.push(monotonic());
                let n = decoder.decode(&audio.packet.payload, &mut frame).expect("valid Opus from libwebrtc");
                received.extend_from_slice(&frame[..n]);
            }
            status = caller.wait() => {
                let _ = status;
                break;
            }
            _ = tokio::time::sleep_until(deadline) => break,
        }
    }
    let text = output.await.unwrap_or_default();
    let report: Value = text
        .lines()
        .rev()
        .find_map(|line| serde_json::from_str(line).ok())
        .unwrap_or(Value::Null);
    let captured: Vec<f64> = report["captured"]
        .as_array()
        .map(|c| c.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_default();
    listener.leave().await;
    (captured, arrivals, received)
}
