//! `voxguard start` run the way the README tells a user to: the real binary,
//! with only LIVEKIT_URL, LIVEKIT_API_KEY and LIVEKIT_API_SECRET set (no CRM
//! credentials, no --config), against the loopback LiveKit stand-in. It must
//! register, take a job, answer /health/ready, say which services are left
//! out and how to add them, and exit 0 on SIGTERM within its drain timeout —
//! at once when no call is running, even while it waits to reconnect. A
//! call whose room the server closes (its caller gone) ends as the caller's
//! leaving, not as a lost room.

mod support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use livekit_protocol::JobStatus;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

use support::{WAIT, loopback_with, wait_for_status};
use voxguard::config::{Command, Config, DEFAULT_ORIGIN, DEFAULT_TOML};
use voxguard::media::opus::Decoder;
use voxguard::room::data::{
    TOPIC_CHAT, TOPIC_TRANSCRIPTION, TextStreamOptions, new_stream_id, text_stream,
};
use voxguard::room::rtc::Loopback;
use voxguard::room::{MediaInbound, MediaOptions, RoomConnection, RoomOptions};
use voxguard::testbed::livekit::LoopbackConfig;

/// The embedded default's health address: what `start` binds with no config.
const HEALTH: &str = "http://127.0.0.1:8081";

