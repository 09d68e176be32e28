//! The LLM brain: an OpenAI-compatible chat-completions client with tool
//! calling and streaming. Each request is one risky call with its own
//! attempt timeout; failures are classified into [`CallError`] so a
//! [`Guard`] can wrap it and the session can fall back to the script.
//!
//! ```no_run
//! use voxguard::brain::llm::{LlmBrain, LlmConfig};
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let config = LlmConfig::new("https://api.openai.com/v1", "gpt-4o-mini").with_api_key_from_env("OPENAI_API_KEY")?;
//! let mut brain = LlmBrain::new(config)?;
//! brain.push_user("Hi, we're a team of 12 processing invoices");
//! let actions = brain.respond().await?; // Err(CallError) → fall back to ScriptedBrain
//! # let _ = actions; Ok(()) }
//! ```

mod stream;
mod wire;

use std::time::Duration;

use reqwest::header::CONTENT_TYPE;

use super::action::{Action, CrmChoice, ToolResultView};
use crate::edge;
use crate::resilience::{CallError, Deadline, Guard, Outcome, Retryability};
use crate::secret::Secret;
pub use stream::{Completion, StreamAssembler, ToolCallRequest};

/// How model requests are named in error details.
const LLM: &str = "llm chat completions";
pub use wire::{
    ChatMessage, DEFAULT_SYSTEM_PROMPT, Role, WireFunction, WireToolCall, tool_content,
    tool_definitions,
};

#[derive(Debug, thiserror::Error)]
pub enum LlmSetupError {
    #[error("the LLM API key is missing: set the {var} environment variable")]
    MissingApiKey { var: String },
    #[error("could not build the HTTP client: {0}")]
    Client(String),
}

/// Where and how to reach the model.
#[derive(Debug, Clone)]
pub struct LlmConfig {
    /// Up to and including the version path, e.g. `https://api.openai.com/v1`.
    pub base_url: String,
    pub model: String,
    /// `None` for local servers that need no key.
    pub api_key: Option<Secret>,
    /// How long one request (connect to `[DONE]`) may take.
    pub attempt_timeout: Duration,
    pub crm: CrmChoice,
    pub system_prompt: String,
    pub temperature: Option<f32>,
    /// Larger answers are refused as undecodable.
    pub max_response_bytes: usize,
}

impl LlmConfig {
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> LlmConfig {
        LlmConfig {
            base_url: base_url.into(),
            model: model.into(),
            api_key: None,
            attempt_timeout: Duration::from_millis(2500),
            crm: CrmChoice::default(),
            system_prompt: DEFAULT_SYSTEM_PROMPT.to_owned(),
            temperature: Some(0.3),
            max_response_bytes: 256 * 1024,
        }
    }

    pub fn with_api_key_from_env(mut self, var: &str) -> Result<LlmConfig, LlmSetupError> {
        self.api_key = match std::env::var(var) {
            Ok(key) if !key.trim().is_empty() => Some(Secret::new(key)),
            _ => {
                return Err(LlmSetupError::MissingApiKey {
                    var: var.to_owned(),
                });
            }
        };
        Ok(self)
    }

    fn endpoint(&self) -> String {
        format!("{}/chat/completions", self.base_url.trim_end_matches('/'))
    }
}

/// A conversation driven by the model.
#[derive(Debug)]
pub struct LlmBrain {
    config: LlmConfig,
    http: reqwest::Client,
    transcript: Vec<ChatMessage>,
    /// Tool calls the model made that still need a result message.
    awaiting_results: Vec<String>,
    /// Caller words heard while tool results were outstanding: the API
    /// requires tool results right after the call, so these wait.
    held_user_messages: Vec<ChatMessage>,
}

impl LlmBrain {
    pub fn new(config: LlmConfig) -> Result<LlmBrain, LlmSetupError> {
        let http = reqwest::Client::builder()
            .build()
            .map_err(|e| LlmSetupError::Client(e.to_string()))?;
        Ok(LlmBrain::with_client(config, http))
    }

