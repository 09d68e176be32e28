//! The WebSocket JSON protocol of `voxguard dev` (`/ws`), as the README
//! documents it, against the whole embedded stack: dev server, loopback
//! LiveKit dispatcher, worker, session, scripted brain, Guard and real HTTP
//! to the CRM simulator, with faults set through `/api/faults`.

use std::time::{Duration, Instant};

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures_util::{SinkExt, Stream, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::Frame as WireFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};
use voxguard::config::Config;
use voxguard::dev::{self, DevStack};
use voxguard::testbed::crm::fixtures::SalesforcePresence;

/// The fixture the README tells newcomers to use.
const README_EMAIL: &str = "chloe.okafor@northwind.example";
/// The seed `voxguard dev` runs with, so the README's fixture exists.
const DEV_SEED: u64 = 42;
/// Voice target: the caller hears something within this long of a tool
/// starting, whatever the service does.
const FIRST_SPEECH_BUDGET: Duration = Duration::from_millis(750);
/// Voice target: answer or failure phrase within this long.
const RESOLUTION_BUDGET: Duration = Duration::from_millis(3500);
const WAIT: Duration = Duration::from_secs(10);

async fn dev_stack() -> DevStack {
    dev_stack_with(|_| {}).await
}

async fn dev_stack_with(adjust: impl FnOnce(&mut Config)) -> DevStack {
    let mut config = Config::embedded_default().expect("embedded config");
    adjust(&mut config);
    dev::start(&config, "127.0.0.1:0".parse().unwrap(), DEV_SEED)
        .await
        .expect("dev stack starts")
}

/// A frame from the agent and when it arrived.
#[derive(Clone)]
struct Frame {
    at: Instant,
    json: Value,
}

impl Frame {
    fn is(&self, kind: &str) -> bool {
        self.json["type"] == kind
    }

    fn is_speech(&self, kind: &str) -> bool {
        self.is("speech") && self.json["kind"] == kind
    }

    fn str(&self, field: &str) -> &str {
        self.json[field].as_str().unwrap_or_default()
    }
}

/// One browser-like call on `/ws`.
struct Call {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    heard: Vec<Frame>,
}

impl Call {
    async fn open(stack: &DevStack) -> Call {
        let url = format!("ws://{}/ws", stack.addr);
        let (ws, _) = connect_async(url.as_str()).await.expect("ws connects");
        let mut call = Call {
            ws,
            heard: Vec::new(),
        };
        // The agent greets first; the call is ready once it listens.
        let greeting = call.until(|f| f.is("speech")).await;
        assert_eq!(greeting.json["kind"], "answer", "{}", greeting.json);
        assert!(
            greeting.str("text").starts_with("Hi there"),
            "{}",
            greeting.json
        );
        call
    }

    async fn send(&mut self, frame: Value) {
        self.send_raw(&frame.to_string()).await;
    }

    async fn send_raw(&mut self, text: &str) {
        self.ws
            .send(Message::Text(text.to_owned().into()))
            .await
            .expect("frame sent");
    }

    async fn say(&mut self, text: &str) {
        self.send(json!({ "type": "user", "text": text })).await;
    }

    /// The next frame from the agent; `None` once the socket closed.
    async fn next(&mut self) -> Option<&Frame> {
        loop {
            let message = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("no frame within {WAIT:?}; heard {}", self.log()));
            match message {
                Some(Ok(Message::Text(text))) => {
                    let json: Value = serde_json::from_str(text.as_str())
                        .unwrap_or_else(|e| panic!("agent frame is not JSON ({e}): {text}"));
                    assert!(json["type"].is_string(), "untagged frame {json}");
                    self.heard.push(Frame {
                        at: Instant::now(),
                        json,
                    });
                    return self.heard.last();
                }
                Some(Ok(Message::Close(_))) | None => return None,
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(other)) => panic!("unexpected non-text frame {other:?}"),
                Some(Err(err)) => panic!("socket error {err}; heard {}", self.log()),
            }
        }
    }

    /// Read until a frame matches and return it.
    async fn until(&mut self, wanted: impl Fn(&Frame) -> bool) -> &Frame {
        loop {
            let found = match self.next().await {
                Some(frame) => wanted(frame),
                None => panic!("socket closed; heard {}", self.log()),
            };
            if found {
                return self.heard.last().expect("just pushed");
            }
        }
    }

    /// Read until the agent listens again; returns the frames of that turn.
    async fn turn(&mut self) -> Vec<Frame> {
        let start = self.heard.len();
        self.until(|f| f.is("state") && f.json["agent_state"] == "listening")
            .await;
        self.heard[start..].to_vec()
    }

    fn log(&self) -> String {
        self.heard
            .iter()
            .map(|f| f.json.to_string())
            .collect::<Vec<_>>()
            .join("\n  ")
    }
}

