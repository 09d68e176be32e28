//! Helpers shared by the media tests that need the system's libopus and
//! espeak-ng: `scripts/install-system-deps.sh` installs them when missing
//! (once per test binary), and `speak` renders real speech to test with.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use voxguard::media::resample::Resampler;
use voxguard::media::wav::{self, Pcm};

const INSTALL_HINT: &str = "run `scripts/install-system-deps.sh` as root (it installs libopus0 and \
espeak-ng with apt-get), or install those two packages with your system's package manager";

/// Make sure libopus0 and espeak-ng are installed; panics with what to do
/// when they cannot be.
pub fn system_deps() {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    let outcome = DONE.get_or_init(|| {
        let script = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
            .join("scripts/install-system-deps.sh");
        let output = Command::new("bash")
            .arg(&script)
            .output()
            .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{} failed ({}): {}",
                script.display(),
                output.status,
                String::from_utf8_lossy(&output.stderr)
            ))
        }
    });
    if let Err(e) = outcome {
        panic!("{e}\n{INSTALL_HINT}");
    }
}

/// `text` spoken by espeak-ng (22 050 Hz mono).
pub fn speak(text: &str) -> Pcm {
    system_deps();
    let output = Command::new("espeak-ng")
        .args(["-v", "en-us", "-s", "160", "--stdout", text])
        .output()
        .unwrap_or_else(|e| panic!("cannot run espeak-ng: {e}; {INSTALL_HINT}"));
    assert!(
        output.status.success(),
        "espeak-ng failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    wav::parse(&output.stdout).expect("espeak-ng writes WAV")
}

/// Convert `pcm` to `rate` with voxguard's own resampler, tail included.
pub fn at_rate(pcm: &Pcm, rate: u32) -> Vec<i16> {
    let mut resampler = Resampler::new(pcm.sample_rate, rate).expect("supported ratio");
    let mut out = Vec::new();
    resampler.process(&pcm.samples, &mut out);
    resampler.flush(&mut out);
    out
}

/// `text` spoken at 48 kHz, padded with silence to whole 20 ms frames.
pub fn speech_48k(text: &str) -> Vec<i16> {
    let mut samples = at_rate(&speak(text), 48_000);
    samples.resize(samples.len().div_ceil(960) * 960, 0);
    samples
}
