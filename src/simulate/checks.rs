//! The invariant checks of a simulation, computed from what each caller
//! heard (with timestamps) and from the sessions' final transcripts.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use crate::recovery::{Category, Entry, PhraseBook, Promise, ServiceBinding, ToolResult};
use crate::session::{AgentEvent, SessionReport};

use super::report::Outcomes;

/// Something the caller heard, at an offset from the call's start.
#[derive(Debug, Clone)]
pub struct HeardEvent {
    pub at: Duration,
    pub event: AgentEvent,
}

/// Everything one scripted caller observed.
#[derive(Debug, Clone, Default)]
pub struct CallLog {
    pub room: String,
    pub heard: Vec<HeardEvent>,
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

pub fn check(
    logs: &[CallLog],
    reports: &HashMap<String, SessionReport>,
    book: &PhraseBook,
    bindings: &BTreeMap<String, ServiceBinding>,
    budgets: &HashMap<String, Duration>,
) -> Checked {
    let promises = retry_promises(book, bindings);
    let mut out = Checked::default();
    for log in logs {
        let report = reports.get(&log.room);
        if report.is_none() || log.timed_out || log.dispatch_error.is_some() {
            out.sessions_missing += 1;
        }
        check_heard(log, report, &promises, budgets, &mut out);
        if let Some(report) = report {
            check_transcript(report, &mut out);
        }
    }
    out
}

struct InFlight {
    started: Duration,
    service: String,
    first_speech: Option<Duration>,
    promised_retry: bool,
}

fn check_heard(
    log: &CallLog,
    report: Option<&SessionReport>,
    promises: &[String],
    budgets: &HashMap<String, Duration>,
    out: &mut Checked,
) {
    let mut last_line: Option<&str> = None;
    let mut in_flight: Option<InFlight> = None;
    let mut finished_calls = 0usize;
    for heard in &log.heard {
        match &heard.event {
            AgentEvent::Speech { text, .. } => {
                if last_line == Some(text.as_str()) {
                    out.immediate_repeats += 1;
                }
                last_line = Some(text.as_str());
                if let Some(flight) = in_flight.as_mut() {
                    flight.first_speech.get_or_insert(heard.at - flight.started);
                    if promises.iter().any(|p| p == &text.to_lowercase()) {
                        flight.promised_retry = true;
                    }
                }
            }
            AgentEvent::ToolStarted { service, .. } => {
                in_flight = Some(InFlight {
                    started: heard.at,
                    service: service.clone(),
                    first_speech: None,
                    promised_retry: false,
                });
            }
            AgentEvent::ToolFinished { outcome, .. } => {
                let Some(flight) = in_flight.take() else {
                    continue;
                };
                let resolution = heard.at - flight.started;
                let first = flight.first_speech.unwrap_or(resolution);
                out.tool_calls += 1;
                out.first_speech_ms.push(first.as_secs_f64() * 1000.0);
                out.resolution_ms.push(resolution.as_secs_f64() * 1000.0);
                let budget = budgets.get(&flight.service).copied().unwrap_or_default();
                if resolution > budget + OVERRUN_MARGIN {
                    out.budget_overruns += 1;
                }
                let outcome: &'static str = match outcome.as_str() {
                    "ok" => "ok",
                    "not_found" => "not_found",
                    "unknown_outcome" => "unknown_outcome",
                    "cancelled" => "cancelled",
                    _ => "fallback",
                };
                match outcome {
                    "ok" | "not_found" => out.outcomes.ok += 1,
                    "unknown_outcome" => out.outcomes.unknown_outcome += 1,
                    _ => out.outcomes.fallback += 1,
                }
                out.samples.push((
                    flight.service.clone(),
                    resolution.as_secs_f64() * 1000.0,
                    outcome,
                ));
                // A promised retry must have happened: the call made more than one attempt.
                let retried = report
                    .and_then(|r| r.tool_calls.get(finished_calls))
                    .map(|t| t.retried)
                    .unwrap_or(false);
                if flight.promised_retry && !retried {
                    out.false_promises += 1;
                }
                finished_calls += 1;
            }
            _ => {}
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
