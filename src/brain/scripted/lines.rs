//! The scripted brain's wording: a few variants per line, picked by a
//! seeded RNG so a call is reproducible but not robotic.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::brain::understanding::{Question, Signals, Urgency};

/// Picks wording variants deterministically from a seed and a counter, so
/// the picker's state is two integers and survives serialization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Wording {
    pub seed: u64,
    pub picks: u64,
    /// Fingerprint of the last line picked (0 before the first), so the
    /// same wording is never picked twice in a row.
    #[serde(default)]
    pub last: u64,
}

fn fingerprint(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    }) | 1
}

impl Wording {
    pub fn pick<'a>(&mut self, variants: &[&'a str]) -> &'a str {
        let mut rng =
            SmallRng::seed_from_u64(self.seed ^ self.picks.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        self.picks += 1;
        let mut index = rng.random_range(0..variants.len());
        if fingerprint(variants[index]) == self.last {
            index = (index + 1) % variants.len();
        }
        self.last = fingerprint(variants[index]);
        variants[index]
    }
}

pub fn greeting(wording: &mut Wording, product: &str, name: Option<&str>) -> String {
    let hello = match name {
        Some(name) => format!("Hi {name}, "),
        None => "Hi there, ".to_owned(),
    };
    let rest = wording.pick(&[
        "thanks for trying {p}! I'm here to help you get the most out of your trial. What are you hoping to automate?",
        "welcome to your {p} trial! Tell me a bit about the documents you're working with?",
        "great to have you on {p}. What kind of paperwork are you looking to take off your plate?",
    ]);
    format!("{hello}{}", rest.replace("{p}", product))
}

pub fn question(wording: &mut Wording, question: Question) -> String {
    let variants: &[&str] = match question {
        Question::TeamSize => &[
            "How many people on your team would be using it?",
            "How big is the team that handles these documents?",
        ],
        Question::MonthlyVolume => &[
            "Roughly how many documents do you process in a month?",
            "What's your monthly document volume, ballpark?",
        ],
        Question::Integrations => &[
            "Which tools would you want it connected to, like a CRM, Slack or cloud storage?",
            "What systems should the extracted data end up in?",
        ],
        Question::Urgency => &[
            "And how soon are you hoping to have this running?",
            "What's your timeline for getting this in place?",
        ],
        Question::Industry => &[
            "What industry are you in?",
            "And what line of business is this for?",
        ],
        Question::Email => &[
            "What's the best email to reach you at?",
            "Could I get your work email so I can set that up?",
        ],
        Question::ConfirmEmail
        | Question::MeetingInterest
        | Question::SlotChoice
        | Question::Callback
        | Question::ValueFit => &[
            "Could you say that again?",
            "Sorry, I didn't quite catch that. One more time?",
        ],
    };
    wording.pick(variants).to_owned()
}

/// A short acknowledgement of the most notable thing just heard.
pub fn acknowledge(heard: &Signals) -> Option<String> {
    let line = if let Some(volume) = heard.monthly_volume {
        format!("{volume} documents a month, got it.")
    } else if let Some(team) = heard.team_size {
        if team == 1 {
            "Just you, got it.".to_owned()
        } else {
            format!("A team of {team}, great.")
        }
    } else if let Some(integrations) = &heard.integrations {
        match integrations.first() {
            Some(first) => format!("{} works well with us.", first.display_name()),
            None => "No problem, it works fine on its own.".to_owned(),
        }
    } else if let Some(urgency) = heard.urgency {
        match urgency {
            Urgency::Asap | Urgency::ThisWeek => "Understood, let's move quickly then.".to_owned(),
            Urgency::JustExploring => "That's perfectly fine, no pressure.".to_owned(),
            _ => "Good to know the timeline.".to_owned(),
        }
    } else if let Some(industry) = heard.industry {
        format!("We work with a lot of {} teams.", industry.display_name())
    } else {
        return None;
    };
    Some(line)
}

pub fn value_pitch(wording: &mut Wording, signals: &Signals, docs_in_trial: Option<u64>) -> String {
    let mut pitch = String::new();
    if let Some(docs) = docs_in_trial {
        pitch.push_str(&format!(
            "I can see you've already run {docs} documents through your trial. "
        ));
    }
    match signals.monthly_volume {
        Some(volume) if volume >= 1000 => pitch.push_str(&format!(
            "At {volume} documents a month, automatic extraction typically saves a team many hours every week. "
        )),
        _ => pitch.push_str("Extraction runs automatically as documents arrive, so nobody has to key data in by hand. "),
    }
    if let Some(first) = signals.integrations.as_ref().and_then(|i| i.first()) {
        pitch.push_str(&format!(
            "And the results can flow straight into {}. ",
            first.display_name()
        ));
    }
    pitch.push_str(wording.pick(&[
        "Does that sound like what you need?",
        "Would that help your team?",
    ]));
    pitch
}

pub fn offer_meeting(wording: &mut Wording, owner: Option<&str>) -> String {
    match owner {
        Some(owner) => format!(
            "It sounds like a good fit. {owner} on our team already looks after your account. Would you like to book a short call with them to set things up?"
        ),
        None => wording
            .pick(&[
                "It sounds like a good fit. Would you like to book a short call with one of our solutions engineers?",
                "I think a quick session with a solutions engineer would help. Shall I book one for you?",
            ])
            .to_owned(),
    }
}

pub fn list_slots(labels: &[&str]) -> String {
    match labels {
        [one] => format!("I have {one}. Does that work?"),
        [init @ .., last] => format!("I have {}, or {last}. Which works best?", init.join(", ")),
        [] => "I don't see any open times.".to_owned(),
    }
}

pub fn self_serve_close(wording: &mut Wording) -> String {
    wording
        .pick(&[
            "The help center and the in-app guides will take you a long way. Thanks for calling, and enjoy the trial!",
            "You're all set to keep exploring on your own. Thanks for your time, and good luck with the trial!",
        ])
        .to_owned()
}

pub fn goodbye(wording: &mut Wording) -> String {
    wording
        .pick(&[
            "Thanks so much for your time. Have a great day!",
            "Thanks for calling. Talk soon!",
        ])
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_wording_is_never_picked_twice_in_a_row() {
        let mut wording = Wording {
            seed: 9,
            picks: 0,
            last: 0,
        };
        let variants = ["one", "two"];
        let mut previous = "";
        for _ in 0..1000 {
            let line = wording.pick(&variants);
            assert_ne!(line, previous);
            previous = line;
        }
    }
}
