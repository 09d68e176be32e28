//! Background probes that bring a failed provider back: while a provider's
//! breaker is not closed, a cheap real request (a short sentence, a stream
//! opened and closed) goes through its guard every `interval`. The breaker
//! itself decides when a probe may pass (after its open period, as a
//! half-open trial), so a dead provider costs one rejected permit per tick.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::resilience::{AttemptCtx, BreakerState, CallError, Deadline, Guard, Retryability};

/// A probe request: one attempt's worth of work.
pub type ProbeFn = Arc<
    dyn Fn(AttemptCtx) -> Pin<Box<dyn Future<Output = Result<(), CallError>> + Send>> + Send + Sync,
>;

/// One provider to keep probing.
#[derive(Clone)]
pub struct ProbeTarget {
    pub guard: Arc<Guard>,
    pub probe: ProbeFn,
}

impl std::fmt::Debug for ProbeTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProbeTarget")
            .field("service", &self.guard.service())
            .finish()
    }
}

/// Probe every target whose breaker is not closed, every `interval`, until
/// the returned task is aborted (dropping the handle does not stop it).
pub fn spawn_prober(targets: Vec<ProbeTarget>, interval: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            for target in &targets {
                probe_once(target).await;
            }
        }
    })
}

/// Probe `target` once if its breaker is not closed; returns whether a
/// probe request was actually made.
pub async fn probe_once(target: &ProbeTarget) -> bool {
    if target.guard.breaker().state() == BreakerState::Closed {
        return false;
    }
    let budget = target.guard.config().retry.attempt_timeout;
    let probe = target.probe.clone();
    let outcome = target
        .guard
        .call(Deadline::after(budget), Retryability::Never, |ctx| {
            probe(ctx)
        })
        .await;
    let probed = !outcome.attempts.is_empty();
    if probed {
        tracing::debug!(
            provider = target.guard.service(),
            ok = outcome.result.is_ok(),
            "speech provider probed"
        );
    }
    probed
}
