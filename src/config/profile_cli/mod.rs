//! The library behind `voxguard profile check|explain|tune`: each returns
//! the text to print, so the CLI only decides exit codes.
//!
//! ```
//! use voxguard::config::{Config, profile_cli};
//! let config = Config::embedded_default().unwrap();
//! let (report, ok) = profile_cli::check(&config);
//! assert!(ok, "{report}");
//! let timeline = profile_cli::explain(&config, "voice").unwrap();
//! assert!(timeline.contains("budget end"));
//! ```

mod latency;
mod timeline;
mod tune;

use std::fmt::Write;
use std::time::Duration;

use super::duration::format as fmt;
use super::{Checked, Config, ConfigError, Problem, Profile};
use crate::resilience::BackoffKind;

pub use latency::{LatencySample, SampleOutcome, parse_latencies, write_csv, write_jsonl};
pub use timeline::{AXIS_COLUMNS, Segment, Timeline};
pub use tune::{MIN_SUCCESSES, tune, tune_file};

/// Voice target: the caller hears something within this long of a tool call starting.
pub const VOICE_FIRST_SPEECH_TARGET: Duration = Duration::from_millis(750);
/// Voice target: the answer or the failure phrase within this long.
pub const VOICE_RESOLUTION_TARGET: Duration = Duration::from_millis(3500);

/// Every profile's and service's worst case, and whether all fit their
/// budgets (and, for voice, the voice targets). `ok == false` → exit 2.
pub fn check(config: &Config) -> (String, bool) {
    check_report(config, None)
}

/// What `voxguard profile check` prints for a configuration that passed
/// [`Config::load_for`] for `start`: [`check`], and what `start` would run
/// without, one line per credential not set, with the variable and its form.
pub fn check_for_start(checked: &Checked) -> (String, bool) {
    check_report(&checked.config, Some(&checked.warnings))
}

fn check_report(config: &Config, start_warnings: Option<&[Problem]>) -> (String, bool) {
    let mut out = String::new();
    let mut ok = true;
    let _ = writeln!(
        out,
        "{}: {} profiles, {} services",
        config.origin,
        config.profiles.len(),
        config.services.len()
    );
    let _ = writeln!(out, "\nprofiles");
    for profile in config.profiles.values() {
        let (line, fits) = verdict(&profile.name, profile);
        ok &= fits;
        out.push_str(&line);
    }
    let _ = writeln!(out, "\nservices");
    for service in config.services.values() {
        let Some(profile) = config.resolved_profile(&service.name) else {
            ok = false;
            let _ = writeln!(
                out,
                "  {:<12} FAIL  unknown profile {:?}",
                service.name, service.profile
            );
            continue;
        };
        let (line, fits) = verdict(&service.name, &profile);
        ok &= fits;
        out.push_str(&line);
        let overridden = service.overrides.fields();
        let via = if overridden.is_empty() {
            String::new()
        } else {
            format!(", overrides {}", overridden.join(", "))
        };
        let breaker = &service.breaker;
        let _ = writeln!(
            out,
            "  {:<12}       profile {}{via}; breaker opens after {} failures in a row or {:.0}% of ≥{} calls; bulkhead {}",
            "",
            profile.name,
            breaker.consecutive_failures,
            breaker.failure_rate * 100.0,
            breaker.min_calls,
            service.bulkhead_size
        );
    }
    if let Some(warnings) = start_warnings {
        let _ = writeln!(out, "\ncredentials voxguard start reads");
        if warnings.is_empty() {
            let _ = writeln!(out, "  every one is set");
        }
        for warning in warnings {
            let _ = writeln!(out, "  warning: {warning}");
        }
    }
    let _ = writeln!(
        out,
        "\nresult: {}",
        if ok {
            "ok"
        } else {
            "FAILED (fix the lines marked FAIL)"
        }
    );
    (out, ok)
}

