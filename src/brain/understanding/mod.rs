//! Understanding what the caller said: the buying signals in their words (team,
//! volume, tools, timeline, industry, contact) and short answers (yes/no, slot
//! choice). Matching is by whole tokens and parsed numbers, never substrings.
//!
//! ```
//! use voxguard::brain::understanding::{extract, Integration};
//! let heard = extract("We're about eight people, twelve hundred docs a month, and we use HubSpot");
//! assert_eq!(heard.signals.team_size, Some(8));
//! assert_eq!(heard.signals.monthly_volume, Some(1200));
//! assert_eq!(heard.signals.integrations, Some(vec![Integration::HubSpot]));
//! ```

mod email;
mod numbers;
mod profile;
mod reply;
mod tokens;
mod vocab;

use serde::{Deserialize, Serialize};

pub use email::{email as find_email, is_valid_email};
pub use numbers::parse_number;
pub use reply::{Confirmation, SlotChoice, TimeOfDay, Weekday};
pub use tokens::Tokens;
pub use vocab::{Industry, Integration, Urgency};

use profile::BareNumber;

/// What is known about the caller's needs; accumulates over a call.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Signals {
    pub team_size: Option<u32>,
    pub monthly_volume: Option<u32>,
    /// `Some(vec![])` when the caller said they use nothing to connect.
    pub integrations: Option<Vec<Integration>>,
    pub urgency: Option<Urgency>,
    pub industry: Option<Industry>,
    pub email: Option<String>,
}

impl Signals {
    /// Fold in what was newly heard: new values replace old ones (callers
    /// correct themselves), integrations accumulate.
    pub fn merge(&mut self, heard: &Signals) {
        self.team_size = heard.team_size.or(self.team_size);
        self.monthly_volume = heard.monthly_volume.or(self.monthly_volume);
        self.urgency = heard.urgency.or(self.urgency);
        self.industry = heard.industry.or(self.industry);
        self.email = heard.email.clone().or(self.email.take());
        if let Some(new) = &heard.integrations {
            let mut all = self.integrations.take().unwrap_or_default();
            all.extend(new.iter().copied());
            all.sort();
            all.dedup();
            self.integrations = Some(all);
        }
    }

    pub fn is_empty(&self) -> bool {
        *self == Signals::default()
    }
}

/// Which question the brain just asked, so a bare answer ("eight", "none",
/// "a few hundred") can be read as its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Question {
    TeamSize,
    MonthlyVolume,
    Integrations,
    Urgency,
    Industry,
    Email,
    ConfirmEmail,
    /// "Does that sound like what you need?"
    ValueFit,
    MeetingInterest,
    SlotChoice,
    Callback,
}

/// Everything read from one utterance.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Extraction {
    pub signals: Signals,
    pub confirmation: Option<Confirmation>,
    pub slot_choice: Option<SlotChoice>,
}

/// Read an utterance with no question pending.
pub fn extract(text: &str) -> Extraction {
    extract_answering(text, None)
}

/// Read an utterance that may answer `question`.
pub fn extract_answering(text: &str, question: Option<Question>) -> Extraction {
    let tokens = Tokens::new(text);
    let bare = match question {
        Some(Question::TeamSize) => Some(BareNumber::TeamSize),
        Some(Question::MonthlyVolume) => Some(BareNumber::MonthlyVolume),
        _ => None,
    };
    let (team_size, monthly_volume) = profile::team_and_volume(&tokens, bare);
    let confirmation = reply::confirmation(&tokens);
    let mut integrations = Some(vocab::integrations(&tokens)).filter(|found| !found.is_empty());
    if integrations.is_none()
        && question == Some(Question::Integrations)
        && says_none(&tokens, confirmation)
    {
        integrations = Some(Vec::new());
    }
    let slot_choice = match question {
        Some(Question::SlotChoice) => reply::slot_choice(&tokens),
        _ => None,
    };
    Extraction {
        signals: Signals {
            team_size,
            monthly_volume,
            integrations,
            urgency: vocab::urgency(&tokens),
            industry: vocab::industry(&tokens),
            email: email::email(text),
        },
        confirmation,
        slot_choice,
    }
}

/// "none", "nothing really", "no", "we don't use anything".
fn says_none(tokens: &Tokens, confirmation: Option<Confirmation>) -> bool {
    confirmation == Some(Confirmation::No)
        || [
            "none",
            "nothing",
            "not really",
            "dont use",
            "nothing yet",
            "no tools",
        ]
        .iter()
        .any(|p| tokens.contains(p))
}
