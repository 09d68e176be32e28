//! Secrets and the references that point at them. The config file only ever
//! holds a reference (`{ env = "X" }` or `{ file = "/run/secrets/x" }`); the
//! value is read on demand into a `Secret` that prints as `***`.

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;

use super::error::ConfigError;

/// A secret value. `Debug` and `Display` print `***`; use [`Secret::expose`]
/// at the one place the value is actually sent.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Where a secret comes from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum CredentialRef {
    /// An environment variable's value.
    Env(String),
    /// A file's contents, trailing newline removed (Docker/Kubernetes secrets).
    File(PathBuf),
}

impl CredentialRef {
    /// Reads the secret from the process environment or the file system.
    /// Reads a file synchronously: call it at startup, not on a hot path.
    pub fn resolve(&self, field: &str) -> Result<Secret, ConfigError> {
        self.resolve_with(field, &|name| std::env::var(name).ok())
    }

    /// Like [`CredentialRef::resolve`] with an explicit environment.
    pub fn resolve_with(
        &self,
        field: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Secret, ConfigError> {
        let missing = |reason: String| ConfigError::Credential {
            field: field.to_string(),
            reason,
        };
        match self {
            CredentialRef::Env(name) => match env(name) {
                Some(value) if !value.is_empty() => Ok(Secret(value)),
                Some(_) => Err(missing(format!("environment variable {name} is empty"))),
                None => Err(missing(format!("environment variable {name} is not set"))),
            },
            CredentialRef::File(path) => match std::fs::read_to_string(path) {
                Ok(text) => {
                    let value = text.trim_end_matches(['\r', '\n']);
                    if value.is_empty() {
                        Err(missing(format!("secret file {} is empty", path.display())))
                    } else {
                        Ok(Secret(value.to_string()))
                    }
                }
                Err(e) => Err(missing(format!(
                    "cannot read secret file {}: {e}",
                    path.display()
                ))),
            },
        }
    }
}

impl fmt::Display for CredentialRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialRef::Env(name) => write!(f, "env {name}"),
            CredentialRef::File(path) => write!(f, "file {}", path.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print_their_value() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret} {secret:?}"), "*** ***");
        assert_eq!(secret.expose(), "hunter2");
    }

    #[test]
    fn env_reference_reads_the_variable_and_names_it_when_missing() {
        let reference = CredentialRef::Env("HUBSPOT_TOKEN".into());
        let found = reference.resolve_with("services.hubspot.credentials", &|_| Some("tok".into()));
        assert_eq!(found.unwrap().expose(), "tok");
        let missing = reference
            .resolve_with("services.hubspot.credentials", &|_| None)
            .unwrap_err();
        assert_eq!(
            missing.to_string(),
            "services.hubspot.credentials: environment variable HUBSPOT_TOKEN is not set"
        );
    }
}
