//! `ToolRunner`: runs one declared tool under its service's `Guard` while
//! keeping the caller out of dead air (the latency ladder), rolling the
//! conversation back exactly on failure, pairing every tool call with one
//! result, and speaking only phrases whose promises will be kept.

use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use serde::Serialize;
use tokio::sync::watch;
use tokio::time::Instant;

use super::phrases::{Category, Level, Phrase, PhraseContext, PhraseSession, Promise, PromiseSet};
use super::policy::{FailurePolicy, SessionAction};
use super::speech::{Speech, SpeechKind, SpeechSink};
use super::state::{ConversationState, Snapshot};
use super::tool::{
    IdempotencyKey, Interrupt, LadderTiming, OutcomeKind, SpokenLine, ToolAnswer, ToolCallCtx,
    ToolFailure, ToolOutcome, ToolSpec,
};
use super::transcript::{CancelReason, Entry, ToolCallId, ToolResult};
use crate::resilience::{
    AttemptCtx, AttemptRecord, BreakerState, CallError, Deadline, ErrorKind, Guard, Rejection,
};

/// Said if a phrase book cannot serve a draw. A validated book always can.
const LAST_RESORT_LINE: &str = "Sorry, one moment.";

/// Reports a service's circuit-breaker state.
pub type BreakerProbe = Arc<dyn Fn() -> BreakerState + Send + Sync>;

/// The one place that learns a service's breaker state from its guard.
///
/// The provisional `Guard` has no breaker to ask, so this reports `Closed`
/// and the runner infers `Open` from a `Rejected(BreakerOpen)` error. When the
/// guard exposes `guard.breaker().state()`, re-point this function to it.
pub fn breaker_probe(guard: &Arc<Guard>) -> BreakerProbe {
    let _guard = Arc::clone(guard);
    Arc::new(|| BreakerState::Closed)
}

/// How the runner reaches one service.
#[derive(Clone)]
pub struct ServiceBinding {
    pub guard: Arc<Guard>,
    /// Fills `{service}` in phrases: "the calendar", "your account records".
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
    services: HashMap<String, ServiceBinding>,
    phrases: PhraseSession,
    policy: FailurePolicy,
    speech: Box<dyn SpeechSink>,
}

/// How the wait for a call ended.
enum Ending<T> {
    Finished(std::thread::Result<crate::resilience::Outcome<ToolAnswer<T>>>),
    Interrupted,
    Overran,
}

/// What the runner tracks while one call is in flight.
struct Flight {
    spec: ToolSpec,
    binding: ServiceBinding,
    call_id: ToolCallId,
    started: Instant,
    snapshot: Snapshot,
    /// Entries the runner itself appended since the snapshot, replayed after a rollback.
    during: Vec<Entry>,
    spoken: Vec<SpokenLine>,
    alternative_available: bool,
    attempts: Vec<AttemptRecord>,
    attempts_started: u32,
}

impl ToolRunner {
    pub fn new(
        phrases: PhraseSession,
        policy: FailurePolicy,
        speech: impl SpeechSink + 'static,
    ) -> ToolRunner {
        ToolRunner {
            services: HashMap::new(),
            phrases,
            policy,
            speech: Box::new(speech),
        }
    }

    pub fn add_service(&mut self, service: impl Into<String>, binding: ServiceBinding) {
        self.services.insert(service.into(), binding);
    }

