//! Which credentials a command reads, the form each value takes, and what a
//! missing one costs: a command that cannot run, or one service or provider
//! left out. [`Config::credential_uses`] lists them; checking one against
//! the environment says what to set, naming the variable and its form.
//!
//! ```
//! use voxguard::config::{Command, Config, CredentialStatus};
//! let config = Config::embedded_default().unwrap();
//! let uses = config.credential_uses(Command::Start);
//! let salesforce = uses
//!     .iter()
//!     .find(|u| u.field == "services.salesforce.credentials")
//!     .unwrap();
//! let env = |name: &str| (name == "SALESFORCE_TOKEN").then(|| "id-without-secret".to_string());
//! let CredentialStatus::Unusable(why) = salesforce.status(&env) else { panic!() };
//! assert!(why.contains("SALESFORCE_TOKEN must hold CLIENT_ID:CLIENT_SECRET"), "{why}");
//! ```

use std::fmt;

use super::Config;
use super::command::Command;
use super::secret::{CredentialRef, Secret};
use super::speech::is_openai;

/// The form a credential's value takes (the README's credential table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialForm {
    /// One opaque value, described for the person who sets it.
    Token(&'static str),
    /// Two values joined by `:`: the form (`CLIENT_ID:CLIENT_SECRET`) and
    /// what the two halves are.
    Pair(&'static str, &'static str),
}

impl CredentialForm {
    /// The form of a CRM service's `credentials`.
    pub fn of_service(service: &str) -> CredentialForm {
        match service {
            "amplitude" => {
                CredentialForm::Pair("API_KEY:SECRET_KEY", "the project's API key and secret key")
            }
            "salesforce" => CredentialForm::Pair(
                "CLIENT_ID:CLIENT_SECRET",
                "the connected app's consumer key and secret",
            ),
            "hubspot" => CredentialForm::Token("a private app access token"),
            _ => CredentialForm::Token("an API key"),
        }
    }

    /// A value of this form, split into its halves for a pair; `None` for a
    /// pair without a `:` or with an empty half.
    pub fn split(&self, secret: &Secret) -> Option<CredentialValue> {
        match self {
            CredentialForm::Token(_) => Some(CredentialValue::Token(secret.clone())),
            CredentialForm::Pair(..) => {
                let (id, key) = secret.expose().split_once(':')?;
                (!id.is_empty() && !key.is_empty())
                    .then(|| CredentialValue::Pair(Secret::new(id), Secret::new(key)))
            }
        }
    }
}

impl fmt::Display for CredentialForm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialForm::Token(what) => f.write_str(what),
            CredentialForm::Pair(form, what) => write!(f, "{form} ({what})"),
        }
    }
}

/// A credential's value in its form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialValue {
    Token(Secret),
    Pair(Secret, Secret),
}

/// What a command does without a credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Need {
    /// It cannot run.
    Required,
    /// It runs without this service or provider, which is left out; the text
    /// says what the caller notices.
    LeavesOut {
        service: &'static str,
        consequence: &'static str,
    },
    /// It runs as well without (a self-hosted server that takes no key);
    /// a value that is set must still be usable.
    Optional,
}

/// One credential a command reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialUse {
    /// The field that references it (`services.salesforce.credentials`).
    pub field: String,
    /// Where the value comes from; `None` when the field is not written.
    pub reference: Option<CredentialRef>,
    pub form: CredentialForm,
    pub need: Need,
}

/// A credential checked against the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialStatus {
    /// Set, in its form.
    Ready(CredentialValue),
    /// Not set, and the command runs without it (what is left out, and the
    /// variable to set and its form).
    Absent(String),
    /// Not set and required, or set but unusable: the command must not run.
    Unusable(String),
}

impl CredentialUse {
    /// Reads the value from `env` (and secret files) and checks its form.
    pub fn status(&self, env: &dyn Fn(&str) -> Option<String>) -> CredentialStatus {
        let Some(reference) = &self.reference else {
            let fix = format!(
                "no reference to the credentials; add `credentials = {{ env = \"{}\" }}` and set that variable to {}",
                suggested_variable(&self.field),
                self.form
            );
            return self.absent(fix);
        };
        match reference.resolve_optional_with(&self.field, env) {
            Ok(Some(secret)) => match self.form.split(&secret) {
                Some(value) => CredentialStatus::Ready(value),
                None => CredentialStatus::Unusable(format!(
                    "{} must hold {}; its value has no `:` between two non-empty halves",
                    source_name(reference),
                    self.form
                )),
            },
            Ok(None) => self.absent(format!(
                "{} is not set; set it to {}",
                source_name(reference),
                self.form
            )),
            Err(error) => CredentialStatus::Unusable(format!(
                "{}; it must hold {}",
                reason_of(error),
                self.form
            )),
        }
    }

