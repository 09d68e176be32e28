//! `profile tune`: recommends per-service timing from observed latencies,
//! printed as a diff against the current configuration with one line of
//! reasoning per field.
//!
//! The rules (all from successful attempts of one service, percentiles by
//! nearest rank, results rounded up to 50 ms):
//! - `attempt_timeout` = p99 × 1.5: room for the slowest normal answers
//!   plus a margin, no more (capped at the budget);
//! - `max_attempts` = the most attempts whose worst case still fits the
//!   budget, kept below the breaker's `consecutive_failures` and `min_calls`
//!   so one request's retries can never open it;
//! - `filler_after` = p90, clamped to [300 ms, current value]: most answers
//!   beat the filler, and first speech never gets later than it is now;
//! - `slow_call_threshold` = p99, kept below `attempt_timeout`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;
use std::time::Duration;

use super::latency::{LatencySample, SampleOutcome, parse_latencies};
use crate::config::duration::format as fmt;
use crate::config::{Config, ConfigError, Profile, ServiceConfig};

/// Services with fewer successful samples get no recommendation.
pub const MIN_SUCCESSES: usize = 20;
const TIMEOUT_MARGIN: f64 = 1.5;
const STEP: Duration = Duration::from_millis(50);
const MIN_ATTEMPT_TIMEOUT: Duration = Duration::from_millis(100);
const MIN_FILLER_AFTER: Duration = Duration::from_millis(300);

/// Reads latencies from `path` and recommends settings.
pub fn tune_file(config: &Config, path: &Path) -> Result<String, ConfigError> {
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: origin.clone(),
        source,
    })?;
    tune_text(config, &text, &origin)
}

/// Recommends settings from the contents of a latencies file (JSON lines or CSV).
pub fn tune(config: &Config, latencies: &str) -> Result<String, ConfigError> {
    tune_text(config, latencies, "latencies")
}

fn tune_text(config: &Config, text: &str, origin: &str) -> Result<String, ConfigError> {
    let samples = parse_latencies(text, origin)?;
    let mut by_service: BTreeMap<&str, Vec<&LatencySample>> = BTreeMap::new();
    for sample in &samples {
        by_service
            .entry(sample.service.as_str())
            .or_default()
            .push(sample);
    }
    let mut out = format!(
        "# recommendations for {} from {} samples in {origin}\n",
        config.origin,
        samples.len()
    );
    for (name, samples) in &by_service {
        match (config.service(name), config.resolved_profile(name)) {
            (Some(service), Some(profile)) => out.push_str(&recommend(service, &profile, samples)),
            _ => {
                let _ = writeln!(
                    out,
                    "\n# {name}: {} sample(s) ignored, no such service in the config",
                    samples.len()
                );
            }
        }
    }
    Ok(out)
}

