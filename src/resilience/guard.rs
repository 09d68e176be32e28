//! Guard: the one place that composes budget, bulkhead, breaker and retries
//! under a deadline.
//!
//! Read [`Guard::call`] top to bottom: the bulkhead admits the call; the
//! breaker admits each attempt; each attempt runs with its own timeout
//! (clamped to the deadline) and its verdict and duration go to the breaker;
//! after a failure the [`RetryPolicy`] decides whether and when to retry, and
//! each retry must be paid for from the retry budget.
//!
//! Retries are paid for from the guard's private [`RetryBudget`], or from any
//! other [`RetryBudgetSource`] given to [`GuardBuilder::retry_budget`].
//!
//! What a failed call returns: a rejection before or between attempts
//! (`BulkheadFull`, `BreakerOpen`, `BudgetExhausted`, or `Deadline` when not
//! even the first attempt fits) is `CallError::Rejected`; when the policy
//! gives up (permanent error, attempts exhausted, no time for another sleep
//! plus attempt, Retry-After too long) the last attempt's own error is returned.
//!
//! ```
//! use std::time::Duration;
//! use voxguard::resilience::{CallError, Deadline, Guard, GuardConfig, Retryability};
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let guard = Guard::with_seed(GuardConfig::for_service("crm"), 7);
//! let deadline = Deadline::after(Duration::from_millis(3500));
//! let outcome = guard.call(deadline, Retryability::Transient, |ctx| async move {
//!     assert!(ctx.timeout <= Duration::from_secs(1));
//!     Ok::<_, CallError>("Ada Lovelace")
//! }).await;
//! assert_eq!(outcome.result, Ok("Ada Lovelace"));
//! assert_eq!(outcome.attempts.len(), 1);
//! # }
//! ```

use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::SmallRng;
use tokio::time::Instant;

use super::backoff::Backoff;
use super::breaker::{BreakerConfig, CallResult, CircuitBreaker};
use super::budget::{BudgetConfig, RetryBudget, RetryBudgetSource};
use super::bulkhead::Bulkhead;
use super::clock::{Clock, as_nanos};
use super::deadline::Deadline;
use super::error::{CallError, ErrorKind, Rejection};
pub use super::guard_config::GuardConfigError;
use super::retry::{RetryConfig, RetryDecision, RetryPolicy};

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

/// What a call does to the world, so the engine knows whether a retry or an
/// unanswered attempt is safe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SideEffect {
    /// A read.
    None,
    /// A write the service deduplicates by idempotency key.
    Idempotent,
    /// A write that would happen twice if sent twice.
    NonIdempotent,
}

impl SideEffect {
    /// Non-idempotent writes are only retried when the failure proves the
    /// request did not take effect.
    pub fn retryability(self) -> Retryability {
        match self {
            SideEffect::None | SideEffect::Idempotent => Retryability::Transient,
            SideEffect::NonIdempotent => Retryability::Unambiguous,
        }
    }

    pub fn writes(self) -> bool {
        !matches!(self, SideEffect::None)
    }
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

/// Builds a [`Guard`] with optional seed, shared breaker, shared retry
/// budget and attempt floor.
#[derive(Debug)]
pub struct GuardBuilder {
    config: GuardConfig,
    seed: Option<u64>,
    breaker: Option<Arc<CircuitBreaker>>,
    budget: Option<Arc<dyn RetryBudgetSource>>,
    useful_floor: Duration,
}

impl GuardBuilder {
    /// Seed the jitter RNG (reproducible backoff sleeps).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Use this breaker (e.g. from a [`BreakerRegistry`](super::BreakerRegistry))
    /// instead of a private one.
    pub fn breaker(mut self, breaker: Arc<CircuitBreaker>) -> Self {
        self.breaker = Some(breaker);
        self
    }

    /// Spend retries from this budget (e.g. one shared by a fleet of
    /// workers) instead of a private one built from `config.budget`.
    pub fn retry_budget(mut self, budget: Arc<dyn RetryBudgetSource>) -> Self {
        self.budget = Some(budget);
        self
    }

    /// The floor of a minimal useful attempt (see [`RetryPolicy`]).
    pub fn useful_floor(mut self, floor: Duration) -> Self {
        self.useful_floor = floor;
        self
    }

    pub fn build(self) -> Result<Arc<Guard>, GuardConfigError> {
        self.config.validate()?;
        Ok(self.build_unchecked())
    }

