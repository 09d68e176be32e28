//! Reading tool answers leniently: only fields that are present are used,
//! so a partial record never becomes an invented fact.
//!
//! Shapes read (extra fields ignored):
//! - activity: `{"docs_processed": 140, "last_active": "yesterday"}`
//!   (`documents_processed` also accepted);
//! - CRM: `{"owner": "Dana Lee" | {"name": "Dana Lee"}, "company": "Acme",
//!   "lifecycle_stage": "opportunity", "open_opportunity": true | {..}}`;
//! - slots: `{"slots": [{"id": "s1", "label": "Tuesday at 10 AM"}]}` or a bare array
//!   (`start` is used when `label` is missing).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::brain::understanding::{Question, SlotChoice, Tokens, extract_answering};

/// What the product-activity lookup told us.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Activity {
    pub docs_processed: Option<u64>,
}

impl Activity {
    pub fn read(value: &Value) -> Activity {
        let docs = value
            .get("docs_processed")
            .or_else(|| value.get("documents_processed"))
            .and_then(Value::as_u64);
        Activity {
            docs_processed: docs,
        }
    }
}

/// What the CRM record told us.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrmRecord {
    pub owner: Option<String>,
    pub company: Option<String>,
    pub lifecycle_stage: Option<String>,
    pub open_opportunity: bool,
}

impl CrmRecord {
    pub fn read(value: &Value) -> CrmRecord {
        let text = |v: Option<&Value>| {
            v.and_then(Value::as_str)
                .map(str::to_owned)
                .filter(|s| !s.trim().is_empty())
        };
        let owner = value
            .get("owner")
            .and_then(|o| text(Some(o)).or_else(|| text(o.get("name"))));
        let open_opportunity = match value
            .get("open_opportunity")
            .or_else(|| value.get("opportunity"))
        {
            Some(Value::Bool(b)) => *b,
            Some(Value::Object(_)) => true,
            _ => false,
        };
        CrmRecord {
            owner,
            company: text(value.get("company")),
            lifecycle_stage: text(value.get("lifecycle_stage").or_else(|| value.get("stage"))),
            open_opportunity,
        }
    }
}

/// A meeting slot offered to the caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfferedSlot {
    pub id: String,
    pub label: String,
}

/// The slots in a `chilipiper_slots` answer, in offered order.
pub fn read_slots(value: &Value) -> Vec<OfferedSlot> {
    let list = value.get("slots").unwrap_or(value);
    let Some(items) = list.as_array() else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| {
            let id = match item.get("id")? {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => return None,
            };
            let label = item
                .get("label")
                .or_else(|| item.get("start"))
                .and_then(Value::as_str)
                .unwrap_or(&id)
                .to_owned();
            Some(OfferedSlot { id, label })
        })
        .collect()
}

/// The offered slot the caller's choice points at, if exactly one fits.
pub fn match_slot<'a>(choice: &SlotChoice, offered: &'a [OfferedSlot]) -> Option<&'a OfferedSlot> {
    if let Some(position) = choice.position {
        let index = if choice.from_end {
            offered.len().checked_sub(1 + position)?
        } else {
            position
        };
        return offered.get(index);
    }
    let fits: Vec<&OfferedSlot> = offered
        .iter()
        .filter(|slot| {
            let described = extract_answering(&slot.label, Some(Question::SlotChoice)).slot_choice;
            let Some(described) = described else {
                return false;
            };
            let day_fits = choice.weekday.is_none() || choice.weekday == described.weekday;
            let time_fits = match (choice.time, described.time) {
                (Some(wanted), Some(offered)) => wanted.matches(&offered),
                (Some(_), None) => false,
                (None, _) => true,
            };
            day_fits && time_fits
        })
        .collect();
    match fits.as_slice() {
        [one] => Some(one),
        _ => None,
    }
}

/// Whether the caller wants to end the call.
pub fn says_goodbye(tokens: &Tokens) -> bool {
    [
        "bye",
        "goodbye",
        "hang up",
        "thats all",
        "gotta go",
        "have to go",
    ]
    .iter()
    .any(|p| tokens.contains(p))
}

/// Whether the caller asks the agent to try something again.
pub fn asks_to_retry(tokens: &Tokens) -> bool {
    [
        "try again",
        "try it again",
        "try that again",
        "retry",
        "check again",
        "look again",
        "one more time",
        "give it another go",
    ]
    .iter()
    .any(|p| tokens.contains(p))
}

/// Whether the caller sounds stuck or annoyed.
pub fn sounds_frustrated(tokens: &Tokens) -> bool {
    [
        "frustrating",
        "frustrated",
        "annoying",
        "confused",
        "confusing",
        "doesnt work",
        "not working",
        "stuck",
        "broken",
        "useless",
    ]
    .iter()
    .any(|p| tokens.contains(p))
}