    pub fn policy(&self) -> &FailurePolicy {
        &self.policy
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
            let mut ladder_lines = 0u32;
            let mut next_line_at = started + timing.filler_after;
            loop {
                tokio::select! {
                    biased;
                    finished = &mut guarded => break Ending::Finished(finished),
                    () = &mut interrupted => break Ending::Interrupted,
                    () = &mut overrun => break Ending::Overran,
                    () = tokio::time::sleep_until(next_line_at), if ladder_lines < timing.filler_max => {
                        let (category, kind) = if ladder_lines == 0 {
                            (Category::Filler, SpeechKind::Filler)
                        } else {
                            (Category::StillWorking, SpeechKind::StillWorking)
                        };
                        // A line may promise a retry only once a retry has provably started.
                        let allowed = if *progress_rx.borrow() >= 2 {
                            PromiseSet::NONE_ONLY.with(Promise::Retry)
                        } else {
                            PromiseSet::NONE_ONLY
                        };
                        self.say(state, &mut flight, category, kind, Level::First, allowed);
                        ladder_lines += 1;
                        next_line_at += timing.filler_repeat;
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
            kind = ?outcome.kind,
            resolved_ms = outcome.resolved_at.as_millis() as u64,
            attempts = outcome.attempts_started,
            "tool call resolved"
        );
        metrics::counter!("voxguard_tool_calls_total", "outcome" => outcome_label(outcome.kind))
            .increment(1);
        Ok(outcome)
    }

    fn succeed<T>(
        &mut self,
        state: &mut ConversationState,
        mut flight: Flight,
        answer: ToolAnswer<T>,
        value: serde_json::Value,
    ) -> ToolOutcome<T> {
        let result = match answer {
            ToolAnswer::Found(_) => ToolResult::Ok { value },
            ToolAnswer::NotFound => ToolResult::NotFound,
        };
        self.record_result(state, flight.call_id, result);
        if self.policy.record_success(&flight.spec.service) {
            self.say(
                state,
                &mut flight,
                Category::Recovered,
                SpeechKind::Recovered,
                Level::First,
                PromiseSet::NONE_ONLY,
            );
        }
        if matches!(answer, ToolAnswer::NotFound) {
            let allowed = failure_promises(&flight);
            self.say(
                state,
                &mut flight,
                Category::DataNotFound,
                SpeechKind::NotFound,
                Level::First,
                allowed,
            );
        }
        finish(
            flight,
            OutcomeKind::Ok,
            Some(answer),
            None,
            SessionAction::Continue,
        )
    }

    fn fail<T>(
        &mut self,
        state: &mut ConversationState,
        mut flight: Flight,
        failure: ToolFailure,
    ) -> ToolOutcome<T> {
        self.roll_back(state, &mut flight);
        let ambiguous = match &failure {
            ToolFailure::Call(err) => err.is_ambiguous(),
            ToolFailure::Panicked(_) => true,
        };
        let unknown = flight.spec.side_effect.writes() && flight.attempts_started > 0 && ambiguous;
        let elapsed = flight.started.elapsed();
        self.record_result(
            state,
            flight.call_id,
            failure_result(&failure, unknown, elapsed),
        );

        let category = match &failure {
            ToolFailure::Call(err) => category_for(err),
            ToolFailure::Panicked(_) => Category::Generic,
        };
        let breaker = match &failure {
            ToolFailure::Call(CallError::Rejected(Rejection::BreakerOpen)) => BreakerState::Open,
            _ => (flight.binding.breaker_state)(),
        };
        let level = self.policy.level(&flight.spec.service, breaker);
        let allowed = failure_promises(&flight);
        let not_found = category == Category::DataNotFound;
        if unknown {
            self.say(
                state,
                &mut flight,
                Category::UnknownOutcome,
                SpeechKind::UnknownOutcome,
                level,
                allowed,
            );
        } else if not_found {
            self.say(
                state,
                &mut flight,
                category,
                SpeechKind::NotFound,
                level,
                allowed,
            );
        } else {
            self.say(
                state,
                &mut flight,
                category,
                SpeechKind::Failure,
                level,
                allowed,
            );
        }
        // A 404 says the service works and the thing is absent: not a failure to escalate.
        let action = if not_found {
            SessionAction::Continue
        } else {
            self.policy.record_failure(&flight.spec.service)
        };
        if action == SessionAction::HandOff {
            self.say(
                state,
                &mut flight,
                Category::Handoff,
                SpeechKind::Handoff,
                level,
                PromiseSet::NONE_ONLY,
            );
        }
        let kind = if unknown {
            OutcomeKind::UnknownOutcome
        } else {
            OutcomeKind::Fallback
        };
        finish(flight, kind, None, Some(failure), action)
    }

    fn cancel<T>(&mut self, state: &mut ConversationState, mut flight: Flight) -> ToolOutcome<T> {
        self.roll_back(state, &mut flight);
        let maybe_applied = flight.spec.side_effect.writes() && flight.attempts_started > 0;
        let result = ToolResult::Cancelled {
            reason: CancelReason::BargeIn,
            maybe_applied,
        };
        self.record_result(state, flight.call_id, result);
        finish(
            flight,
            OutcomeKind::Cancelled,
            None,
            None,
            SessionAction::Continue,
        )
    }

    /// Restore the pre-call state exactly, then replay what the runner itself
    /// recorded during the call (the call and any ladder lines) so the
    /// transcript stays truthful about what the caller heard.
    fn roll_back(&mut self, state: &mut ConversationState, flight: &mut Flight) {
        state.restore(&flight.snapshot);
        for entry in std::mem::take(&mut flight.during) {
            if let Err(err) = state.transcript.append(entry) {
                tracing::error!(error = %err, "replaying a tool call after rollback broke pairing");
            }
        }
    }

    fn record_result(
        &mut self,
        state: &mut ConversationState,
        call_id: ToolCallId,
        result: ToolResult,
    ) {
        if let Err(err) = state.transcript.record_result(call_id, result) {
            tracing::error!(error = %err, "tool result could not be paired");
        }
    }

    fn say(
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

/// After the final failure nothing will retry, so no retry promises; an
/// alternative only when the caller said one exists.
fn failure_promises(flight: &Flight) -> PromiseSet {
    if flight.alternative_available {
        PromiseSet::NONE_ONLY.with(Promise::Alternative)
    } else {
        PromiseSet::NONE_ONLY
    }
}

fn failure_result(failure: &ToolFailure, unknown: bool, elapsed: Duration) -> ToolResult {
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

fn finish<T>(
    flight: Flight,
    kind: OutcomeKind,
    value: Option<ToolAnswer<T>>,
    error: Option<ToolFailure>,
    action: SessionAction,
) -> ToolOutcome<T> {
    ToolOutcome {
        call_id: flight.call_id,
        kind,
        value,
        error,
        first_speech_at: flight.spoken.first().map(|line| line.at),
        resolved_at: flight.started.elapsed(),
        attempts: flight.attempts,
        attempts_started: flight.attempts_started,
        spoken: flight.spoken,
        action,
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
