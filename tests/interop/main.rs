//! Tests against independent real clients that load the machine: Chromium
//! driving the dev page, LiveKit's Python SDK (libwebrtc) and aiortc, each
//! in a private network namespace. A binary of their own, so the suite's
//! timing-sensitive tests never share the cores with a browser.
//!
//! `cargo test --release --test interop dev_browser::`

#[path = "../dev_browser.rs"]
mod dev_browser;
#[path = "../livekit_interop.rs"]
mod livekit_interop;
#[path = "../rtc_aiortc.rs"]
mod rtc_aiortc;

/// Chromium and LiveKit's Python SDK each take most of a core: their tests
/// run one at a time, so what one measures is not another's load.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}