fn recommend(service: &ServiceConfig, current: &Profile, samples: &[&LatencySample]) -> String {
    let count = |outcome| samples.iter().filter(|s| s.outcome == outcome).count();
    let mut ok: Vec<f64> = samples
        .iter()
        .filter(|s| s.outcome == SampleOutcome::Ok)
        .map(|s| s.latency_ms)
        .collect();
    ok.sort_by(f64::total_cmp);
    let mut out = format!(
        "\n[services.{}]\n# profile {}; {} samples: {} ok, {} error, {} timeout",
        service.name,
        current.name,
        samples.len(),
        ok.len(),
        count(SampleOutcome::Error),
        count(SampleOutcome::Timeout)
    );
    if ok.len() < MIN_SUCCESSES {
        let _ = writeln!(
            out,
            "\n# not enough successful samples (need {MIN_SUCCESSES}); no recommendation"
        );
        return out;
    }
    let (p50, p90, p99) = (
        percentile(&ok, 0.50),
        percentile(&ok, 0.90),
        percentile(&ok, 0.99),
    );
    let _ = writeln!(
        out,
        "; successes p50 {}, p90 {}, p99 {}",
        fmt(p50),
        fmt(p90),
        fmt(p99)
    );

    let mut proposed = current.clone();
    let margin = round_up(p99.mul_f64(TIMEOUT_MARGIN)).max(MIN_ATTEMPT_TIMEOUT);
    proposed.attempt_timeout = margin.min(round_down(current.budget));
    let timeout_reason = if proposed.attempt_timeout < margin {
        format!(
            "p99 {} × {TIMEOUT_MARGIN} = {} does not fit the {} budget; capped, expect timeouts",
            fmt(p99),
            fmt(margin),
            fmt(current.budget)
        )
    } else {
        format!(
            "p99 {} × {TIMEOUT_MARGIN} margin = {}, rounded up to 50ms",
            fmt(p99),
            fmt(p99.mul_f64(TIMEOUT_MARGIN))
        )
    };
    field(
        &mut out,
        "attempt_timeout",
        quoted(current.attempt_timeout),
        quoted(proposed.attempt_timeout),
        &timeout_reason,
    );

    let (attempts, attempts_reason) = max_attempts(service, &proposed);
    proposed.max_attempts = attempts;
    field(
        &mut out,
        "max_attempts",
        current.max_attempts.to_string(),
        attempts.to_string(),
        &attempts_reason,
    );

    let filler_target = round_up(p90);
    proposed.filler_after = filler_target
        .max(MIN_FILLER_AFTER)
        .min(current.filler_after);
    let filler_reason = format!(
        "p90 {} → {}, kept within [{}, current {}] so first speech never gets later",
        fmt(p90),
        fmt(filler_target),
        fmt(MIN_FILLER_AFTER),
        fmt(current.filler_after)
    );
    field(
        &mut out,
        "filler_after",
        quoted(current.filler_after),
        quoted(proposed.filler_after),
        &filler_reason,
    );

    proposed.slow_call_threshold = round_up(p99)
        .min(proposed.attempt_timeout.saturating_sub(STEP))
        .max(STEP);
    let slow_reason = format!(
        "p99 {}: slower than 99 in 100 normal answers counts as slow (below attempt_timeout)",
        fmt(p99)
    );
    field(
        &mut out,
        "slow_call_threshold",
        quoted(current.slow_call_threshold),
        quoted(proposed.slow_call_threshold),
        &slow_reason,
    );

    let worst = proposed.worst_case();
    let _ = writeln!(
        out,
        "# result: worst case {worst} ≤ budget {}",
        fmt(proposed.budget)
    );
    out
}

/// The most attempts that fit the budget and cannot open the breaker alone.
fn max_attempts(service: &ServiceConfig, profile: &Profile) -> (u32, String) {
    let worst = |n: u32| {
        Profile {
            max_attempts: n,
            ..profile.clone()
        }
        .worst_case()
    };
    let fits = (1..=64)
        .take_while(|&n| worst(n).total <= profile.budget)
        .last()
        .unwrap_or(1);
    let breaker_limit = service
        .breaker
        .consecutive_failures
        .min(service.breaker.min_calls)
        .saturating_sub(1)
        .max(1);
    if fits > breaker_limit {
        let reason = format!(
            "{} would fit the budget, but the breaker (consecutive_failures {}, min_calls {}) must not open on one request's retries",
            fits, service.breaker.consecutive_failures, service.breaker.min_calls
        );
        return (breaker_limit, reason);
    }
    let reason = format!(
        "{} fits the {} budget; {} would take {}",
        worst(fits),
        fmt(profile.budget),
        fits + 1,
        fmt(worst(fits + 1).total)
    );
    (fits, reason)
}

fn field(out: &mut String, name: &str, current: String, proposed: String, reason: &str) {
    if current == proposed {
        let _ = writeln!(out, "  {name} = {current}\n  # unchanged: {reason}");
    } else {
        let _ = writeln!(
            out,
            "- {name} = {current}\n+ {name} = {proposed}\n  # {reason}"
        );
    }
}

fn quoted(duration: Duration) -> String {
    format!("\"{}\"", fmt(duration))
}

/// Nearest-rank percentile of sorted milliseconds, as a duration.
fn percentile(sorted_ms: &[f64], p: f64) -> Duration {
    let rank = ((p * sorted_ms.len() as f64).ceil() as usize).clamp(1, sorted_ms.len());
    Duration::from_secs_f64(sorted_ms[rank - 1] / 1000.0)
}

fn round_up(duration: Duration) -> Duration {
    let step = STEP.as_nanos();
    Duration::from_nanos((duration.as_nanos().div_ceil(step) * step) as u64)
}

fn round_down(duration: Duration) -> Duration {
    let step = STEP.as_nanos();
    Duration::from_nanos((duration.as_nanos() / step * step) as u64)
}
