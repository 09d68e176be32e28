//! The LLM brain against a fake OpenAI-compatible server on 127.0.0.1:
//! streaming, tool-call assembly, tool results going back, every failure
//! classified into a CallError, and the hybrid brain's fallback.

use std::time::Duration;

use axum::http::header;
use serde_json::{Value, json};
use tokio::time::Instant;
mod llm_fake;

use llm_fake::{Reply, StreamEnd, finish, serve, stream, text, tool};
use voxguard::brain::llm::{LlmBrain, LlmConfig, LlmSetupError};
use voxguard::brain::{
    Action, BrainMode, BrainState, FollowUp, HybridBrain, ScriptedConfig, Stage, StartContext,
    ToolName, ToolResultView,
};
use voxguard::resilience::{CallError, ErrorKind};
use voxguard::secret::Secret;

fn config(base_url: &str) -> LlmConfig {
    LlmConfig {
        api_key: Some(Secret::new("test-key")),
        attempt_timeout: Duration::from_secs(5),
        ..LlmConfig::new(base_url, "fake-model")
    }
}

fn slots_call_stream() -> Reply {
    stream(vec![
        text("Let me "),
        text("check the calendar."),
        tool(0, Some("call_a"), Some("chilipiper_"), ""),
        tool(0, None, Some("slots"), "{\"em"),
        tool(0, None, None, "ail\": \"jane@acme.com\"}"),
        finish("tool_calls"),
    ])
}

#[tokio::test]
async fn streamed_text_and_a_split_tool_call_become_actions() {
    let (fake, url) = serve().await;
    fake.then(slots_call_stream());
    let mut brain = LlmBrain::new(config(&url)).unwrap();
    brain.push_user("can we book a call?");
    let actions = brain.respond().await.expect("a completion");
    assert_eq!(
        actions,
        [
            Action::say("Let me check the calendar."),
            Action::CallTool {
                call_id: "call_a".into(),
                name: ToolName::ChilipiperSlots,
                args: json!({ "email": "jane@acme.com" })
            },
        ]
    );
    let (headers, body) = fake.request(0);
    assert_eq!(headers[header::AUTHORIZATION], "Bearer test-key");
    assert_eq!(body["model"], "fake-model");
    assert_eq!(body["stream"], true);
    let tools: Vec<&str> = body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        tools,
        [
            "amplitude_activity",
            "salesforce_lookup",
            "chilipiper_slots",
            "chilipiper_book"
        ]
    );
    assert_eq!(
        body["tools"][3]["function"]["parameters"]["required"],
        json!(["email", "slot_id"])
    );
    assert!(brain.awaiting_tool_results());
}

#[tokio::test]
async fn the_configured_crm_tool_is_offered() {
    let (fake, url) = serve().await;
    fake.then(stream(vec![text("Hi!"), finish("stop")]));
    let config = LlmConfig {
        crm: voxguard::brain::CrmChoice::HubSpot,
        ..config(&url)
    };
    let mut brain = LlmBrain::new(config).unwrap();
    brain.push_user("hello");
    brain.respond().await.unwrap();
    assert_eq!(
        fake.request(0).1["tools"][1]["function"]["name"],
        "hubspot_lookup"
    );
}

