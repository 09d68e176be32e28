//! The error taxonomy every edge classifies into, once.
//!
//! A failure is classified where it happens (HTTP status, timeout, decode) and
//! then travels as a value. Retry decisions read [`CallError::is_transient`];
//! a side-effecting caller additionally reads [`CallError::is_ambiguous`].

use std::fmt;
use std::time::Duration;

/// Why a call was never made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rejection {
    /// The service's circuit breaker is open (or half-open with no probe slot free).
    BreakerOpen,
    /// The service's bulkhead has no free slot.
    BulkheadFull,
    /// The retry budget does not allow another retry right now.
    BudgetExhausted,
    /// The remaining deadline cannot fit another attempt.
    Deadline,
    /// The service has no credentials configured, so it is never called.
    NotConfigured,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Rejection::BreakerOpen => "circuit breaker open",
            Rejection::BulkheadFull => "bulkhead full",
            Rejection::BudgetExhausted => "retry budget exhausted",
            Rejection::Deadline => "deadline too close",
            Rejection::NotConfigured => "service not configured",
        })
    }
}

/// A classified failure of one call or attempt.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CallError {
    /// No answer within the attempt's timeout. The request may have been processed.
    #[error("timed out after {}", humantime::format_duration(*.after))]
    Timeout { after: Duration },
    /// The connection could not be established (the request was never sent),
    /// or it was reset before an answer.
    #[error("connection failed: {detail}")]
    Connect { detail: String, sent: bool },
    /// The service answered with a non-success HTTP status.
    #[error("service answered HTTP {code}{}", detail_suffix(.detail))]
    Status { code: u16, detail: Option<String> },
    /// The service asked us to slow down.
    #[error("rate limited{}", retry_after_suffix(.retry_after))]
    RateLimited { retry_after: Option<Duration> },
    /// The answer could not be decoded (malformed, wrong shape, too large).
    #[error("undecodable response: {detail}")]
    Decode { detail: String },
    /// The call was never made.
    #[error("call rejected: {0}")]
    Rejected(Rejection),
}

fn detail_suffix(detail: &Option<String>) -> String {
    detail
        .as_ref()
        .map(|d| format!(": {d}"))
        .unwrap_or_default()
}

fn retry_after_suffix(retry_after: &Option<Duration>) -> String {
    retry_after
        .map(|d| format!(", retry after {}", humantime::format_duration(d)))
        .unwrap_or_default()
}

/// The kind of an error without its payload, for records, metrics and phrase choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    Timeout,
    Connect,
    Status,
    RateLimited,
    Decode,
    BreakerOpen,
    BulkheadFull,
    BudgetExhausted,
    Deadline,
    NotConfigured,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Timeout => "timeout",
            ErrorKind::Connect => "connect",
            ErrorKind::Status => "status",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::Decode => "decode",
            ErrorKind::BreakerOpen => "breaker_open",
            ErrorKind::BulkheadFull => "bulkhead_full",
            ErrorKind::BudgetExhausted => "budget_exhausted",
            ErrorKind::Deadline => "deadline",
            ErrorKind::NotConfigured => "not_configured",
        }
    }
}

/// HTTP statuses worth retrying: the request was not (or not fully) processed.
pub const TRANSIENT_STATUSES: [u16; 7] = [408, 425, 429, 500, 502, 503, 504];

impl CallError {
    /// Classify an HTTP status. 429 becomes [`CallError::RateLimited`].
    pub fn from_status(code: u16, retry_after: Option<Duration>, detail: Option<String>) -> Self {
        if code == 429 {
            CallError::RateLimited { retry_after }
        } else {
            CallError::Status { code, detail }
        }
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            CallError::Timeout { .. } => ErrorKind::Timeout,
            CallError::Connect { .. } => ErrorKind::Connect,
            CallError::Status { .. } => ErrorKind::Status,
            CallError::RateLimited { .. } => ErrorKind::RateLimited,
            CallError::Decode { .. } => ErrorKind::Decode,
            CallError::Rejected(Rejection::BreakerOpen) => ErrorKind::BreakerOpen,
            CallError::Rejected(Rejection::BulkheadFull) => ErrorKind::BulkheadFull,
            CallError::Rejected(Rejection::BudgetExhausted) => ErrorKind::BudgetExhausted,
            CallError::Rejected(Rejection::Deadline) => ErrorKind::Deadline,
            CallError::Rejected(Rejection::NotConfigured) => ErrorKind::NotConfigured,
        }
    }

    /// Worth another attempt: timeouts, connection failures, rate limits and
    /// the transient HTTP statuses. Decode errors and other statuses are permanent;
    /// rejections are decisions, not failures, and are never retried.
    pub fn is_transient(&self) -> bool {
        match self {
            CallError::Timeout { .. }
            | CallError::Connect { .. }
            | CallError::RateLimited { .. } => true,
            CallError::Status { code, .. } => TRANSIENT_STATUSES.contains(code),
            CallError::Decode { .. } | CallError::Rejected(_) => false,
        }
    }

    /// The request may have taken effect although no success was seen.
    /// A non-idempotent write must not be retried after such an error.
    pub fn is_ambiguous(&self) -> bool {
        match self {
            CallError::Timeout { .. } => true,
            CallError::Connect { sent, .. } => *sent,
            CallError::Status { code, .. } => matches!(code, 500 | 502 | 504),
            CallError::Decode { .. } => true,
            CallError::RateLimited { .. } | CallError::Rejected(_) => false,
        }
    }

    /// Whether this failure says something about the service's health
    /// (and so counts as a failure for its circuit breaker).
    pub fn counts_against_service(&self) -> bool {
        match self {
            CallError::Rejected(_) => false,
            CallError::Status { code, .. } => *code >= 500 || *code == 408,
            CallError::Timeout { .. } | CallError::Connect { .. } | CallError::Decode { .. } => {
                true
            }
            CallError::RateLimited { .. } => false,
        }
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            CallError::RateLimited { retry_after } => *retry_after,
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_statuses_are_exactly_the_documented_ones() {
        for code in 100..600u16 {
            let err = CallError::from_status(code, None, None);
            let expected = TRANSIENT_STATUSES.contains(&code);
            assert_eq!(err.is_transient(), expected, "status {code}");
        }
    }

    #[test]
    fn rejections_are_never_transient_nor_ambiguous() {
        for r in [
            Rejection::BreakerOpen,
            Rejection::BulkheadFull,
            Rejection::BudgetExhausted,
            Rejection::Deadline,
            Rejection::NotConfigured,
        ] {
            let err = CallError::Rejected(r);
            assert!(!err.is_transient());
            assert!(!err.is_ambiguous());
            assert!(!err.counts_against_service());
        }
    }

    #[test]
    fn a_refused_connection_is_not_ambiguous_but_a_reset_after_sending_is() {
        assert!(
            !CallError::Connect {
                detail: "refused".into(),
                sent: false
            }
            .is_ambiguous()
        );
        assert!(
            CallError::Connect {
                detail: "reset".into(),
                sent: true
            }
            .is_ambiguous()
        );
    }
}
