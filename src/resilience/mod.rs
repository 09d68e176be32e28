//! The resilience engine: deadlines, backoff, retries, circuit breakers,
//! bulkheads, retry budgets, and the `Guard` that composes them.
//!
//! Nothing here knows about voice, CRM or LiveKit.

pub mod backoff;
pub mod breaker;
pub mod breaker_events;
mod breaker_force;
mod breaker_window;
pub mod budget;
pub mod bulkhead;
pub mod clock;
pub mod deadline;
pub mod error;
pub mod guard;
pub mod guard_config;
pub mod registry;
pub mod retry;

pub use backoff::{Backoff, BackoffConfig, BackoffKind};
pub use breaker::{
    BreakerConfig, BreakerState, BreakerTally, CallResult, CircuitBreaker, MAX_WINDOW_SIZE, Permit,
};
pub use breaker_events::{
    BreakerEvent, BreakerListener, Listeners, TransitionReason, broadcast_listener,
    metrics_listener, tracing_listener,
};
pub use budget::{BudgetConfig, RetryBudget, RetryBudgetSource};
pub use bulkhead::{Bulkhead, BulkheadPermit};
pub use clock::{Clock, ManualClock};
pub use deadline::Deadline;
pub use error::{CallError, ErrorKind, Rejection};
pub use guard::{
    AttemptCtx, AttemptRecord, Guard, GuardBuilder, GuardConfig, Outcome, Retryability, SideEffect,
};
pub use guard_config::GuardConfigError;
pub use registry::BreakerRegistry;
pub use retry::{GiveUpReason, RetryConfig, RetryDecision, RetryPolicy};
