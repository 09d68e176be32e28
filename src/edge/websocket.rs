//! WebSocket close codes and handshake refusals classified into the one
//! error taxonomy ([`CallError`]), once, at the edge: RFC 6455 close codes
//! and the streaming providers' documented conventions, nothing about any
//! client.
//!
//! | close | meaning | class |
//! |---|---|---|
//! | 1000 normal, 1001 going away | the stream ended | `Connect { sent: true }` if results were still owed, else not an error |
//! | 1006 abnormal (no close frame) | the connection dropped | transient |
//! | 1011 server error (Deepgram `NET-0001`, idle timeout) | the provider failed | transient |
//! | 1012 restart, 1013 try again later | the provider is cycling | transient |
//! | 1008 policy / 1003 unsupported / 1007 bad payload (Deepgram `DATA-0000`) | our request is wrong | permanent |
//! | 4000–4499 provider codes | the provider refused the request | permanent |
//! | 4500–4999 provider codes | the provider failed | transient |
//!
//! ```
//! use voxguard::edge::websocket::{classify_close, CloseVerdict};
//! let verdict = classify_close("deepgram", 1011, "NET-0001");
//! let CloseVerdict::Failed(error) = verdict else { panic!() };
//! assert!(error.is_transient());
//! ```

use std::time::Duration;

use crate::resilience::CallError;

/// What a close frame (or its absence) means for the stream.
#[derive(Debug, Clone, PartialEq)]
pub enum CloseVerdict {
    /// The provider closed normally (1000, 1001).
    Normal,
    /// The stream failed; the error is classified.
    Failed(CallError),
}

/// The close code a connection that vanished without a close frame reports.
pub const ABNORMAL: u16 = 1006;

/// Classify a close frame from `provider` with `code` and its `reason` text.
/// The reason is reduced to a short provider code (e.g. `NET-0001`); free
/// text is never kept because it may echo request content.
pub fn classify_close(provider: &str, code: u16, reason: &str) -> CloseVerdict {
    let reason = short_code(reason);
    let detail = |what: &str| match &reason {
        Some(code_text) => format!("{provider} closed the stream: {what} ({code_text})"),
        None => format!("{provider} closed the stream: {what}"),
    };
    match code {
        1000 | 1001 => CloseVerdict::Normal,
        1006 => CloseVerdict::Failed(CallError::Connect {
            detail: format!("{provider}: the connection dropped without a close frame (1006)"),
            sent: true,
        }),
        1011..=1014 => CloseVerdict::Failed(CallError::Status {
            // Mapped onto the transient HTTP status it corresponds to.
            code: if code == 1013 { 503 } else { 502 },
            detail: Some(detail(&format!("server error {code}"))),
        }),
        1002 | 1003 | 1007 | 1008 | 1009 | 1010 => CloseVerdict::Failed(CallError::Status {
            code: 400,
            detail: Some(detail(&format!(
                "request refused with {code}; check the stream's encoding, sample rate and parameters"
            ))),
        }),
        4000..=4499 => {
            let http = match code {
                4001 | 4401 => 401,
                4003 | 4403 => 403,
                4029 | 4429 => 429,
                _ => 400,
            };
            if http == 429 {
                CloseVerdict::Failed(CallError::RateLimited { retry_after: None })
            } else {
                CloseVerdict::Failed(CallError::Status {
                    code: http,
                    detail: Some(detail(&format!("provider code {code}"))),
                })
            }
        }
        4500..=4999 => CloseVerdict::Failed(CallError::Status {
            code: 503,
            detail: Some(detail(&format!("provider code {code}"))),
        }),
        _ => CloseVerdict::Failed(CallError::Connect {
            detail: detail(&format!("unexpected close code {code}")),
            sent: true,
        }),
    }
}

/// A stream that ended (normally) while results were still owed: the words
/// in flight are lost unless replayed, so it is a transient failure.
pub fn ended_early(provider: &str) -> CallError {
    CallError::Connect {
        detail: format!("{provider} ended the stream before its final result"),
        sent: true,
    }
}

/// Classify a refused WebSocket upgrade (the HTTP answer to the handshake).
/// `retry_after` comes from the answer's `Retry-After` header.
pub fn classify_handshake(
    provider: &str,
    status: u16,
    retry_after: Option<Duration>,
    credential_hint: &str,
) -> CallError {
    let detail = match status {
        401 => format!("{provider} rejected the credentials: check {credential_hint}"),
        402 => format!("{provider} refused the request: the account has no credit left"),
        403 => format!("{provider} refused access: check the permissions of {credential_hint}"),
        _ => format!("{provider} refused the stream with HTTP {status}"),
    };
    CallError::from_status(status, retry_after, Some(detail))
}

/// Keep only a provider's machine-readable code from a close reason
/// (`NET-0001`, `DATA-0000`): ASCII letters, digits and dashes, at most 32.
fn short_code(reason: &str) -> Option<String> {
    let first = reason.split_whitespace().next()?;
    let code: String = first
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .take(32)
        .collect();
    (!code.is_empty()).then_some(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(code: u16) -> CallError {
        match classify_close("deepgram", code, "") {
            CloseVerdict::Failed(error) => error,
            CloseVerdict::Normal => panic!("{code} classified as normal"),
        }
    }

    #[test]
    fn normal_closes_are_not_failures() {
        assert_eq!(classify_close("deepgram", 1000, ""), CloseVerdict::Normal);
        assert_eq!(classify_close("deepgram", 1001, ""), CloseVerdict::Normal);
    }

    #[test]
    fn drops_and_server_errors_are_transient_and_count_against_the_provider() {
        for code in [1006, 1011, 1012, 1013, 4500] {
            let error = failed(code);
            assert!(error.is_transient(), "{code}: {error}");
            assert!(error.counts_against_service(), "{code}: {error}");
        }
    }

    #[test]
    fn policy_and_bad_payload_closes_are_permanent() {
        for code in [1002, 1003, 1007, 1008, 4000, 4401] {
            assert!(!failed(code).is_transient(), "{code}");
        }
    }

    #[test]
    fn the_reason_keeps_only_the_provider_code() {
        let CloseVerdict::Failed(error) =
            classify_close("deepgram", 1011, "NET-0001 caller said my card is 4111")
        else {
            panic!()
        };
        let text = error.to_string();
        assert!(text.contains("NET-0001"), "{text}");
        assert!(!text.contains("4111"), "{text}");
    }

    #[test]
    fn a_refused_handshake_honours_retry_after_and_names_the_credential() {
        let limited = classify_handshake("deepgram", 429, Some(Duration::from_secs(2)), "KEY");
        assert_eq!(limited.retry_after(), Some(Duration::from_secs(2)));
        let auth = classify_handshake("deepgram", 401, None, "DEEPGRAM_API_KEY");
        assert!(!auth.is_transient());
        assert!(auth.to_string().contains("DEEPGRAM_API_KEY"));
    }
}