    /// A conversation that shares `http` (and its connection pool) with
    /// other conversations of the process.
    pub fn with_client(config: LlmConfig, http: reqwest::Client) -> LlmBrain {
        let transcript = vec![ChatMessage::system(&config.system_prompt)];
        LlmBrain {
            config,
            http,
            transcript,
            awaiting_results: Vec::new(),
            held_user_messages: Vec::new(),
        }
    }

    /// Continue a conversation from a saved transcript; tool calls in it
    /// that have no result yet are still awaited.
    pub fn resume(
        config: LlmConfig,
        transcript: Vec<ChatMessage>,
    ) -> Result<LlmBrain, LlmSetupError> {
        Ok(LlmBrain::new(config)?.carrying_on(transcript))
    }

    /// [`LlmBrain::resume`] with a shared HTTP client.
    pub fn resume_with_client(
        config: LlmConfig,
        http: reqwest::Client,
        transcript: Vec<ChatMessage>,
    ) -> LlmBrain {
        LlmBrain::with_client(config, http).carrying_on(transcript)
    }

    fn carrying_on(self, transcript: Vec<ChatMessage>) -> LlmBrain {
        let mut brain = self;
        let answered: Vec<&str> = transcript
            .iter()
            .filter_map(|m| m.tool_call_id.as_deref())
            .collect();
        brain.awaiting_results = transcript
            .iter()
            .flat_map(|m| m.tool_calls.iter().map(|c| c.id.clone()))
            .filter(|id| !answered.contains(&id.as_str()))
            .collect();
        brain.transcript = transcript;
        brain
    }

    pub fn config(&self) -> &LlmConfig {
        &self.config
    }

    /// The conversation so far, as sent to the model.
    pub fn transcript(&self) -> &[ChatMessage] {
        &self.transcript
    }

    /// Add a system note (facts the model should know, e.g. the caller's email).
    pub fn push_context(&mut self, note: &str) {
        self.transcript.push(ChatMessage::system(note));
    }

    /// Record words the agent already spoke (e.g. a scripted greeting).
    pub fn push_assistant_text(&mut self, text: &str) {
        self.transcript.push(ChatMessage {
            role: Role::Assistant,
            content: Some(text.to_owned()),
            tool_calls: vec![],
            tool_call_id: None,
        });
    }

    /// The caller cut in: of the reply `spoken`, only `heard` was played.
    /// The model's record of its own reply becomes what the caller heard
    /// (a reply they heard nothing of, with no tool call in it, goes).
    pub fn heard_only(&mut self, spoken: &str, heard: &str) {
        let Some(at) = self
            .transcript
            .iter()
            .rposition(|m| m.role == Role::Assistant && m.content.as_deref() == Some(spoken))
        else {
            return;
        };
        let heard = heard.trim();
        if !heard.is_empty() {
            self.transcript[at].content = Some(heard.to_owned());
        } else if self.transcript[at].tool_calls.is_empty() {
            self.transcript.remove(at);
        } else {
            self.transcript[at].content = None;
        }
    }

    /// What the caller said. While tool results are outstanding it is held
    /// back and added right after the last result.
    pub fn push_user(&mut self, text: &str) {
        if self.awaiting_tool_results() {
            self.held_user_messages.push(ChatMessage::user(text));
        } else {
            self.transcript.push(ChatMessage::user(text));
        }
    }

    /// Answer one of the model's tool calls (errors are marked as errors).
    /// Results for calls the model did not make (or already answered) are
    /// dropped: the transcript pairs every call with exactly one result.
    pub fn push_tool_result(&mut self, call_id: &str, result: &ToolResultView) {
        let Some(index) = self.awaiting_results.iter().position(|id| id == call_id) else {
            return;
        };
        self.awaiting_results.remove(index);
        self.transcript.push(ChatMessage::tool(call_id, result));
        if self.awaiting_results.is_empty() {
            self.transcript.append(&mut self.held_user_messages);
        }
    }

    /// Whether some tool call of the last answer has no result yet (the
    /// model must not be asked again until all have one; `respond` then
    /// answers with no actions and sends nothing).
    pub fn awaiting_tool_results(&self) -> bool {
        !self.awaiting_results.is_empty()
    }

