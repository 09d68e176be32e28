//! Every invalid configuration is refused with a message naming file, line
//! and field, and saying what to fix.

use voxguard::config::{Config, DEFAULT_TOML, FleetBackend};

/// Line numbers referenced by the tests below:
/// 4 [profiles.voice], 5 budget, 6 attempt_timeout, 7 max_attempts,
/// 8 backoff, 9 filler_after, 12 slow_call_threshold, 14 [services.hubspot],
/// 15 profile.
const VALID: &str = r#"[llm]
profile = "voice"

[profiles.voice]
budget = "3.2s"
attempt_timeout = "1.2s"
max_attempts = 2
backoff = { kind = "full", base = "100ms", cap = "400ms" }
filler_after = "600ms"
filler_repeat = "1.5s"
filler_max = 2
slow_call_threshold = "1s"

[services.hubspot]
profile = "voice"
display_name = "your account records"
"#;

fn with(from: &str, to: &str) -> String {
    assert!(
        VALID.contains(from),
        "test setup: {from:?} not in the base config"
    );
    VALID.replacen(from, to, 1)
}

fn error(text: &str) -> String {
    Config::from_toml(text, "test.toml")
        .expect_err("config should be refused")
        .to_string()
}

#[test]
fn the_base_config_of_these_tests_is_valid() {
    let config = Config::from_toml(VALID, "test.toml").unwrap();
    assert_eq!(config.services["hubspot"].breaker.consecutive_failures, 5);
}

#[test]
fn the_embedded_default_validates() {
    let config = Config::embedded_default().unwrap();
    assert_eq!(config.services.len(), 4);
    assert_eq!(config.profiles.len(), 4);
    assert_eq!(config.fleet.backend, FleetBackend::Memory);
    assert!(DEFAULT_TOML.contains("[profiles.voice]"));
}

#[test]
fn bad_toml_syntax_names_the_line() {
    assert_eq!(
        error(&with("[profiles.voice]", "[profiles.voice")),
        "test.toml:4: invalid TOML: unclosed table, expected `]`"
    );
}

#[test]
fn an_unknown_key_is_an_error_not_ignored() {
    assert_eq!(
        error(&with(
            "filler_max = 2\n",
            "filler_max = 2\natempt_timeout = \"1s\"\n"
        )),
        "test.toml:12: profiles.voice.atempt_timeout: unknown field `atempt_timeout`, expected one of `budget`, `attempt_timeout`, `max_attempts`, `backoff`, `filler_after`, `filler_repeat`, `filler_max`, `slow_call_threshold`"
    );
}

#[test]
fn a_service_naming_an_unknown_profile_is_refused() {
    assert_eq!(
        error(&with(
            "profile = \"voice\"\ndisplay",
            "profile = \"voicee\"\ndisplay"
        )),
        "test.toml:15: services.hubspot.profile: unknown profile \"voicee\"; known profiles: voice"
    );
}

#[test]
fn a_zero_duration_is_refused() {
    assert_eq!(
        error(&with("budget = \"3.2s\"", "budget = \"0s\"")),
        "test.toml:5: profiles.voice.budget: invalid duration \"0s\": must be greater than zero"
    );
}

#[test]
fn a_duration_without_unit_is_refused() {
    assert_eq!(
        error(&with(
            "attempt_timeout = \"1.2s\"",
            "attempt_timeout = \"1.2\""
        )),
        "test.toml:6: profiles.voice.attempt_timeout: invalid duration \"1.2\": time unit needed, for example 1sec or 1ms; write it like \"700ms\" or \"3.5s\""
    );
}

#[test]
fn a_worst_case_beyond_the_budget_is_refused_with_the_arithmetic() {
    let text = with("max_attempts = 2", "max_attempts = 3").replacen(
        "budget = \"3.2s\"",
        "budget = \"3.5s\"",
        1,
    );
    assert_eq!(
        error(&text),
        "test.toml:6: profiles.voice.attempt_timeout: 3 attempts × 1.2s + 2 backoff sleeps ≤ 400ms = 4.4s exceeds budget 3.5s; lower max_attempts, attempt_timeout or backoff.cap, or raise budget to at least 4.4s"
    );
}

