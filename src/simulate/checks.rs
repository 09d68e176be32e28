//! The invariant checks of a simulation, computed from what each caller
//! heard (with timestamps) and from the sessions' final transcripts.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use crate::recovery::{Category, Entry, PhraseBook, Promise, ServiceBinding, ToolResult};
use crate::session::{AgentEvent, SessionReport};

use super::report::Outcomes;

/// Something the caller heard, at an offset from the call's start (kept
/// only when a trace of every call is asked for).
#[derive(Debug, Clone)]
pub struct HeardEvent {
    pub at: Duration,
    pub event: AgentEvent,
}

/// Everything one scripted caller observed, checked as it was heard so a
/// call in progress holds its open tool call and last line, not its history.
#[derive(Debug, Default)]
pub struct CallLog {
    pub room: String,
    pub heard: CallCheck,
    /// Every event with its time, when tracing.
    pub trace: Option<Vec<HeardEvent>>,
    pub timed_out: bool,
    pub dispatch_error: Option<String>,
}

/// What the checks found.
#[derive(Debug, Default)]
pub struct Checked {
    pub turns: u64,
    pub tool_calls: u64,
    pub first_speech_ms: Vec<f64>,
    pub resolution_ms: Vec<f64>,
    pub budget_overruns: u64,
    pub unpaired_tool_calls: u64,
    pub state_violations: u64,
    pub immediate_repeats: u64,
    pub false_promises: u64,
    pub panics: u64,
    pub outcomes: Outcomes,
    pub sessions_missing: u64,
    /// (service, resolution ms, outcome) per tool call.
    pub samples: Vec<(String, f64, &'static str)>,
}

/// A tool call resolved later than its budget plus this counts as an overrun.
pub const OVERRUN_MARGIN: Duration = Duration::from_millis(50);

/// What every call is checked against: the lines that promise a retry and
/// each service's budget.
#[derive(Debug, Clone, Default)]
pub struct Expectations {
    retry_promises: Vec<String>,
    budgets: HashMap<String, Duration>,
}

impl Expectations {
    pub fn new(book: &PhraseBook, bindings: &BTreeMap<String, ServiceBinding>) -> Expectations {
        Expectations {
            retry_promises: retry_promises(book, bindings),
            budgets: bindings
                .iter()
                .map(|(service, binding)| (service.clone(), binding.timing.budget))
                .collect(),
        }
    }

