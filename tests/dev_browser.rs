//! The `voxguard dev` page in a real headless browser: Debian's chromium
//! driven by playwright-core (`tests/browser/dev_page.mjs`).
//!
//! - A typed call: a person types to the agent, presses Hang on
//!   Salesforce, and watches fillers, failure phrases and the breaker card
//!   turning open.
//! - A spoken call: the page joins over WebRTC with a WAV made by espeak-ng
//!   as its microphone, the speech simulator as the agent's recognizer; it
//!   hears the greeting, its spoken turn is answered out loud, and with
//!   Salesforce hanging the caller hears the agent within 750 ms of the
//!   lookup starting; with the simulated voice hanging, the caller still
//!   hears the answer (cached phrases, then the local voice). Chromium
//!   leaves loopback out of WebRTC, so the browser and the dev stack run
//!   in a private network namespace (root needed).
//!
//! `tests/browser/setup.sh` installs chromium and playwright-core when they
//! are missing, so `cargo test --release` works on a fresh machine. Set
//! `VOXGUARD_DEV_SCREENSHOT=docs/dev-page.png` (typed call) or
//! `VOXGUARD_DEV_VOICE_SCREENSHOT=docs/dev-page-voice.png` (spoken call) to
//! regenerate the README's screenshots; otherwise they go to temporary files.

#[path = "media_support.rs"]
mod media_support;
#[path = "netns_support.rs"]
mod netns_support;

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use tokio::process::Command;
use voxguard::config::Config;
use voxguard::config::CredentialRef;
use voxguard::dev::DevOptions;
use voxguard::media::wav::{self, Pcm};
use voxguard::resilience::BreakerState;
use voxguard::testbed::speech::SpeechSimulator;

/// The browser script keeps itself under 60 s; this is the backstop.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(120);
/// Installing chromium from scratch downloads a few hundred megabytes.
const SETUP_TIMEOUT: Duration = Duration::from_secs(900);
const INSTALL_HINT: &str = "install Debian's chromium (`apt-get install -y chromium`) and Node.js 20+ \
with npm, then run `tests/browser/setup.sh` (it runs `npm ci` in tests/browser)";

async fn run(command: &mut Command, timeout: Duration, what: &str) -> Output {
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}; {INSTALL_HINT}"));
    tokio::time::timeout(timeout, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within {timeout:?}"))
        .unwrap_or_else(|e| panic!("{what} failed to run: {e}"))
}

fn screenshot_path(variable: &str, name: &str) -> (PathBuf, bool) {
    match std::env::var_os(variable) {
        Some(path) => (PathBuf::from(path), true),
        None => (
            std::env::temp_dir().join(format!("voxguard-{name}-{}.png", std::process::id())),
            false,
        ),
    }
}

async fn browser_setup(root: &Path) {
    let setup = run(
        Command::new("bash").arg(root.join("tests/browser/setup.sh")),
        SETUP_TIMEOUT,
        "tests/browser/setup.sh",
    )
    .await;
    assert!(
        setup.status.success(),
        "tests/browser/setup.sh failed ({}): {}\n{INSTALL_HINT}",
        setup.status,
        String::from_utf8_lossy(&setup.stderr)
    );
}

