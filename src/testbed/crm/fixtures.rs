//! Seeded fixture data the simulator serves: people, accounts, owners,
//! opportunities, product activity and calendar hosts. The same seed always
//! yields the same world.

use rand::rngs::SmallRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde::Serialize;

const FIRST: [&str; 24] = [
    "Ada", "Ben", "Chloe", "Dev", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Kemi",
    "Liam", "Maya", "Noor", "Omar", "Priya", "Quinn", "Rosa", "Sam", "Tara", "Uma", "Victor",
    "Wen", "Yara",
];
const LAST: [&str; 24] = [
    "Okafor",
    "Lindqvist",
    "Moreau",
    "Patel",
    "Rossi",
    "Haddad",
    "Kim",
    "Tanaka",
    "Silva",
    "Weber",
    "Adeyemi",
    "O'Brien",
    "Cohen",
    "Rahman",
    "Nasser",
    "Iyer",
    "Byrne",
    "Garcia",
    "Novak",
    "Singh",
    "Mensah",
    "Dubois",
    "Zhang",
    "Costa",
];
const COMPANIES: [(&str, &str); 12] = [
    ("Northwind Logistics", "northwind.example"),
    ("Bluefin Analytics", "bluefin.example"),
    ("Cedar Health", "cedarhealth.example"),
    ("Helix Robotics", "helix.example"),
    ("Juniper Foods", "juniper.example"),
    ("Keystone Legal", "keystone.example"),
    ("Lumen Energy", "lumen.example"),
    ("Meridian Travel", "meridian.example"),
    ("Nimbus Cloudworks", "nimbus.example"),
    ("Orchid Retail", "orchid.example"),
    ("Pioneer Freight", "pioneer.example"),
    ("Quartz Finance", "quartz.example"),
];
const ACCOUNT_TYPES: [&str; 3] = ["Customer - Direct", "Customer - Channel", "Prospect"];
const LEAD_STATUSES: [&str; 3] = ["Open - Not Contacted", "Working - Contacted", "Nurturing"];
const LIFECYCLE: [&str; 5] = [
    "subscriber",
    "lead",
    "marketingqualifiedlead",
    "salesqualifiedlead",
    "customer",
];
const STAGES: [&str; 4] = [
    "Qualification",
    "Needs Analysis",
    "Proposal/Price Quote",
    "Negotiation/Review",
];
const EVENTS: [&str; 6] = [
    "Login",
    "View Dashboard",
    "Export Report",
    "Invite Teammate",
    "Create Project",
    "Open Billing",
];
const PLATFORMS: [&str; 3] = ["Web", "iOS", "Android"];
const COUNTRIES: [&str; 5] = ["United States", "Germany", "India", "Brazil", "Japan"];

/// How many people the fixtures hold.
pub const PEOPLE: usize = 36;

#[derive(Debug, Clone, Serialize)]
pub struct Owner {
    /// HubSpot owner id (numeric string).
    pub id: String,
    pub first_name: String,
    pub last_name: String,
}

