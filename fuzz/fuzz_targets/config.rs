//! The configuration file: TOML text through `Config::from_toml` (parse,
//! spans, validation), then everything startup and `voxguard profile` do
//! with a configuration that validated.

#![no_main]

use libfuzzer_sys::fuzz_target;
use std::time::Instant;
use voxguard::config::{Config, profile_cli};

use voxguard::resilience::{Deadline, Guard};

const ORIGIN: &str = "fuzz.toml";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Config::from_toml(text, ORIGIN) {
        Ok(config) => valid(&config),
        Err(error) => invalid(text, &error),
    }
});

/// A configuration that validated must run: every service gets a guard that
/// builds, a profile that fits its budget and a filler ladder inside it, and
/// `profile check` / `profile explain` answer for every name.
fn valid(config: &Config) {
    for (name, service) in &config.services {
        let profile = config
            .resolved_profile(name)
            .unwrap_or_else(|| panic!("validated service {name} has no profile"));
        assert!(
            profile.worst_case().total <= profile.budget,
            "validated service {name}: worst case {} exceeds budget",
            profile.worst_case()
        );
        assert!(profile.filler_after < profile.budget);
        let guard_config = config.guard_config(name).expect("guard config");
        assert_eq!(guard_config.service, service.name);
        Guard::builder(guard_config)
            .seed(7)
            .build()
            .unwrap_or_else(|e| panic!("validated service {name} has an invalid guard: {e}"));
        // What a tool call under this service does with the timings: a
        // deadline `budget` from now, and fillers up to `filler_max` repeats away.
        Deadline::after(profile.budget);
        let last_filler = profile
            .filler_repeat
            .checked_mul(profile.filler_max)
            .and_then(|repeats| repeats.checked_add(profile.filler_after));
        assert!(
            last_filler.is_some_and(|at| Instant::now().checked_add(at).is_some()),
            "service {name}: filler ladder overflows the clock"
        );
        let ladder = config.ladder_timing(name).expect("ladder");
        let _ = ladder.validate();
        let _ = ladder.covers_budget();
        let fillers = ladder.filler_times(profile.budget);
        assert!(fillers.len() <= ladder.filler_max as usize);
        assert!(fillers.windows(2).all(|pair| pair[0] < pair[1]));
        assert!(fillers.iter().all(|at| *at < profile.budget));
    }
    let (report, _ok) = profile_cli::check(config);
    assert!(report.starts_with(ORIGIN));
    for name in config.profiles.keys().chain(config.services.keys()) {
        let timeline = profile_cli::explain(config, name)
            .unwrap_or_else(|e| panic!("explain {name:?} of a valid config failed: {e}"));
        assert!(timeline.contains("budget end"));
    }
}

/// Every problem names this file and says where: a line within the text, or
/// (for a value that was defaulted, not written) the field.
fn invalid(text: &str, error: &voxguard::config::ConfigError) {
    let problems = error.problems();
    assert!(!problems.is_empty(), "an error without problems: {error}");
    let lines = text.split('\n').count();
    for problem in problems {
        assert_eq!(problem.origin, ORIGIN);
        assert!(!problem.message.is_empty());
        match problem.line {
            Some(line) => assert!(
                (1..=lines).contains(&line),
                "line {line} outside a {lines}-line text: {problem}"
            ),
            None => assert!(
                !problem.field.is_empty(),
                "problem without a place: {problem}"
            ),
        }
    }
    let shown = error.to_string();
    assert_eq!(shown.lines().count(), problems.len(), "{shown}");
}
