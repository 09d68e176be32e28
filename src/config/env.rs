//! Environment overrides: `LIVEKIT_*` as LiveKit's SDKs name them, and
//! `VOXGUARD_*` for the rest. Applied after the file, before validation.

use std::collections::BTreeMap;
use std::str::FromStr;

use super::Config;
use super::error::Problem;
use super::sections::FleetBackend;

/// Sets one field from a variable's value, or says why the value is wrong.
type Setter = fn(&mut Config, String) -> Result<(), String>;

/// Every variable voxguard reads, the field it overrides, and how.
pub const ENV_OVERRIDES: [(&str, &str); 12] = [
    ("LIVEKIT_URL", "livekit.url"),
    ("LIVEKIT_API_KEY", "livekit.api_key"),
    ("LIVEKIT_AGENT_NAME", "worker.agent_name"),
    ("VOXGUARD_HEALTH_ADDR", "worker.health_addr"),
    ("VOXGUARD_MAX_SESSIONS", "worker.max_sessions"),
    ("VOXGUARD_DEV_ADDR", "dev.addr"),
    ("VOXGUARD_FLEET_BACKEND", "fleet.backend"),
    ("VOXGUARD_REDIS_URL", "fleet.url"),
    ("VOXGUARD_LLM", "llm.enabled"),
    ("VOXGUARD_LLM_BASE_URL", "llm.base_url"),
    ("VOXGUARD_LLM_MODEL", "llm.model"),
    ("VOXGUARD_LOG", "log.filter"),
];

const SETTERS: [Setter; 12] = [
    |c, v| {
        c.livekit.url = v;
        Ok(())
    },
    |c, v| {
        c.livekit.api_key = v;
        Ok(())
    },
    |c, v| {
        c.worker.agent_name = v;
        Ok(())
    },
    |c, v| {
        c.worker.health_addr = parse(&v, "a socket address like 0.0.0.0:8081")?;
        Ok(())
    },
    |c, v| {
        c.worker.max_sessions = parse(&v, "a whole number like 50")?;
        Ok(())
    },
    |c, v| {
        c.dev.addr = parse(&v, "a socket address like 127.0.0.1:8089")?;
        Ok(())
    },
    |c, v| {
        c.fleet.backend = match v.as_str() {
            "memory" => FleetBackend::Memory,
            "redis" => FleetBackend::Redis,
            _ => {
                return Err(format!(
                    "{v:?} is not a backend; expected \"memory\" or \"redis\""
                ));
            }
        };
        Ok(())
    },
    |c, v| {
        c.fleet.url = Some(v);
        Ok(())
    },
    |c, v| {
        c.llm.enabled = match v.to_ascii_lowercase().as_str() {
            "1" | "true" | "on" | "yes" => true,
            "0" | "false" | "off" | "no" => false,
            _ => return Err(format!("{v:?} is not a switch; expected \"on\" or \"off\"")),
        };
        Ok(())
    },
    |c, v| {
        c.llm.base_url = v;
        Ok(())
    },
    |c, v| {
        c.llm.model = v;
        Ok(())
    },
    |c, v| {
        c.log.filter = v;
        Ok(())
    },
];

/// Applies every set variable to `config`. Returns the problems with values
/// that do not parse and, for later errors, which fields came from where.
pub(crate) fn apply(
    config: &mut Config,
    env: &dyn Fn(&str) -> Option<String>,
) -> (Vec<Problem>, BTreeMap<String, &'static str>) {
    let mut problems = Vec::new();
    let mut sources = BTreeMap::new();
    for ((var, field), setter) in ENV_OVERRIDES.into_iter().zip(SETTERS) {
        let Some(value) = env(var) else { continue };
        sources.insert(field.to_string(), var);
        if let Err(message) = setter(config, value) {
            problems.push(Problem {
                origin: format!("environment variable {var}"),
                line: None,
                field: field.to_string(),
                message,
            });
        }
    }
    (problems, sources)
}

fn parse<T: FromStr>(value: &str, expected: &str) -> Result<T, String> {
    value
        .trim()
        .parse()
        .map_err(|_| format!("{value:?} is not {expected}"))
}
