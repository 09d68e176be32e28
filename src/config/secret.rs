//! Secrets and the references that point at them. The config file only ever
//! holds a reference (`{ env = "X" }` or `{ file = "/run/secrets/x" }`); the
//! value is read on demand into a `Secret` that prints as `***`.

use std::fmt;
use std::path::PathBuf;

pub use crate::secret::Secret;

use serde::Deserialize;

use super::error::ConfigError;

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

    /// Like [`CredentialRef::resolve`], with `None` for an environment
    /// variable that is not set at all (the credential was left out on
    /// purpose). An empty variable or an unreadable file is still an error.
    pub fn resolve_optional(&self, field: &str) -> Result<Option<Secret>, ConfigError> {
        self.resolve_optional_with(field, &|name| std::env::var(name).ok())
    }

    /// [`CredentialRef::resolve_optional`] with an explicit environment.
    pub fn resolve_optional_with(
        &self,
        field: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<Secret>, ConfigError> {
        match self {
            CredentialRef::Env(name) if env(name).is_none() => Ok(None),
            _ => self.resolve_with(field, env).map(Some),
        }
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
                Some(value) if !value.is_empty() => Ok(Secret::new(value)),
                Some(_) => Err(missing(format!("environment variable {name} is empty"))),
                None => Err(missing(format!("environment variable {name} is not set"))),
            },
            CredentialRef::File(path) => match std::fs::read_to_string(path) {
                Ok(text) => {
                    let value = text.trim_end_matches(['\r', '\n']);
                    if value.is_empty() {
                        Err(missing(format!("secret file {} is empty", path.display())))
                    } else {
                        Ok(Secret::new(value))
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
            CredentialRef::Env(name) => write!(f, "environment variable {name}"),
            CredentialRef::File(path) => write!(f, "file {}", path.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unset_variable_is_an_optional_credential_left_out() {
        let reference = CredentialRef::Env("HUBSPOT_TOKEN".into());
        let field = "services.hubspot.credentials";
        assert_eq!(
            reference.resolve_optional_with(field, &|_| None).unwrap(),
            None
        );
        let empty = reference.resolve_optional_with(field, &|_| Some(String::new()));
        assert!(
            empty.is_err(),
            "an empty variable is a mistake, not an absence"
        );
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
