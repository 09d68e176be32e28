//! What a command needs from a configuration beyond a well-formed file.
//! Every command wires all four CRM services, so each needs its section;
//! `start` also needs a LiveKit server to dial and reads every credential
//! (the model's key is read by every command while the model leads).
//! [`Config::load_for`] runs these checks with the file's own, so
//! `voxguard profile check` refuses exactly what would stop `voxguard start`,
//! and every problem names file, line and field.
//!
//! ```
//! use voxguard::config::{Command, Config};
//! let profiles_only = "[llm]\nprofile = \"voice\"\n[profiles.voice]\nbudget = \"3.2s\"\n\
//!     attempt_timeout = \"1.2s\"\nmax_attempts = 2\n\
//!     backoff = { kind = \"full\", base = \"100ms\", cap = \"400ms\" }\n\
//!     filler_after = \"600ms\"\nfiller_repeat = \"1.5s\"\nfiller_max = 2\nslow_call_threshold = \"1s\"\n";
//! // A well-formed file: `profile explain` and `tune` read it ...
//! assert!(Config::from_toml(profiles_only, "p.toml").is_ok());
//! // ... but no command can run an agent without its services.
//! let error = Config::from_toml_for(Command::Dev, profiles_only, "p.toml", &|_| None).unwrap_err();
//! assert!(error.to_string().starts_with("p.toml: services: no [services.*] section"), "{error}");
//! ```

use std::path::Path;

use super::credentials::CredentialStatus;
use super::error::{ConfigError, Problem};
use super::validate::Report;
use super::{Config, SERVICE_NAMES};

/// The command a configuration is checked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// `voxguard start`, and `voxguard dev` with `LIVEKIT_URL` set: the
    /// production worker, which reads every credential. `voxguard profile
    /// check` checks for it.
    Start,
    /// `voxguard dev`: the CRM simulator and loopback LiveKit stand in.
    Dev,
    /// `voxguard console`: the CRM simulator stands in.
    Console,
    /// `voxguard simulate`: the simulators stand in.
    Simulate,
}

impl Command {
    /// The command as a user types it.
    pub fn name(self) -> &'static str {
        match self {
            Command::Start => "start",
            Command::Dev => "dev",
            Command::Console => "console",
            Command::Simulate => "simulate",
        }
    }
}

/// A configuration that passed every check of one command, with what that
/// command will run without (services and providers left out for want of
/// credentials), each naming the variable to set and its form.
#[derive(Debug, Clone)]
pub struct Checked {
    pub config: Config,
    pub warnings: Vec<Problem>,
}

impl Config {
    /// Loads `path` (or the embedded default when `None`) with the process
    /// environment and checks it for `command`: what every command calls
    /// before doing anything else. Every problem is reported at once.
    pub fn load_for(command: Command, path: Option<&Path>) -> Result<Checked, ConfigError> {
        let env = |name: &str| std::env::var(name).ok();
        let (text, origin) = super::read_source(path)?;
        Config::from_toml_for(command, &text, &origin, &env)
    }

    /// [`Config::load_for`] on `text` with the environment `env`.
    pub fn from_toml_for(
        command: Command,
        text: &str,
        origin: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Checked, ConfigError> {
        super::parse(text, origin, env, Some(command))
    }
}

/// The checks of `command` beyond the file's own.
pub(crate) fn check(
    config: &Config,
    command: Command,
    env: &dyn Fn(&str) -> Option<String>,
    report: &mut Report<'_>,
) {
    check_services(config, report);
    if command == Command::Start {
        check_livekit(config, report);
    }
    for usage in config.credential_uses(command) {
        match usage.status(env) {
            CredentialStatus::Ready(_) => {}
            CredentialStatus::Absent(fix) => report.warn(&usage.field, fix),
            CredentialStatus::Unusable(why) => report.error(&usage.field, why),
        }
    }
}

/// Every command builds a guard, a breaker and tools for each CRM service.
fn check_services(config: &Config, report: &mut Report<'_>) {
    let copy_from = "config/voxguard.toml has one for each to copy; a service without credentials is left out while the agent runs";
    if config.services.is_empty() {
        report.error(
            "services",
            format!(
                "no [services.*] section; the agent wires {}, so add [services.NAME] with profile and display_name for each ({copy_from})",
                SERVICE_NAMES.join(", ")
            ),
        );
        return;
    }
    for name in SERVICE_NAMES {
        if !config.services.contains_key(name) {
            report.error(
                &format!("services.{name}"),
                format!(
                    "missing; the agent wires every service, so add [services.{name}] with profile and display_name ({copy_from})"
                ),
            );
        }
    }
}

/// `start` dials `livekit.url` and signs its tokens with `livekit.api_key`.
fn check_livekit(config: &Config, report: &mut Report<'_>) {
    let url = config.livekit.url.trim();
    let scheme_ok = url.split_once("://").is_some_and(|(scheme, rest)| {
        ["ws", "wss", "http", "https"].contains(&scheme.to_ascii_lowercase().as_str())
            && !rest.trim_end_matches('/').is_empty()
    });
    if !scheme_ok {
        report.error(
            "livekit.url",
            format!(
                "{url:?} is not a LiveKit server address; set LIVEKIT_URL to one like wss://your-project.livekit.cloud (ws, wss, http or https)"
            ),
        );
    }
    if config.livekit.api_key.trim().is_empty() {
        report.error(
            "livekit.api_key",
            "is empty; set LIVEKIT_API_KEY to your LiveKit API key".into(),
        );
    }
}