    fn absent(&self, fix: String) -> CredentialStatus {
        match &self.need {
            Need::Required => CredentialStatus::Unusable(fix),
            Need::LeavesOut {
                service,
                consequence,
            } => CredentialStatus::Absent(format!(
                "{fix}. Until then {service} is left out: {consequence}"
            )),
            Need::Optional => CredentialStatus::Absent(fix),
        }
    }
}

/// How a reference names its source in a message: `environment variable X`
/// or `secret file /run/secrets/x`.
fn source_name(reference: &CredentialRef) -> String {
    match reference {
        CredentialRef::Env(name) => format!("environment variable {name}"),
        CredentialRef::File(path) => format!("secret file {}", path.display()),
    }
}

/// The reason inside a credential error, without the field it is about
/// (the problem names the field already).
fn reason_of(error: super::ConfigError) -> String {
    match error {
        super::ConfigError::Credential { reason, .. } => reason,
        other => other.to_string(),
    }
}

/// The variable the shipped configuration reads for `field`'s credential.
fn suggested_variable(field: &str) -> &'static str {
    match field {
        "services.amplitude.credentials" => "AMPLITUDE_API_KEY",
        "services.salesforce.credentials" => "SALESFORCE_TOKEN",
        "services.hubspot.credentials" => "HUBSPOT_TOKEN",
        "services.chilipiper.credentials" => "CHILIPIPER_TOKEN",
        _ => "NAME",
    }
}

/// What a CRM service without credentials costs a call.
const CRM_LEFT_OUT: &str = "its tools tell callers it cannot be reached";

impl Config {
    /// The credentials `command` reads, in the order they are reported:
    /// the model's key when the model leads (every command); for `start`
    /// also the LiveKit API secret, each CRM service's credentials and each
    /// speech provider's key in the configured chains. `dev`, `console` and
    /// `simulate` call the simulators, which bring their own.
    pub fn credential_uses(&self, command: Command) -> Vec<CredentialUse> {
        let mut uses = Vec::new();
        if command == Command::Start {
            uses.push(CredentialUse {
                field: "livekit.api_secret".into(),
                reference: Some(self.livekit.api_secret.clone()),
                form: CredentialForm::Token("the API secret that goes with LIVEKIT_API_KEY"),
                need: Need::Required,
            });
        }
        if self.llm.enabled {
            // No reference written: the model's server takes no key.
            if let Some(reference) = &self.llm.api_key {
                uses.push(CredentialUse {
                    field: "llm.api_key".into(),
                    reference: Some(reference.clone()),
                    form: CredentialForm::Token(
                        "an API key for llm.base_url (remove llm.api_key for a server that takes none)",
                    ),
                    need: Need::Required,
                });
            }
        }
        if command != Command::Start {
            return uses;
        }
        uses.extend(
            self.services
                .keys()
                .map(|name| self.service_credential_use(name)),
        );
        uses.extend(self.speech_credential_uses());
        uses
    }

    fn speech_credential_uses(&self) -> Vec<CredentialUse> {
        let speech = &self.speech;
        let leaves_out = |service: &'static str, consequence: &'static str| Need::LeavesOut {
            service,
            consequence,
        };
        let mut uses = Vec::new();
        for provider in &speech.stt {
            let (field, reference, form, need) = match provider.as_str() {
                "deepgram" => (
                    "speech.deepgram.credentials",
                    &speech.deepgram.credentials,
                    CredentialForm::Token("a Deepgram API key"),
                    leaves_out(
                        "stt.deepgram",
                        "the next recognizer in speech.stt hears callers, or with none they type on lk.chat",
                    ),
                ),
                "openai" => (
                    "speech.openai_stt.credentials",
                    &speech.openai_stt.credentials,
                    CredentialForm::Token("an OpenAI API key"),
                    if is_openai(&speech.openai_stt.base_url) {
                        leaves_out(
                            "stt.openai",
                            "the next recognizer in speech.stt hears callers, or with none they type on lk.chat",
                        )
                    } else {
                        Need::Optional
                    },
                ),
                _ => continue,
            };
            uses.push(CredentialUse {
                field: field.into(),
                reference: Some(reference.clone()),
                form,
                need,
            });
        }
        for provider in &speech.tts {
            let (field, reference, form, need) = match provider.as_str() {
                "openai" => (
                    "speech.openai_tts.credentials",
                    &speech.openai_tts.credentials,
                    CredentialForm::Token("an OpenAI API key"),
                    if is_openai(&speech.openai_tts.base_url) {
                        leaves_out("tts.openai", "the next voice in speech.tts speaks")
                    } else {
                        Need::Optional
                    },
                ),
                "cartesia" => (
                    "speech.cartesia.credentials",
                    &speech.cartesia.credentials,
                    CredentialForm::Token("a Cartesia API key"),
                    leaves_out("tts.cartesia", "the next voice in speech.tts speaks"),
                ),
                _ => continue,
            };
            uses.push(CredentialUse {
                field: field.into(),
                reference: Some(reference.clone()),
                form,
                need,
            });
        }
        uses
    }