    fn promises_retry(&self, line: &str) -> bool {
        let line = line.to_lowercase();
        self.retry_promises.contains(&line)
    }
}

/// Every retry-promising line the phrase book can produce, lower-cased.
fn retry_promises(book: &PhraseBook, bindings: &BTreeMap<String, ServiceBinding>) -> Vec<String> {
    let mut lines = Vec::new();
    for category in Category::ALL {
        for variant in book.variants(category) {
            if variant.promises != Promise::Retry {
                continue;
            }
            for binding in bindings.values() {
                lines.push(
                    variant
                        .text
                        .replace("{service}", &binding.display_name)
                        .to_lowercase(),
                );
            }
        }
    }
    lines
}

#[derive(Debug)]
struct InFlight {
    started: Duration,
    service: String,
    first_speech: Option<Duration>,
    promised_retry: bool,
}

/// One tool call as the caller heard it.
#[derive(Debug)]
struct HeardCall {
    service: String,
    first_speech: Duration,
    resolution: Duration,
    outcome: &'static str,
    promised_retry: bool,
}

/// The caller-side checks of one call, fed event by event.
#[derive(Debug, Default)]
pub struct CallCheck {
    last_line: Option<String>,
    in_flight: Option<InFlight>,
    calls: Vec<HeardCall>,
    immediate_repeats: u64,
}

impl CallCheck {
    /// The caller heard `event`, `at` into the call.
    pub fn hear(&mut self, event: &AgentEvent, at: Duration, expectations: &Expectations) {
        match event {
            AgentEvent::Speech { text, .. } => {
                if self.last_line.as_deref() == Some(text.as_str()) {
                    self.immediate_repeats += 1;
                }
                if let Some(flight) = self.in_flight.as_mut() {
                    flight.first_speech.get_or_insert(at - flight.started);
                    if expectations.promises_retry(text) {
                        flight.promised_retry = true;
                    }
                }
                match self.last_line.as_mut() {
                    Some(last) => text.clone_into(last),
                    None => self.last_line = Some(text.clone()),
                }
            }
            AgentEvent::ToolStarted(started) => {
                self.in_flight = Some(InFlight {
                    started: at,
                    service: started.service.clone(),
                    first_speech: None,
                    promised_retry: false,
                });
            }
            AgentEvent::ToolFinished(finished) => {
                let outcome = &finished.outcome;
                let Some(flight) = self.in_flight.take() else {
                    return;
                };
                let resolution = at - flight.started;
                self.calls.push(HeardCall {
                    service: flight.service,
                    first_speech: flight.first_speech.unwrap_or(resolution),
                    resolution,
                    outcome: match outcome.as_str() {
                        "ok" => "ok",
                        "not_found" => "not_found",
                        "unknown_outcome" => "unknown_outcome",
                        "cancelled" => "cancelled",
                        _ => "fallback",
                    },
                    promised_retry: flight.promised_retry,
                });
            }
            _ => {}
        }
    }
}

impl Checked {
    /// Adds one finished call: what its caller heard and its session's report.
    pub fn add_call(
        &mut self,
        log: &CallLog,
        report: Option<&SessionReport>,
        expectations: &Expectations,
    ) {
        if report.is_none() || log.timed_out || log.dispatch_error.is_some() {
            self.sessions_missing += 1;
        }
        self.immediate_repeats += log.heard.immediate_repeats;
        for (index, call) in log.heard.calls.iter().enumerate() {
            self.tool_calls += 1;
            self.first_speech_ms
                .push(call.first_speech.as_secs_f64() * 1000.0);
            self.resolution_ms
                .push(call.resolution.as_secs_f64() * 1000.0);
            let budget = expectations
                .budgets
                .get(&call.service)
                .copied()
                .unwrap_or_default();
            if call.resolution > budget + OVERRUN_MARGIN {
                self.budget_overruns += 1;
            }
            match call.outcome {
                "ok" | "not_found" => self.outcomes.ok += 1,
                "unknown_outcome" => self.outcomes.unknown_outcome += 1,
                _ => self.outcomes.fallback += 1,
            }
            self.samples.push((
                call.service.clone(),
                call.resolution.as_secs_f64() * 1000.0,
                call.outcome,
            ));
            // A promised retry must have happened: the call made more than one attempt.
            let retried = report
                .and_then(|r| r.tool_calls.get(index))
                .map(|t| t.retried)
                .unwrap_or(false);
            if call.promised_retry && !retried {
                self.false_promises += 1;
            }
        }
        if let Some(report) = report {
            check_transcript(report, self);
        }
    }
}

fn check_transcript(report: &SessionReport, out: &mut Checked) {
    out.turns += report.turns;
    let mut calls = Vec::new();
    let mut results: HashMap<_, usize> = HashMap::new();
    for entry in report.state.transcript.iter() {
        match entry {
            Entry::ToolCall(record) => calls.push(record.id),
            Entry::ToolResult { id, result } => {
                *results.entry(*id).or_default() += 1;
                if matches!(result, ToolResult::Panicked { .. }) {
                    out.panics += 1;
                }
            }
            _ => {}
        }
    }
    out.unpaired_tool_calls += calls
        .iter()
        .filter(|id| results.get(id).copied().unwrap_or(0) != 1)
        .count() as u64;
    out.state_violations += report
        .tool_calls
        .iter()
        .filter(|t| t.rolled_back_exactly == Some(false))
        .count() as u64;
}