#[test]
fn the_embedded_default_passes_every_commands_validation() {
    // What `voxguard start` with only the LIVEKIT_* variables checks.
    let env = |name: &str| (name == "LIVEKIT_API_SECRET").then(|| "a-secret".to_string());
    for command in [
        Command::Start,
        Command::Dev,
        Command::Console,
        Command::Simulate,
    ] {
        let checked = Config::from_toml_for(command, DEFAULT_TOML, DEFAULT_ORIGIN, &env)
            .unwrap_or_else(|e| panic!("{command:?} accepts the embedded default: {e}"));
        // Only `start` reads the services' credentials, and runs without them.
        assert_eq!(
            checked.warnings.is_empty(),
            command != Command::Start,
            "{command:?}: {:?}",
            checked.warnings
        );
    }
    let config = Config::load(None).expect("the embedded default loads");
    assert_eq!(config.origin, DEFAULT_ORIGIN);
    // `start` builds its worker settings from the same config and the
    // worker's own validation must accept them.
    let mut worker = voxguard::agent::worker_config(
        &config,
        config.livekit.url.clone(),
        config.livekit.api_key.clone(),
        voxguard::secret::Secret::new("a-secret"),
    );
    worker.health_addr = Some(config.worker.health_addr);
    worker
        .validate()
        .expect("the worker accepts the default [worker]");
    let (report, ok) = voxguard::config::profile_cli::check(&config);
    assert!(ok, "profile check passes the default:\n{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_with_only_the_livekit_variables_registers_serves_and_drains() {
    let server = loopback_with(LoopbackConfig {
        api_secret: "lk-signing-secret-7f3a9c".into(),
        ..LoopbackConfig::default()
    })
    .await;
    let mut child = support::voxguard_start(&server)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the binary starts");
    let (log_tx, mut log_rx) = mpsc::unbounded_channel::<String>();
    for stream in [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
    ]
    .into_iter()
    .flatten()
    {
        let log_tx = log_tx.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stream).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let _ = log_tx.send(line);
            }
        });
    }
    drop(log_tx);

    assert!(
        server
            .wait_until(WAIT, |records| !records.registrations.is_empty())
            .await,
        "the worker registered"
    );
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let ready = wait_ready(&http).await;
    assert_eq!(ready, 200, "/health/ready answers 200 once registered");

    let view: serde_json::Value = http
        .get(format!("{HEALTH}/worker"))
        .send()
        .await
        .expect("/worker answers")
        .json()
        .await
        .expect("/worker is JSON");
    let services = view["services"].as_array().expect("services listed");
    for name in ["amplitude", "salesforce", "hubspot", "chilipiper"] {
        let service = services
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("{name} on /worker: {view}"));
        assert_eq!(service["configured"], false, "{name}: {service}");
        assert!(
            service["fix"]
                .as_str()
                .is_some_and(|fix| fix.contains("environment variable")),
            "{name} says what to set: {service}"
        );
    }
    let provider = |name: &str| {
        services
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("{name} on /worker: {view}"))
            .clone()
    };
    assert_eq!(
        provider("tts.espeak")["configured"],
        true,
        "the local voice needs no key"
    );
    let deepgram = provider("stt.deepgram");
    assert_eq!(deepgram["configured"], false);
    assert!(
        deepgram["fix"]
            .as_str()
            .is_some_and(|fix| fix.contains("DEEPGRAM_API_KEY")),
        "{deepgram}"
    );
    assert!(
        view["phrase_cache"]["phrases"].as_u64() > Some(50),
        "{view}"
    );
    let metrics = http
        .get(format!("{HEALTH}/metrics"))
        .send()
        .await
        .expect("/metrics answers")
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("voxguard_service_configured{service=\"hubspot\"} 0"),
        "{metrics}"
    );

    // A caller joins with WebRTC, the way a LiveKit front end does.
    let caller_token = server
        .participant_token("start-room", "caller", false)
        .unwrap();
    let caller = RoomConnection::connect_with(
        &server.url(),
        &caller_token,
        &RoomOptions::with_media(MediaOptions {
            loopback: Loopback::Include,
            ..MediaOptions::default()
        }),
    )
    .await
    .expect("the caller joins with media");
    let mut heard = caller.take_inbound().expect("caller media");
    let job = server
        .dispatch_job("start-room", "caller")
        .await
        .expect("the worker takes the job");
    assert!(
        wait_for_status(&server, &job.job_id, JobStatus::JsRunning).await,
        "the job runs"
    );
    assert!(
        server
            .wait_until(WAIT, |r| r
                .room_joins
                .iter()
                .any(|(room, _)| room == "start-room"))
            .await,
        "the agent joined the room"
    );
    // The agent greets out loud: its audio reaches the caller and decodes
    // to speech, and its words arrive as a caption.
    let greeting = listen(&mut heard, Duration::from_secs(20)).await;
    assert!(
        greeting.packets >= 25 && greeting.level_dbfs > -35.0,
        "the caller hears the greeting: {greeting:?}"
    );
    assert!(
        !greeting.captions.is_empty(),
        "the greeting is captioned on lk.transcription: {greeting:?}"
    );
    // The caller types on lk.chat; the agent answers out loud.
    let chat = text_stream(
        "caller",
        "I want to book a demo for my team",
        &TextStreamOptions::new(TOPIC_CHAT),
        new_stream_id(),
        0,
    )
    .collect::<Vec<_>>();
    assert!(caller.send_data(&chat).await, "the chat went out");
    let answer = listen(&mut heard, Duration::from_secs(20)).await;
    assert!(
        answer.packets >= 25 && !answer.captions.is_empty(),
        "the agent answers the chat out loud: {answer:?}"
    );
    assert!(
        answer.first_packet < Some(Duration::from_secs(2)),
        "the answer starts playing promptly: {answer:?}"
    );
    eprintln!("the caller heard: greeting {greeting:?}, answer {answer:?}");
    let states: Vec<String> = server
        .records()
        .attribute_updates
        .iter()
        .filter(|(room, _, key, _)| room == "start-room" && key == "lk.agent.state")
        .map(|(_, _, _, value)| value.clone())
        .collect();
    assert!(
        states.iter().any(|s| s == "speaking") && states.iter().any(|s| s == "listening"),
        "lk.agent.state follows the voice: {states:?}"
    );
    caller.leave().await;
    let ended = wait_for_status(&server, &job.job_id, JobStatus::JsSuccess).await;
    assert!(
        ended,
        "the call ends cleanly when the caller leaves: {:?} {:?}",
        server.job_statuses(&job.job_id),
        server.records().job_updates
    );

    let pid = child.id().expect("running") as i32;
    // SAFETY: sending a signal to our own child process.
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
    let status = tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .expect("exits within the drain timeout")
        .expect("exit status");
    assert!(status.success(), "exit code 0 after SIGTERM: {status:?}");

    let mut log = Vec::new();
    while let Some(line) = log_rx.recv().await {
        log.push(line);
    }
    let log = log.join("\n");
    eprintln!("voxguard start, with only the LIVEKIT_* variables:\n{log}");
    for variable in [
        "AMPLITUDE_API_KEY",
        "SALESFORCE_TOKEN",
        "HUBSPOT_TOKEN",
        "CHILIPIPER_TOKEN",
    ] {
        assert!(
            log.contains(variable),
            "startup names {variable} for the service it configures:\n{log}"
        );
    }
    assert!(
        !log.contains(&server.config().api_secret),
        "the secret never reaches the log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_while_waiting_to_reconnect_with_no_call_running_exits_at_once_with_0() {
    let server = loopback_with(LoopbackConfig {
        api_secret: "the-signing-secret".into(),
        ..LoopbackConfig::default()
    })
    .await;
    // The stand-in refuses a worker with the wrong secret, so `start` keeps
    // reconnecting with a growing backoff (0.1 s, then up to 0.5, 1, 2, 4 s).
    let mut child = support::voxguard_start(&server)
        .env("LIVEKIT_API_SECRET", "not-the-signing-secret")
        .env("VOXGUARD_HEALTH_ADDR", "127.0.0.1:0")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the binary starts");
    assert!(
        server
            .wait_until(Duration::from_secs(20), |r| r.auth_failures >= 5)
            .await,
        "the worker kept retrying"
    );
    // Now waiting 2 to 4 s before its sixth try.
    tokio::time::sleep(Duration::from_millis(100)).await;

    let signalled = Instant::now();
    let pid = child.id().expect("running") as i32;
    // SAFETY: sending a signal to our own child process.
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("exits")
        .expect("exit status");
    let took = signalled.elapsed();

    assert!(status.success(), "exit code 0 after SIGTERM: {status:?}");
    assert!(
        took < Duration::from_secs(1),
        "SIGTERM took {took:?} to end a worker with no call running"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_whose_caller_hung_up_before_the_agent_joined_ends_when_the_server_closes_the_room()
{
    // Like LiveKit, the stand-in closes a room its callers left, agents
    // or not, once its departure timeout has passed.
    let departure = Duration::from_secs(2);
    let server = loopback_with(LoopbackConfig {
        departure_timeout: departure,
        ..LoopbackConfig::default()
    })
    .await;
    let mut child = support::voxguard_start(&server)
        .env("VOXGUARD_HEALTH_ADDR", "127.0.0.1:0")
        .env("VOXGUARD_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the binary starts");
    let (log_tx, mut log_rx) = mpsc::unbounded_channel::<String>();
    let stderr = child.stderr.take().expect("stderr");
    tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let _ = log_tx.send(line);
        }
    });
    assert!(
        server
            .wait_until(WAIT, |records| !records.registrations.is_empty())
            .await,
        "the worker registered"
    );

    // The caller hangs up while the job is on its way: the agent joins a
    // room no caller is in any more. (Should the agent win the race, the
    // room is tried again: the caller must be gone before it joins.)
    let mut attempt = 0;
    let (room, job, left) = loop {
        attempt += 1;
        let room = format!("brief-call-{attempt}");
        let job = server
            .dispatch_job(&room, "caller")
            .await
            .expect("the worker takes the job");
        assert!(server.participant_leaves(&room, "caller"));
        let left = Instant::now();
        let agent_in_first = server
            .records()
            .room_joins
            .iter()
            .any(|(joined, _)| *joined == room);
        if !agent_in_first {
            break (room, job, left);
        }
        assert!(
            attempt < 5,
            "the agent always joined before the caller left"
        );
        assert!(wait_for_status(&server, &job.job_id, JobStatus::JsSuccess).await);
    };
    assert!(
        server
            .wait_until(WAIT, |r| r
                .room_joins
                .iter()
                .any(|(joined, _)| *joined == room))
            .await,
        "the agent joined the room"
    );
    assert!(
        wait_for_status(&server, &job.job_id, JobStatus::JsSuccess).await,
        "the job ends once the room closes: {:?}",
        server.job_statuses(&job.job_id)
    );
    let took = left.elapsed();
    assert!(
        server.records().rooms_closed.contains(&room),
        "the server closed {room}: {:?}",
        server.records().rooms_closed
    );
    assert!(
        took >= departure && took < departure + Duration::from_secs(5),
        "the call ended {took:?} after the caller left (departure timeout {departure:?})"
    );

    // The call is over, not cut off: it ends as the caller's leaving.
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut ended = None;
    while ended.is_none() {
        let line = tokio::time::timeout_at(deadline, log_rx.recv())
            .await
            .expect("the worker logs the call's end")
            .expect("the worker runs");
        eprintln!("LOG {line}");
        if line.contains("call ended") && line.contains(&room) {
            ended = Some(line);
        }
    }
    let ended = ended.unwrap_or_default();
    assert!(
        ended.contains("caller_left"),
        "a closed room ends the call as the caller's leaving: {ended}"
    );
    child.kill().await.ok();
}