#[test]
fn a_filler_at_or_after_the_budget_is_refused() {
    assert_eq!(
        error(&with("filler_after = \"600ms\"", "filler_after = \"3.2s\"")),
        "test.toml:9: profiles.voice.filler_after: filler_after 3.2s is not before budget 3.2s, so the caller could sit in silence until the call ends; set it below the budget"
    );
}

#[test]
fn a_failure_rate_above_one_is_refused() {
    let text = format!("{VALID}\n[services.hubspot.breaker]\nfailure_rate = 1.5\n");
    assert_eq!(
        error(&text),
        "test.toml:19: services.hubspot.breaker.failure_rate: 1.5 is outside (0, 1]; it is a fraction of calls, e.g. 0.5"
    );
}

#[test]
fn a_breaker_one_requests_own_retries_could_open_is_refused() {
    let text = format!("{VALID}\n[services.hubspot.breaker]\nconsecutive_failures = 2\n");
    assert_eq!(
        error(&text),
        "test.toml:19: services.hubspot.breaker.consecutive_failures: 2 ≤ max_attempts 2, so one request's own retries could open the breaker; set it to at least 3 or lower max_attempts"
    );
}

#[test]
fn min_calls_within_one_requests_attempts_is_refused() {
    let text = format!("{VALID}\n[services.hubspot.breaker]\nmin_calls = 2\n");
    assert_eq!(
        error(&text),
        "test.toml:19: services.hubspot.breaker.min_calls: 2 ≤ max_attempts 2, so one request's own failed attempts could fill the window and open the breaker; set it to at least 3 or lower max_attempts"
    );
}

#[test]
fn a_service_override_that_breaks_the_budget_names_the_override() {
    let text = format!("{VALID}attempt_timeout = \"2s\"\n");
    assert_eq!(
        error(&text),
        "test.toml:17: services.hubspot.attempt_timeout: 2 attempts × 2s + 1 backoff sleep ≤ 400ms = 4.4s exceeds budget 3.2s; lower max_attempts, attempt_timeout or backoff.cap, or raise budget to at least 4.4s"
    );
}

#[test]
fn a_negative_count_is_refused() {
    assert_eq!(
        error(&with("max_attempts = 2", "max_attempts = -1")),
        "test.toml:7: profiles.voice.max_attempts: invalid value: integer `-1`, expected u32"
    );
}

#[test]
fn an_unknown_service_is_refused() {
    let text = format!("{VALID}\n[services.zendesk]\nprofile = \"voice\"\ndisplay_name = \"x\"\n");
    assert_eq!(
        error(&text),
        "test.toml:18: services.zendesk: unknown field `zendesk`, expected one of `amplitude`, `salesforce`, `hubspot`, `chilipiper`"
    );
}

#[test]
fn every_semantic_problem_is_reported_at_once() {
    let text = format!(
        "{}\n[services.hubspot.breaker]\nfailure_rate = 1.5\n",
        with("filler_after = \"600ms\"", "filler_after = \"3.2s\"")
    );
    let message = error(&text);
    let lines: Vec<&str> = message.lines().collect();
    assert_eq!(lines.len(), 2, "{message}");
    assert!(lines[0].starts_with("test.toml:9: profiles.voice.filler_after: "));
    assert!(lines[1].starts_with("test.toml:19: services.hubspot.breaker.failure_rate: "));
}

#[test]
fn a_bad_environment_override_names_the_variable() {
    let env = |name: &str| (name == "VOXGUARD_HEALTH_ADDR").then(|| "localhost".to_string());
    let message = Config::from_toml_with_env(VALID, "test.toml", &env)
        .unwrap_err()
        .to_string();
    assert_eq!(
        message,
        "environment variable VOXGUARD_HEALTH_ADDR: worker.health_addr: \"localhost\" is not a socket address like 0.0.0.0:8081"
    );
}

