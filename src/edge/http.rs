//! HTTP failures as [`CallError`]s: transport errors, `Retry-After`, bodies
//! read within a limit, JSON that does not decode.

use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, RETRY_AFTER};
use serde::de::DeserializeOwned;

use crate::resilience::CallError;

/// A transport error of a request to `what` (e.g. `hubspot contact search`)
/// that had `timeout` to finish. A connection refused is known not to have
/// reached the service; one closed mid-answer may have.
pub fn classify_transport(error: &reqwest::Error, what: &str, timeout: Duration) -> CallError {
    if error.is_timeout() {
        CallError::Timeout { after: timeout }
    } else if error.is_connect() {
        CallError::Connect {
            detail: format!("{what}: could not connect"),
            sent: false,
        }
    } else if error.is_builder() {
        CallError::Connect {
            detail: format!("{what}: invalid request target"),
            sent: false,
        }
    } else {
        CallError::Connect {
            detail: format!("{what}: connection closed before a complete response"),
            sent: true,
        }
    }
}

/// A non-2xx answer from `what`. Auth failures name the credential to
/// check (`credential_hint`); other details carry only the service's
/// machine-readable error `code`, never its message (it may echo personal
/// data).
pub fn classify_status(
    what: &str,
    credential_hint: &str,
    status: u16,
    retry_after: Option<Duration>,
    code: Option<&str>,
) -> CallError {
    let detail = match status {
        401 => format!("{what} rejected the credentials: check {credential_hint}"),
        403 => format!("{what} refused access: check the permissions of {credential_hint}"),
        _ => match code {
            Some(code) => format!("{what}: {code}"),
            None => what.to_string(),
        },
    };
    CallError::from_status(status, retry_after, Some(detail))
}

/// A service's error code reduced to what is safe to log: ASCII letters,
/// digits, `_` and `-`, at most 64.
pub fn safe_code(code: &str) -> Option<String> {
    let code: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .take(64)
        .collect();
    (!code.is_empty()).then_some(code)
}

/// `Retry-After` as delta-seconds or an HTTP date (relative to `now`; a date
/// in the past means "now").
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The `Retry-After` of a response's headers, if it carries a valid one.
pub fn retry_after_of(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, SystemTime::now()))
}

/// Read a whole body, failing with [`CallError::Decode`] once it passes
/// `limit` bytes (before reading more than that) and classifying a body cut
/// short as a transport failure.
pub async fn read_limited(
    mut response: reqwest::Response,
    limit: usize,
    what: &str,
    timeout: Duration,
) -> Result<Vec<u8>, CallError> {
    let too_large = || CallError::Decode {
        detail: format!("{what}: response body larger than {limit} bytes"),
    };
    if response
        .content_length()
        .is_some_and(|len| len > limit as u64)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| classify_transport(&e, what, timeout))?
    {
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Decode a JSON body; the error says where and what kind of problem, never
/// the content (it may hold personal data).
pub fn decode_json<T: DeserializeOwned>(what: &str, body: &[u8]) -> Result<T, CallError> {
    serde_json::from_slice(body).map_err(|e| {
        let kind = match e.classify() {
            serde_json::error::Category::Io => "io error",
            serde_json::error::Category::Syntax => "malformed JSON",
            serde_json::error::Category::Data => "unexpected JSON shape",
            serde_json::error::Category::Eof => "truncated JSON",
        };
        CallError::Decode {
            detail: format!("{what}: {kind} at line {} column {}", e.line(), e.column()),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(3));
        assert_eq!(parse_retry_after(&later, now), Some(Duration::from_secs(3)));
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(parse_retry_after(&earlier, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn decode_errors_never_echo_the_body() {
        let err =
            decode_json::<Vec<u64>>("salesforce query", br#"["alice@example.com"]"#).unwrap_err();
        let CallError::Decode { detail } = err else {
            panic!("expected Decode")
        };
        assert!(!detail.contains("alice"), "{detail}");
        assert!(detail.contains("unexpected JSON shape"));
        assert!(detail.starts_with("salesforce query"));
    }
}