async fn wait_ready(http: &reqwest::Client) -> u16 {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Ok(answer) = http.get(format!("{HEALTH}/health/ready")).send().await {
            let status = answer.status().as_u16();
            if status == 200 || tokio::time::Instant::now() > deadline {
                return status;
            }
        } else if tokio::time::Instant::now() > deadline {
            return 0;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What the caller heard in one stretch: the agent's packets, how loud they
/// decode, and the captions that completed.
#[derive(Debug, Default)]
struct Heard {
    /// From the start of listening to the first packet.
    first_packet: Option<Duration>,
    packets: usize,
    level_dbfs: f32,
    captions: Vec<String>,
}

/// Listens until the agent has spoken and gone quiet for a second (or
/// `limit`): counts packets, decodes them, collects captions.
async fn listen(inbound: &mut MediaInbound, limit: Duration) -> Heard {
    let mut heard = Heard::default();
    let mut decoder = Decoder::new().expect("libopus");
    let mut frame = vec![0i16; 5760];
    let mut energy = 0f64;
    let mut samples = 0usize;
    let start = tokio::time::Instant::now();
    let deadline = start + limit;
    loop {
        let quiet = if heard.packets > 0 && !heard.captions.is_empty() {
            Duration::from_secs(1)
        } else {
            limit
        };
        let wake = (tokio::time::Instant::now() + quiet).min(deadline);
        tokio::select! {
            audio = inbound.audio.recv() => {
                let Some(audio) = audio else { break };
                heard.first_packet.get_or_insert(start.elapsed());
                heard.packets += 1;
                let n = decoder.decode(&audio.packet.payload, &mut frame).expect("valid Opus");
                energy += frame[..n].iter().map(|s| f64::from(*s).powi(2)).sum::<f64>();
                samples += n;
            }
            text = inbound.texts.recv() => {
                let Some(text) = text else { break };
                if text.topic == TOPIC_TRANSCRIPTION {
                    heard.captions.push(text.text);
                }
            }
            _ = tokio::time::sleep_until(wake) => break,
        }
    }
    let rms = (energy / samples.max(1) as f64).sqrt();
    heard.level_dbfs = (20.0 * (rms / 32768.0).max(1e-9).log10()) as f32;
    heard
}
