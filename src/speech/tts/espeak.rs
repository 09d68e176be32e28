//! The local voice: the `espeak-ng` program, driven as a child process
//! (`espeak-ng --stdout --stdin`), its WAV read from stdout as it is written.
//! Needs no network and no key, so it is the last voice in every chain.
//!
//! The program is run, never linked: libespeak-ng is GPL-3 and keeps global,
//! non-reentrant state. Each sentence is one short-lived process, killed
//! when its stream is dropped (a cancelled answer) and bounded in time (the
//! attempt and stall timeouts) and output (the per-sentence audio cap).
//! `scripts/install-system-deps.sh` installs it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStdout, Command};
use tokio::time::Instant;

use super::{TtsChunk, TtsLimits};
use crate::media::wav;
use crate::resilience::{AttemptCtx, CallError};
use crate::speech::pcm::{AudioFault, PcmAssembler, USABLE_RATES};

pub const NAME: &str = "tts.espeak";

/// The first line `program --version` prints (e.g. `eSpeak NG
/// text-to-speech: 1.51  Data at: …`, the data path dropped), or why there
/// is none.
fn version_of(program: &Path) -> String {
    let output = std::process::Command::new(program)
        .arg("--version")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output();
    match output {
        Ok(output) if output.status.success() => {
            let text = String::from_utf8_lossy(&output.stdout);
            let line = text.lines().next().unwrap_or_default();
            let line = line.split("Data at").next().unwrap_or_default().trim();
            if line.is_empty() {
                "version unknown".into()
            } else {
                line.to_string()
            }
        }
        _ => "version unknown".into(),
    }
}
/// The rate espeak-ng's own voices speak at.
pub const ESPEAK_RATE: u32 = 22_050;
const READ_BUFFER: usize = 8 * 1024;

#[derive(Debug, Clone, PartialEq)]
pub struct EspeakSettings {
    /// The program to run (`espeak-ng`, found on `PATH`).
    pub program: PathBuf,
    /// An espeak-ng voice name, e.g. `en-us`.
    pub voice: String,
    pub words_per_minute: u32,
}

impl Default for EspeakSettings {
    fn default() -> Self {
        EspeakSettings {
            program: PathBuf::from("espeak-ng"),
            voice: "en-us".into(),
            words_per_minute: 175,
        }
    }
}

#[derive(Debug)]
pub struct EspeakTts {
    settings: EspeakSettings,
    /// What `--version` says, asked once.
    version: OnceLock<String>,
}

impl EspeakTts {
    pub fn new(settings: EspeakSettings) -> Self {
        EspeakTts {
            settings,
            version: OnceLock::new(),
        }
    }

    /// What shapes this voice's sound: program and its version (a new
    /// release may say the same text differently), voice and speed.
    pub fn identity(&self) -> String {
        let s = &self.settings;
        let version = self.version.get_or_init(|| version_of(&s.program));
        format!(
            "{NAME} {} ({version}) {} {}wpm",
            s.program.display(),
            s.voice,
            s.words_per_minute
        )
    }

    pub fn settings(&self) -> &EspeakSettings {
        &self.settings
    }

    pub(super) async fn open(
        &self,
        ctx: &AttemptCtx,
        text: &str,
        limits: TtsLimits,
    ) -> Result<EspeakStream, CallError> {
        let started = Instant::now();
        let mut child = Command::new(&self.settings.program)
            .arg("--stdout")
            .arg("--stdin")
            .arg("-v")
            .arg(&self.settings.voice)
            .arg("-s")
            .arg(self.settings.words_per_minute.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|error| spawn_error(&self.settings.program, &error))?;
        let mut stdin = child.stdin.take().ok_or_else(|| broken("no stdin"))?;
        let stdout = child.stdout.take().ok_or_else(|| broken("no stdout"))?;
        // The text is one bounded sentence: writing it cannot fill the pipe.
        let mut input = text.replace('\n', " ");
        input.push('\n');
        match tokio::time::timeout(ctx.timeout, stdin.write_all(input.as_bytes())).await {
            Err(_) => return Err(CallError::Timeout { after: ctx.timeout }),
            Ok(Err(_)) => return Err(broken("it closed its input before reading the text")),
            Ok(Ok(())) => {}
        }
        drop(stdin);
        Ok(EspeakStream {
            child,
            stdout,
            buffer: vec![0; READ_BUFFER],
            header: Some(Vec::new()),
            pcm: PcmAssembler::new(ESPEAK_RATE, limits.max_audio_per_sentence),
            max_audio: limits.max_audio_per_sentence,
            first_until: started + ctx.timeout,
            chunk_stall: limits.chunk_stall,
            ended: false,
        })
    }
}

