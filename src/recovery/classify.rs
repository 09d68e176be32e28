//! How a failed call is classified for the caller and the transcript: which
//! phrase category it is spoken with, and which result it is recorded as.

use std::time::Duration;

use super::phrases::Category;
use super::tool::ToolFailure;
use super::transcript::ToolResult;
use crate::resilience::{CallError, ErrorKind, Rejection};

/// Which phrase category a failure is spoken with.
pub fn category_for(error: &CallError) -> Category {
    match error {
        CallError::Timeout { .. } | CallError::Rejected(Rejection::Deadline) => Category::Timeout,
        CallError::Connect { .. } => Category::ConnectionIssue,
        CallError::Rejected(_) => Category::ServiceUnavailable,
        CallError::Status {
            code: 404 | 410, ..
        } => Category::DataNotFound,
        CallError::Status { code: 503, .. } => Category::ServiceUnavailable,
        CallError::RateLimited { .. } => Category::RateLimited,
        CallError::Status { .. } | CallError::Decode { .. } => Category::ToolFailure,
    }
}

pub(crate) fn failure_result(
    failure: &ToolFailure,
    unknown: bool,
    elapsed: Duration,
) -> ToolResult {
    match failure {
        ToolFailure::Call(err) if unknown => ToolResult::UnknownOutcome {
            error: Some(err.kind()),
            message: err.to_string(),
        },
        ToolFailure::Panicked(message) if unknown => ToolResult::UnknownOutcome {
            error: None,
            message: message.clone(),
        },
        ToolFailure::Panicked(message) => ToolResult::Panicked {
            message: message.clone(),
        },
        ToolFailure::Call(err)
            if matches!(err.kind(), ErrorKind::Timeout | ErrorKind::Deadline) =>
        {
            ToolResult::TimedOut {
                after_ms: elapsed.as_millis() as u64,
            }
        }
        ToolFailure::Call(err) => ToolResult::Error {
            error: err.kind(),
            message: err.to_string(),
        },
    }
}
