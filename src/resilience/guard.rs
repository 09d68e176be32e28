//! Guard: the one place that composes budget, bulkhead, breaker and retries
//! under a deadline.
//!
//! CONTRACT (kept stable for callers): `GuardConfig`, `Retryability`,
//! `AttemptCtx`, `AttemptRecord`, `Outcome`, `Guard::new`, `Guard::call`.
//! The body below is a provisional single-attempt implementation.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::backoff::BackoffConfig;
use super::breaker::BreakerConfig;
use super::budget::BudgetConfig;
use super::deadline::Deadline;
use super::error::{CallError, ErrorKind, Rejection};
use super::retry::RetryConfig;

#[derive(Debug, Clone, PartialEq)]
pub struct GuardConfig {
    pub service: String,
    pub retry: RetryConfig,
    pub breaker: BreakerConfig,
    pub bulkhead_size: u32,
    pub budget: BudgetConfig,
}

/// Which failures a call may be retried after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retryability {
    /// Reads and idempotent writes: any transient error.
    Transient,
    /// Non-idempotent writes: only transient errors that are not ambiguous
    /// (the request provably did not take effect).
    Unambiguous,
    /// Never retry.
    Never,
}

/// What one attempt gets to know.
#[derive(Debug, Clone, Copy)]
pub struct AttemptCtx {
    /// 1-based attempt number.
    pub attempt: u32,
    /// This attempt's timeout, already clamped to the call's deadline.
    pub timeout: Duration,
    pub deadline: Deadline,
}

/// What happened in one attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptRecord {
    pub attempt: u32,
    /// Offset from the start of the guarded call.
    pub started: Duration,
    pub duration: Duration,
    /// `None` on success.
    pub error: Option<ErrorKind>,
}

/// The result of a guarded call with a record of every attempt.
#[derive(Debug, Clone)]
pub struct Outcome<T> {
    pub result: Result<T, CallError>,
    pub attempts: Vec<AttemptRecord>,
    pub elapsed: Duration,
}

impl<T> Outcome<T> {
    /// Whether more than one attempt ran (a retry actually happened).
    pub fn retried(&self) -> bool {
        self.attempts.len() > 1
    }
}

pub struct Guard {
    config: GuardConfig,
}

impl Guard {
    pub fn new(config: GuardConfig) -> Arc<Guard> {
        Arc::new(Guard { config })
    }

    pub fn service(&self) -> &str {
        &self.config.service
    }

    pub fn config(&self) -> &GuardConfig {
        &self.config
    }

    /// Run `op` under the guard until success, a permanent error, or the deadline.
    pub async fn call<T, F, Fut>(&self, deadline: Deadline, retryability: Retryability, mut op: F) -> Outcome<T>
    where
        F: FnMut(AttemptCtx) -> Fut,
        Fut: Future<Output = Result<T, CallError>>,
    {
        let _ = retryability;
        let start = Instant::now();
        let timeout = self.config.retry.attempt_timeout.min(deadline.remaining());
        if timeout.is_zero() {
            return Outcome { result: Err(CallError::Rejected(Rejection::Deadline)), attempts: vec![], elapsed: Duration::ZERO };
        }
        let ctx = AttemptCtx { attempt: 1, timeout, deadline };
        let result = match tokio::time::timeout(timeout, op(ctx)).await {
            Ok(r) => r,
            Err(_) => Err(CallError::Timeout { after: timeout }),
        };
        let elapsed = start.elapsed();
        let record = AttemptRecord { attempt: 1, started: Duration::ZERO, duration: elapsed, error: result.as_ref().err().map(CallError::kind) };
        Outcome { result, attempts: vec![record], elapsed }
    }
}

#[allow(dead_code)]
fn _contract_types(_: BackoffConfig) {}
