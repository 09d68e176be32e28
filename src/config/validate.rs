//! Semantic validation: every value that deserialized but makes no sense
//! (a profile that cannot fit its budget, a breaker one request could open)
//! becomes a `Problem` naming its file, line and field. All are collected.

use std::collections::BTreeMap;

use crate::resilience::MAX_WINDOW_SIZE;

use super::Config;
use super::duration::format as fmt;
use super::error::Problem;
use super::profile::Profile;
use super::profile_cli::{VOICE_FIRST_SPEECH_TARGET, VOICE_RESOLUTION_TARGET};
use super::service::ServiceConfig;
use super::spans::SpanIndex;

/// Most attempts a profile may make; more could not be shown or reasoned about.
pub const MAX_ATTEMPTS: u32 = 100;
/// Most filler lines (filler plus still-working) a profile may speak in one call.
pub const MAX_FILLERS: u32 = 100;

/// Collects problems and knows where each field came from.
pub(crate) struct Report<'a> {
    pub(crate) origin: &'a str,
    pub(crate) spans: &'a SpanIndex,
    /// Fields whose value came from an environment variable.
    pub(crate) env_fields: &'a BTreeMap<String, &'static str>,
    pub(crate) problems: Vec<Problem>,
    /// What the command runs without (a service left out), said once.
    pub(crate) warnings: Vec<Problem>,
}

impl Report<'_> {
    pub(crate) fn error(&mut self, field: &str, message: String) {
        let problem = self.locate(field, message);
        self.problems.push(problem);
    }

    pub(crate) fn warn(&mut self, field: &str, message: String) {
        let warning = self.locate(field, message);
        self.warnings.push(warning);
    }

    fn locate(&self, field: &str, message: String) -> Problem {
        let (origin, line) = match self.env_fields.get(field) {
            Some(var) => (format!("environment variable {var}"), None),
            None => (self.origin.to_string(), self.spans.line_of(field)),
        };
        Problem {
            origin,
            line,
            field: field.to_string(),
            message,
        }
    }
}

pub(crate) fn validate(config: &Config, report: &mut Report<'_>) {
    if config.profiles.is_empty() {
        report.error(
            "profiles",
            "at least one profile is required, e.g. [profiles.voice]".into(),
        );
    }
    for profile in config.profiles.values() {
        check_profile(
            profile,
            &|field| Some(format!("profiles.{}.{field}", profile.name)),
            report,
        );
    }
    for service in config.services.values() {
        check_service(config, service, report);
    }
    check_sections(config, report);
    super::speech::check(config, report);
    super::voice::check(&config.voice, report);
}

/// Checks one profile. `field_path` names a profile field (`budget`,
/// `backoff.cap`) as written in the file, or `None` when the field was not
/// written there (a service's field it did not override).
fn check_profile(
    profile: &Profile,
    field_path: &dyn Fn(&str) -> Option<String>,
    report: &mut Report<'_>,
) {
    // Report on the first field involved that is actually written here.
    let mut problem = |fields: &[&str], message: String| {
        if let Some(path) = fields.iter().find_map(|f| field_path(f)) {
            report.error(&path, message);
        }
    };
    if profile.filler_max > MAX_FILLERS {
        problem(
            &["filler_max"],
            format!(
                "{} is more than {MAX_FILLERS}; no caller listens to that many fillers in one call",
                profile.filler_max
            ),
        );
    }
    if profile.max_attempts == 0 {
        problem(
            &["max_attempts"],
            "must be at least 1 (1 means no retry)".into(),
        );
        return;
    }
    if profile.max_attempts > MAX_ATTEMPTS {
        problem(
            &["max_attempts"],
            format!(
                "{} is more than {MAX_ATTEMPTS}; no call is worth that many attempts",
                profile.max_attempts
            ),
        );
        return;
    }
    if profile.backoff.base > profile.backoff.cap {
        problem(
            &["backoff.base", "backoff.cap"],
            format!(
                "backoff.base {} exceeds backoff.cap {}; the cap bounds every sleep, so lower base or raise cap",
                fmt(profile.backoff.base),
                fmt(profile.backoff.cap)
            ),
        );
    }
    let worst = profile.worst_case();
    if worst.total > profile.budget {
        problem(
            &["attempt_timeout", "max_attempts", "backoff.cap", "budget"],
            format!(
                "{worst} exceeds budget {}; lower max_attempts, attempt_timeout or backoff.cap, or raise budget to at least {}",
                fmt(profile.budget),
                fmt(worst.total)
            ),
        );
    }
    if profile.filler_after >= profile.budget {
        problem(
            &["filler_after", "budget"],
            format!(
                "filler_after {} is not before budget {}, so the caller could sit in silence until the call ends; set it below the budget",
                fmt(profile.filler_after),
                fmt(profile.budget)
            ),
        );
    }
    if profile.name == "voice" {
        check_voice_targets(profile, &mut problem);
    }
    if profile.slow_call_threshold >= profile.attempt_timeout {
        problem(
            &["slow_call_threshold", "attempt_timeout"],
            format!(
                "slow_call_threshold {} is not below attempt_timeout {}, so no attempt could ever count as slow; set it below attempt_timeout",
                fmt(profile.slow_call_threshold),
                fmt(profile.attempt_timeout)
            ),
        );
    }
}