    /// One streamed request for the current transcript, bounded by `attempt_timeout`.
    pub async fn request(&self, attempt_timeout: Duration) -> Result<Completion, CallError> {
        match tokio::time::timeout(attempt_timeout, self.request_unbounded(attempt_timeout)).await {
            Ok(result) => result,
            Err(_) => Err(CallError::Timeout {
                after: attempt_timeout,
            }),
        }
    }

    async fn request_unbounded(&self, attempt_timeout: Duration) -> Result<Completion, CallError> {
        let mut body = serde_json::json!({
            "model": self.config.model,
            "messages": self.transcript,
            "tools": tool_definitions(self.config.crm),
            "tool_choice": "auto",
            "stream": true,
        });
        if let Some(temperature) = self.config.temperature {
            body["temperature"] = serde_json::json!(temperature);
        }
        let mut request = self.http.post(self.config.endpoint()).json(&body);
        if let Some(key) = &self.config.api_key {
            request = request.bearer_auth(key.expose());
        }
        let mut response = request
            .send()
            .await
            .map_err(|e| edge::classify_transport(&e, LLM, attempt_timeout))?;
        let status = response.status();
        if !status.is_success() {
            let retry_after = edge::retry_after_of(response.headers());
            let detail = response
                .text()
                .await
                .ok()
                .map(|t| t.chars().take(200).collect::<String>())
                .filter(|t| !t.is_empty());
            return Err(CallError::from_status(status.as_u16(), retry_after, detail));
        }
        let is_json = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        let mut assembler = StreamAssembler::new();
        let mut full_body = Vec::new();
        let mut received = 0usize;
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| edge::classify_transport(&e, LLM, attempt_timeout))?
        {
            received += chunk.len();
            if received > self.config.max_response_bytes {
                return Err(CallError::Decode {
                    detail: format!(
                        "answer larger than {} bytes",
                        self.config.max_response_bytes
                    ),
                });
            }
            if is_json {
                full_body.extend_from_slice(&chunk);
            } else {
                assembler.push(&chunk)?;
                if assembler.is_done() {
                    break;
                }
            }
        }
        if is_json {
            StreamAssembler::from_full_body(&full_body)
        } else {
            assembler.finish()
        }
    }

    /// Record the model's answer in the transcript and turn it into actions.
    pub fn accept(&mut self, completion: Completion) -> Vec<Action> {
        let tool_calls: Vec<WireToolCall> = completion
            .tool_calls
            .iter()
            .map(|call| WireToolCall {
                id: call.id.clone(),
                kind: "function".to_owned(),
                function: WireFunction {
                    name: call.name.as_str().to_owned(),
                    arguments: call.args.to_string(),
                },
            })
            .collect();
        let text = completion.text.trim().to_owned();
        self.transcript.push(ChatMessage {
            role: Role::Assistant,
            content: (!text.is_empty()).then(|| text.clone()),
            tool_calls,
            tool_call_id: None,
        });
        let mut actions = Vec::new();
        if !text.is_empty() {
            actions.push(Action::Say { text });
        }
        for call in completion.tool_calls {
            self.awaiting_results.push(call.id.clone());
            actions.push(Action::CallTool {
                call_id: call.id,
                name: call.name,
                args: call.args,
            });
        }
        actions
    }

    /// Ask the model what to do next, with the configured attempt timeout.
    pub async fn respond(&mut self) -> Result<Vec<Action>, CallError> {
        if self.awaiting_tool_results() {
            return Ok(Vec::new());
        }
        let completion = self.request(self.config.attempt_timeout).await?;
        Ok(self.accept(completion))
    }

    /// Ask the model under a guard (breaker, retries, deadline). Requests
    /// are reads, so transient failures may be retried.
    pub async fn respond_guarded(
        &mut self,
        guard: &Guard,
        deadline: Deadline,
    ) -> Outcome<Vec<Action>> {
        let this = &*self;
        let outcome = guard
            .call(deadline, Retryability::Transient, |ctx| {
                this.request(ctx.timeout)
            })
            .await;
        let result = match outcome.result {
            Ok(completion) => Ok(self.accept(completion)),
            Err(error) => Err(error),
        };
        Outcome {
            result,
            attempts: outcome.attempts,
            elapsed: outcome.elapsed,
        }
    }
}