#[tokio::test]
async fn parallel_tool_calls_interleaved_across_chunks_are_assembled_by_index() {
    let (fake, url) = serve().await;
    fake.then(stream(vec![
        tool(0, Some("call_1"), Some("amplitude_activity"), "{\"email\":"),
        tool(1, Some("call_2"), Some("salesforce_lookup"), "{\"email\":"),
        tool(1, None, None, "\"jane@acme.com\"}"),
        tool(0, None, None, "\"jane@acme.com\"}"),
        finish("tool_calls"),
    ]));
    let mut brain = LlmBrain::new(config(&url)).unwrap();
    brain.push_user("it's jane@acme.com");
    let actions = brain.respond().await.unwrap();
    let calls: Vec<(String, ToolName)> = actions
        .iter()
        .filter_map(|a| match a {
            Action::CallTool {
                call_id,
                name,
                args,
            } => {
                assert_eq!(args, &json!({ "email": "jane@acme.com" }));
                Some((call_id.clone(), *name))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        calls,
        [
            ("call_1".into(), ToolName::AmplitudeActivity),
            ("call_2".into(), ToolName::SalesforceLookup)
        ]
    );
}

#[tokio::test]
async fn tool_results_and_tool_errors_go_back_as_tool_messages() {
    let (fake, url) = serve().await;
    fake.then(slots_call_stream()).then(stream(vec![
        text("The calendar is down, sorry."),
        finish("stop"),
    ]));
    let mut brain = LlmBrain::new(config(&url)).unwrap();
    brain.push_user("book me");
    brain.respond().await.unwrap();
    brain.push_tool_result(
        "call_a",
        &ToolResultView::Failed {
            kind: ErrorKind::Timeout,
        },
    );
    assert!(!brain.awaiting_tool_results());
    let actions = brain.respond().await.unwrap();
    assert_eq!(actions, [Action::say("The calendar is down, sorry.")]);

    let messages = fake.request(1).1["messages"].as_array().unwrap().clone();
    let assistant = &messages[messages.len() - 2];
    assert_eq!(assistant["role"], "assistant");
    assert_eq!(assistant["tool_calls"][0]["id"], "call_a");
    assert_eq!(
        assistant["tool_calls"][0]["function"]["name"],
        "chilipiper_slots"
    );
    let tool_message = &messages[messages.len() - 1];
    assert_eq!(tool_message["role"], "tool");
    assert_eq!(tool_message["tool_call_id"], "call_a");
    let content: Value = serde_json::from_str(tool_message["content"].as_str().unwrap()).unwrap();
    assert_eq!(content["kind"], "timeout");
    assert!(content["error"].is_string());
}

#[tokio::test]
async fn a_non_streamed_json_answer_is_accepted_too() {
    let (fake, url) = serve().await;
    fake.then(Reply::Json(json!({ "choices": [{ "index": 0, "message": { "role": "assistant", "content": "Hello!" }, "finish_reason": "stop" }] })));
    let mut brain = LlmBrain::new(config(&url)).unwrap();
    brain.push_user("hi");
    assert_eq!(brain.respond().await.unwrap(), [Action::say("Hello!")]);
}

async fn failure_of(reply: Reply, attempt_timeout: Duration) -> CallError {
    let (fake, url) = serve().await;
    fake.then(reply);
    let mut brain = LlmBrain::new(LlmConfig {
        attempt_timeout,
        ..config(&url)
    })
    .unwrap();
    brain.push_user("hello");
    brain.respond().await.expect_err("the request fails")
}

#[tokio::test]
async fn http_statuses_are_classified() {
    let short = Duration::from_secs(5);
    let server_error = failure_of(
        Reply::Status {
            code: 500,
            retry_after: None,
            body: "boom",
        },
        short,
    )
    .await;
    assert_eq!(
        server_error,
        CallError::Status {
            code: 500,
            detail: Some("boom".into())
        }
    );
    assert!(server_error.is_transient());

    let unavailable = failure_of(
        Reply::Status {
            code: 503,
            retry_after: None,
            body: "",
        },
        short,
    )
    .await;
    assert!(matches!(
        unavailable,
        CallError::Status {
            code: 503,
            detail: None
        }
    ));

    let unauthorized = failure_of(
        Reply::Status {
            code: 401,
            retry_after: None,
            body: "bad key",
        },
        short,
    )
    .await;
    assert!(matches!(unauthorized, CallError::Status { code: 401, .. }));
    assert!(!unauthorized.is_transient());

    let limited = failure_of(
        Reply::Status {
            code: 429,
            retry_after: Some("2"),
            body: "slow down",
        },
        short,
    )
    .await;
    assert_eq!(
        limited,
        CallError::RateLimited {
            retry_after: Some(Duration::from_secs(2))
        }
    );
}

#[tokio::test]
async fn garbage_cut_streams_and_unknown_tools_are_decode_errors() {
    let short = Duration::from_secs(5);
    let garbage = failure_of(Reply::Raw("data: <html>oops</html>\n\n"), short).await;
    assert_eq!(garbage.kind(), ErrorKind::Decode);

    let cut = failure_of(
        Reply::Stream {
            events: vec![text("Let me")],
            chunk: 5,
            end: StreamEnd::Cut,
        },
        short,
    )
    .await;
    assert_eq!(cut.kind(), ErrorKind::Decode);

    let unknown_tool = failure_of(
        stream(vec![
            tool(0, Some("c1"), Some("drop_database"), "{}"),
            finish("tool_calls"),
        ]),
        short,
    )
    .await;
    assert_eq!(unknown_tool.kind(), ErrorKind::Decode);

    let broken_args = failure_of(
        stream(vec![
            tool(0, Some("c1"), Some("chilipiper_book"), "{\"slot_id\": "),
            finish("tool_calls"),
        ]),
        short,
    )
    .await;
    assert_eq!(broken_args.kind(), ErrorKind::Decode);
}

#[tokio::test]
async fn a_hanging_server_times_out_within_the_attempt_timeout() {
    let timeout = Duration::from_millis(300);
    for reply in [
        Reply::Hang,
        Reply::Stream {
            events: vec![text("Let me")],
            chunk: 4,
            end: StreamEnd::Hang,
        },
    ] {
        let started = Instant::now();
        let error = failure_of(reply, timeout).await;
        assert_eq!(error, CallError::Timeout { after: timeout });
        assert!(started.elapsed() < Duration::from_secs(2), "bounded wait");
    }
}

#[tokio::test]
async fn connection_failures_say_whether_the_request_was_sent() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = format!("http://{}/v1", listener.local_addr().unwrap());
    drop(listener);
    let mut brain = LlmBrain::new(config(&closed)).unwrap();
    brain.push_user("hello");
    assert!(matches!(
        brain.respond().await,
        Err(CallError::Connect { sent: false, .. })
    ));

    let broken = failure_of(
        Reply::Stream {
            events: vec![text("Let me")],
            chunk: 4,
            end: StreamEnd::Break,
        },
        Duration::from_secs(5),
    )
    .await;
    assert!(
        matches!(broken, CallError::Connect { sent: true, .. }),
        "{broken:?}"
    );
}

#[test]
fn the_api_key_never_shows_in_debug_output() {
    let config = LlmConfig {
        api_key: Some(Secret::new("sk-secret-123")),
        ..LlmConfig::new("http://x/v1", "m")
    };
    assert!(!format!("{config:?}").contains("sk-secret-123"));
    let missing =
        LlmConfig::new("http://x/v1", "m").with_api_key_from_env("VOXGUARD_TEST_SURELY_UNSET_KEY");
    assert!(matches!(missing, Err(LlmSetupError::MissingApiKey { .. })));
}

fn session(stage: Stage) -> BrainState {
    BrainState { stage }
}

#[tokio::test]
async fn the_hybrid_brain_falls_back_to_the_script_with_what_it_learned() {
    let (fake, url) = serve().await;
    fake.then(Reply::Status {
        code: 500,
        retry_after: None,
        body: "down",
    });
    let mut hybrid = HybridBrain::new(
        LlmBrain::new(config(&url)).unwrap(),
        ScriptedConfig::default(),
    );
    let hello = hybrid.on_start(&StartContext::default());
    assert!(
        matches!(hello.as_slice(), [Action::Say { .. }]),
        "greets without waiting for the model"
    );

    let turn = hybrid
        .on_user(
            "we're a law firm, about eight people",
            &session(Stage::Greeting),
        )
        .await;
    assert!(matches!(
        turn.fell_back,
        Some(CallError::Status { code: 500, .. })
    ));
    assert_eq!(hybrid.mode(), BrainMode::Scripted);
    assert!(
        turn.actions.iter().any(
            |a| matches!(a, Action::RecordSignals { signals } if signals.team_size == Some(8))
        )
    );
    assert!(turn.actions.contains(&Action::SetStage {
        stage: Stage::Discovery
    }));
    let said: String = turn
        .actions
        .iter()
        .filter_map(|a| {
            if let Action::Say { text } = a {
                Some(text.clone())
            } else {
                None
            }
        })
        .collect();
    assert!(
        said.contains("documents"),
        "the script asks for what is still missing: {said}"
    );

    let next = hybrid
        .on_user("twelve hundred docs a month", &session(Stage::Discovery))
        .await;
    assert_eq!(next.fell_back, None);
    assert_eq!(
        fake.request_count(),
        1,
        "once fallen back, the model is not asked again"
    );
}

#[tokio::test]
async fn an_unknown_llm_booking_is_followed_up_and_a_later_failure_closes_honestly() {
    let (fake, url) = serve().await;
    fake.then(stream(vec![
        tool(
            0,
            Some("book_1"),
            Some("chilipiper_book"),
            "{\"email\":\"jane@acme.com\",\"slot_id\":\"s2\"}",
        ),
        finish("tool_calls"),
    ]))
    .then(Reply::Hang);
    let llm = LlmBrain::new(LlmConfig {
        attempt_timeout: Duration::from_millis(300),
        ..config(&url)
    })
    .unwrap();
    let mut hybrid = HybridBrain::new(llm, ScriptedConfig::default());
    let turn = hybrid
        .on_user("book the Tuesday slot please", &session(Stage::Discovery))
        .await;
    assert!(turn.actions.contains(&Action::SetStage {
        stage: Stage::NextSteps
    }));

    let after = hybrid
        .on_tool_result(
            "book_1",
            ToolResultView::UnknownOutcome {
                kind: ErrorKind::Timeout,
            },
            &session(Stage::NextSteps),
        )
        .await;
    assert!(matches!(after.fell_back, Some(CallError::Timeout { .. })));
    assert!(after.actions.contains(&Action::FollowUp {
        follow_up: FollowUp::ConfirmBookingByEmail {
            email: "jane@acme.com".into(),
            slot_id: "s2".into()
        }
    }));
    assert!(
        !after
            .actions
            .iter()
            .any(|a| matches!(a, Action::CallTool { .. })),
        "never re-books"
    );
    assert_eq!(after.actions.last(), Some(&Action::EndCall));
}

#[tokio::test]
async fn caller_words_during_a_tool_call_wait_until_its_result_is_in() {
    let (fake, url) = serve().await;
    fake.then(slots_call_stream())
        .then(stream(vec![text("Tuesday or Wednesday?"), finish("stop")]));
    let mut brain = LlmBrain::new(config(&url)).unwrap();
    brain.push_user("book me");
    brain.respond().await.unwrap();
    brain.push_user("any afternoon is fine");
    assert_eq!(
        brain.respond().await.unwrap(),
        [],
        "nothing is sent while a tool result is outstanding"
    );
    assert_eq!(fake.request_count(), 1);

    brain.push_tool_result("someone-else", &ToolResultView::NotFound);
    brain.push_tool_result(
        "call_a",
        &ToolResultView::Ok {
            value: json!({ "slots": [] }),
        },
    );
    brain.respond().await.unwrap();
    let messages = fake.request(1).1["messages"].as_array().unwrap().clone();
    let roles: Vec<&str> = messages
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(
        roles,
        ["system", "user", "assistant", "tool", "user"],
        "result first, then the held words"
    );
    assert_eq!(messages[4]["content"], "any afternoon is fine");
}

#[tokio::test]
async fn a_saved_transcript_resumes_with_its_open_tool_calls() {
    let (fake, url) = serve().await;
    fake.then(slots_call_stream());
    let mut brain = LlmBrain::new(config(&url)).unwrap();
    brain.push_user("book me");
    brain.respond().await.unwrap();
    let saved = serde_json::to_string(brain.transcript()).unwrap();
    let resumed = LlmBrain::resume(config(&url), serde_json::from_str(&saved).unwrap()).unwrap();
    assert!(resumed.awaiting_tool_results());
    assert_eq!(resumed.transcript(), brain.transcript());
}

#[tokio::test]
async fn the_hybrid_brain_lets_a_healthy_model_lead_and_records_signals_alongside() {
    let (fake, url) = serve().await;
    fake.then(stream(vec![
        text("Great, and how many documents a month?"),
        finish("stop"),
    ]));
    let mut hybrid = HybridBrain::new(
        LlmBrain::new(config(&url)).unwrap(),
        ScriptedConfig::default(),
    );
    hybrid.on_start(&StartContext {
        caller_email: Some("jane@acme.com".into()),
        ..StartContext::default()
    });
    let turn = hybrid
        .on_user("a team of 12", &session(Stage::Greeting))
        .await;
    assert_eq!(turn.fell_back, None);
    assert_eq!(hybrid.mode(), BrainMode::Llm);
    assert!(
        matches!(&turn.actions[0], Action::RecordSignals { signals } if signals.team_size == Some(12))
    );
    assert_eq!(
        turn.actions[1],
        Action::SetStage {
            stage: Stage::Discovery
        }
    );
    assert_eq!(
        turn.actions[2],
        Action::say("Great, and how many documents a month?")
    );
    let messages = fake.request(0).1["messages"].as_array().unwrap().clone();
    assert!(
        messages.iter().any(
            |m| m["role"] == "system" && m["content"] == "The caller's email is jane@acme.com."
        )
    );
    assert_eq!(
        messages[messages.len() - 2]["role"],
        "assistant",
        "the scripted greeting is in the transcript"
    );
}