fn check_screenshot(screenshot: &Path, keep: bool) {
    let png = std::fs::read(screenshot).expect("the screenshot was written");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(
        png.len() > 20_000,
        "a {} byte screenshot is blank",
        png.len()
    );
    if !keep {
        let _ = std::fs::remove_file(screenshot);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dev_page_talks_to_the_agent_and_shows_salesforce_failing_until_its_breaker_opens() {
    let _one = crate::one_at_a_time();
    let root = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    browser_setup(root).await;

    let config = Config::embedded_default().expect("embedded config");
    let stack = voxguard::dev::start(&config, "127.0.0.1:0".parse().unwrap(), 42)
        .await
        .expect("dev stack starts");
    let url = format!("http://{}/", stack.addr);
    let (screenshot, keep) = screenshot_path("VOXGUARD_DEV_SCREENSHOT", "dev-page");

    let browser = run(
        Command::new("node")
            .current_dir(root)
            .arg("tests/browser/dev_page.mjs")
            .arg(&url)
            .arg(&screenshot),
        BROWSER_TIMEOUT,
        "node tests/browser/dev_page.mjs",
    )
    .await;
    let stdout = String::from_utf8_lossy(&browser.stdout);
    let stderr = String::from_utf8_lossy(&browser.stderr);
    assert!(
        browser.status.success(),
        "the browser test failed ({}):\n{stdout}\n{stderr}",
        browser.status
    );

    for step in [
        "greeting: Hi there",
        "salesforce card: closed",
        "reply: A team of 8",
        "fault: salesforce hang",
        "call 1: filler \"",
        "breaker: open after ",
        "screenshot: ",
    ] {
        assert!(stdout.contains(step), "missing `{step}` in:\n{stdout}");
    }
    let line = |prefix: &str| stdout.lines().find(|l| l.starts_with(prefix)).unwrap_or("");
    assert!(
        line("call 1: ").contains("\" then failure \""),
        "a filler, then a failure phrase: {stdout}"
    );

    // What the page showed is what the stack did.
    let salesforce = &stack.state.agent.sessions.bindings["salesforce"];
    assert_ne!(salesforce.guard.breaker().state(), BreakerState::Closed);
    let hung = stack
        .state
        .sim
        .requests()
        .iter()
        .filter(|r| r.endpoint.starts_with("salesforce.") && r.fault == "hang")
        .count();
    assert!(hung >= 3, "{hung} hung Salesforce requests");

    check_screenshot(&screenshot, keep);
}

/// The caller's microphone: `SPOKEN` after enough silence for the greeting
/// to end, as a 48 kHz WAV; the same words registered with the recognizer.
const SPOKEN: &str = "we are a team of twelve people";
const GREETING_ROOM: Duration = Duration::from_secs(13);

fn microphone_wav(dir: &Path) -> (PathBuf, Pcm) {
    let speech = media_support::speak(SPOKEN);
    let mut samples = vec![0i16; 48 * GREETING_ROOM.as_millis() as usize];
    samples.extend(media_support::at_rate(&speech, 48_000));
    samples.extend(std::iter::repeat_n(0, 48_000 * 3));
    let path = dir.join("caller.wav");
    std::fs::write(&path, wav::write(48_000, &samples)).expect("the WAV is written");
    let at_16k = Pcm {
        sample_rate: 16_000,
        samples: media_support::at_rate(&speech, 16_000),
    };
    (path, at_16k)
}

#[test]
fn the_dev_page_talks_out_loud_with_the_agent_over_webrtc() {
    let _one = crate::one_at_a_time();
    let root = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    media_support::system_deps();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(browser_setup(root));
    let dir = std::env::temp_dir().join(format!("voxguard-dev-voice-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (wav_path, utterance) = microphone_wav(&dir);
    let (screenshot, keep) = screenshot_path("VOXGUARD_DEV_VOICE_SCREENSHOT", "dev-page-voice");

    let call_dir = dir.clone();
    let shot = screenshot.clone();
    let output = std::thread::spawn(move || {
        netns_support::private_network();
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(spoken_call(root, &call_dir, &wav_path, &utterance, &shot))
    })
    .join()
    .expect("the spoken call ran");
    let _ = std::fs::remove_dir_all(&dir);

    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("{stdout}");
    assert!(
        output.status.success(),
        "the browser test failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    for step in [
        "greeting audible: ",
        "greeting caption: ",
        "spoken turn: mouth-to-ear ",
        "spoken turn answered: ",
        "fault: salesforce hang",
        "lookup covered: ",
        "failure phrase: ",
        "lookup wait: longest silence ",
        "agent audible: ",
        "speech card stt.deepgram: closed",
        "fault: tts.openai hang",
        "answered with the voice hanging: ",
        "screenshot: ",
    ] {
        assert!(stdout.contains(step), "missing `{step}` in:\n{stdout}");
    }
    check_screenshot(&screenshot, keep);
}

/// The dev stack with the speech simulator as its recognizer, and the page
/// in Chromium, both in this thread's network namespace.
async fn spoken_call(
    root: &'static Path,
    dir: &Path,
    wav_path: &Path,
    utterance: &Pcm,
    screenshot: &Path,
) -> Output {
    // `VOXGUARD_LOG=voxguard::voice=debug` shows the agent's side.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("VOXGUARD_LOG"))
        .with_test_writer()
        .try_init();
    let speech = SpeechSimulator::start(([127, 0, 0, 1], 0).into(), 7)
        .await
        .expect("speech simulator");
    speech.register_utterance(SPOKEN, utterance);
    let key_file = dir.join("deepgram-key");
    std::fs::write(&key_file, speech.credentials().deepgram.expose()).unwrap();
    let mut config = Config::embedded_default().expect("embedded config");
    config.speech.stt = vec!["deepgram".into()];
    config.speech.deepgram.url = speech.deepgram_url();
    config.speech.deepgram.credentials = CredentialRef::File(key_file);
    // The voice `voxguard dev` puts first on a machine with no voice key:
    // the simulator's, breakable from the page, then the local voice.
    let options = DevOptions::simulated_voice(&mut config, speech).expect("simulated voice");
    let stack = voxguard::dev::start_with(&config, "127.0.0.1:0".parse().unwrap(), 42, options)
        .await
        .expect("dev stack starts");
    assert!(
        stack.state.hears,
        "the speech simulator is the agent's recognizer"
    );
    let url = format!("http://{}/", stack.addr);
    let output = run(
        Command::new("node")
            .current_dir(root)
            .arg("tests/browser/dev_page.mjs")
            .arg(&url)
            .arg(screenshot)
            .arg(format!("--voice={}", wav_path.display())),
        BROWSER_TIMEOUT,
        "node tests/browser/dev_page.mjs --voice",
    )
    .await;
    // What the page measured is what the stack did.
    let hung = stack
        .state
        .sim
        .requests()
        .iter()
        .filter(|r| r.endpoint.starts_with("salesforce.") && r.fault == "hang")
        .count();
    let voice_hung = stack
        .state
        .speech_sim
        .as_ref()
        .expect("the simulated voice")
        .requests()
        .iter()
        .filter(|r| r.provider == "openai_tts" && r.fault == "hang")
        .count();
    if output.status.success() {
        assert!(hung >= 1, "the lookup reached the hanging Salesforce");
        assert!(voice_hung >= 1, "a sentence reached the hanging voice");
    }
    output
}