/// The `voice` profile carries the promise to callers: something heard
/// within [`VOICE_FIRST_SPEECH_TARGET`] of a tool starting, the answer or
/// the failure phrase within [`VOICE_RESOLUTION_TARGET`].
fn check_voice_targets(profile: &Profile, problem: &mut impl FnMut(&[&str], String)) {
    if profile.filler_max == 0 {
        problem(
            &["filler_max"],
            format!(
                "0 fillers leaves the caller in silence until the tool answers; the voice profile promises speech within {}, so set it to at least 1",
                fmt(VOICE_FIRST_SPEECH_TARGET)
            ),
        );
    } else if profile.filler_after > VOICE_FIRST_SPEECH_TARGET
        && profile.filler_after < profile.budget
    {
        problem(
            &["filler_after"],
            format!(
                "{} misses the voice profile's first-speech target: the caller must hear something within {} of a tool starting; set it to at most {}",
                fmt(profile.filler_after),
                fmt(VOICE_FIRST_SPEECH_TARGET),
                fmt(VOICE_FIRST_SPEECH_TARGET)
            ),
        );
    }
    if profile.budget > VOICE_RESOLUTION_TARGET {
        problem(
            &["budget"],
            format!(
                "{} exceeds the voice profile's resolution target: the answer or the failure phrase must come within {}; lower it to at most {}",
                fmt(profile.budget),
                fmt(VOICE_RESOLUTION_TARGET),
                fmt(VOICE_RESOLUTION_TARGET)
            ),
        );
    }
}

/// The longest service name the agent says aloud.
const MAX_DISPLAY_NAME: usize = 60;

fn check_service(config: &Config, service: &ServiceConfig, report: &mut Report<'_>) {
    let at = |field: &str| format!("services.{}.{field}", service.name);
    if service.display_name.trim().is_empty() {
        report.error(
            &at("display_name"),
            "must name the service aloud, e.g. \"the calendar\"".into(),
        );
    } else if service.display_name.chars().count() > MAX_DISPLAY_NAME {
        report.error(
            &at("display_name"),
            format!(
                "{} characters is too long to say aloud; keep it under {MAX_DISPLAY_NAME}, e.g. \"the calendar\"",
                service.display_name.chars().count()
            ),
        );
    }
    if service.bulkhead_size == 0 {
        report.error(&at("bulkhead"), "must be at least 1 call in flight".into());
    }
    check_breaker(service, report);
    let budget = &service.retry_budget;
    if !(0.0..=1.0).contains(&budget.ratio) {
        report.error(
            &at("retry_budget.ratio"),
            format!(
                "{} is outside [0, 1]; it is retries per first attempt, e.g. 0.2",
                budget.ratio
            ),
        );
    }

    let Some(base) = config.profiles.get(&service.profile) else {
        report.error(
            &at("profile"),
            format!(
                "unknown profile {:?}; known profiles: {}",
                service.profile,
                known(config)
            ),
        );
        return;
    };
    let resolved = service.resolve(base);
    let overridden = service.overrides.fields();
    // The base profile reports its own problems; here only overrides can add new ones.
    check_profile(
        &resolved,
        &|field| overridden.contains(&field).then(|| at(field)),
        report,
    );

    let max_attempts = resolved.max_attempts;
    let breaker = &service.breaker;
    if breaker.consecutive_failures > 0 && breaker.consecutive_failures <= max_attempts {
        report.error(
            &at("breaker.consecutive_failures"),
            format!(
                "{} ≤ max_attempts {max_attempts}, so one request's own retries could open the breaker; set it to at least {} or lower max_attempts",
                breaker.consecutive_failures,
                max_attempts + 1
            ),
        );
    }
    if breaker.min_calls > 0 && breaker.min_calls <= max_attempts {
        report.error(
            &at("breaker.min_calls"),
            format!(
                "{} ≤ max_attempts {max_attempts}, so one request's own failed attempts could fill the window and open the breaker; set it to at least {} or lower max_attempts",
                breaker.min_calls,
                max_attempts + 1
            ),
        );
    }
}

