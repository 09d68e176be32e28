//! `ToolRunner`: runs one declared tool under its service's `Guard` while
//! keeping the caller out of dead air (the latency ladder), rolling the
//! conversation back exactly on failure, pairing every tool call with one
//! result, and speaking only phrases whose promises will be kept.

use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures_util::FutureExt;
use serde::Serialize;
use tokio::sync::watch;
use tokio::time::Instant;

use super::binding::{Bindings, RunnerError, ServiceBinding, ToolCall};
use super::ladder::{Ladder, until_due};
use super::phrases::{Category, Level, Phrase, PhraseContext, PhraseSession, Promise, PromiseSet};
use super::policy::FailurePolicy;
use super::resolve::Flight;
use super::speech::{Speech, SpeechKind, SpeechSink};
use super::state::ConversationState;
use super::tool::{
    IdempotencyKey, OutcomeKind, SpokenLine, ToolAnswer, ToolCallCtx, ToolFailure, ToolOutcome,
};
use super::transcript::Entry;
use crate::resilience::{AttemptCtx, CallError, Deadline};

/// Said if a phrase book cannot serve a draw. A validated book always can.
const LAST_RESORT_LINE: &str = "Sorry, one moment.";

/// Runs risky tool calls for one conversation.
///
/// ```
/// use std::time::Duration;
/// use voxguard::recovery::{
///     ConversationState, FailurePolicy, LadderTiming, OutcomeKind, PhraseBook, PhraseSession,
///     ServiceBinding, SideEffect, ToolAnswer, ToolCall, ToolRunner, ToolSpec, check_pairing,
/// };
/// use voxguard::resilience::*;
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// # let guard = Guard::new(GuardConfig {
/// #     service: "calendar".into(),
/// #     retry: RetryConfig { max_attempts: 2, attempt_timeout: Duration::from_millis(1500),
/// #         backoff: BackoffConfig { kind: BackoffKind::Full, base: Duration::from_millis(50), cap: Duration::from_millis(200) } },
/// #     breaker: BreakerConfig { consecutive_failures: 5, window_size: 20, min_calls: 10, failure_rate: 0.5,
/// #         slow_call_threshold: Duration::from_secs(1), slow_call_rate: 0.8, open_base: Duration::from_secs(5),
/// #         open_cap: Duration::from_secs(60), half_open_probes: 1 },
/// #     bulkhead_size: 8,
/// #     budget: BudgetConfig { retry_ratio: 0.2, min_retries_per_sec: 5, window: Duration::from_secs(10) },
/// # });
/// let timing = LadderTiming {
///     filler_after: Duration::from_millis(700),
///     filler_repeat: Duration::from_millis(1200),
///     filler_max: 3,
///     budget: Duration::from_millis(3500),
/// };
/// let (speech, mut heard) = tokio::sync::mpsc::unbounded_channel();
/// let phrases = PhraseSession::new(PhraseBook::embedded(), 42);
/// let mut runner = ToolRunner::new(phrases, FailurePolicy::default(), speech);
/// runner.add_service("calendar", ServiceBinding::new(guard, "the calendar", timing));
///
/// let mut state = ConversationState::new();
/// let spec = ToolSpec::new("free_slots", "calendar", SideEffect::None);
/// let outcome = runner
///     .run(&mut state, ToolCall::new(spec, serde_json::json!({"day": "friday"})), |_attempt, _call| async {
///         tokio::time::sleep(Duration::from_millis(900)).await; // slower than filler_after
///         Ok(ToolAnswer::Found(vec!["10:00", "14:30"]))
///     })
///     .await
///     .unwrap();
///
/// assert_eq!(outcome.kind, OutcomeKind::Ok);
/// assert_eq!(outcome.first_speech_at, Some(timing.filler_after)); // one filler, then the answer
/// assert!(heard.try_recv().is_ok());
/// assert_eq!(check_pairing(&state.transcript), Ok(()));
/// # }
/// ```
pub struct ToolRunner {
    pub(super) services: Bindings,
    pub(super) phrases: PhraseSession,
    pub(super) policy: FailurePolicy,
    pub(super) speech: Box<dyn SpeechSink>,
}

/// How the wait for a call ended.
enum Ending<T> {
    Finished(std::thread::Result<crate::resilience::Outcome<ToolAnswer<T>>>),
    Interrupted,
    Overran,
}

