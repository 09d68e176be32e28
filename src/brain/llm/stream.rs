//! Assembling a streamed chat completion: server-sent-event `data:` lines
//! carry deltas of the reply text and of tool calls (name and argument
//! fragments keyed by index) until `[DONE]`.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::brain::action::ToolName;
use crate::resilience::CallError;

/// A tool call the model asked for, fully assembled and validated.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCallRequest {
    pub id: String,
    pub name: ToolName,
    pub args: Value,
}

/// The model's complete answer for one request.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Completion {
    pub text: String,
    pub tool_calls: Vec<ToolCallRequest>,
    pub finish_reason: Option<String>,
}

#[derive(Debug, Default)]
struct PartialCall {
    id: String,
    name: String,
    arguments: String,
}

/// Feeds raw body bytes in, yields a [`Completion`] at the end.
#[derive(Debug, Default)]
pub struct StreamAssembler {
    pending: Vec<u8>,
    text: String,
    calls: BTreeMap<u64, PartialCall>,
    finish_reason: Option<String>,
    done: bool,
}

fn decode(detail: impl Into<String>) -> CallError {
    CallError::Decode {
        detail: detail.into(),
    }
}

impl StreamAssembler {
    pub fn new() -> StreamAssembler {
        StreamAssembler::default()
    }

    /// Whether `[DONE]` was seen.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Feed a chunk of the body; complete lines are parsed at once.
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), CallError> {
        self.pending.extend_from_slice(chunk);
        while let Some(newline) = self.pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=newline).collect();
            let line =
                std::str::from_utf8(&line).map_err(|_| decode("stream line is not UTF-8"))?;
            self.line(line.trim_end_matches(['\r', '\n']))?;
        }
        Ok(())
    }

    fn line(&mut self, line: &str) -> Result<(), CallError> {
        let Some(data) = line.strip_prefix("data:") else {
            // Blank separators, comments (":"), "event:" and "id:" lines carry no delta.
            return Ok(());
        };
        let data = data.trim();
        if data == "[DONE]" {
            self.done = true;
            return Ok(());
        }
        if self.done {
            return Err(decode("data after [DONE]"));
        }
        let event: Value = serde_json::from_str(data)
            .map_err(|e| decode(format!("stream event is not JSON: {e}")))?;
        if let Some(error) = event.get("error") {
            let message = error
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("unspecified");
            return Err(decode(format!(
                "model reported an error mid-stream: {message}"
            )));
        }
        let Some(choice) = event.get("choices").and_then(|c| c.get(0)) else {
            return Ok(());
        };
        if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
            self.finish_reason = Some(reason.to_owned());
        }
        let Some(delta) = choice.get("delta").or_else(|| choice.get("message")) else {
            return Ok(());
        };
        self.delta(delta)
    }

    fn delta(&mut self, delta: &Value) -> Result<(), CallError> {
        if let Some(text) = delta.get("content").and_then(Value::as_str) {
            self.text.push_str(text);
        }
        let Some(calls) = delta.get("tool_calls").and_then(Value::as_array) else {
            return Ok(());
        };
        for (position, call) in calls.iter().enumerate() {
            let index = call
                .get("index")
                .and_then(Value::as_u64)
                .unwrap_or(position as u64);
            let partial = self.calls.entry(index).or_default();
            if let Some(id) = call.get("id").and_then(Value::as_str) {
                partial.id.push_str(id);
            }
            if let Some(function) = call.get("function") {
                if let Some(name) = function.get("name").and_then(Value::as_str) {
                    partial.name.push_str(name);
                }
                if let Some(arguments) = function.get("arguments").and_then(Value::as_str) {
                    partial.arguments.push_str(arguments);
                }
            }
        }
        Ok(())
    }

    /// The assembled completion. A stream that stopped before `[DONE]` and
    /// without a finish reason was cut off, and is not trusted.
    pub fn finish(mut self) -> Result<Completion, CallError> {
        if !self.pending.is_empty() {
            let rest = std::mem::take(&mut self.pending);
            let line = String::from_utf8(rest).map_err(|_| decode("stream line is not UTF-8"))?;
            self.line(line.trim_end())?;
        }
        if !self.done && self.finish_reason.is_none() {
            return Err(decode("stream ended before [DONE]"));
        }
        let tool_calls = self
            .calls
            .into_values()
            .map(validate)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Completion {
            text: self.text,
            tool_calls,
            finish_reason: self.finish_reason,
        })
    }

    /// Read a non-streamed answer (`choices[0].message`) the same way.
    pub fn from_full_body(body: &[u8]) -> Result<Completion, CallError> {
        let value: Value =
            serde_json::from_slice(body).map_err(|e| decode(format!("body is not JSON: {e}")))?;
        let mut assembler = StreamAssembler::new();
        let choice = value
            .get("choices")
            .and_then(|c| c.get(0))
            .ok_or_else(|| decode("no choices in the answer"))?;
        let message = choice
            .get("message")
            .ok_or_else(|| decode("no message in the answer"))?;
        assembler.delta(message)?;
        assembler.finish_reason = Some(
            choice
                .get("finish_reason")
                .and_then(Value::as_str)
                .unwrap_or("stop")
                .to_owned(),
        );
        assembler.finish()
    }
}