#[test]
fn environment_overrides_apply_before_validation() {
    let env = |name: &str| match name {
        "LIVEKIT_URL" => Some("wss://lk.example.com".to_string()),
        "VOXGUARD_FLEET_BACKEND" => Some("redis".to_string()),
        _ => None,
    };
    let message = Config::from_toml_with_env(VALID, "test.toml", &env)
        .unwrap_err()
        .to_string();
    assert_eq!(
        message,
        "test.toml: fleet.url: backend \"redis\" needs url, e.g. \"redis://127.0.0.1:6379\""
    );

    let env_with_url = |name: &str| {
        env(name).or_else(|| (name == "VOXGUARD_REDIS_URL").then(|| "redis://r:6379".into()))
    };
    let config = Config::from_toml_with_env(VALID, "test.toml", &env_with_url).unwrap();
    assert_eq!(config.livekit.url, "wss://lk.example.com");
    assert_eq!(config.fleet.url.as_deref(), Some("redis://r:6379"));
}

#[test]
fn a_config_file_is_named_by_its_path() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/config/voice_over_budget.toml");
    let message = Config::load(Some(&path)).unwrap_err().to_string();
    assert!(
        message.starts_with(&format!("{}:", path.display())),
        "{message}"
    );
    assert!(
        message.contains(":6: profiles.voice.attempt_timeout: 3 attempts × 1.2s"),
        "{message}"
    );
}

#[test]
fn fleet_settings_that_break_its_promises_are_refused_by_field_and_line() {
    let slow = format!("{VALID}\n[fleet]\nbackend = \"memory\"\nsync_interval = \"5s\"\n");
    let message = error(&slow);
    assert!(
        message.starts_with("test.toml:20: fleet.sync_interval: must be between 1ms and 1s"),
        "{message}"
    );

    let not_redis = format!("{VALID}\n[fleet]\nbackend = \"redis\"\nurl = \"http://cache:6379\"\n");
    let message = error(&not_redis);
    assert!(
        message.starts_with("test.toml:20: fleet.url: is not a Redis URL"),
        "{message}"
    );
}

#[test]
fn the_fleet_section_maps_onto_the_fleet_settings() {
    let text = format!(
        "{VALID}\n[fleet]\nbackend = \"redis\"\nurl = \"redis://cache:6379\"\nkey_prefix = \"calls-eu\"\nstate_ttl = \"10m\"\nsync_interval = \"25ms\"\nredis_timeout = \"30ms\"\n"
    );
    let settings = Config::from_toml(&text, "test.toml")
        .unwrap()
        .fleet_settings();
    assert_eq!(settings.backend, voxguard::fleet::BackendKind::Redis);
    assert_eq!(settings.url, "redis://cache:6379");
    assert_eq!(settings.key_prefix, "calls-eu");
    assert_eq!(settings.state_ttl, std::time::Duration::from_secs(600));
    assert_eq!(settings.sync_interval, std::time::Duration::from_millis(25));
    assert_eq!(settings.redis_timeout, std::time::Duration::from_millis(30));
    assert_eq!(settings.validate(), Ok(()));
}

#[test]
fn the_dev_section_sets_the_call_socket_limits_and_refuses_a_zero_cap() {
    let text =
        format!("{VALID}\n[dev]\nfirst_frame_timeout = \"5s\"\nmax_connections_per_address = 3\n");
    let config = Config::from_toml(&text, "test.toml").unwrap();
    assert_eq!(
        config.dev.first_frame_timeout,
        std::time::Duration::from_secs(5)
    );
    assert_eq!(config.dev.max_connections_per_address, 3);

    let closed = format!("{VALID}\n[dev]\nmax_connections_per_address = 0\n");
    let message = error(&closed);
    assert!(
        message.starts_with("test.toml:19: dev.max_connections_per_address: must be at least 1"),
        "{message}"
    );
}
