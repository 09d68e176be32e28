//! A fake OpenAI-compatible chat-completions server on 127.0.0.1: each
//! request gets the next scripted reply (an SSE stream sent in small pieces,
//! a status with its body, raw text, JSON, or a hang), and every request is
//! kept for inspection.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

/// What the fake server does with the next request.
#[derive(Clone)]
pub enum Reply {
    /// An SSE body sent in `chunk`-byte pieces; then `[DONE]` unless `cut`,
    /// or the connection hangs / breaks after the pieces.
    Stream {
        events: Vec<Value>,
        chunk: usize,
        end: StreamEnd,
    },
    Status {
        code: u16,
        retry_after: Option<&'static str>,
        body: &'static str,
    },
    Raw(&'static str),
    Json(Value),
    Hang,
}

#[derive(Clone, Copy, PartialEq)]
pub enum StreamEnd {
    Done,
    Cut,
    Hang,
    Break,
}

#[derive(Default)]
pub struct Fake {
    pub replies: Mutex<VecDeque<Reply>>,
    pub requests: Mutex<Vec<(HeaderMap, Value)>>,
}

impl Fake {
    pub fn then(&self, reply: Reply) -> &Fake {
        self.replies.lock().unwrap().push_back(reply);
        self
    }

    pub fn request(&self, n: usize) -> (HeaderMap, Value) {
        self.requests.lock().unwrap()[n].clone()
    }

    pub fn request_count(&self) -> usize {
        self.requests.lock().unwrap().len()
    }
}

pub async fn chat(State(fake): State<Arc<Fake>>, headers: HeaderMap, body: String) -> Response {
    let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    fake.requests.lock().unwrap().push((headers, body));
    let reply = fake
        .replies
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or(Reply::Status {
            code: 500,
            retry_after: None,
            body: "no reply scripted",
        });
    match reply {
        Reply::Stream { events, chunk, end } => {
            let mut text: String = events.iter().map(|e| format!("data: {e}\n\n")).collect();
            if end == StreamEnd::Done {
                text.push_str("data: [DONE]\n\n");
            }
            let pieces: Vec<String> = text
                .as_bytes()
                .chunks(chunk)
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect();
            let stream = futures_util::stream::unfold(
                (pieces.into_iter(), end),
                |(mut pieces, end)| async move {
                    match pieces.next() {
                        Some(piece) => {
                            tokio::time::sleep(Duration::from_millis(2)).await;
                            Some((Ok::<String, std::io::Error>(piece), (pieces, end)))
                        }
                        None if end == StreamEnd::Hang => {
                            std::future::pending::<()>().await;
                            None
                        }
                        None if end == StreamEnd::Break => Some((
                            Err(std::io::Error::other("connection dropped")),
                            (pieces, StreamEnd::Cut),
                        )),
                        None => None,
                    }
                },
            );
            (
                [(header::CONTENT_TYPE, "text/event-stream")],
                Body::from_stream(stream),
            )
                .into_response()
        }
        Reply::Status {
            code,
            retry_after,
            body,
        } => {
            let mut response = (StatusCode::from_u16(code).unwrap(), body).into_response();
            if let Some(value) = retry_after {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, value.parse().unwrap());
            }
            response
        }
        Reply::Raw(text) => ([(header::CONTENT_TYPE, "text/event-stream")], text).into_response(),
        Reply::Json(value) => axum::Json(value).into_response(),
        Reply::Hang => {
            std::future::pending::<()>().await;
            unreachable!()
        }
    }
}

pub async fn serve() -> (Arc<Fake>, String) {
    let fake = Arc::new(Fake::default());
    let app = Router::new()
        .route("/v1/chat/completions", post(chat))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (fake, format!("http://{addr}/v1"))
}

pub fn text(content: &str) -> Value {
    json!({ "choices": [{ "index": 0, "delta": { "content": content } }] })
}

pub fn tool(index: u32, id: Option<&str>, name: Option<&str>, arguments: &str) -> Value {
    let mut call = json!({ "index": index, "function": { "arguments": arguments } });
    if let Some(id) = id {
        call["id"] = json!(id);
        call["type"] = json!("function");
    }
    if let Some(name) = name {
        call["function"]["name"] = json!(name);
    }
    json!({ "choices": [{ "index": 0, "delta": { "tool_calls": [call] } }] })
}

pub fn finish(reason: &str) -> Value {
    json!({ "choices": [{ "index": 0, "delta": {}, "finish_reason": reason }] })
}

pub fn stream(events: Vec<Value>) -> Reply {
    Reply::Stream {
        events,
        chunk: 11,
        end: StreamEnd::Done,
    }
}
