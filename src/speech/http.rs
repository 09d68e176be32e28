//! The HTTP edge of the speech providers: one request within an attempt's
//! time, its failure classified into [`CallError`] once (transport errors,
//! statuses, `Retry-After`), and the successful response handed back for
//! streaming.
//!
//! Details name the provider and what went wrong, never a URL, a header, a
//! key or the audio.

use std::time::{Duration, Instant};

use crate::edge;
use crate::resilience::CallError;

/// Error bodies are read only for a short machine-readable code.
const ERROR_BODY_LIMIT: usize = 16 * 1024;

/// Send `request` with `timeout` for the whole exchange up to the response
/// head; a non-2xx answer becomes a classified error.
pub async fn send(
    provider: &str,
    credential_hint: &str,
    request: reqwest::RequestBuilder,
    timeout: Duration,
) -> Result<reqwest::Response, CallError> {
    if timeout.is_zero() {
        return Err(CallError::Timeout {
            after: Duration::ZERO,
        });
    }
    let response = match tokio::time::timeout(timeout, request.send()).await {
        Err(_) => return Err(CallError::Timeout { after: timeout }),
        Ok(Err(error)) => return Err(edge::classify_transport(&error, provider, timeout)),
        Ok(Ok(response)) => response,
    };
    let status = response.status().as_u16();
    if response.status().is_success() {
        return Ok(response);
    }
    let retry_after = edge::retry_after_of(response.headers());
    let body = read_capped(response, ERROR_BODY_LIMIT)
        .await
        .unwrap_or_default();
    let error = classify_status(provider, credential_hint, status, retry_after, &body);
    tracing::warn!(provider, status, %error, "speech request failed");
    Err(error)
}

/// Classify a non-2xx answer; the detail keeps only an error code from the body.
pub fn classify_status(
    provider: &str,
    credential_hint: &str,
    status: u16,
    retry_after: Option<Duration>,
    body: &[u8],
) -> CallError {
    edge::classify_status(
        provider,
        credential_hint,
        status,
        retry_after,
        error_code(body).as_deref(),
    )
}

/// The next body chunk, or a timeout when none arrives within `stall`.
pub async fn next_chunk(
    provider: &str,
    response: &mut reqwest::Response,
    stall: Duration,
) -> Result<Option<bytes::Bytes>, CallError> {
    match tokio::time::timeout(stall, response.chunk()).await {
        Err(_) => Err(CallError::Timeout { after: stall }),
        Ok(Err(error)) => Err(edge::classify_transport(&error, provider, stall)),
        Ok(Ok(chunk)) => Ok(chunk),
    }
}

/// Read a whole body up to `limit` bytes within `timeout`.
pub async fn read_body(
    provider: &str,
    mut response: reqwest::Response,
    limit: usize,
    timeout: Duration,
) -> Result<Vec<u8>, CallError> {
    let started = Instant::now();
    let mut body = Vec::new();
    loop {
        let left = timeout.saturating_sub(started.elapsed());
        let Some(chunk) = next_chunk(provider, &mut response, left).await? else {
            return Ok(body);
        };
        if body.len() + chunk.len() > limit {
            return Err(CallError::Decode {
                detail: format!("{provider}: response body larger than {limit} bytes"),
            });
        }
        body.extend_from_slice(&chunk);
    }
}

async fn read_capped(mut response: reqwest::Response, limit: usize) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = tokio::time::timeout(Duration::from_millis(500), response.chunk())
        .await
        .ok()?
    {
        if body.len() + chunk.len() > limit {
            break;
        }
        body.extend_from_slice(&chunk);
    }
    Some(body)
}

/// The `error.code` (or `error.type`) of an OpenAI-style error body.
fn error_code(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let error = value.get("error")?;
    let code = error
        .get("code")
        .and_then(|c| c.as_str())
        .or_else(|| error.get("type").and_then(|c| c.as_str()))
        .or_else(|| error.as_str())?;
    edge::http::safe_code(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_429_carries_its_retry_after_and_a_503_is_transient() {
        let limited = classify_status("tts.openai", "KEY", 429, Some(Duration::from_secs(1)), b"");
        assert_eq!(limited.retry_after(), Some(Duration::from_secs(1)));
        assert!(classify_status("tts.openai", "KEY", 503, None, b"").is_transient());
    }

    #[test]
    fn error_bodies_give_their_code_but_never_their_message() {
        let body = br#"{"error":{"message":"bad input: my card is 4111","type":"invalid_request_error","code":"invalid_value"}}"#;
        let error = classify_status("stt.openai", "KEY", 400, None, body);
        let text = error.to_string();
        assert!(text.contains("invalid_value"), "{text}");
        assert!(!text.contains("4111"), "{text}");
        assert!(!error.is_transient());
    }
}
