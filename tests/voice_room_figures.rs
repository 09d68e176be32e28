//! Figures for calls that hear and speak, printed (run with `--nocapture`):
//! `voxguard start` as its own process against the stand-in, and scripted
//! WebRTC callers in this process, several calls at once. Each caller waits
//! for the greeting, types on lk.chat, then speaks (the agent has no
//! recognizer here, so it says it cannot make out speech). Measured at the
//! caller's ear: greeting, chat → answer and end of speech → answer; and
//! the worker's CPU per call-minute and resident memory per call.
//! The assertions only check that every call was heard both ways.
//!
//! `VOXGUARD_FIGURE_CALLS=50 cargo test --release --test voice_room_figures -- --nocapture`

#[path = "media_support.rs"]
mod media_support;
mod support;

use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;
use voxguard::media::opus::EncoderConfig;
use voxguard::media::packetize;
use voxguard::testbed::livekit::{LoopbackConfig, LoopbackServer, ScriptedCaller};

const QUIET: Duration = Duration::from_millis(1200);
const LIMIT: Duration = Duration::from_secs(30);

fn proc_stat(pid: u32) -> (f64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or_default();
    let fields: Vec<&str> = after.split_whitespace().collect();
    // utime, stime, cutime and cstime are fields 14 to 17 (1-based), 11 to
    // 14 after ")": the worker's own CPU and its finished children's (the
    // local voice runs espeak-ng processes).
    let ticks: f64 = fields
        .get(11..15)
        .map(|f| f.iter().filter_map(|v| v.parse::<f64>().ok()).sum())
        .unwrap_or(0.0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss_kib = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    (ticks / 100.0, rss_kib * 1024)
}

#[derive(Debug, Default, Clone)]
struct CallFigures {
    greeting_ms: f64,
    chat_answer_ms: f64,
    speech_answer_ms: f64,
    duration_s: f64,
}

fn percentile(values: &mut [f64], p: f64) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    if values.is_empty() {
        return f64::NAN;
    }
    values[((values.len() - 1) as f64 * p).round() as usize]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_with_media_measured_at_the_callers_ear() {
    media_support::system_deps();
    let calls: usize = std::env::var("VOXGUARD_FIGURE_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6);
    let utterance: Vec<Bytes> = packetize(
        EncoderConfig::default(),
        48_000,
        &media_support::speech_48k("Hello, can you hear me? I need help with invoices."),
    )
    .unwrap();
    let server = LoopbackServer::start_isolated(
        ([127, 0, 0, 1], 0).into(),
        LoopbackConfig {
            keep_history: false,
            ..LoopbackConfig::default()
        },
    )
    .await
    .unwrap();
    let mut worker = support::voxguard_start(&server)
        .env("VOXGUARD_MAX_SESSIONS", (calls + 2).to_string())
        .env("VOXGUARD_HEALTH_ADDR", "127.0.0.1:0")
        .env("VOXGUARD_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = worker.id().unwrap();
    assert!(
        server
            .wait_until(Duration::from_secs(20), |r| r.registrations.len() == 1)
            .await
    );
    // The phrase cache renders in the background at start; measure after it.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let (cpu_before, rss_before) = proc_stat(pid);

    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(rss_before));
    let sampler = {
        let peak = peak.clone();
        tokio::spawn(async move {
            loop {
                let (_, rss) = proc_stat(pid);
                peak.fetch_max(rss, std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };

    let mut tasks = Vec::new();
    for i in 0..calls {
        let server = server.clone();
        let utterance = utterance.clone();
        tasks.push(tokio::spawn(async move {
            let room = format!("figures-{i}");
            let identity = format!("caller-{i}");
            let caller = ScriptedCaller::join(&server, &room, &identity)
                .await
                .expect("caller joins");
            assert!(caller.microphone_ready(LIMIT).await);
            let started = Instant::now();
            server
                .dispatch_job(&room, &identity)
                .await
                .expect("dispatched");
            let greeting = caller.until_quiet(started, QUIET, LIMIT).await;
            let greeted = greeting.first_audible_after(started);
            let typed = caller.type_text("We are a team of twelve").await;
            let answered = caller.until_quiet(typed, QUIET, LIMIT).await;
            let chat_answer = answered.first_audible_after(typed);
            let said = caller.say(&utterance).await;
            let heard = caller.until_quiet(said, QUIET, LIMIT).await;
            let speech_answer = heard.first_audible_after(said);
            caller.leave().await;
            let ms = |from: Instant, to: Option<Instant>| {
                to.map(|t| (t - from).as_secs_f64() * 1000.0)
                    .unwrap_or(f64::NAN)
            };
            CallFigures {
                greeting_ms: ms(started, greeted),
                chat_answer_ms: ms(typed, chat_answer),
                speech_answer_ms: ms(said, speech_answer),
                duration_s: started.elapsed().as_secs_f64(),
            }
        }));
    }
    let mut figures = Vec::new();
    for task in tasks {
        figures.push(task.await.expect("call ran"));
    }
    let (cpu_after, _) = proc_stat(pid);
    sampler.abort();
    let rss_peak = peak.load(std::sync::atomic::Ordering::Relaxed);
    let _ = worker.kill().await;

    let call_minutes: f64 = figures.iter().map(|f| f.duration_s).sum::<f64>() / 60.0;
    let mut greeting: Vec<f64> = figures.iter().map(|f| f.greeting_ms).collect();
    let mut chat: Vec<f64> = figures.iter().map(|f| f.chat_answer_ms).collect();
    let mut speech: Vec<f64> = figures.iter().map(|f| f.speech_answer_ms).collect();
    let unheard = figures
        .iter()
        .filter(|f| {
            f.greeting_ms.is_nan() || f.chat_answer_ms.is_nan() || f.speech_answer_ms.is_nan()
        })
        .count();
    eprintln!(
        "{calls} concurrent calls with media through the stand-in:\n\
         greeting heard after dispatch  p50 {:.0} ms  max {:.0} ms\n\
         lk.chat → first answer audio   p50 {:.0} ms  max {:.0} ms\n\
         end of speech → first audio    p50 {:.0} ms  max {:.0} ms\n\
         worker CPU (with its espeak-ng children) {:.2} s per call-minute ({:.1} call-minutes), RSS {:.0} KiB per call (peak {:.1} MiB, idle {:.1} MiB)",
        percentile(&mut greeting, 0.5),
        percentile(&mut greeting, 1.0),
        percentile(&mut chat, 0.5),
        percentile(&mut chat, 1.0),
        percentile(&mut speech, 0.5),
        percentile(&mut speech, 1.0),
        (cpu_after - cpu_before) / call_minutes.max(1e-9),
        call_minutes,
        (rss_peak.saturating_sub(rss_before)) as f64 / calls as f64 / 1024.0,
        rss_peak as f64 / 1048576.0,
        rss_before as f64 / 1048576.0,
    );
    assert_eq!(
        unheard, 0,
        "every caller heard the agent each time: {figures:?}"
    );
}
