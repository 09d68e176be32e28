//! Word tables: which phrases name an integration, an industry or an urgency.
//! Phrases are whole-token sequences (see `tokens`), so each table entry is a
//! decision about one word, not a substring.

use serde::{Deserialize, Serialize};

use super::tokens::{NEGATORS, Tokens, phrase_len};

/// A tool the caller already uses and may want connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Integration {
    HubSpot,
    Salesforce,
    Slack,
    Zapier,
    Api,
    GoogleDrive,
    Dropbox,
    SharePoint,
    OneDrive,
    Box,
    QuickBooks,
    NetSuite,
    MicrosoftTeams,
}

impl Integration {
    pub fn display_name(self) -> &'static str {
        match self {
            Integration::HubSpot => "HubSpot",
            Integration::Salesforce => "Salesforce",
            Integration::Slack => "Slack",
            Integration::Zapier => "Zapier",
            Integration::Api => "our API",
            Integration::GoogleDrive => "Google Drive",
            Integration::Dropbox => "Dropbox",
            Integration::SharePoint => "SharePoint",
            Integration::OneDrive => "OneDrive",
            Integration::Box => "Box",
            Integration::QuickBooks => "QuickBooks",
            Integration::NetSuite => "NetSuite",
            Integration::MicrosoftTeams => "Microsoft Teams",
        }
    }
}

/// Ambiguous everyday words ("box", "teams", "drive") only count with a
/// qualifier, which is why they appear here only inside longer phrases.
const INTEGRATIONS: &[(&str, Integration)] = &[
    ("hubspot", Integration::HubSpot),
    ("hub spot", Integration::HubSpot),
    ("salesforce", Integration::Salesforce),
    ("sales force", Integration::Salesforce),
    ("sfdc", Integration::Salesforce),
    ("slack", Integration::Slack),
    ("zapier", Integration::Zapier),
    ("zap", Integration::Zapier),
    ("zaps", Integration::Zapier),
    ("api", Integration::Api),
    ("apis", Integration::Api),
    ("webhook", Integration::Api),
    ("webhooks", Integration::Api),
    ("google drive", Integration::GoogleDrive),
    ("gdrive", Integration::GoogleDrive),
    ("dropbox", Integration::Dropbox),
    ("drop box", Integration::Dropbox),
    ("sharepoint", Integration::SharePoint),
    ("share point", Integration::SharePoint),
    ("onedrive", Integration::OneDrive),
    ("one drive", Integration::OneDrive),
    ("box com", Integration::Box),
    ("box dot com", Integration::Box),
    ("quickbooks", Integration::QuickBooks),
    ("quick books", Integration::QuickBooks),
    ("netsuite", Integration::NetSuite),
    ("net suite", Integration::NetSuite),
    ("microsoft teams", Integration::MicrosoftTeams),
    ("ms teams", Integration::MicrosoftTeams),
];

/// The caller's line of business.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Industry {
    Legal,
    Healthcare,
    Finance,
    Insurance,
    RealEstate,
    Logistics,
    Education,
    Manufacturing,
    Retail,
    Government,
    Staffing,
    Construction,
}

impl Industry {
    pub fn display_name(self) -> &'static str {
        match self {
            Industry::Legal => "legal",
            Industry::Healthcare => "healthcare",
            Industry::Finance => "finance",
            Industry::Insurance => "insurance",
            Industry::RealEstate => "real estate",
            Industry::Logistics => "logistics",
            Industry::Education => "education",
            Industry::Manufacturing => "manufacturing",
            Industry::Retail => "retail",
            Industry::Government => "public sector",
            Industry::Staffing => "staffing and HR",
            Industry::Construction => "construction",
        }
    }
}

/// "wholesale" is retail, never "sales"; "law" alone is legal but
/// "by law" is not a line of business (see `BY_LAW`).
const INDUSTRIES: &[(&str, Industry)] = &[
    ("legal", Industry::Legal),
    ("law firm", Industry::Legal),
    ("lawfirm", Industry::Legal),
    ("law", Industry::Legal),
    ("attorney", Industry::Legal),
    ("attorneys", Industry::Legal),
    ("lawyers", Industry::Legal),
    ("paralegals", Industry::Legal),
    ("healthcare", Industry::Healthcare),
    ("health care", Industry::Healthcare),
    ("hospital", Industry::Healthcare),
    ("hospitals", Industry::Healthcare),
    ("clinic", Industry::Healthcare),
    ("clinics", Industry::Healthcare),
    ("medical", Industry::Healthcare),
    ("dental", Industry::Healthcare),
    ("pharma", Industry::Healthcare),
    ("patient", Industry::Healthcare),
    ("patients", Industry::Healthcare),
    ("finance", Industry::Finance),
    ("financial", Industry::Finance),
    ("fintech", Industry::Finance),
    ("fin tech", Industry::Finance),
    ("bank", Industry::Finance),
    ("banking", Industry::Finance),
    ("accounting", Industry::Finance),
    ("accountants", Industry::Finance),
    ("lending", Industry::Finance),
    ("mortgage", Industry::Finance),
    ("mortgages", Industry::Finance),
    ("insurance", Industry::Insurance),
    ("insurer", Industry::Insurance),
    ("real estate", Industry::RealEstate),
    ("realty", Industry::RealEstate),
    ("realtor", Industry::RealEstate),
    ("realtors", Industry::RealEstate),
    ("property management", Industry::RealEstate),
    ("logistics", Industry::Logistics),
    ("shipping", Industry::Logistics),
    ("freight", Industry::Logistics),
    ("trucking", Industry::Logistics),
    ("supply chain", Industry::Logistics),
    ("warehousing", Industry::Logistics),
    ("education", Industry::Education),
    ("edtech", Industry::Education),
    ("school", Industry::Education),
    ("schools", Industry::Education),
    ("university", Industry::Education),
    ("college", Industry::Education),
    ("manufacturing", Industry::Manufacturing),
    ("manufacturer", Industry::Manufacturing),
    ("retail", Industry::Retail),
    ("ecommerce", Industry::Retail),
    ("e commerce", Industry::Retail),
    ("wholesale", Industry::Retail),
    ("wholesaler", Industry::Retail),
    ("government", Industry::Government),
    ("public sector", Industry::Government),
    ("municipal", Industry::Government),
    ("hr", Industry::Staffing),
    ("staffing", Industry::Staffing),
    ("recruiting", Industry::Staffing),
    ("recruitment", Industry::Staffing),
    ("construction", Industry::Construction),
];

