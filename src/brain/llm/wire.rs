//! The OpenAI-compatible chat-completions wire format: messages, tool
//! definitions (JSON schema) and how tool outcomes are reported back.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::brain::action::{CrmChoice, ToolName, ToolResultView};

/// One message of the conversation as the model sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: Role,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub content: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub tool_calls: Vec<WireToolCall>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub tool_call_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    System,
    User,
    Assistant,
    Tool,
}

impl ChatMessage {
    pub fn system(text: &str) -> ChatMessage {
        ChatMessage {
            role: Role::System,
            content: Some(text.to_owned()),
            tool_calls: vec![],
            tool_call_id: None,
        }
    }

    pub fn user(text: &str) -> ChatMessage {
        ChatMessage {
            role: Role::User,
            content: Some(text.to_owned()),
            tool_calls: vec![],
            tool_call_id: None,
        }
    }

    pub fn tool(call_id: &str, result: &ToolResultView) -> ChatMessage {
        ChatMessage {
            role: Role::Tool,
            content: Some(tool_content(result).to_string()),
            tool_calls: vec![],
            tool_call_id: Some(call_id.to_owned()),
        }
    }
}

/// A tool call as it appears in an assistant message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireToolCall {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub function: WireFunction,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireFunction {
    pub name: String,
    /// JSON text, as the API carries it.
    pub arguments: String,
}

/// What the model reads back for a tool outcome. Failures are marked as
/// errors with their kind, so the model can speak about them honestly.
pub fn tool_content(result: &ToolResultView) -> Value {
    match result {
        ToolResultView::Ok { value } => value.clone(),
        ToolResultView::NotFound => {
            json!({ "error": "no record found for these arguments", "kind": "not_found" })
        }
        ToolResultView::Failed { kind } => json!({
            "error": "the service could not answer; the caller has already been told, carry on without this data",
            "kind": kind.as_str(),
        }),
        ToolResultView::UnknownOutcome { kind } => json!({
            "error": "the outcome is unknown: it may have taken effect. Do not call it again; say it will be confirmed by email",
            "kind": "unknown_outcome",
            "cause": kind.as_str(),
        }),
    }
}

fn email_only(description: &str) -> Value {
    json!({
        "type": "object",
        "properties": { "email": { "type": "string", "description": description } },
        "required": ["email"],
        "additionalProperties": false,
    })
}

fn function(name: ToolName, description: &str, parameters: Value) -> Value {
    json!({ "type": "function", "function": { "name": name.as_str(), "description": description, "parameters": parameters } })
}

/// The tools offered to the model: activity, the configured CRM, slots, booking.
pub fn tool_definitions(crm: CrmChoice) -> Vec<Value> {
    let crm_name = match crm {
        CrmChoice::Salesforce => "Salesforce",
        CrmChoice::HubSpot => "HubSpot",
    };
    vec![
        function(
            ToolName::AmplitudeActivity,
            "Recent product activity of the caller's trial account (documents processed, last active).",
            email_only("The caller's work email."),
        ),
        function(
            crm.lookup_tool(),
            &format!(
                "The caller's {crm_name} record: owner, lifecycle stage, company, open opportunity."
            ),
            email_only("The caller's work email."),
        ),
        function(
            ToolName::ChilipiperSlots,
            "Open meeting slots with a solutions engineer for this caller.",
            email_only("The caller's work email."),
        ),
        function(
            ToolName::ChilipiperBook,
            "Book one of the offered slots. Call at most once per slot; never again after an unknown outcome.",
            json!({
                "type": "object",
                "properties": {
                    "email": { "type": "string", "description": "The caller's work email." },
                    "slot_id": { "type": "string", "description": "The id of a slot returned by chilipiper_slots." },
                },
                "required": ["email", "slot_id"],
                "additionalProperties": false,
            }),
        ),
    ]
}

/// The default instructions for the model.
pub const DEFAULT_SYSTEM_PROMPT: &str = "You are a friendly, concise voice assistant helping a caller who is trialling a \
document-processing product. Speak in short sentences suitable for speech. Learn the caller's team size, monthly \
document volume, integrations, timeline and industry, one question at a time. Once you know their email, look up their \
activity and CRM record. If they are a good fit, offer a meeting, list the open slots and book the one they choose. \
Never claim data you did not receive: if a tool returns an error, carry on without it.";
