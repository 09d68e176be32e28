//! Sessions led by the model (`[llm] enabled`): the model's words reach the
//! caller; a slow model is covered by the `llm` profile's filler ladder; a
//! failed model request is owned up to and the scripted policy carries on
//! from what was said; and the `llm` breaker makes later sessions fail fast.

mod llm_fake;

use std::sync::Arc;
use std::time::Duration;

use llm_fake::{Fake, Reply, finish, serve, stream, text, tool};
use tokio::sync::mpsc;
use tokio::time::Instant;
use voxguard::agent::Agent;
use voxguard::config::{Config, CredentialRef};
use voxguard::recovery::check_pairing;
use voxguard::resilience::BreakerState;
use voxguard::session::resume::{self, SessionSaver};
use voxguard::session::{AgentEvent, AgentState, CallerEvent, Session, SessionEnv, SessionReport};
use voxguard::testbed::crm::CrmSimulator;

struct Harness {
    fake: Arc<Fake>,
    env: SessionEnv,
    registry: Arc<voxguard::resilience::BreakerRegistry>,
    _sim: CrmSimulator,
    _key: tempfile_free::KeyFile,
}

/// A key file without a tempfile dependency: removed on drop.
mod tempfile_free {
    pub struct KeyFile(pub std::path::PathBuf);
    impl KeyFile {
        pub fn new(tag: &str) -> KeyFile {
            let path =
                std::env::temp_dir().join(format!("voxguard-llm-key-{tag}-{}", std::process::id()));
            std::fs::write(&path, "test-key\n").expect("key file is written");
            KeyFile(path)
        }
    }
    impl Drop for KeyFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

async fn harness(tag: &str) -> Harness {
    let (fake, url) = serve().await;
    let sim = CrmSimulator::start("127.0.0.1:0".parse().unwrap(), 7)
        .await
        .expect("simulator starts");
    let key = tempfile_free::KeyFile::new(tag);
    let mut config = Config::embedded_default().expect("embedded config");
    config.llm.enabled = true;
    config.llm.base_url = url;
    config.llm.api_key = Some(CredentialRef::File(key.0.clone()));
    let agent = Agent::from_config(&config, sim.crm_endpoints(), 3).expect("env builds");
    let env = agent.sessions;
    assert!(env.llm.is_some(), "the model is configured");
    Harness {
        fake,
        env,
        registry: agent.registry,
        _sim: sim,
        _key: key,
    }
}

/// What a caller heard after saying something, with offsets from then.
struct Heard {
    events: Vec<(Duration, AgentEvent)>,
}

impl Heard {
    fn speech(&self) -> Vec<(Duration, String, String)> {
        self.events
            .iter()
            .filter_map(|(at, e)| match e {
                AgentEvent::Speech { text, kind, .. } => {
                    Some((*at, kind.as_str().to_string(), text.clone()))
                }
                _ => None,
            })
            .collect()
    }
}

/// Greets, says `line`, collects everything up to the next `listening`, hangs up.
async fn one_turn(env: &SessionEnv, line: &str) -> (Heard, SessionReport) {
    let (out_tx, mut out_rx) = mpsc::channel(256);
    let (in_tx, in_rx) = mpsc::channel(16);
    let session = tokio::spawn(Session::new(env.clone(), out_tx, 5).run(in_rx));
    // The greeting comes at once, without waiting for the model.
    loop {
        let event = tokio::time::timeout(Duration::from_secs(1), out_rx.recv())
            .await
            .expect("the agent greets at once")
            .expect("the session runs");
        if matches!(&event, AgentEvent::Speech { .. }) {
            break;
        }
    }
    let said_at = Instant::now();
    in_tx
        .send(CallerEvent::User { text: line.into() })
        .await
        .unwrap();
    let mut events = Vec::new();
    loop {
        let event = tokio::time::timeout(Duration::from_secs(10), out_rx.recv())
            .await
            .expect("the agent answers within 10 s")
            .expect("the session runs");
        let done = matches!(&event, AgentEvent::State { agent_state, .. } if *agent_state == AgentState::Listening);
        events.push((said_at.elapsed(), event));
        if done {
            break;
        }
    }
    in_tx.send(CallerEvent::Hangup).await.unwrap();
    let report = tokio::time::timeout(Duration::from_secs(5), session)
        .await
        .expect("the session ends")
        .unwrap();
    (Heard { events }, report)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_model_leads_and_its_words_reach_the_caller() {
    let h = harness("healthy").await;
    h.fake.then(stream(vec![
        text("Eight people, got it. "),
        text("Roughly how many documents do you process a month?"),
        finish("stop"),
    ]));
    let (heard, report) = one_turn(&h.env, "we're a law firm, about eight people").await;

    let speech = heard.speech();
    assert!(
        speech.iter().any(|(_, kind, text)| kind == "answer"
            && text == "Eight people, got it. Roughly how many documents do you process a month?"),
        "the model's answer is spoken as it wrote it: {speech:?}"
    );
    assert!(
        speech.iter().all(|(_, kind, _)| kind == "answer"),
        "a fast model needs no filler and nothing failed: {speech:?}"
    );
    let (_, request) = h.fake.request(0);
    let messages = request["messages"].to_string();
    assert!(
        messages.contains("about eight people"),
        "the caller's words go to the model: {messages}"
    );
    assert!(
        request["tools"].as_array().is_some_and(|t| !t.is_empty()),
        "the CRM tools are offered"
    );
    assert_eq!(report.state.signals.team_size, Some(8));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_tool_call_runs_through_the_recovery_layer_and_its_result_goes_back() {
    let h = harness("tools").await;
    h.fake
        .then(stream(vec![
            text("Let me look you up."),
            tool(
                0,
                Some("call_1"),
                Some("salesforce_lookup"),
                "{\"email\":\"chloe.okafor@northwind.example\"}",
            ),
            finish("tool_calls"),
        ]))
        .then(stream(vec![text("Found you, Chloe."), finish("stop")]));
    let (heard, report) = one_turn(&h.env, "it's chloe.okafor@northwind.example").await;

    assert!(
        heard.events.iter().any(|(_, e)| matches!(e,
            AgentEvent::ToolFinished(finished) if finished.tool == "salesforce_lookup" && finished.outcome == "ok")),
        "the model's tool call ran against the CRM: {:?}",
        heard.events
    );
    assert!(
        heard
            .speech()
            .iter()
            .any(|(_, _, text)| text == "Found you, Chloe."),
        "the model answered after seeing the result"
    );
    assert_eq!(h.fake.request_count(), 2);
    let (_, second) = h.fake.request(1);
    let tool_message = second["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["role"] == "tool")
        .expect("the tool result goes back as a tool message")
        .clone();
    assert_eq!(tool_message["tool_call_id"], "call_1");
    assert!(
        tool_message["content"].to_string().contains("Northwind"),
        "{tool_message}"
    );
    assert_eq!(check_pairing(&report.state.transcript), Ok(()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_model_gets_a_filler_in_time_then_an_honest_line_and_the_script_carries_on() {
    let h = harness("hang").await;
    h.fake.then(Reply::Hang).then(Reply::Hang).then(Reply::Hang);
    let voice = Config::embedded_default().unwrap();
    let budget = voice.profile(&voice.llm.profile).unwrap().budget;
    let (heard, report) = one_turn(&h.env, "we're a law firm, about eight people").await;

    let speech = heard.speech();
    let (first_at, first_kind, _) = speech.first().cloned().expect("the caller hears something");
    assert_eq!(first_kind, "filler", "{speech:?}");
    assert!(
        first_at <= Duration::from_millis(750),
        "the first words come within 750 ms, not {first_at:?}"
    );
    let failure = speech
        .iter()
        .position(|(_, kind, _)| kind == "failure")
        .expect("the failure is owned up to");
    let (failed_at, _, _) = &speech[failure];
    assert!(
        *failed_at <= budget + Duration::from_millis(300),
        "the model's budget bounds the wait: {failed_at:?} > {budget:?}"
    );
    let after: Vec<&str> = speech[failure + 1..]
        .iter()
        .filter(|(_, kind, _)| kind == "answer")
        .map(|(_, _, text)| text.as_str())
        .collect();
    assert!(
        after.iter().any(|t| t.contains("documents")),
        "the script asks for what is still missing: {speech:?}"
    );
    assert!(
        speech
            .iter()
            .all(|(_, _, text)| !text.to_lowercase().contains("try again")),
        "nothing promises a retry that will not come: {speech:?}"
    );
    assert_eq!(
        report.state.signals.team_size,
        Some(8),
        "what the caller said is kept"
    );
    assert_eq!(check_pairing(&report.state.transcript), Ok(()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_model_opens_the_llm_breaker_and_later_sessions_fail_fast() {
    let h = harness("breaker").await;
    // Every request fails; the fake answers 500 to anything not scripted.
    let mut sessions = 0;
    while h
        .registry
        .get("llm")
        .expect("the llm breaker is registered")
        .state()
        != BreakerState::Open
    {
        sessions += 1;
        assert!(sessions <= 10, "the llm breaker never opened");
        let (heard, _) = one_turn(&h.env, "about eight people").await;
        assert!(
            heard.speech().iter().any(|(_, kind, _)| kind == "failure"),
            "every failed model turn is owned up to"
        );
    }
    let requests = h.fake.request_count();
    let (heard, report) = one_turn(&h.env, "about eight people").await;
    assert_eq!(
        h.fake.request_count(),
        requests,
        "an open breaker sends nothing to the model"
    );
    let speech = heard.speech();
    let (failed_at, _, _) = speech
        .iter()
        .find(|(_, kind, _)| kind == "failure")
        .cloned()
        .expect("the caller hears the failure");
    assert!(
        failed_at < Duration::from_millis(300),
        "an open breaker fails fast: {failed_at:?}"
    );
    assert!(
        speech
            .iter()
            .any(|(_, kind, text)| kind == "answer" && text.contains("documents")),
        "{speech:?}"
    );
    assert_eq!(report.state.signals.team_size, Some(8));
}

/// Events up to and including the next `listening` state.
async fn until_listening(out_rx: &mut mpsc::Receiver<AgentEvent>) -> Vec<AgentEvent> {
    let mut events = Vec::new();
    loop {
        let event = tokio::time::timeout(Duration::from_secs(10), out_rx.recv())
            .await
            .expect("the agent gets back to listening within 10 s")
            .expect("the session runs");
        let done = matches!(&event, AgentEvent::State { agent_state, .. } if *agent_state == AgentState::Listening);
        events.push(event);
        if done {
            return events;
        }
    }
}

fn messages_with(request: &serde_json::Value, role: &str, needle: &str) -> usize {
    request["messages"]
        .as_array()
        .expect("the request has messages")
        .iter()
        .filter(|m| {
            m["role"] == role
                && m["content"]
                    .as_str()
                    .is_some_and(|content| content.contains(needle))
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_the_model_was_leading_resumes_with_the_model_and_its_history() {
    let h = harness("resume").await;
    let room = "room-llm-resume";
    let ttl = Duration::from_secs(60);
    h.fake.then(stream(vec![
        text("Eight people, got it. How many documents a month?"),
        finish("stop"),
    ]));

    // The first session answers one turn through the model, then dies.
    let (out_tx, mut out_rx) = mpsc::channel(256);
    let (in_tx, in_rx) = mpsc::channel(16);
    let first = tokio::spawn(
        Session::new(h.env.clone(), out_tx, 5)
            .saving_to(SessionSaver::start(h.env.fleet.clone(), room, ttl))
            .run(in_rx),
    );
    until_listening(&mut out_rx).await;
    in_tx
        .send(CallerEvent::User {
            text: "we're a law firm, about eight people".into(),
        })
        .await
        .unwrap();
    until_listening(&mut out_rx).await;
    let deadline = Instant::now() + Duration::from_secs(2);
    let saved = loop {
        match resume::load(&h.env.fleet, room).await {
            Some(saved) if saved.turns == 1 => break saved,
            _ if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(10)).await,
            other => panic!("the first turn was not saved: {other:?}"),
        }
    };
    first.abort();
    let history = saved.model.clone().expect("the model's history is saved");
    assert!(
        history
            .iter()
            .any(|m| m.content.as_deref()
                == Some("Eight people, got it. How many documents a month?")),
        "{history:?}"
    );

    // The next session picks the call up with the model leading again.
    h.fake.then(stream(vec![
        text("Twelve hundred a month, noted."),
        finish("stop"),
    ]));
    let (out_tx, mut out_rx) = mpsc::channel(256);
    let (in_tx, in_rx) = mpsc::channel(16);
    let second = tokio::spawn(Session::resume(h.env.clone(), out_tx, 6, saved).run(in_rx));
    until_listening(&mut out_rx).await;
    in_tx
        .send(CallerEvent::User {
            text: "twelve hundred docs a month".into(),
        })
        .await
        .unwrap();
    let heard = until_listening(&mut out_rx).await;
    in_tx.send(CallerEvent::Hangup).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), second)
        .await
        .expect("the resumed session ends")
        .unwrap();

    assert!(
        heard
            .iter()
            .any(|e| matches!(e, AgentEvent::Speech { text, kind, .. }
            if *kind == voxguard::recovery::SpeechKind::Answer && text == "Twelve hundred a month, noted.")),
        "the model answers the resumed call: {heard:?}"
    );
    assert_eq!(h.fake.request_count(), 2, "one model request per turn");
    let (_, request) = h.fake.request(1);
    assert_eq!(
        messages_with(&request, "user", "about eight people"),
        1,
        "{request}"
    );
    assert_eq!(
        messages_with(&request, "assistant", "How many documents a month?"),
        1,
        "{request}"
    );
    assert_eq!(
        messages_with(&request, "user", "twelve hundred docs"),
        1,
        "{request}"
    );
}