    /// A CRM service's credentials from `env` (and secret files), for the
    /// composition root: the same reading and form check `start` validated.
    pub fn service_credentials(
        &self,
        service: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> CredentialStatus {
        self.service_credential_use(service).status(env)
    }

    fn service_credential_use(&self, service: &str) -> CredentialUse {
        CredentialUse {
            field: format!("services.{service}.credentials"),
            reference: self
                .services
                .get(service)
                .and_then(|s| s.credentials.clone()),
            form: CredentialForm::of_service(service),
            need: Need::LeavesOut {
                service: crm_name(service),
                consequence: CRM_LEFT_OUT,
            },
        }
    }
}

/// A CRM service's name with a `'static` lifetime, for messages.
fn crm_name(service: &str) -> &'static str {
    super::SERVICE_NAMES
        .into_iter()
        .find(|known| *known == service)
        .unwrap_or("this service")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(
        form: CredentialForm,
        need: Need,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> CredentialStatus {
        CredentialUse {
            field: "services.salesforce.credentials".into(),
            reference: Some(CredentialRef::Env("SALESFORCE_TOKEN".into())),
            form,
            need,
        }
        .status(env)
    }

    #[test]
    fn a_pair_splits_at_its_first_colon_and_refuses_an_empty_half() {
        let form = CredentialForm::of_service("salesforce");
        assert_eq!(
            form.split(&Secret::new("id:se:cret")),
            Some(CredentialValue::Pair(
                Secret::new("id"),
                Secret::new("se:cret")
            ))
        );
        assert_eq!(form.split(&Secret::new("id:")), None);
        assert_eq!(form.split(&Secret::new(":secret")), None);
        assert_eq!(form.split(&Secret::new("idsecret")), None);
    }

    #[test]
    fn an_unset_variable_leaves_the_service_out_and_says_what_to_set() {
        let need = Need::LeavesOut {
            service: "salesforce",
            consequence: CRM_LEFT_OUT,
        };
        let CredentialStatus::Absent(fix) =
            status(CredentialForm::of_service("salesforce"), need, &|_| None)
        else {
            panic!("an unset variable leaves the service out");
        };
        assert_eq!(
            fix,
            "environment variable SALESFORCE_TOKEN is not set; set it to CLIENT_ID:CLIENT_SECRET (the connected app's consumer key and secret). Until then salesforce is left out: its tools tell callers it cannot be reached"
        );
    }

    #[test]
    fn a_required_credential_that_is_unset_is_unusable() {
        let status = status(CredentialForm::Token("a key"), Need::Required, &|_| None);
        assert_eq!(
            status,
            CredentialStatus::Unusable(
                "environment variable SALESFORCE_TOKEN is not set; set it to a key".into()
            )
        );
    }

    #[test]
    fn an_empty_variable_is_unusable_even_where_absence_is_fine() {
        let status = status(CredentialForm::Token("a key"), Need::Optional, &|_| {
            Some(String::new())
        });
        assert_eq!(
            status,
            CredentialStatus::Unusable(
                "environment variable SALESFORCE_TOKEN is empty; it must hold a key".into()
            )
        );
    }

    #[test]
    fn the_secret_value_never_appears_in_a_message() {
        let status = status(
            CredentialForm::of_service("salesforce"),
            Need::Required,
            &|_| Some("very-secret-without-colon".into()),
        );
        let CredentialStatus::Unusable(why) = status else {
            panic!("a pair without `:` is unusable");
        };
        assert!(!why.contains("very-secret"), "{why}");
        assert!(why.contains("SALESFORCE_TOKEN must hold CLIENT_ID:CLIENT_SECRET"));
    }
}
