//! OpenAI-compatible transcription: `POST {base}/audio/transcriptions` with a
//! multipart form (`file` as WAV, `model`, `response_format=json`) over one
//! turn's audio, `{"text": ...}` back. Serves OpenAI and self-hosted
//! compatible servers (faster-whisper servers and the like).

use rand::Rng;
use serde::Deserialize;

use crate::resilience::{AttemptCtx, CallError};
use crate::secret::Secret;
use crate::speech::http;
use crate::speech::pcm::AudioFault;

pub const NAME: &str = "stt.openai";
const ANSWER_LIMIT: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq)]
pub struct OpenAiSttSettings {
    /// Up to and including the version path, e.g. `https://api.openai.com/v1`.
    pub base_url: String,
    pub model: String,
    /// ISO-639-1 hint, e.g. `en`.
    pub language: Option<String>,
    pub api_key: Option<Secret>,
    pub credential_hint: String,
}

impl OpenAiSttSettings {
    pub fn new(base_url: impl Into<String>, api_key: Option<Secret>) -> Self {
        OpenAiSttSettings {
            base_url: base_url.into().trim_end_matches('/').to_string(),
            model: "gpt-4o-mini-transcribe".into(),
            language: Some("en".into()),
            api_key,
            credential_hint: "OPENAI_API_KEY".into(),
        }
    }
}

#[derive(Debug)]
pub struct OpenAiStt {
    client: reqwest::Client,
    settings: OpenAiSttSettings,
}

#[derive(Deserialize)]
struct Answer {
    text: String,
}

impl OpenAiStt {
    pub fn new(client: reqwest::Client, settings: OpenAiSttSettings) -> Self {
        OpenAiStt { client, settings }
    }

    pub fn settings(&self) -> &OpenAiSttSettings {
        &self.settings
    }

    /// Transcribe one WAV file within the attempt's time.
    pub async fn transcribe(&self, ctx: &AttemptCtx, wav: &[u8]) -> Result<String, CallError> {
        let started = tokio::time::Instant::now();
        let boundary = format!("voxguard-{:016x}", rand::rng().random::<u64>());
        let mut fields = vec![
            ("model", self.settings.model.as_str()),
            ("response_format", "json"),
        ];
        if let Some(language) = &self.settings.language {
            fields.push(("language", language.as_str()));
        }
        let body = multipart(&boundary, &fields, wav);
        let mut request = self
            .client
            .post(format!("{}/audio/transcriptions", self.settings.base_url))
            .header(
                reqwest::header::CONTENT_TYPE,
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body);
        if let Some(key) = &self.settings.api_key {
            request = request.bearer_auth(key.expose());
        }
        let response =
            http::send(NAME, &self.settings.credential_hint, request, ctx.timeout).await?;
        let left = ctx.timeout.saturating_sub(started.elapsed());
        let body = http::read_body(NAME, response, ANSWER_LIMIT, left).await?;
        let answer: Answer = serde_json::from_slice(&body).map_err(|_| {
            AudioFault::Garbage("an answer without a \"text\" string".into()).into_error(NAME)
        })?;
        Ok(answer.text.trim().to_string())
    }
}

/// A multipart/form-data body with text `fields` and the audio as `file`.
pub fn multipart(boundary: &str, fields: &[(&str, &str)], wav: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(wav.len() + 512);
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"turn.wav\"\r\nContent-Type: audio/wav\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(wav);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    body
}
