//! What a `ToolRunner` is given: a [`ServiceBinding`] per service (its guard,
//! display name, ladder timing and breaker probe) and a [`ToolCall`] per run.

use std::sync::Arc;

use super::tool::{Interrupt, LadderTiming, ToolSpec};
use crate::resilience::{BreakerState, Guard};

/// Reports a service's circuit-breaker state.
pub type BreakerProbe = Arc<dyn Fn() -> BreakerState + Send + Sync>;

/// The one place that learns a service's breaker state: from its guard's breaker.
pub fn breaker_probe(guard: &Arc<Guard>) -> BreakerProbe {
    let guard = Arc::clone(guard);
    Arc::new(move || guard.breaker().state())
}

/// Every service's binding by name, shared read-only by the sessions of a
/// worker (one map for all of them, not one per call).
pub type Bindings = Arc<std::collections::BTreeMap<String, ServiceBinding>>;

/// How the runner reaches one service.
#[derive(Clone)]
pub struct ServiceBinding {
    pub guard: Arc<Guard>,
    /// Fills `{service}` in phrases: "the calendar", "our CRM".
    pub display_name: String,
    pub timing: LadderTiming,
    pub breaker_state: BreakerProbe,
}

impl ServiceBinding {
    pub fn new(
        guard: Arc<Guard>,
        display_name: impl Into<String>,
        timing: LadderTiming,
    ) -> ServiceBinding {
        let breaker_state = breaker_probe(&guard);
        ServiceBinding {
            guard,
            display_name: display_name.into(),
            timing,
            breaker_state,
        }
    }

    pub fn with_breaker_probe(mut self, probe: BreakerProbe) -> ServiceBinding {
        self.breaker_state = probe;
        self
    }
}

impl std::fmt::Debug for ServiceBinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceBinding")
            .field("service", &self.guard.service())
            .field("display_name", &self.display_name)
            .field("timing", &self.timing)
            .finish_non_exhaustive()
    }
}

/// One request to run a tool.
#[derive(Debug, Clone)]
pub struct ToolCall {
    pub spec: ToolSpec,
    /// Recorded in the transcript with the call.
    pub arguments: serde_json::Value,
    /// The caller can offer another way forward, so failure phrases may say so.
    pub alternative_available: bool,
    /// Barge-in for this call.
    pub interrupt: Option<Interrupt>,
}

impl ToolCall {
    pub fn new(spec: ToolSpec, arguments: serde_json::Value) -> ToolCall {
        ToolCall {
            spec,
            arguments,
            alternative_available: false,
            interrupt: None,
        }
    }

    pub fn with_alternative(mut self) -> ToolCall {
        self.alternative_available = true;
        self
    }

    pub fn with_interrupt(mut self, interrupt: Interrupt) -> ToolCall {
        self.interrupt = Some(interrupt);
        self
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RunnerError {
    #[error("tool `{tool}` uses service `{service}`, which has no binding")]
    UnknownService { tool: String, service: String },
}