const BY_LAW: &[&str] = &["by", "the", "required", "state", "federal"];

/// How soon the caller needs a solution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Urgency {
    Asap,
    ThisWeek,
    ThisMonth,
    NextQuarter,
    Later,
    JustExploring,
}

impl Urgency {
    /// Whether this counts as an active buying timeline.
    pub fn is_active(self) -> bool {
        matches!(self, Urgency::Asap | Urgency::ThisWeek | Urgency::ThisMonth)
    }
}

const URGENCIES: &[(&str, Urgency)] = &[
    ("asap", Urgency::Asap),
    ("a s a p", Urgency::Asap),
    ("as soon as possible", Urgency::Asap),
    ("right away", Urgency::Asap),
    ("right now", Urgency::Asap),
    ("immediately", Urgency::Asap),
    ("urgent", Urgency::Asap),
    ("urgently", Urgency::Asap),
    ("by tomorrow", Urgency::Asap),
    ("yesterday", Urgency::Asap),
    ("this week", Urgency::ThisWeek),
    ("next few days", Urgency::ThisWeek),
    ("by friday", Urgency::ThisWeek),
    ("end of the week", Urgency::ThisWeek),
    ("this month", Urgency::ThisMonth),
    ("next week", Urgency::ThisMonth),
    ("couple of weeks", Urgency::ThisMonth),
    ("couple weeks", Urgency::ThisMonth),
    ("few weeks", Urgency::ThisMonth),
    ("two weeks", Urgency::ThisMonth),
    ("end of the month", Urgency::ThisMonth),
    ("next month", Urgency::NextQuarter),
    ("this quarter", Urgency::NextQuarter),
    ("next quarter", Urgency::NextQuarter),
    ("couple of months", Urgency::NextQuarter),
    ("few months", Urgency::NextQuarter),
    ("next year", Urgency::Later),
    ("later this year", Urgency::Later),
    ("six months", Urgency::Later),
    ("eventually", Urgency::Later),
    ("at some point", Urgency::Later),
    ("not urgent", Urgency::JustExploring),
    ("not in a rush", Urgency::JustExploring),
    ("not in a hurry", Urgency::JustExploring),
    ("just exploring", Urgency::JustExploring),
    ("exploring", Urgency::JustExploring),
    ("just looking", Urgency::JustExploring),
    ("just browsing", Urgency::JustExploring),
    ("browsing", Urgency::JustExploring),
    ("no rush", Urgency::JustExploring),
    ("no hurry", Urgency::JustExploring),
    ("kicking the tires", Urgency::JustExploring),
    ("researching", Urgency::JustExploring),
    ("just curious", Urgency::JustExploring),
];

/// Find table entries in the transcript, longest phrase first at each
/// position, left to right. A hit consumes its tokens.
fn scan<T: Copy>(tokens: &Tokens, table: &[(&str, T)]) -> Vec<(usize, T)> {
    let mut by_length: Vec<&(&str, T)> = table.iter().collect();
    by_length.sort_by_cached_key(|(phrase, _)| std::cmp::Reverse(phrase_len(phrase)));
    let mut hits = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        match by_length
            .iter()
            .find(|(phrase, _)| tokens.phrase_at(i, phrase))
        {
            Some((phrase, value)) => {
                hits.push((i, *value));
                i += phrase_len(phrase);
            }
            None => i += 1,
        }
    }
    hits
}

/// Integrations mentioned and not negated ("we don't use Slack").
pub fn integrations(tokens: &Tokens) -> Vec<Integration> {
    let mut found: Vec<Integration> = scan(tokens, INTEGRATIONS)
        .into_iter()
        .filter(|(at, _)| !tokens.preceded_by(*at, 3, &NEGATORS))
        .map(|(_, integration)| integration)
        .collect();
    found.sort();
    found.dedup();
    found
}

/// The first industry mentioned.
pub fn industry(tokens: &Tokens) -> Option<Industry> {
    scan(tokens, INDUSTRIES)
        .into_iter()
        .find(|(at, industry)| {
            !(*industry == Industry::Legal
                && tokens.get(*at) == Some("law")
                && tokens.preceded_by(*at, 1, BY_LAW))
        })
        .map(|(_, industry)| industry)
}

/// The most urgent timeline mentioned.
pub fn urgency(tokens: &Tokens) -> Option<Urgency> {
    scan(tokens, URGENCIES)
        .into_iter()
        .map(|(_, urgency)| urgency)
        .min()
}
