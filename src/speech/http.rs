//! The HTTP edge of the speech providers: one request within an attempt's
//! time, its failure classified into [`CallError`] once (transport errors,
//! statuses, `Retry-After`), and the successful response handed back for
//! streaming.
//!
//! Details name the provider and what went wrong, never a URL, a header, a
//! key or the audio.

use std::time::{Duration, Instant, SystemTime};

use reqwest::header::RETRY_AFTER;

use crate::resilience::CallError;
use crate::services::ratelimit::parse_retry_after;

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
        Ok(Err(error)) => return Err(classify_transport(provider, &error, timeout)),
        Ok(Ok(response)) => response,
    };
    let status = response.status().as_u16();
    if response.status().is_success() {
        return Ok(response);
    }
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, SystemTime::now()));
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
    let detail = match status {
        401 => format!("{provider} rejected the credentials: check {credential_hint}"),
        403 => format!("{provider} refused access: check the permissions of {credential_hint}"),
        _ => match error_code(body) {
            Some(code) => format!("{provider}: {code}"),
            None => provider.to_string(),
        },
    };
    CallError::from_status(status, retry_after, Some(detail))
}

/// Classify a transport failure (no HTTP status).
pub fn classify_transport(provider: &str, error: &reqwest::Error, timeout: Duration) -> CallError {
    if error.is_timeout() {
        CallError::Timeout { after: timeout }
    } else if error.is_connect() {
        CallError::Connect {
            detail: format!("{provider}: could not connect"),
            sent: false,
        }
    } else if error.is_builder() {
        CallError::Connect {
            detail: format!("{provider}: invalid request target; check base_url"),
            sent: false,
        }
    } else {
        CallError::Connect {
            detail: format!("{provider}: connection closed before a complete response"),
            sent: true,
        }
    }
}

/// The next body chunk, or a timeout when none arrives within `stall`.
pub async fn next_chunk(
    provider: &str,
    response: &mut reqwest::Response,
    stall: Duration,
) -> Result<Option<bytes::Bytes>, CallError> {
    match tokio::time::timeout(stall, response.chunk()).await {
        Err(_) => Err(CallError::Timeout { after: stall }),
        Ok(Err(error)) => Err(classify_transport(provider, &error, stall)),
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
    let code: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .take(64)
        .collect();
    (!code.is_empty()).then_some(code)
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