fn spawn_error(program: &std::path::Path, error: &std::io::Error) -> CallError {
    let detail = if error.kind() == std::io::ErrorKind::NotFound {
        format!(
            "{NAME}: {} is not installed; run scripts/install-system-deps.sh (apt-get install espeak-ng)",
            program.display()
        )
    } else {
        format!("{NAME}: could not start {}: {error}", program.display())
    };
    // The voice cannot work until someone installs it: a permanent failure
    // that still counts against the voice's health.
    CallError::Status {
        code: 501,
        detail: Some(detail),
    }
}

fn broken(what: &str) -> CallError {
    CallError::Connect {
        detail: format!("{NAME}: espeak-ng failed: {what}"),
        sent: true,
    }
}

/// One sentence being spoken by a child process.
#[derive(Debug)]
pub struct EspeakStream {
    child: Child,
    stdout: ChildStdout,
    buffer: Vec<u8>,
    /// Header bytes until the WAV header has been read.
    header: Option<Vec<u8>>,
    pcm: PcmAssembler,
    max_audio: Duration,
    first_until: Instant,
    chunk_stall: Duration,
    ended: bool,
}

impl EspeakStream {
    pub(super) async fn next(&mut self) -> Result<Option<TtsChunk>, CallError> {
        loop {
            if self.ended {
                return Ok(None);
            }
            let stall = if self.pcm.produced() == 0 {
                self.first_until.saturating_duration_since(Instant::now())
            } else {
                self.chunk_stall
            };
            let read = match tokio::time::timeout(stall, self.stdout.read(&mut self.buffer)).await {
                Err(_) => {
                    let _ = self.child.start_kill();
                    return Err(CallError::Timeout { after: stall });
                }
                Ok(Err(_)) => return Err(broken("its output could not be read")),
                Ok(Ok(read)) => read,
            };
            if read == 0 {
                self.ended = true;
                let status = tokio::time::timeout(Duration::from_millis(500), self.child.wait())
                    .await
                    .ok()
                    .and_then(Result::ok);
                if self.header.is_some() {
                    return Err(match status {
                        Some(status) if !status.success() => {
                            broken("it exited with an error before writing audio")
                        }
                        _ => AudioFault::ZeroAudio.into_error(NAME),
                    });
                }
                self.pcm.finish().map_err(|f| f.into_error(NAME))?;
                return Ok(None);
            }
            let mut samples = Vec::with_capacity(read / 2 + 1);
            let bytes = &self.buffer[..read];
            match self.header.as_mut() {
                None => self.pcm.push(bytes, &mut samples),
                Some(held) => {
                    held.extend_from_slice(bytes);
                    match wav::parse_header(held) {
                        Err(wav::WavError::Truncated(_)) if held.len() < wav::MAX_HEADER => {
                            continue;
                        }
                        Err(error) => {
                            return Err(AudioFault::BadWav(error.to_string()).into_error(NAME));
                        }
                        Ok(header) => {
                            if !USABLE_RATES.contains(&header.sample_rate) || header.channels != 1 {
                                return Err(
                                    AudioFault::UnusableRate(header.sample_rate).into_error(NAME)
                                );
                            }
                            let held = self.header.take().unwrap_or_default();
                            self.pcm = PcmAssembler::new(header.sample_rate, self.max_audio);
                            let data = &held[header.data_offset.min(held.len())..];
                            self.pcm.push(data, &mut samples)
                        }
                    }
                }
            }
            .map_err(|fault| {
                let _ = self.child.start_kill();
                fault.into_error(NAME)
            })?;
            if !samples.is_empty() {
                return Ok(Some(TtsChunk {
                    sample_rate: self.pcm.sample_rate(),
                    samples,
                }));
            }
        }
    }
}