fn check_breaker(service: &ServiceConfig, report: &mut Report<'_>) {
    let at = |field: &str| format!("services.{}.breaker.{field}", service.name);
    let b = &service.breaker;
    for (field, value) in [
        ("consecutive_failures", b.consecutive_failures),
        ("window_size", b.window_size),
        ("min_calls", b.min_calls),
        ("half_open_probes", b.half_open_probes),
    ] {
        if value == 0 {
            report.error(&at(field), "must be at least 1".into());
        }
    }
    if b.window_size > MAX_WINDOW_SIZE {
        report.error(
            &at("window_size"),
            format!(
                "{} is more than {MAX_WINDOW_SIZE}; the window is allocated up front, one slot per call",
                b.window_size
            ),
        );
    }
    if b.min_calls > b.window_size {
        report.error(
            &at("min_calls"),
            format!(
                "{} exceeds window_size {}, so the window could never be judged",
                b.min_calls, b.window_size
            ),
        );
    }
    for (field, rate) in [
        ("failure_rate", b.failure_rate),
        ("slow_call_rate", b.slow_call_rate),
    ] {
        if !(rate > 0.0 && rate <= 1.0) {
            report.error(
                &at(field),
                format!("{rate} is outside (0, 1]; it is a fraction of calls, e.g. 0.5"),
            );
        }
    }
    if b.open_base > b.open_cap {
        report.error(
            &at("open_base"),
            format!(
                "{} exceeds open_cap {}; lower open_base or raise open_cap",
                fmt(b.open_base),
                fmt(b.open_cap)
            ),
        );
    }
}

fn check_sections(config: &Config, report: &mut Report<'_>) {
    let worker = &config.worker;
    if worker.max_sessions == 0 {
        report.error("worker.max_sessions", "must be at least 1".into());
    }
    if !(worker.load_full_threshold > 0.0 && worker.load_full_threshold <= 1.0) {
        report.error(
            "worker.load_full_threshold",
            format!(
                "{} is outside (0, 1]; it is a fraction of max_sessions, e.g. 0.9",
                worker.load_full_threshold
            ),
        );
    }
    if worker.ping_timeout <= worker.ping_interval {
        report.error(
            "worker.ping_timeout",
            format!(
                "{} must be longer than ping_interval ({}): the link is declared dead after ping_timeout without a pong",
                humantime::format_duration(worker.ping_timeout),
                humantime::format_duration(worker.ping_interval)
            ),
        );
    }
    if config.dev.max_connections_per_address == 0 {
        report.error(
            "dev.max_connections_per_address",
            "must be at least 1: with 0 the dev page could never open a call".into(),
        );
    }
    if config.session.max_consecutive_failures == 0 {
        report.error(
            "session.max_consecutive_failures",
            "must be at least 1".into(),
        );
    }
    if config.fleet.backend == super::FleetBackend::Redis && config.fleet.url.is_none() {
        report.error(
            "fleet.url",
            "backend \"redis\" needs url, e.g. \"redis://127.0.0.1:6379\"".into(),
        );
    } else if let Err(problem) = config.fleet_settings().validate() {
        report.error(&format!("fleet.{}", problem.field), problem.problem);
    }
    if !config.profiles.contains_key(&config.llm.profile) {
        report.error(
            "llm.profile",
            format!(
                "unknown profile {:?}; known profiles: {}",
                config.llm.profile,
                known(config)
            ),
        );
    }
}

fn known(config: &Config) -> String {
    config
        .profiles
        .keys()
        .cloned()
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::super::{Config, DEFAULT_TOML};

    fn problems_of(text: &str) -> Vec<(Option<usize>, String, String)> {
        let error = Config::from_toml(text, "t.toml").unwrap_err();
        error
            .problems()
            .iter()
            .map(|p| (p.line, p.field.clone(), p.message.clone()))
            .collect()
    }

    #[test]
    fn attempts_and_fillers_beyond_what_explain_can_draw_are_rejected() {
        let text = DEFAULT_TOML
            .replacen("max_attempts = 2", "max_attempts = 1000000000", 1)
            .replacen("filler_max = 2", "filler_max = 4000000000", 1);
        let problems = problems_of(&text);
        let fields: Vec<&str> = problems.iter().map(|(_, f, _)| f.as_str()).collect();
        assert!(
            fields.contains(&"profiles.voice.max_attempts"),
            "{problems:?}"
        );
        assert!(
            fields.contains(&"profiles.voice.filler_max"),
            "{problems:?}"
        );
        assert!(problems.iter().all(|(line, _, _)| line.is_some()));
    }

    #[test]
    fn a_breaker_window_too_large_to_allocate_is_rejected_with_its_line() {
        let text = DEFAULT_TOML.replacen("window_size = 20", "window_size = 4000000000", 1);
        let problems = problems_of(&text);
        let window = problems
            .iter()
            .find(|(_, field, _)| field.ends_with("breaker.window_size"))
            .unwrap_or_else(|| panic!("{problems:?}"));
        assert!(window.0.is_some());
        assert!(window.2.contains("more than 100000"), "{}", window.2);
    }
}