async fn set_fault(stack: &DevStack, service: &str, fault: &str) -> reqwest::Response {
    reqwest::Client::new()
        .put(format!("http://{}/api/faults", stack.addr))
        .json(&json!({ "service": service, "fault": fault }))
        .send()
        .await
        .expect("fault API answers")
}

async fn service_card(stack: &DevStack, service: &str) -> Value {
    let cards: Value = reqwest::get(format!("http://{}/api/services", stack.addr))
        .await
        .expect("services API answers")
        .json()
        .await
        .expect("services API returns JSON");
    cards
        .as_array()
        .expect("a list of cards")
        .iter()
        .find(|c| c["service"] == service)
        .cloned()
        .unwrap_or_else(|| panic!("no card for {service}: {cards}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_fixture_email_is_a_known_trial_user_of_the_dev_stack() {
    let stack = dev_stack().await;
    let person = stack
        .state
        .sim
        .fixtures()
        .person_by_email(README_EMAIL)
        .expect("README's example email is a simulator fixture");
    assert!(person.activity.is_some(), "has Amplitude activity");
    assert_ne!(person.salesforce, SalesforcePresence::Absent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_utterance_gets_an_answer_and_state_frames() {
    let stack = dev_stack().await;
    let mut call = Call::open(&stack).await;

    call.say("Hi, we're a law firm, about eight people").await;
    let turn = call.turn().await;

    let thinking = turn
        .iter()
        .position(|f| f.is("state") && f.json["agent_state"] == "thinking")
        .expect("the agent thinks before it answers");
    let answers: Vec<&str> = turn
        .iter()
        .filter(|f| f.is_speech("answer"))
        .map(|f| f.str("text"))
        .collect();
    assert!(
        answers.iter().any(|a| a.contains("team of 8")),
        "the answer acknowledges the team size: {answers:?}"
    );
    assert!(
        answers.iter().any(|a| a.ends_with('?')),
        "the agent asks the next discovery question: {answers:?}"
    );
    let first_answer = turn.iter().position(|f| f.is_speech("answer")).unwrap();
    assert!(thinking < first_answer);
    for speech in turn.iter().filter(|f| f.is("speech")) {
        assert_eq!(speech.json["interruptible"], true, "{}", speech.json);
    }
    let listening = turn.last().unwrap();
    assert_eq!(listening.json["stage"], "DISCOVERY", "{}", listening.json);
    assert!(turn.iter().all(|f| !f.is("tool_started")), "{}", call.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fixture_email_runs_the_lookups_as_paired_tool_events() {
    let stack = dev_stack().await;
    let mut call = Call::open(&stack).await;

    call.say(&format!("sure, it's {README_EMAIL}")).await;
    let turn = call.turn().await;

    let started: Vec<&Frame> = turn.iter().filter(|f| f.is("tool_started")).collect();
    let finished: Vec<&Frame> = turn.iter().filter(|f| f.is("tool_finished")).collect();
    let tools: Vec<(&str, &str)> = started
        .iter()
        .map(|f| (f.str("tool"), f.str("service")))
        .collect();
    assert_eq!(
        tools,
        [
            ("amplitude_activity", "amplitude"),
            ("salesforce_lookup", "salesforce")
        ]
    );
    assert_eq!(started.len(), finished.len());
    for (start, finish) in started.iter().zip(&finished) {
        assert!(!start.str("call_id").is_empty());
        assert_eq!(start.str("call_id"), finish.str("call_id"));
        assert_eq!(start.str("tool"), finish.str("tool"));
        assert_eq!(finish.str("outcome"), "ok", "{}", finish.json);
        assert!(finish.json.get("error").is_none(), "{}", finish.json);
        let elapsed = finish.json["elapsed_ms"].as_f64().expect("elapsed_ms");
        assert!(elapsed > 0.0 && elapsed < 3500.0, "{}", finish.json);
        assert!(start.at <= finish.at);
    }
    // The first call is finished before the second starts: tools run in turn.
    let order: Vec<&str> = turn
        .iter()
        .filter(|f| f.is("tool_started") || f.is("tool_finished"))
        .map(|f| f.str("type"))
        .collect();
    assert_eq!(
        order,
        [
            "tool_started",
            "tool_finished",
            "tool_started",
            "tool_finished"
        ]
    );
    assert!(
        turn.iter()
            .all(|f| !f.is_speech("failure") && !f.is_speech("filler")),
        "a healthy lookup needs no filler or apology: {}",
        call.log()
    );
    // The lookup really went over HTTP to the simulator's Salesforce.
    let queries = stack.state.sim.requests_to("salesforce.query");
    assert!(!queries.is_empty());
    assert!(queries.iter().all(|q| q.fault == "none"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_salesforce_gets_a_filler_within_the_voice_budget_then_a_failure_phrase() {
    let stack = dev_stack().await;
    let response = set_fault(&stack, "salesforce", "hang").await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({ "service": "salesforce", "fault": "hang" }));
    assert_eq!(service_card(&stack, "salesforce").await["fault"], "hang");
    let mut call = Call::open(&stack).await;

    call.say(&format!("sure, it's {README_EMAIL}")).await;
    let turn = call.turn().await;

    let at = |wanted: &dyn Fn(&Frame) -> bool| {
        turn.iter()
            .position(wanted)
            .unwrap_or_else(|| panic!("missing frame in turn:\n  {}", call.log()))
    };
    let started = at(&|f| f.is("tool_started") && f.str("service") == "salesforce");
    let filler = at(&|f| f.is_speech("filler"));
    let failure = at(&|f| f.is_speech("failure"));
    let finished = at(&|f| f.is("tool_finished") && f.str("tool") == "salesforce_lookup");
    assert!(started < filler && filler < failure, "{}", call.log());

    let first_speech = turn[filler].at - turn[started].at;
    assert!(
        first_speech <= FIRST_SPEECH_BUDGET,
        "first speech {first_speech:?} after the tool started"
    );
    let resolution = turn[failure].at - turn[started].at;
    assert!(
        resolution <= RESOLUTION_BUDGET,
        "failure phrase {resolution:?} after the tool started"
    );
    assert!(
        !turn[filler].str("text").is_empty()
            && turn[filler].str("text") != turn[failure].str("text")
    );
    let outcome = &turn[finished].json;
    assert_eq!(outcome["outcome"], "fallback", "{outcome}");
    assert!(
        outcome["error"].as_str().is_some_and(|e| !e.is_empty()),
        "a failure carries its error: {outcome}"
    );
    // The service card shows how long the caller waited, not the 0 ms the
    // simulator logs for a request it never answers.
    let card = service_card(&stack, "salesforce").await;
    assert_eq!(card["calls"], 1, "{card}");
    let sample = &card["recent_latencies_ms"][0];
    assert_eq!(sample["outcome"], "fallback", "{card}");
    assert_eq!(sample["ok"], false, "{card}");
    let waited = sample["ms"].as_f64().unwrap();
    assert!((1000.0..3500.0).contains(&waited), "{card}");
    assert!(card["requests"].as_u64().unwrap() >= 2, "retried: {card}");
    // Honest: nothing claims the record was found.
    assert!(
        turn.iter()
            .filter(|f| f.is("tool_finished"))
            .all(|f| f.str("tool") != "salesforce_lookup" || f.str("outcome") != "ok")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupt_during_a_slow_tool_cancels_it_and_the_call_goes_on() {
    let stack = dev_stack().await;
    assert_eq!(set_fault(&stack, "salesforce", "hang").await.status(), 200);
    let mut call = Call::open(&stack).await;

    call.say(&format!("sure, it's {README_EMAIL}")).await;
    let call_id = call
        .until(|f| f.is("tool_started") && f.str("service") == "salesforce")
        .await
        .str("call_id")
        .to_owned();
    // Let the call be clearly in flight (the filler has been spoken).
    call.until(|f| f.is_speech("filler")).await;
    let interrupted = Instant::now();
    call.send(json!({ "type": "interrupt" })).await;
    let finished = call.until(|f| f.is("tool_finished")).await;

    assert_eq!(finished.str("call_id"), call_id);
    assert_eq!(finished.str("outcome"), "cancelled", "{}", finished.json);
    let reacted = finished.at - interrupted;
    assert!(
        reacted < Duration::from_millis(500),
        "the interrupt took {reacted:?} to cancel the call"
    );
    call.turn().await;

    call.say("we process twelve hundred docs a month").await;
    let turn = call.turn().await;
    assert!(
        turn.iter()
            .any(|f| f.is_speech("answer") && f.str("text").contains("1200 documents a month")),
        "the agent keeps listening after a barge-in: {}",
        call.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn speaking_during_a_slow_tool_is_a_barge_in_and_the_words_are_answered_next() {
    let stack = dev_stack().await;
    assert_eq!(set_fault(&stack, "salesforce", "hang").await.status(), 200);
    let mut call = Call::open(&stack).await;

    call.say(&format!("sure, it's {README_EMAIL}")).await;
    call.until(|f| f.is("tool_started") && f.str("service") == "salesforce")
        .await;
    call.say("we process twelve hundred docs a month").await;
    let finished = call.until(|f| f.is("tool_finished")).await;
    assert_eq!(finished.str("outcome"), "cancelled", "{}", finished.json);

    let mut answered = false;
    for _ in 0..2 {
        let turn = call.turn().await;
        answered |= turn
            .iter()
            .any(|f| f.is_speech("answer") && f.str("text").contains("1200 documents a month"));
    }
    assert!(
        answered,
        "the words said over the tool are answered: {}",
        call.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_frame_gets_an_error_showing_a_valid_one_and_the_call_goes_on() {
    let stack = dev_stack().await;
    let mut call = Call::open(&stack).await;

    for bad in [
        "not json at all",
        r#"{"type":"shout","text":"hello"}"#,
        r#"{"type":"user"}"#,
    ] {
        call.send_raw(bad).await;
        let error = call.until(|f| f.is("error")).await;
        let message = error.str("message");
        assert!(message.starts_with("invalid frame"), "{bad}: {message}");
        assert!(
            message.contains(r#"{"type":"user","text":"...""#),
            "the error shows a valid frame: {message}"
        );
    }

    call.say("we use HubSpot").await;
    let turn = call.turn().await;
    assert!(
        turn.iter()
            .any(|f| f.is_speech("answer") && f.str("text").contains("HubSpot works well")),
        "{}",
        call.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_binary_frame_gets_an_error_and_the_call_goes_on() {
    let stack = dev_stack().await;
    let mut call = Call::open(&stack).await;

    call.ws
        .send(Message::Binary(vec![1u8, 2, 3].into()))
        .await
        .unwrap();
    let error = call.until(|f| f.is("error")).await;
    assert!(
        error.str("message").contains("text frames"),
        "{}",
        error.json
    );

    call.say("about eight people").await;
    let turn = call.turn().await;
    assert!(turn.iter().any(|f| f.is_speech("answer")), "{}", call.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hangup_ends_the_session_and_closes_the_socket() {
    let stack = dev_stack().await;
    let mut call = Call::open(&stack).await;

    call.send(json!({ "type": "hangup" })).await;
    let ended = call.until(|f| f.is("session_ended")).await;
    assert_eq!(ended.str("reason"), "caller_left");

    assert!(
        call.next().await.is_none(),
        "nothing follows session_ended: {}",
        call.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saying_goodbye_ends_the_session_from_the_agent_side() {
    let stack = dev_stack().await;
    let mut call = Call::open(&stack).await;

    call.say("that's all, goodbye").await;
    let ended = call.until(|f| f.is("session_ended")).await;
    assert_eq!(ended.str("reason"), "agent_closed");
    let farewell = call
        .heard
        .iter()
        .rev()
        .find(|f| f.is_speech("answer"))
        .expect("the agent says goodbye");
    assert!(
        farewell.str("text").starts_with("Thanks"),
        "{}",
        farewell.json
    );
    assert!(call.next().await.is_none());
}

/// Opens `/ws` with an `Origin` header, as a browser page would.
async fn upgrade_from(
    stack: &DevStack,
    origin: &str,
) -> Result<WebSocketStream<MaybeTlsStream<TcpStream>>, WsError> {
    let mut request = format!("ws://{}/ws", stack.addr)
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("Origin", origin.parse().unwrap());
    connect_async(request).await.map(|(ws, _)| ws)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_from_another_site_cannot_open_a_call() {
    let stack = dev_stack().await;

    let refused = upgrade_from(&stack, "https://evil.example").await;

    let Err(WsError::Http(response)) = refused else {
        panic!("a foreign origin was not refused at the handshake");
    };
    assert_eq!(response.status(), 403);
    let body = String::from_utf8_lossy(response.body().as_deref().unwrap_or_default());
    assert!(
        body.contains(&format!(
            "origin https://evil.example is not this dev server (http://{})",
            stack.addr
        )),
        "{body}"
    );
    assert!(
        stack
            .state
            .loopback
            .records()
            .availability_latencies
            .is_empty(),
        "no job was dispatched for the refused socket"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dev_page_itself_opens_calls_under_every_loopback_name() {
    let stack = dev_stack().await;
    let port = stack.addr.port();

    for origin in [
        format!("http://127.0.0.1:{port}"),
        format!("http://localhost:{port}"),
    ] {
        let mut ws = upgrade_from(&stack, &origin)
            .await
            .unwrap_or_else(|e| panic!("{origin} refused: {e}"));
        let first = tokio::time::timeout(WAIT, ws.next()).await.unwrap();
        assert!(
            matches!(first, Some(Ok(Message::Text(_)))),
            "{origin}: {first:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_under_a_foreign_host_name_is_refused_and_changes_nothing() {
    let stack = dev_stack().await;
    let client = reqwest::Client::new();

    let response = client
        .put(format!("http://{}/api/faults", stack.addr))
        .header("Host", format!("attacker.example:{}", stack.addr.port()))
        .json(&json!({ "service": "salesforce", "fault": "outage" }))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 403);
    let body = response.text().await.unwrap();
    assert!(
        body.contains(&format!(
            "host attacker.example:{} is not this dev server (http://{})",
            stack.addr.port(),
            stack.addr
        )),
        "{body}"
    );
    assert!(body.contains("DNS rebinding"), "{body}");
    assert_ne!(service_card(&stack, "salesforce").await["fault"], "outage");
    let page = client
        .get(format!("http://{}/", stack.addr))
        .header("Host", "attacker.example")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 403);
}

/// Reads past the agent's frames until the server closes the socket; its
/// close code and reason. A dropped connection fails the test.
async fn close_of(
    ws: &mut (impl Stream<Item = Result<Message, WsError>> + Unpin),
) -> (u16, String) {
    loop {
        let message = tokio::time::timeout(WAIT, ws.next())
            .await
            .unwrap_or_else(|_| panic!("the socket was not closed within {WAIT:?}"));
        match message {
            Some(Ok(Message::Close(Some(frame)))) => {
                return (u16::from(frame.code), frame.reason.to_string());
            }
            Some(Ok(Message::Close(None))) => panic!("closed without a code"),
            Some(Ok(_)) => {}
            Some(Err(err)) => panic!("the connection failed instead of closing: {err}"),
            None => panic!("the connection ended without a close frame"),
        }
    }
}

async fn connect(stack: &DevStack) -> WebSocketStream<MaybeTlsStream<TcpStream>> {
    let url = format!("ws://{}/ws", stack.addr);
    connect_async(url.as_str()).await.expect("ws connects").0
}

/// The most memory this process has held, in bytes.
fn peak_rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("procfs");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/self/status");
    kib * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_over_16_kib_closes_the_call_with_1009_and_a_reason() {
    let stack = dev_stack().await;
    let mut call = Call::open(&stack).await;

    call.send_raw(&"x".repeat(20 * 1024)).await;

    let (code, reason) = close_of(&mut call.ws).await;
    assert_eq!(code, 1009, "{reason}");
    assert!(reason.contains("16 KiB"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_60_mib_message_in_small_fragments_is_refused_while_it_is_read() {
    const MESSAGE: usize = 60 * 1024 * 1024;
    const FRAGMENT: usize = 8 * 1024;
    let stack = dev_stack().await;
    let call = Call::open(&stack).await;
    let peak_before = peak_rss_bytes();
    let (mut sink, mut stream) = call.ws.split();
    let sent = Arc::new(AtomicUsize::new(0));

    let sending = tokio::spawn({
        let sent = sent.clone();
        async move {
            let fragments = MESSAGE / FRAGMENT;
            for i in 0..fragments {
                let opcode = if i == 0 { Data::Text } else { Data::Continue };
                let last = i + 1 == fragments;
                let frame = WireFrame::message(vec![b'x'; FRAGMENT], OpCode::Data(opcode), last);
                if sink.send(Message::Frame(frame)).await.is_err() {
                    return;
                }
                sent.fetch_add(FRAGMENT, Ordering::Relaxed);
            }
        }
    });
    let (code, reason) = close_of(&mut stream).await;
    sending.abort();

    assert_eq!(code, 1009, "{reason}");
    assert!(
        sent.load(Ordering::Relaxed) < MESSAGE,
        "the server read the whole message before refusing it"
    );
    let growth = peak_rss_bytes().saturating_sub(peak_before);
    eprintln!(
        "peak RSS {peak_before} -> {} bytes around a refused {MESSAGE}-byte message",
        peak_before + growth
    );
    assert!(
        growth < (MESSAGE / 4) as u64,
        "peak RSS grew by {growth} bytes for a refused {MESSAGE}-byte message"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_text_frame_that_is_not_utf8_closes_the_call_with_1007() {
    let stack = dev_stack().await;
    let mut call = Call::open(&stack).await;

    let frame = WireFrame::message(vec![b'{', 0xC3, 0x28, b'}'], OpCode::Data(Data::Text), true);
    call.ws.send(Message::Frame(frame)).await.unwrap();

    let (code, reason) = close_of(&mut call.ws).await;
    assert_eq!(code, 1007, "{reason}");
    assert!(reason.contains("UTF-8"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_that_sends_nothing_is_closed_after_the_first_frame_timeout() {
    let timeout = Duration::from_secs(1);
    let stack = dev_stack_with(|c| c.dev.first_frame_timeout = timeout).await;
    let opened = Instant::now();
    let mut silent = connect(&stack).await;
    let mut talking = Call::open(&stack).await;
    talking.say("about eight people").await;

    let (code, reason) = close_of(&mut silent).await;
    let waited = opened.elapsed();

    assert_eq!(code, 1008, "{reason}");
    assert!(
        reason.contains("no frame from the caller within 1s"),
        "{reason}"
    );
    assert!(
        waited >= timeout && waited < timeout * 4,
        "closed {waited:?} after opening"
    );
    // The timeout is for the first frame only: a caller who spoke may pause.
    talking.turn().await;
    tokio::time::sleep(timeout + Duration::from_millis(500)).await;
    talking.say("we use HubSpot").await;
    let turn = talking.turn().await;
    assert!(
        turn.iter().any(|f| f.is_speech("answer")),
        "{}",
        talking.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_may_hold_only_its_share_of_call_sockets() {
    let stack = dev_stack_with(|c| c.dev.max_connections_per_address = 2).await;
    let mut first = Call::open(&stack).await;
    let _second = Call::open(&stack).await;

    let mut third = connect(&stack).await;
    let (code, reason) = close_of(&mut third).await;

    assert_eq!(code, 1008, "{reason}");
    assert!(
        reason.contains("2 calls already open from 127.0.0.1"),
        "{reason}"
    );
    first.send(json!({ "type": "hangup" })).await;
    while first.next().await.is_some() {}
    // The hung-up call's place frees as its handler ends.
    let deadline = Instant::now() + WAIT;
    loop {
        let mut ws = connect(&stack).await;
        match tokio::time::timeout(WAIT, ws.next()).await.unwrap() {
            Some(Ok(Message::Text(_))) => break,
            other => assert!(Instant::now() < deadline, "still refused: {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_with_every_session_slot_taken_gets_an_error_frame_then_1013() {
    let stack = dev_stack_with(|c| c.worker.max_sessions = 1).await;
    let _busy = Call::open(&stack).await;

    let mut refused = connect(&stack).await;
    let first = tokio::time::timeout(WAIT, refused.next()).await.unwrap();
    let Some(Ok(Message::Text(text))) = first else {
        panic!("expected an error frame first, got {first:?}");
    };
    let error: Value = serde_json::from_str(text.as_str()).unwrap();
    assert_eq!(error["type"], "error", "{error}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("every session slot is taken"),
        "{error}"
    );
    let (code, reason) = close_of(&mut refused).await;
    assert_eq!(code, 1013, "{reason}");
    assert!(reason.contains("try again later"), "{reason}");
}
