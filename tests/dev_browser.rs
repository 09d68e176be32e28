//! The `voxguard dev` page in a real headless browser: Debian's chromium
//! driven by playwright-core (`tests/browser/dev_page.mjs`). A person types
//! to the agent, presses Hang on Salesforce, and watches fillers, failure
//! phrases and the breaker card turning open.
//!
//! `tests/browser/setup.sh` installs chromium and playwright-core when they
//! are missing, so `cargo test --release` works on a fresh machine. Set
//! `VOXGUARD_DEV_SCREENSHOT=docs/dev-page.png` to regenerate the README's
//! screenshot; otherwise it goes to a temporary file.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use tokio::process::Command;
use voxguard::config::Config;
use voxguard::resilience::BreakerState;

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

fn screenshot_path() -> (PathBuf, bool) {
    match std::env::var_os("VOXGUARD_DEV_SCREENSHOT") {
        Some(path) => (PathBuf::from(path), true),
        None => (
            std::env::temp_dir().join(format!("voxguard-dev-page-{}.png", std::process::id())),
            false,
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dev_page_talks_to_the_agent_and_shows_salesforce_failing_until_its_breaker_opens() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
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

    let config = Config::embedded_default().expect("embedded config");
    let stack = voxguard::dev::start(&config, "127.0.0.1:0".parse().unwrap(), 42)
        .await
        .expect("dev stack starts");
    let url = format!("http://{}/", stack.addr);
    let (screenshot, keep) = screenshot_path();

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

    let png = std::fs::read(&screenshot).expect("the screenshot was written");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(
        png.len() > 20_000,
        "a {} byte screenshot is blank",
        png.len()
    );
    if !keep {
        let _ = std::fs::remove_file(&screenshot);
    }
}