fn validate(call: PartialCall) -> Result<ToolCallRequest, CallError> {
    let name = ToolName::parse(&call.name)
        .ok_or_else(|| decode(format!("model called an unknown tool {:?}", call.name)))?;
    if call.id.is_empty() {
        return Err(decode(format!("tool call to {} has no id", call.name)));
    }
    let arguments = if call.arguments.trim().is_empty() {
        "{}"
    } else {
        &call.arguments
    };
    let args: Value = serde_json::from_str(arguments)
        .map_err(|e| decode(format!("arguments of {} are not JSON: {e}", call.name)))?;
    if !args.is_object() {
        return Err(decode(format!(
            "arguments of {} are not an object",
            call.name
        )));
    }
    Ok(ToolCallRequest {
        id: call.id,
        name,
        args,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assemble(body: &str, chunk: usize) -> Result<Completion, CallError> {
        let mut assembler = StreamAssembler::new();
        for piece in body.as_bytes().chunks(chunk) {
            assembler.push(piece)?;
        }
        assembler.finish()
    }

    const STREAM: &str = concat!(
        "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"Let me \"}}]}\n\n",
        ": keep-alive\n\n",
        "data: {\"choices\":[{\"delta\":{\"content\":\"check. é\"}}]}\r\n\r\n",
        "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"chilipiper_\",\"arguments\":\"\"}}]}}]}\n\n",
        "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"name\":\"slots\",\"arguments\":\"{\\\"email\\\":\"}}]}}]}\n\n",
        "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"\\\"jane@acme.com\\\"}\"}}]}}]}\n\n",
        "data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n",
        "data: [DONE]\n\n",
    );

    #[test]
    fn assembles_text_and_a_split_tool_call_whatever_the_chunking() {
        for chunk in [1, 2, 7, 64, STREAM.len()] {
            let completion = assemble(STREAM, chunk).expect("valid stream");
            assert_eq!(completion.text, "Let me check. é", "chunk {chunk}");
            assert_eq!(completion.tool_calls.len(), 1);
            assert_eq!(completion.tool_calls[0].name, ToolName::ChilipiperSlots);
            assert_eq!(
                completion.tool_calls[0].args,
                serde_json::json!({ "email": "jane@acme.com" })
            );
            assert_eq!(completion.finish_reason.as_deref(), Some("tool_calls"));
        }
    }

    #[test]
    fn a_cut_off_stream_is_a_decode_error() {
        let cut = &STREAM[..STREAM.find("finish_reason").unwrap() - 40];
        assert!(matches!(assemble(cut, 16), Err(CallError::Decode { .. })));
    }

    #[test]
    fn garbage_and_bad_tool_calls_are_decode_errors() {
        assert!(matches!(
            assemble("data: {not json\n\n", 4),
            Err(CallError::Decode { .. })
        ));
        let unknown = "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"c\",\"function\":{\"name\":\"delete_crm\",\"arguments\":\"{}\"}}]}}]}\n\ndata: [DONE]\n\n";
        assert!(matches!(
            assemble(unknown, 8),
            Err(CallError::Decode { .. })
        ));
        let bad_args = "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"c\",\"function\":{\"name\":\"chilipiper_slots\",\"arguments\":\"{\\\"email\\\"\"}}]}}]}\n\ndata: [DONE]\n\n";
        assert!(matches!(
            assemble(bad_args, 8),
            Err(CallError::Decode { .. })
        ));
    }
}
