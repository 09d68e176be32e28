//! `ConfigError`: what is wrong with a configuration, where (file, line,
//! field), and what to do about it.

use std::fmt;

/// One thing wrong with the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file the value came from, or `environment variable NAME`.
    pub origin: String,
    /// 1-based line in `origin`, when the value came from a file.
    pub line: Option<usize>,
    /// Dotted field path (`profiles.voice.attempt_timeout`); empty when the
    /// problem is not about one field (a TOML syntax error).
    pub field: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.origin)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.field.is_empty() {
            write!(f, ": {}", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    /// Every problem found; `Display` prints one per line.
    #[error("{}", join_lines(.0))]
    Invalid(Vec<Problem>),
    #[error("{field}: {reason}")]
    Credential { field: String, reason: String },
    #[error("no profile or service named {name:?}; profiles: {}; services: {}", .profiles.join(", "), .services.join(", "))]
    UnknownName {
        name: String,
        profiles: Vec<String>,
        services: Vec<String>,
    },
    #[error("{origin}:{line}: {message}")]
    Latencies {
        origin: String,
        line: usize,
        message: String,
    },
}

impl ConfigError {
    /// The problems behind an `Invalid` error (empty for other kinds).
    pub fn problems(&self) -> &[Problem] {
        match self {
            ConfigError::Invalid(problems) => problems,
            _ => &[],
        }
    }
}

fn join_lines(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(Problem::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}