impl ToolRunner {
    pub fn new(
        phrases: PhraseSession,
        policy: FailurePolicy,
        speech: impl SpeechSink + 'static,
    ) -> ToolRunner {
        ToolRunner {
            services: Bindings::default(),
            phrases,
            policy,
            speech: Box::new(speech),
        }
    }

    pub fn add_service(&mut self, service: impl Into<String>, binding: ServiceBinding) {
        std::sync::Arc::make_mut(&mut self.services).insert(service.into(), binding);
    }

    /// Use `services` (shared, not copied) as this runner's services.
    pub fn share_services(&mut self, services: Bindings) {
        self.services = services;
    }

    pub fn policy(&self) -> &FailurePolicy {
        &self.policy
    }

    /// Carry on from `policy`'s counts (a resumed conversation).
    pub fn restore_policy(&mut self, policy: FailurePolicy) {
        self.policy = policy;
    }

    pub fn phrases_mut(&mut self) -> &mut PhraseSession {
        &mut self.phrases
    }

    /// Speak a line the brain composed (the answer), recording it in the transcript.
    pub fn speak(
        &mut self,
        state: &mut ConversationState,
        text: impl Into<String>,
        kind: SpeechKind,
    ) {
        let text = text.into();
        state.transcript.push_agent(text.clone(), kind);
        self.speech.speak(Speech::new(text, kind));
    }

    /// Run a tool whose answer needs no commit step. See [`ToolRunner::run_with_commit`].
    pub async fn run<T, F, Fut>(
        &mut self,
        state: &mut ConversationState,
        call: ToolCall,
        op: F,
    ) -> Result<ToolOutcome<T>, RunnerError>
    where
        T: Serialize,
        F: FnMut(AttemptCtx, ToolCallCtx) -> Fut,
        Fut: Future<Output = Result<ToolAnswer<T>, CallError>>,
    {
        self.run_with_commit(state, call, op, |_, _| Ok(())).await
    }

