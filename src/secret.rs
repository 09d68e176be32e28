//! `Secret`: a credential (API key, token, client secret, signing secret)
//! that never prints itself. `Debug` and `Display` show `***`; only
//! [`Secret::expose`] reveals the value, at the one place it is sent.
//!
//! ```
//! let key = voxguard::secret::Secret::new("sk-live-123");
//! assert_eq!(format!("{key} {key:?}"), "*** Secret(***)");
//! assert_eq!(key.expose(), "sk-live-123");
//! ```

use std::fmt;

/// A credential that never shows up in logs, errors or debug output.
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The raw value, for building an authorization header or signing a
    /// token, and nothing else.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret::new(value)
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_hide_the_value() {
        let secret = Secret::new("pat-na1-very-secret");
        assert_eq!(format!("{secret:?}"), "Secret(***)");
        assert_eq!(format!("{secret}"), "***");
        assert_eq!(secret.expose(), "pat-na1-very-secret");
    }
}
