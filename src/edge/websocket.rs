//! WebSocket closes as [`CallError`]s. Streaming providers (speech
//! recognition, streamed voices) end a stream with a close code; whether it
//! is worth reconnecting depends on the code.

use crate::resilience::CallError;

/// A stream to `what` closed with `code` (`None`: the connection dropped
/// without a close frame, which is 1006 on the wire) and `reason`.
///
/// - 1000 (normal) and 1001 (going away) mid-stream: the service ended it;
///   transient (reconnect and carry on).
/// - 1006 (abnormal, no close frame), 1011 (server error), 1012 (restart),
///   1013 (try again later), 1014 (bad gateway): transient.
/// - 1002, 1003, 1007, 1008, 1009, 1010: the request itself is at fault
///   (bad audio format, policy, too big); permanent, mapped to HTTP-like
///   4xx statuses so breakers do not count them against the service.
/// - 4000-4999, provider-defined: 4xx-like unless the provider says
///   otherwise; treated as permanent.
pub fn classify_close(what: &str, code: Option<u16>, reason: &str) -> CallError {
    let reason: String = reason
        .chars()
        .filter(|c| !c.is_control())
        .take(120)
        .collect();
    let detail = match code {
        Some(code) if reason.is_empty() => format!("{what}: stream closed with {code}"),
        Some(code) => format!("{what}: stream closed with {code} ({reason})"),
        None => format!("{what}: connection dropped without a close frame (1006)"),
    };
    match code.unwrap_or(1006) {
        1000 | 1001 | 1006 | 1011 | 1012 | 1013 | 1014 => CallError::Connect { detail, sent: true },
        1009 => CallError::Status {
            code: 413,
            detail: Some(detail),
        },
        1008 => CallError::Status {
            code: 403,
            detail: Some(detail),
        },
        _ => CallError::Status {
            code: 400,
            detail: Some(detail),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropped_and_server_side_closes_are_worth_a_reconnect() {
        for code in [None, Some(1006), Some(1011), Some(1012), Some(1013)] {
            let err = classify_close("stt.deepgram", code, "NET-0001");
            assert!(err.is_transient(), "{code:?}: {err}");
        }
    }

    #[test]
    fn a_request_the_service_refuses_is_not_retried_nor_held_against_it() {
        for code in [1002, 1003, 1007, 1008, 1009, 4001] {
            let err = classify_close("stt.deepgram", Some(code), "DATA-0000");
            assert!(!err.is_transient(), "{code}: {err}");
            assert!(!err.counts_against_service(), "{code}: {err}");
        }
    }

    #[test]
    fn the_reason_is_kept_short_and_printable() {
        let err = classify_close("tts", Some(1011), &format!("bad\u{7}{}", "x".repeat(500)));
        let text = err.to_string();
        assert!(!text.contains('\u{7}'));
        assert!(text.len() < 220, "{}", text.len());
    }
}