    /// Run `op` under the service's guard with the latency ladder, then apply
    /// the answer to the state with `commit`. If the call or the commit fails,
    /// the state is rolled back exactly to before the call and the call is
    /// recorded with its error. Panics in `op` are caught and reported as failures.
    pub async fn run_with_commit<T, F, Fut, C>(
        &mut self,
        state: &mut ConversationState,
        call: ToolCall,
        op: F,
        commit: C,
    ) -> Result<ToolOutcome<T>, RunnerError>
    where
        T: Serialize,
        F: FnMut(AttemptCtx, ToolCallCtx) -> Fut,
        Fut: Future<Output = Result<ToolAnswer<T>, CallError>>,
        C: FnOnce(&mut ConversationState, &ToolAnswer<T>) -> Result<(), CallError>,
    {
        let binding = self
            .services
            .get(&call.spec.service)
            .cloned()
            .ok_or_else(|| RunnerError::UnknownService {
                tool: call.spec.name.clone(),
                service: call.spec.service.clone(),
            })?;
        let tool_name = call.spec.name.clone();
        let service = call.spec.service.clone();
        let started = Instant::now();
        let timing = binding.timing;
        let deadline = Deadline::after(timing.budget);
        let snapshot = state.snapshot();
        let side_effect = call.spec.side_effect;
        let key = side_effect
            .writes()
            .then(|| IdempotencyKey(format!("vg-{:016x}", self.phrases.next_random())));
        let call_id = state.transcript.record_tool_call(
            &call.spec.name,
            &call.spec.service,
            call.arguments.clone(),
            key.as_ref().map(|k| k.0.clone()),
        );
        let during = state
            .transcript
            .entries_since(snapshot.state().transcript.len());
        let mut flight = Flight {
            spec: call.spec.clone(),
            binding: binding.clone(),
            call_id,
            started,
            snapshot,
            during,
            spoken: Vec::new(),
            alternative_available: call.alternative_available,
            attempts: Vec::new(),
            attempts_started: 0,
        };

        let (progress_tx, progress_rx) = watch::channel(0u32);
        let ending = {
            let tool_ctx = ToolCallCtx {
                call_id,
                idempotency_key: key,
            };
            let mut op = op;
            let guarded = binding.guard.call(
                deadline,
                side_effect.retryability(),
                move |attempt: AttemptCtx| {
                    progress_tx.send_replace(attempt.attempt);
                    op(attempt, tool_ctx.clone())
                },
            );
            let guarded = AssertUnwindSafe(guarded).catch_unwind();
            let interrupt = call.interrupt.clone();
            let interrupted = async move {
                match interrupt {
                    Some(interrupt) => interrupt.triggered().await,
                    None => std::future::pending().await,
                }
            };
            let overrun = tokio::time::sleep_until(deadline.instant());
            tokio::pin!(guarded, interrupted, overrun);
            let mut ladder = Ladder::start(timing, started);
            loop {
                tokio::select! {
                    biased;
                    finished = &mut guarded => break Ending::Finished(finished),
                    () = &mut interrupted => break Ending::Interrupted,
                    () = &mut overrun => break Ending::Overran,
                    () = until_due(ladder.next_due()) => {
                        let rung = ladder.step();
                        // A line may promise a retry only once a retry has provably started.
                        let allowed = if *progress_rx.borrow() >= 2 {
                            PromiseSet::NONE_ONLY.with(Promise::Retry)
                        } else {
                            PromiseSet::NONE_ONLY
                        };
                        self.say(state, &mut flight, rung.category, rung.kind, Level::First, allowed);
                    }
                }
            }
        };
        flight.attempts_started = *progress_rx.borrow();

        let resolution = match ending {
            Ending::Finished(Ok(outcome)) => {
                flight.attempts = outcome.attempts;
                outcome.result.map_err(ToolFailure::Call)
            }
            Ending::Finished(Err(panic)) => {
                Err(ToolFailure::Panicked(panic_message(panic.as_ref())))
            }
            Ending::Overran => Err(ToolFailure::Call(CallError::Timeout {
                after: timing.budget,
            })),
            Ending::Interrupted => return Ok(self.cancel(state, flight)),
        };
        let outcome = match resolution {
            Ok(answer) => match serde_json::to_value(&answer) {
                Ok(value) => match commit(state, &answer) {
                    Ok(()) => self.succeed(state, flight, answer, value),
                    Err(err) => self.fail(state, flight, ToolFailure::Call(err)),
                },
                Err(err) => self.fail(
                    state,
                    flight,
                    ToolFailure::Call(CallError::Decode {
                        detail: err.to_string(),
                    }),
                ),
            },
            Err(failure) => self.fail(state, flight, failure),
        };
        tracing::info!(
            tool = %tool_name,
            service = %service,
            kind = ?outcome.kind,
            resolved_ms = outcome.resolved_at.as_millis() as u64,
            attempts = outcome.attempts_started,
            "tool call resolved"
        );
        metrics::counter!(
            "voxguard_tool_calls_total",
            "service" => service,
            "outcome" => outcome_label(outcome.kind)
        )
        .increment(1);
        Ok(outcome)
    }

    pub(super) fn say(
        &mut self,
        state: &mut ConversationState,
        flight: &mut Flight,
        category: Category,
        kind: SpeechKind,
        level: Level,
        allowed_promises: PromiseSet,
    ) {
        let ctx = PhraseContext {
            service_display: &flight.binding.display_name,
            level,
            allowed_promises,
        };
        let phrase = self.phrases.draw(category, &ctx).unwrap_or_else(|err| {
            tracing::warn!(error = %err, "phrase draw failed; using the last-resort line");
            Phrase {
                text: LAST_RESORT_LINE.to_string(),
                category,
                promises: Promise::None,
                variant: usize::MAX,
            }
        });
        let entry = Entry::Agent {
            text: phrase.text.clone(),
            kind,
        };
        state.transcript.push_agent(phrase.text.clone(), kind);
        flight.during.push(entry);
        flight.spoken.push(SpokenLine {
            kind,
            promises: phrase.promises,
            at: flight.started.elapsed(),
        });
        self.speech.speak(Speech::new(phrase.text, kind));
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "tool panicked".to_string())
}

fn outcome_label(kind: OutcomeKind) -> &'static str {
    match kind {
        OutcomeKind::Ok => "ok",
        OutcomeKind::Fallback => "fallback",
        OutcomeKind::UnknownOutcome => "unknown_outcome",
        OutcomeKind::Cancelled => "cancelled",
    }
}