/// One line: `name ok|FAIL worst case … budget … spare …, first speech …`.
fn verdict(name: &str, profile: &Profile) -> (String, bool) {
    let worst = profile.worst_case();
    let mut problems = Vec::new();
    if worst.total > profile.budget {
        problems.push(format!(
            "worst case exceeds budget by {}",
            fmt(worst.total - profile.budget)
        ));
    }
    if profile.filler_after >= profile.budget {
        problems.push("filler_after is not before the budget".to_string());
    }
    if profile.name == "voice" {
        if profile.filler_max == 0 || profile.filler_after > VOICE_FIRST_SPEECH_TARGET {
            problems.push(format!(
                "first speech misses the {} voice target",
                fmt(VOICE_FIRST_SPEECH_TARGET)
            ));
        }
        if profile.budget > VOICE_RESOLUTION_TARGET {
            problems.push(format!(
                "budget exceeds the {} voice resolution target",
                fmt(VOICE_RESOLUTION_TARGET)
            ));
        }
    }
    let first_speech = if profile.filler_max == 0 {
        "no filler".to_string()
    } else {
        format!("filler at {}", fmt(profile.filler_after))
    };
    let status = if problems.is_empty() { "ok  " } else { "FAIL" };
    let mut line = format!(
        "  {name:<12} {status}  worst case {worst}, budget {}, spare {}; {first_speech}\n",
        fmt(profile.budget),
        fmt(profile.budget.saturating_sub(worst.total))
    );
    for problem in &problems {
        let _ = writeln!(line, "  {:<12}       {problem}", "");
    }
    (line, problems.is_empty())
}

/// A readable timeline of `name` (a profile, or a service with its
/// overrides applied): typical case, one retry, and worst case.
///
/// Typical-case assumption: the attempt that succeeds answers after half
/// the profile's `slow_call_threshold` — an ordinary, not-slow call.
pub fn explain(config: &Config, name: &str) -> Result<String, ConfigError> {
    let (title, profile) = if let Some(profile) = config.profile(name) {
        (format!("profile {name}"), profile.clone())
    } else if let (Some(service), Some(profile)) =
        (config.service(name), config.resolved_profile(name))
    {
        let overridden = service.overrides.fields();
        let via = if overridden.is_empty() {
            String::new()
        } else {
            format!(" with overrides {}", overridden.join(", "))
        };
        (
            format!(
                "service {name} (\"{}\"): profile {}{via}",
                service.display_name, profile.name
            ),
            profile,
        )
    } else {
        return Err(ConfigError::UnknownName {
            name: name.to_string(),
            profiles: config.profiles.keys().cloned().collect(),
            services: config.services.keys().cloned().collect(),
        });
    };
    let backoff = &profile.backoff;
    let fillers = if profile.filler_max == 0 {
        "no fillers (filler_max 0)".to_string()
    } else {
        format!(
            "filler after {} then every {} (at most {})",
            fmt(profile.filler_after),
            fmt(profile.filler_repeat),
            profile.filler_max
        )
    };
    let mut out = format!(
        "{title}\n  budget {}, {} × attempt_timeout {}, backoff {} {}..{}, {fillers}\n",
        fmt(profile.budget),
        profile.max_attempts,
        fmt(profile.attempt_timeout),
        kind_name(backoff.kind),
        fmt(backoff.base),
        fmt(backoff.cap),
    );
    let typical = profile.slow_call_threshold / 2;
    let _ = writeln!(
        out,
        "\ntypical: the first attempt answers after {} (half the slow_call_threshold)",
        fmt(typical)
    );
    out.push_str(&Timeline::typical(&profile, typical).render(profile.budget));
    if let Some(retry) = Timeline::one_retry(&profile, typical) {
        let _ = writeln!(
            out,
            "\none retry: attempt 1 times out, backoff sleeps {}, attempt 2 answers after {}",
            fmt(profile.backoff.max_sleep() / 2),
            fmt(typical)
        );
        out.push_str(&retry.render(profile.budget));
    }
    let worst = profile.worst_case();
    let _ = writeln!(
        out,
        "\nworst case: every attempt times out, every backoff sleeps its cap: {worst}"
    );
    out.push_str(&Timeline::worst_case(&profile).render(profile.budget));
    Ok(out)
}

/// The backoff kind as the config spells it.
fn kind_name(kind: BackoffKind) -> &'static str {
    match kind {
        BackoffKind::Full => "full",
        BackoffKind::Decorrelated => "decorrelated",
    }
}