impl Owner {
    pub fn name(&self) -> String {
        format!("{} {}", self.first_name, self.last_name)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Account {
    /// Salesforce Account id.
    pub id: String,
    pub name: String,
    pub domain: String,
    pub kind: String,
    pub owner: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SalesforcePresence {
    Contact,
    Lead,
    Absent,
}

#[derive(Debug, Clone, Serialize)]
pub struct Activity {
    pub amplitude_id: u64,
    pub num_events: u64,
    pub num_sessions: u64,
    pub first_used: String,
    pub last_used: String,
    pub platform: String,
    pub country: String,
    /// Most recent first: (event type, `YYYY-MM-DD HH:MM:SS.ffffff`).
    pub events: Vec<(String, String)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Person {
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub account: usize,
    pub salesforce: SalesforcePresence,
    /// Salesforce Contact or Lead id.
    pub salesforce_id: String,
    pub lead_status: String,
    /// HubSpot contact id, when the person is in HubSpot.
    pub hubspot_id: Option<String>,
    pub lifecycle_stage: String,
    pub hubspot_owner: Option<usize>,
    pub activity: Option<Activity>,
}

impl Person {
    pub fn name(&self) -> String {
        format!("{} {}", self.first_name, self.last_name)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Opportunity {
    pub account: usize,
    pub name: String,
    pub stage: String,
    pub amount: f64,
    pub close_date: String,
    pub closed: bool,
    /// HubSpot deal id; deals are associated with every HubSpot contact of the account.
    pub hubspot_deal_id: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Host {
    pub user_id: String,
    pub name: String,
}

/// The simulator's world.
#[derive(Debug, Clone, Serialize)]
pub struct Fixtures {
    pub owners: Vec<Owner>,
    pub accounts: Vec<Account>,
    pub people: Vec<Person>,
    pub opportunities: Vec<Opportunity>,
    pub hosts: Vec<Host>,
    pub meeting_type_id: String,
}

impl Fixtures {
    pub fn generate(seed: u64) -> Self {
        let mut rng = SmallRng::seed_from_u64(seed);
        let owners: Vec<Owner> = (0..6)
            .map(|i| Owner {
                id: format!("{}", 51_000_000 + i * 17),
                first_name: FIRST[(i * 5 + 3) % FIRST.len()].to_string(),
                last_name: LAST[(i * 7 + 2) % LAST.len()].to_string(),
            })
            .collect();
        let accounts: Vec<Account> = COMPANIES
            .iter()
            .enumerate()
            .map(|(i, (name, domain))| Account {
                id: format!("001Sim{:012}", i + 1),
                name: name.to_string(),
                domain: domain.to_string(),
                kind: ACCOUNT_TYPES
                    .choose(&mut rng)
                    .unwrap_or(&"Prospect")
                    .to_string(),
                owner: rng.random_range(0..owners.len()),
            })
            .collect();
        let mut people = Vec::with_capacity(PEOPLE);
        for i in 0..PEOPLE {
            let first = FIRST[(i * 7 + rng.random_range(0..3)) % FIRST.len()];
            let last = LAST[(i * 5 + rng.random_range(0..3)) % LAST.len()];
            let account = i % accounts.len();
            let local = format!(
                "{}.{}{}",
                first.to_lowercase(),
                last.to_lowercase().replace(' ', ""),
                if i >= 24 {
                    i.to_string()
                } else {
                    String::new()
                }
            );
            // Every third person is a lead; every eleventh is unknown to Salesforce.
            let salesforce = match i {
                _ if i % 11 == 10 => SalesforcePresence::Absent,
                _ if i % 3 == 2 => SalesforcePresence::Lead,
                _ => SalesforcePresence::Contact,
            };
            let in_hubspot = i % 7 != 6;
            let activity = (i % 5 != 4).then(|| {
                let last_day = rng.random_range(1..=28);
                let events = (0..rng.random_range(3..8))
                    .map(|k| {
                        (
                            EVENTS.choose(&mut rng).unwrap_or(&"Login").to_string(),
                            format!(
                                "2026-11-{:02} {:02}:{:02}:00.000000",
                                (last_day - k).max(1),
                                9 + k,
                                (k * 7) % 60
                            ),
                        )
                    })
                    .collect();
                Activity {
                    amplitude_id: 900_000_000 + (i as u64) * 131,
                    num_events: rng.random_range(20..4000),
                    num_sessions: rng.random_range(3..400),
                    first_used: format!(
                        "2025-{:02}-{:02}",
                        rng.random_range(1..=12),
                        rng.random_range(1..=28)
                    ),
                    last_used: format!("2026-11-{last_day:02}"),
                    platform: PLATFORMS.choose(&mut rng).unwrap_or(&"Web").to_string(),
                    country: COUNTRIES
                        .choose(&mut rng)
                        .unwrap_or(&"United States")
                        .to_string(),
                    events,
                }
            });
            people.push(Person {
                first_name: first.to_string(),
                last_name: last.to_string(),
                email: format!("{local}@{}", accounts[account].domain),
                account,
                salesforce,
                salesforce_id: format!(
                    "{}Sim{:012}",
                    if salesforce == SalesforcePresence::Lead {
                        "00Q"
                    } else {
                        "003"
                    },
                    i + 1
                ),
                lead_status: LEAD_STATUSES
                    .choose(&mut rng)
                    .unwrap_or(&"Nurturing")
                    .to_string(),
                hubspot_id: in_hubspot.then(|| format!("{}", 7_000 + i * 3)),
                lifecycle_stage: LIFECYCLE.choose(&mut rng).unwrap_or(&"lead").to_string(),
                hubspot_owner: (i % 4 != 3).then(|| rng.random_range(0..owners.len())),
                activity,
            });
        }
        let opportunities = (0..accounts.len() + 4)
            .map(|k| {
                let account = k % accounts.len();
                Opportunity {
                    account,
                    name: format!(
                        "{} - {}",
                        accounts[account].name,
                        ["Expansion", "Renewal", "Pilot", "Platform"][k % 4]
                    ),
                    stage: STAGES
                        .choose(&mut rng)
                        .unwrap_or(&"Qualification")
                        .to_string(),
                    amount: f64::from(rng.random_range(5u32..250)) * 1000.0,
                    close_date: format!(
                        "2026-{:02}-{:02}",
                        rng.random_range(11..=12),
                        rng.random_range(1..=28)
                    ),
                    // Every fourth account's deals are all closed.
                    closed: account % 4 == 3 || k >= accounts.len() && k % 2 == 1,
                    hubspot_deal_id: format!("{}", 30_000 + k * 11),
                }
            })
            .collect();
        let hosts = owners
            .iter()
            .enumerate()
            .map(|(i, o)| Host {
                user_id: format!("64ee0722-0000-4b48-bc89-{:012}", i + 1),
                name: o.name(),
            })
            .collect();
        Fixtures {
            owners,
            accounts,
            people,
            opportunities,
            hosts,
            meeting_type_id: "4a8f2b3c-7d1e-4f9b-8a2c-3d5e6f789012".into(),
        }
    }

    pub fn person_by_email(&self, email: &str) -> Option<&Person> {
        self.people
            .iter()
            .find(|p| p.email.eq_ignore_ascii_case(email))
    }

    /// The account's first open opportunity (earliest close date).
    pub fn open_opportunity(&self, account: usize) -> Option<&Opportunity> {
        self.opportunities
            .iter()
            .filter(|o| o.account == account && !o.closed)
            .min_by(|a, b| a.close_date.cmp(&b.close_date))
    }

    /// An email that no service knows.
    pub fn unknown_email(&self) -> &'static str {
        "nobody@unknown.example"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_yields_the_same_world_with_unique_emails() {
        let a = Fixtures::generate(42);
        let b = Fixtures::generate(42);
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            serde_json::to_string(&b).unwrap()
        );
        let mut emails: Vec<_> = a.people.iter().map(|p| p.email.clone()).collect();
        emails.sort();
        emails.dedup();
        assert_eq!(emails.len(), PEOPLE);
    }

    #[test]
    fn the_world_has_every_kind_of_person() {
        let f = Fixtures::generate(1);
        for presence in [
            SalesforcePresence::Contact,
            SalesforcePresence::Lead,
            SalesforcePresence::Absent,
        ] {
            assert!(
                f.people.iter().any(|p| p.salesforce == presence),
                "{presence:?}"
            );
        }
        assert!(f.people.iter().any(|p| p.hubspot_id.is_none()));
        assert!(f.people.iter().any(|p| p.activity.is_none()));
        assert!(f.opportunities.iter().any(|o| !o.closed));
    }
}
