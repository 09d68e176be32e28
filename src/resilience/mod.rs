//! The resilience engine: deadlines, backoff, retries, circuit breakers,
//! bulkheads, retry budgets, and the `Guard` that composes them.
//!
//! Nothing here knows about voice, CRM or LiveKit.

pub mod backoff;
pub mod breaker;
pub mod budget;
pub mod bulkhead;
pub mod deadline;
pub mod error;
pub mod guard;
pub mod retry;

pub use backoff::{BackoffConfig, BackoffKind};
pub use breaker::{BreakerConfig, BreakerState};
pub use budget::BudgetConfig;
pub use deadline::Deadline;
pub use error::{CallError, ErrorKind, Rejection};
pub use guard::{AttemptCtx, AttemptRecord, Guard, GuardConfig, Outcome, Retryability};
pub use retry::RetryConfig;