    fn build_unchecked(self) -> Arc<Guard> {
        let config = self.config;
        let origin = Instant::now();
        let clock = Clock::Tokio { origin };
        let breaker = self.breaker.unwrap_or_else(|| {
            Arc::new(CircuitBreaker::new(
                config.service.as_str(),
                config.breaker.clone(),
                clock.clone(),
            ))
        });
        let rng = match self.seed {
            Some(seed) => SmallRng::seed_from_u64(seed),
            None => SmallRng::from_os_rng(),
        };
        Arc::new(Guard {
            policy: RetryPolicy::new(config.retry).with_useful_floor(self.useful_floor),
            bulkhead: Bulkhead::new(config.bulkhead_size),
            budget: RetryBudget::new(config.budget, clock),
            external_budget: self.budget,
            metrics: GuardMetrics::register(&config.service),
            breaker,
            origin,
            rng: Mutex::new(rng),
            config,
        })
    }
}

pub struct Guard {
    config: GuardConfig,
    policy: RetryPolicy,
    breaker: Arc<CircuitBreaker>,
    bulkhead: Bulkhead,
    /// The private budget, spent from unless `external_budget` is set.
    budget: RetryBudget,
    external_budget: Option<Arc<dyn RetryBudgetSource>>,
    /// Origin of the budget's clock (tokio's), so call start times can be reused.
    origin: Instant,
    /// Jitter source; locked only when a backoff sleep is drawn.
    rng: Mutex<SmallRng>,
    metrics: GuardMetrics,
}

impl Guard {
    /// A guard with an OS-seeded RNG and a private breaker. An invalid config
    /// is logged as an error (it cannot fail here); use [`Guard::builder`] and
    /// [`GuardBuilder::build`] to refuse it instead.
    pub fn new(config: GuardConfig) -> Arc<Guard> {
        Self::checked_or_logged(Self::builder(config))
    }

    /// Like [`Guard::new`] with a seeded jitter RNG.
    pub fn with_seed(config: GuardConfig, seed: u64) -> Arc<Guard> {
        Self::checked_or_logged(Self::builder(config).seed(seed))
    }

    pub fn builder(config: GuardConfig) -> GuardBuilder {
        GuardBuilder {
            config,
            seed: None,
            breaker: None,
            budget: None,
            useful_floor: RetryPolicy::DEFAULT_USEFUL_FLOOR,
        }
    }

    fn checked_or_logged(builder: GuardBuilder) -> Arc<Guard> {
        if let Err(error) = builder.config.validate() {
            tracing::error!(%error, "building a guard from an invalid configuration");
        }
        builder.build_unchecked()
    }

    pub fn service(&self) -> &str {
        &self.config.service
    }

    pub fn config(&self) -> &GuardConfig {
        &self.config
    }

    /// The service's breaker: its state, events and forcing.
    pub fn breaker(&self) -> &Arc<CircuitBreaker> {
        &self.breaker
    }

    pub fn bulkhead(&self) -> &Bulkhead {
        &self.bulkhead
    }

    /// The guard's private retry budget; idle when the guard was built with
    /// [`GuardBuilder::retry_budget`] (see [`Guard::budget_source`]).
    pub fn budget(&self) -> &RetryBudget {
        &self.budget
    }

    /// The retry budget this guard actually spends from.
    pub fn budget_source(&self) -> &dyn RetryBudgetSource {
        match &self.external_budget {
            None => &self.budget,
            Some(external) => external.as_ref(),
        }
    }

    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// Run `op` under the guard until success, a permanent error, or the deadline.
    pub async fn call<T, F, Fut>(
        &self,
        deadline: Deadline,
        retryability: Retryability,
        mut op: F,
    ) -> Outcome<T>
    where
        F: FnMut(AttemptCtx) -> Fut,
        Fut: Future<Output = Result<T, CallError>>,
    {
        let call_start = Instant::now();
        let Ok(_slot) = self.bulkhead.try_acquire() else {
            return self.rejected(Rejection::BulkheadFull, Vec::new(), call_start);
        };
        let mut attempts = Vec::with_capacity(self.config.retry.max_attempts.clamp(1, 8) as usize);
        let mut backoff = None;
        let mut attempt_start = call_start;
        let mut started = Duration::ZERO; // attempt_start - call_start
        let mut attempt = 1;
        let mut last_error = None;
        loop {
            let remaining = deadline.instant().saturating_duration_since(attempt_start);
            let Some(timeout) = self.policy.attempt_timeout(remaining) else {
                // After a retry sleep this only happens when the timer fired late.
                return match last_error {
                    Some(error) => Outcome {
                        result: Err(error),
                        attempts,
                        elapsed: call_start.elapsed(),
                    },
                    None => self.rejected(Rejection::Deadline, attempts, call_start),
                };
            };
            let permit = match self.breaker.try_acquire() {
                Ok(permit) => permit,
                Err(rejection) => return self.rejected(rejection, attempts, call_start),
            };
            if attempt == 1 {
                match &self.external_budget {
                    None => self
                        .budget
                        .deposit_at(as_nanos(attempt_start - self.origin)),
                    Some(external) => external.deposit(),
                }
            }

            let result = run_attempt(
                op(AttemptCtx {
                    attempt,
                    timeout,
                    deadline,
                }),
                attempt_start,
                timeout,
            )
            .await;
            let attempt_end = Instant::now();
            let took = attempt_end - attempt_start;
            let elapsed = started + took;
            permit.record(CallResult::of(&result), took);
            self.metrics.attempt_seconds.record(took.as_secs_f64());
            let error = match result {
                Ok(value) => {
                    self.metrics.attempts_ok.increment(1);
                    tracing::trace!(service = %self.config.service, attempt, ?took, "attempt succeeded");
                    attempts.push(AttemptRecord {
                        attempt,
                        started,
                        duration: took,
                        error: None,
                    });
                    return Outcome {
                        result: Ok(value),
                        attempts,
                        elapsed,
                    };
                }
                Err(error) => error,
            };
            self.note_failed_attempt(attempt, &error, took);
            attempts.push(AttemptRecord {
                attempt,
                started,
                duration: took,
                error: Some(error.kind()),
            });

            let remaining = deadline.instant().saturating_duration_since(attempt_end);
            let decision =
                self.policy
                    .after_failure(attempt, &error, retryability, remaining, || {
                        self.draw_backoff(
                            backoff.get_or_insert_with(|| Backoff::new(self.config.retry.backoff)),
                        )
                    });
            let sleep = match decision {
                RetryDecision::RetryAfter(sleep) => sleep,
                RetryDecision::GiveUp(reason) => {
                    tracing::debug!(service = %self.config.service, attempt, reason = reason.as_str(), %error, "giving up");
                    return Outcome {
                        result: Err(error),
                        attempts,
                        elapsed,
                    };
                }
            };
            if !self.withdraw_retry() {
                return self.rejected(Rejection::BudgetExhausted, attempts, call_start);
            }
            metrics::counter!("voxguard_guard_retries_total", "service" => self.config.service.clone()).increment(1);
            last_error = Some(error);
            tokio::time::sleep(sleep).await;
            attempt += 1;
            attempt_start = Instant::now();
            started = attempt_start - call_start;
        }
    }

