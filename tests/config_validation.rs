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
    let path = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
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

// Every command runs one validation: what `profile check` refuses is what
// stops `start`, `dev`, `console` and `simulate`, with the same message.

use std::path::PathBuf;
use std::process::{Command as Process, Output, Stdio};
use std::time::{Duration, Instant};

use voxguard::config::Command;

/// The base config with every CRM service, each reading its credentials
/// from the variable the README's table names.
fn with_all_services() -> String {
    let mut text = VALID.to_string();
    for (service, variable) in [
        ("amplitude", "AMPLITUDE_API_KEY"),
        ("salesforce", "SALESFORCE_TOKEN"),
        ("chilipiper", "CHILIPIPER_TOKEN"),
    ] {
        text.push_str(&format!(
            "\n[services.{service}]\nprofile = \"voice\"\ndisplay_name = \"the {service} service\"\ncredentials = {{ env = \"{variable}\" }}\n"
        ));
    }
    text.replacen(
        "display_name = \"your account records\"\n",
        "display_name = \"your account records\"\ncredentials = { env = \"HUBSPOT_TOKEN\" }\n",
        1,
    )
}

/// A config file of this test process, removed when dropped.
struct ConfigFile(PathBuf);

impl ConfigFile {
    fn new(name: &str, text: &str) -> ConfigFile {
        let path = std::env::temp_dir().join(format!(
            "voxguard-validation-{}-{name}.toml",
            std::process::id()
        ));
        std::fs::write(&path, text).expect("temp config written");
        ConfigFile(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("temp path is UTF-8")
    }
}

impl Drop for ConfigFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The real binary with only PATH and `env` set. A command that validation
/// wrongly lets through would start serving: it is stopped after a while
/// and the test fails on its exit status.
fn voxguard(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut child = Process::new(env!("CARGO_BIN_EXE_voxguard"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let started = Instant::now();
    while child.try_wait().expect("child status").is_none() {
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("child output")
}

/// Every command that runs the agent, and the check that answers for them.
fn every_command(config: &str) -> Vec<Vec<&str>> {
    vec![
        vec!["profile", "check", "--config", config],
        vec!["start", "--config", config],
        vec!["dev", "--config", config],
        vec!["console", "--config", config],
        vec![
            "simulate",
            "--calls",
            "1",
            "--in-process",
            "--config",
            config,
        ],
    ]
}

fn assert_every_command_refuses(file: &ConfigFile, env: &[(&str, &str)], expected: &str) {
    for args in every_command(file.path()) {
        let output = voxguard(&args, env);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(2),
            "voxguard {args:?} exits 2 on an invalid config\n{stderr}"
        );
        assert_eq!(stderr, expected, "voxguard {args:?}");
        assert!(
            output.stdout.is_empty(),
            "voxguard {args:?} starts nothing: {}",
            String::from_utf8_lossy(&output.stdout)
        );
    }
}

/// LIVEKIT_API_SECRET set, so `start` has nothing else to say.
const LIVEKIT: [(&str, &str); 1] = [("LIVEKIT_API_SECRET", "lk-secret")];

#[test]
fn a_config_without_services_is_refused_by_every_command_with_one_message() {
    let profiles_only = VALID[..VALID.find("[services.hubspot]").unwrap()].to_string();
    let file = ConfigFile::new("no-services", &profiles_only);
    let expected = format!(
        "voxguard: invalid configuration\n{}: services: no [services.*] section; the agent wires amplitude, salesforce, hubspot, chilipiper, so add [services.NAME] with profile and display_name for each (config/voxguard.toml has one for each to copy; a service without credentials is left out while the agent runs)\n",
        file.path()
    );
    assert_every_command_refuses(&file, &LIVEKIT, &expected);
    // The profiles alone are still a file `profile explain` reads.
    let explained = voxguard(
        &["profile", "explain", "voice", "--config", file.path()],
        &[],
    );
    assert!(explained.status.success(), "{explained:?}");
}

#[test]
fn each_missing_service_is_named_by_every_command() {
    let file = ConfigFile::new("hubspot-only", VALID);
    let output = voxguard(&["profile", "check", "--config", file.path()], &LIVEKIT);
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    let fields: Vec<&str> = stderr
        .lines()
        .skip(1)
        .map(|line| line.split(": ").nth(1).unwrap_or(line))
        .collect();
    assert_eq!(
        fields,
        [
            "services.amplitude",
            "services.salesforce",
            "services.chilipiper"
        ],
        "{stderr}"
    );
    // Each names the file and the line of the services already written.
    assert!(
        stderr
            .lines()
            .skip(1)
            .all(|line| line.starts_with(&format!("{}:14: services.", file.path()))),
        "{stderr}"
    );
    assert_every_command_refuses(&file, &LIVEKIT, &stderr);
}

/// `file:line: field: ` for the line of `text` that mentions `needle`.
fn at(file: &ConfigFile, text: &str, needle: &str, field: &str) -> String {
    let line = text
        .lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle} is in the config"))
        + 1;
    format!("{}:{line}: {field}: ", file.path())
}

#[test]
fn start_refuses_every_unusable_credential_at_once_naming_its_variable_and_form() {
    let text = with_all_services();
    let file = ConfigFile::new("bad-credentials", &text);
    // LIVEKIT_API_SECRET is not set either.
    let env = [
        ("AMPLITUDE_API_KEY", ""),
        ("SALESFORCE_TOKEN", "consumer-key-without-its-secret"),
        ("CHILIPIPER_TOKEN", ""),
        ("HUBSPOT_TOKEN", "pat-na1-0000"),
    ];
    let output = voxguard(&["start", "--config", file.path()], &env);
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    let expected = [
        "voxguard: invalid configuration".to_string(),
        format!(
            "{}: livekit.api_secret: environment variable LIVEKIT_API_SECRET is not set; set it to the API secret that goes with LIVEKIT_API_KEY",
            file.path()
        ),
        at(
            &file,
            &text,
            "AMPLITUDE_API_KEY",
            "services.amplitude.credentials",
        ) + "environment variable AMPLITUDE_API_KEY is empty; it must hold API_KEY:SECRET_KEY (the project's API key and secret key)",
        at(
            &file,
            &text,
            "CHILIPIPER_TOKEN",
            "services.chilipiper.credentials",
        ) + "environment variable CHILIPIPER_TOKEN is empty; it must hold an API key",
        at(
            &file,
            &text,
            "SALESFORCE_TOKEN",
            "services.salesforce.credentials",
        ) + "environment variable SALESFORCE_TOKEN must hold CLIENT_ID:CLIENT_SECRET (the connected app's consumer key and secret); its value has no `:` between two non-empty halves",
    ];
    assert_eq!(stderr.lines().collect::<Vec<_>>(), expected, "{stderr}");
    assert!(
        !stderr.contains("consumer-key") && !stderr.contains("pat-na1"),
        "no credential value is printed:\n{stderr}"
    );
    // `profile check` answers for `start`: the same refusal, word for word.
    let checked = voxguard(&["profile", "check", "--config", file.path()], &env);
    assert_eq!(checked.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&checked.stderr), stderr);
}

#[test]
fn services_whose_credentials_are_not_set_are_left_out_and_all_named_at_startup() {
    let text = with_all_services();
    let file = ConfigFile::new("unset-credentials", &text);
    let warnings = [
        at(
            &file,
            &text,
            "AMPLITUDE_API_KEY",
            "services.amplitude.credentials",
        ) + "environment variable AMPLITUDE_API_KEY is not set; set it to API_KEY:SECRET_KEY (the project's API key and secret key). Until then amplitude is left out: its tools tell callers it cannot be reached",
        at(
            &file,
            &text,
            "CHILIPIPER_TOKEN",
            "services.chilipiper.credentials",
        ) + "environment variable CHILIPIPER_TOKEN is not set; set it to an API key. Until then chilipiper is left out: its tools tell callers it cannot be reached",
        at(
            &file,
            &text,
            "SALESFORCE_TOKEN",
            "services.salesforce.credentials",
        ) + "environment variable SALESFORCE_TOKEN is not set; set it to CLIENT_ID:CLIENT_SECRET (the connected app's consumer key and secret). Until then salesforce is left out: its tools tell callers it cannot be reached",
    ];
    let env = [
        ("LIVEKIT_API_SECRET", "lk-secret"),
        ("HUBSPOT_TOKEN", "pat-na1-0000"),
    ];
    // The check passes and lists what `start` would run without.
    let checked = voxguard(&["profile", "check", "--config", file.path()], &env);
    let report = String::from_utf8_lossy(&checked.stdout).to_string();
    assert_eq!(checked.status.code(), Some(0), "{report}");
    for warning in &warnings {
        assert!(
            report.contains(&format!("  warning: {warning}\n")),
            "{warning}\nin\n{report}"
        );
    }
    assert!(
        !report.contains("HUBSPOT_TOKEN"),
        "hubspot is set:\n{report}"
    );

    // `start` says the same at once, before it dials LiveKit (which is not
    // there: it keeps retrying until stopped).
    let mut child = Process::new(env!("CARGO_BIN_EXE_voxguard"))
        .args(["start", "--config", file.path()])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(env)
        .env("LIVEKIT_URL", "ws://127.0.0.1:9")
        .env("VOXGUARD_HEALTH_ADDR", "127.0.0.1:0")
        .env("VOXGUARD_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let stderr = child.stderr.take().expect("stderr piped");
    let (lines_tx, lines_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut log = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !warnings
        .iter()
        .all(|w| log.iter().any(|l: &String| l.ends_with(w.as_str())))
    {
        match lines_rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => log.push(line),
            Err(_) => break,
        }
    }
    let still_running = child.try_wait().expect("child status").is_none();
    let _ = child.kill();
    let _ = child.wait();
    let log = log.join("\n");
    assert!(still_running, "start runs without those services:\n{log}");
    let named: Vec<usize> = warnings
        .iter()
        .map(|w| {
            log.lines()
                .position(|l| l.ends_with(w.as_str()))
                .unwrap_or_else(|| panic!("start names {w}\nin\n{log}"))
        })
        .collect();
    assert!(
        named.windows(2).all(|pair| pair[1] == pair[0] + 1),
        "the three are named together, at startup:\n{log}"
    );
}

#[test]
fn only_start_reads_service_and_livekit_credentials() {
    let text = with_all_services();
    let nothing_set = |_: &str| None;
    let start = Config::from_toml_for(Command::Start, &text, "test.toml", &nothing_set)
        .expect_err("start needs the LiveKit secret");
    assert_eq!(
        start
            .problems()
            .iter()
            .map(|p| p.field.as_str())
            .collect::<Vec<_>>(),
        ["livekit.api_secret"]
    );
    let malformed = |name: &str| (name == "SALESFORCE_TOKEN").then(|| "no-colon".to_string());
    for command in [Command::Dev, Command::Console, Command::Simulate] {
        // The simulators bring their own credentials and LiveKit.
        let checked = Config::from_toml_for(command, &text, "test.toml", &malformed)
            .unwrap_or_else(|e| panic!("{command:?} reads no service credentials: {e}"));
        assert!(
            checked.warnings.is_empty(),
            "{command:?}: {:?}",
            checked.warnings
        );
    }
    let with_secret = |name: &str| (name == "LIVEKIT_API_SECRET").then(|| "s".to_string());
    let checked = Config::from_toml_for(Command::Start, &text, "test.toml", &with_secret).unwrap();
    let fields: Vec<&str> = checked.warnings.iter().map(|w| w.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "services.amplitude.credentials",
            "services.chilipiper.credentials",
            "services.hubspot.credentials",
            "services.salesforce.credentials",
            "speech.deepgram.credentials",
            "speech.openai_stt.credentials",
            "speech.openai_tts.credentials",
            "speech.cartesia.credentials",
        ]
    );
}

#[test]
fn the_models_key_is_read_by_every_command_while_the_model_leads() {
    let text = with_all_services().replacen("[llm]\n", "[llm]\nenabled = true\n", 1);
    for command in [
        Command::Start,
        Command::Dev,
        Command::Console,
        Command::Simulate,
    ] {
        let env = |name: &str| (name == "LIVEKIT_API_SECRET").then(|| "s".to_string());
        let error = Config::from_toml_for(command, &text, "test.toml", &env)
            .expect_err("the model needs its key");
        assert_eq!(
            error.to_string(),
            "test.toml:1: llm.api_key: environment variable OPENAI_API_KEY is not set; set it to an API key for llm.base_url (remove llm.api_key for a server that takes none)",
            "{command:?}"
        );
    }
}

#[test]
fn start_refuses_a_livekit_url_it_cannot_dial_naming_the_variable() {
    let env = |name: &str| match name {
        "LIVEKIT_URL" => Some("livekit.example.com".to_string()),
        "LIVEKIT_API_SECRET" => Some("s".to_string()),
        _ => None,
    };
    let error = Config::from_toml_for(Command::Start, &with_all_services(), "test.toml", &env)
        .expect_err("no scheme");
    assert_eq!(
        error.to_string(),
        "environment variable LIVEKIT_URL: livekit.url: \"livekit.example.com\" is not a LiveKit server address; set LIVEKIT_URL to one like wss://your-project.livekit.cloud (ws, wss, http or https)"
    );
    // `dev` runs its own loopback server and never dials it.
    assert!(Config::from_toml_for(Command::Dev, &with_all_services(), "test.toml", &env).is_ok());
}
