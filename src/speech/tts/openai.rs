//! OpenAI-compatible speech: `POST {base}/audio/speech` with
//! `{"model", "input", "voice", "response_format": "pcm"}` and a bearer key;
//! the answer is raw s16le mono at 24 kHz, streamed. Compatible servers that
//! answer WAV instead are read too, and their declared rate must match.

use std::time::Duration;

use reqwest::header::CONTENT_TYPE;
use tokio::time::Instant;

use super::{TtsChunk, TtsLimits};
use crate::media::wav;
use crate::resilience::{AttemptCtx, CallError};
use crate::secret::Secret;
use crate::speech::http;
use crate::speech::pcm::{AudioFault, PcmAssembler};

pub const NAME: &str = "tts.openai";
/// The rate OpenAI's `pcm` format is documented at.
pub const OPENAI_PCM_RATE: u32 = 24_000;
/// Chunks smaller than this (20 ms at 24 kHz) are held for the next bytes.
const MIN_CHUNK_SAMPLES: usize = 480;

/// Where and how to reach the voice.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenAiTtsSettings {
    /// Up to and including the version path, e.g. `https://api.openai.com/v1`.
    pub base_url: String,
    pub model: String,
    pub voice: String,
    /// `None` for servers that need no key.
    pub api_key: Option<Secret>,
    /// The rate raw `pcm` answers are at.
    pub sample_rate: u32,
    /// Named in errors when the key is refused (e.g. `OPENAI_API_KEY`).
    pub credential_hint: String,
}

impl OpenAiTtsSettings {
    pub fn new(base_url: impl Into<String>, api_key: Option<Secret>) -> Self {
        OpenAiTtsSettings {
            base_url: base_url.into().trim_end_matches('/').to_string(),
            model: "gpt-4o-mini-tts".into(),
            voice: "alloy".into(),
            api_key,
            sample_rate: OPENAI_PCM_RATE,
            credential_hint: "OPENAI_API_KEY".into(),
        }
    }
}

#[derive(Debug)]
pub struct OpenAiTts {
    client: reqwest::Client,
    settings: OpenAiTtsSettings,
}

impl OpenAiTts {
    pub fn new(client: reqwest::Client, settings: OpenAiTtsSettings) -> Self {
        OpenAiTts { client, settings }
    }

    /// What shapes this voice's sound: server, model, voice and rate.
    pub fn identity(&self) -> String {
        let s = &self.settings;
        format!(
            "{NAME} {} {} {} {}Hz",
            s.base_url, s.model, s.voice, s.sample_rate
        )
    }

    pub fn settings(&self) -> &OpenAiTtsSettings {
        &self.settings
    }

    pub(super) async fn open(
        &self,
        ctx: &AttemptCtx,
        text: &str,
        limits: TtsLimits,
    ) -> Result<OpenAiStream, CallError> {
        let started = Instant::now();
        let body = serde_json::json!({
            "model": self.settings.model,
            "input": text,
            "voice": self.settings.voice,
            "response_format": "pcm",
        });
        let mut request = self
            .client
            .post(format!("{}/audio/speech", self.settings.base_url))
            .json(&body);
        if let Some(key) = &self.settings.api_key {
            request = request.bearer_auth(key.expose());
        }
        let response =
            http::send(NAME, &self.settings.credential_hint, request, ctx.timeout).await?;
        let is_json = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("json") || v.starts_with("text/"));
        if is_json {
            return Err(
                AudioFault::Garbage("a text answer where audio was expected".into())
                    .into_error(NAME),
            );
        }
        Ok(OpenAiStream {
            response,
            expected_rate: self.settings.sample_rate,
            form: Form::Sniffing(Vec::new()),
            pcm: PcmAssembler::new(self.settings.sample_rate, limits.max_audio_per_sentence),
            first_until: started + ctx.timeout,
            chunk_stall: limits.chunk_stall,
            pending: Vec::new(),
            ended: false,
        })
    }
}

#[derive(Debug)]
enum Form {
    /// Not enough bytes yet to tell raw PCM from WAV.
    Sniffing(Vec<u8>),
    Raw,
}

/// An answer being read.
#[derive(Debug)]
pub struct OpenAiStream {
    response: reqwest::Response,
    expected_rate: u32,
    form: Form,
    pcm: PcmAssembler,
    /// The first chunk must arrive by then (the attempt's time).
    first_until: Instant,
    chunk_stall: Duration,
    pending: Vec<i16>,
    ended: bool,
}

impl OpenAiStream {
    pub(super) async fn next(&mut self) -> Result<Option<TtsChunk>, CallError> {
        loop {
            if self.ended {
                return Ok(self.take_pending(true));
            }
            let stall = if self.pcm.produced() == 0 {
                self.first_until.saturating_duration_since(Instant::now())
            } else {
                self.chunk_stall
            };
            match http::next_chunk(NAME, &mut self.response, stall).await? {
                Some(bytes) => self.accept(&bytes)?,
                None => {
                    self.ended = true;
                    if let Form::Sniffing(held) = std::mem::replace(&mut self.form, Form::Raw) {
                        self.accept_raw(&held)?;
                    }
                    self.pcm.finish().map_err(|f| f.into_error(NAME))?;
                }
            }
            if let Some(chunk) = self.take_pending(false) {
                return Ok(Some(chunk));
            }
        }
    }

    fn accept(&mut self, bytes: &[u8]) -> Result<(), CallError> {
        let Form::Sniffing(held) = &mut self.form else {
            return self.accept_raw(bytes);
        };
        held.extend_from_slice(bytes);
        if held.len() < 4 {
            return Ok(());
        }
        if !held.starts_with(b"RIFF") {
            let held = std::mem::take(held);
            self.form = Form::Raw;
            return self.accept_raw(&held);
        }
        match wav::parse_header(held) {
            Err(wav::WavError::Truncated(_)) if held.len() < wav::MAX_HEADER => Ok(()),
            Err(error) => Err(AudioFault::BadWav(error.to_string()).into_error(NAME)),
            Ok(header) if header.sample_rate != self.expected_rate => Err(AudioFault::WrongRate {
                declared: header.sample_rate,
                expected: self.expected_rate,
            }
            .into_error(NAME)),
            Ok(header) if header.channels != 1 => Err(AudioFault::BadWav(format!(
                "{} channels where mono was asked for",
                header.channels
            ))
            .into_error(NAME)),
            Ok(header) => {
                let rest = held.split_off(header.data_offset.min(held.len()));
                self.form = Form::Raw;
                self.accept_raw(&rest)
            }
        }
    }

    fn accept_raw(&mut self, bytes: &[u8]) -> Result<(), CallError> {
        self.pcm
            .push(bytes, &mut self.pending)
            .map_err(|f| f.into_error(NAME))
    }

    fn take_pending(&mut self, at_end: bool) -> Option<TtsChunk> {
        let enough =
            self.pending.len() >= MIN_CHUNK_SAMPLES || (at_end && !self.pending.is_empty());
        enough.then(|| TtsChunk {
            sample_rate: self.pcm.sample_rate(),
            samples: std::mem::take(&mut self.pending),
        })
    }
}