    fn withdraw_retry(&self) -> bool {
        match &self.external_budget {
            None => self.budget.try_withdraw(),
            Some(external) => external.try_withdraw(),
        }
    }

    fn draw_backoff(&self, backoff: &mut Backoff) -> Duration {
        let mut rng = self.rng.lock().unwrap_or_else(|poison| poison.into_inner());
        backoff.next_sleep(&mut *rng)
    }

    #[cold]
    fn note_failed_attempt(&self, attempt: u32, error: &CallError, took: Duration) {
        let service = self.config.service.clone();
        metrics::counter!("voxguard_guard_attempts_total", "service" => service, "outcome" => error.kind().as_str()).increment(1);
        tracing::debug!(service = %self.config.service, attempt, ?took, %error, "attempt failed");
    }

    #[cold]
    fn rejected<T>(
        &self,
        rejection: Rejection,
        attempts: Vec<AttemptRecord>,
        call_start: Instant,
    ) -> Outcome<T> {
        let error = CallError::Rejected(rejection);
        let service = self.config.service.clone();
        metrics::counter!("voxguard_guard_rejections_total", "service" => service, "reason" => error.kind().as_str()).increment(1);
        tracing::debug!(service = %self.config.service, %rejection, "call rejected");
        Outcome {
            result: Err(error),
            attempts,
            elapsed: call_start.elapsed(),
        }
    }
}

/// Run one attempt, giving up `timeout` after `started_at`. The attempt is
/// polled once before a timer is armed: an answer already there needs none.
async fn run_attempt<T>(
    attempt: impl Future<Output = Result<T, CallError>>,
    started_at: Instant,
    timeout: Duration,
) -> Result<T, CallError> {
    let mut attempt = pin!(attempt);
    let ready = std::future::poll_fn(|cx| {
        Poll::Ready(match attempt.as_mut().poll(cx) {
            Poll::Ready(result) => Some(result),
            Poll::Pending => None,
        })
    })
    .await;
    if let Some(result) = ready {
        return result;
    }
    // Boxed so the (rare) timer does not bloat every guarded call's future.
    match Box::pin(tokio::time::timeout_at(started_at + timeout, attempt)).await {
        Ok(result) => result,
        Err(_) => Err(CallError::Timeout { after: timeout }),
    }
}

/// Metric handles registered once per guard, so the success path does not
/// build label sets. Install the metrics recorder before building guards.
struct GuardMetrics {
    attempts_ok: metrics::Counter,
    attempt_seconds: metrics::Histogram,
}

impl GuardMetrics {
    fn register(service: &str) -> Self {
        let service = service.to_string();
        GuardMetrics {
            attempts_ok: metrics::counter!("voxguard_guard_attempts_total", "service" => service.clone(), "outcome" => "ok"),
            attempt_seconds: metrics::histogram!("voxguard_guard_attempt_duration_seconds", "service" => service),
        }
    }
}
