//! The scripted conversation end to end: session, brain, ToolRunner, Guard
//! and real HTTP to the CRM simulator.

use std::time::Duration;

use serde_json::json;
use tokio::sync::mpsc;
use voxguard::agent::Agent;
use voxguard::config::Config;
use voxguard::recovery::{Entry, check_pairing};
use voxguard::session::{AgentEvent, AgentState, CallerEvent, EndReason, Session, SessionReport};
use voxguard::testbed::crm::{CrmSimulator, FaultUpdate};

const CALLER: [&str; 8] = [
    "Hi, we're a law firm, about eight people",
    "twelve hundred docs a month",
    "we use HubSpot",
    "this month ideally",
    "yes, that sounds great",
    "sure, it's chloe.okafor@northwind.example",
    "yes please",
    "the first one",
];

async fn simulator() -> CrmSimulator {
    CrmSimulator::start("127.0.0.1:0".parse().unwrap(), 7)
        .await
        .expect("simulator starts")
}

async fn converse(sim: &CrmSimulator, seed: u64) -> (SessionReport, Vec<AgentEvent>) {
    let config = Config::embedded_default().expect("embedded config");
    let env = Agent::from_config(&config, sim.crm_endpoints(), seed)
        .expect("env")
        .sessions;
    let (out_tx, mut out_rx) = mpsc::channel(1024);
    let (in_tx, in_rx) = mpsc::channel(16);
    let session = tokio::spawn(Session::new(env, out_tx, seed).run(in_rx));
    let mut events = Vec::new();
    // A scripted caller speaks only once the agent is listening again.
    let mut lines = CALLER.iter();
    while let Some(event) = tokio::time::timeout(Duration::from_secs(30), out_rx.recv())
        .await
        .expect("agent answers")
    {
        let listening = matches!(&event, AgentEvent::State { agent_state, .. } if *agent_state == AgentState::Listening);
        let ended = matches!(&event, AgentEvent::SessionEnded { .. });
        events.push(event);
        if ended {
            break;
        }
        if listening {
            match lines.next() {
                Some(line) => in_tx
                    .send(CallerEvent::User {
                        text: (*line).into(),
                    })
                    .await
                    .unwrap(),
                None => in_tx.send(CallerEvent::Hangup).await.unwrap(),
            }
        }
    }
    let report = tokio::time::timeout(Duration::from_secs(10), session)
        .await
        .expect("session ends")
        .unwrap();
    (report, events)
}

fn spoken(events: &[AgentEvent], kind: &str) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            AgentEvent::Speech { text, kind: k, .. } if k.as_str() == kind => Some(text.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_call_looks_the_caller_up_and_books_a_meeting_once() {
    let sim = simulator().await;
    let (report, events) = converse(&sim, 1).await;

    assert_eq!(report.ended, EndReason::AgentClosed);
    assert_eq!(check_pairing(&report.state.transcript), Ok(()));
    let tools: Vec<(&str, &str)> = report
        .tool_calls
        .iter()
        .map(|t| (t.tool.as_str(), t.outcome))
        .collect();
    assert!(tools.contains(&("chilipiper_book", "ok")), "{tools:?}");
    assert!(
        tools.iter().all(|(_, outcome)| *outcome == "ok"),
        "{tools:?}"
    );
    assert_eq!(sim.bookings().len(), 1, "exactly one meeting booked");
    assert!(
        spoken(&events, "answer")
            .iter()
            .any(|t| t.contains("booked")),
        "{events:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_crm_is_covered_by_a_filler_then_an_honest_failure_and_the_state_rolls_back() {
    let sim = simulator().await;
    let update: FaultUpdate =
        serde_json::from_value(json!({ "services": { "salesforce": { "hang_rate": 1.0 } } }))
            .unwrap();
    sim.set_faults(update).unwrap();
    let (report, events) = converse(&sim, 2).await;

    let lookup = report
        .tool_calls
        .iter()
        .find(|t| t.tool == "salesforce_lookup")
        .expect("crm looked up");
    assert_eq!(lookup.outcome, "fallback");
    assert!(
        lookup.first_heard <= Duration::from_millis(750),
        "first speech {:?}",
        lookup.first_heard
    );
    assert!(
        lookup.resolved <= lookup.budget + Duration::from_millis(50),
        "resolved {:?}",
        lookup.resolved
    );
    assert_eq!(lookup.rolled_back_exactly, Some(true));
    assert!(
        !spoken(&events, "filler").is_empty(),
        "a filler covers the wait"
    );
    assert!(
        !spoken(&events, "failure").is_empty(),
        "the failure is spoken"
    );
    assert_eq!(check_pairing(&report.state.transcript), Ok(()));
    let results = report
        .state
        .transcript
        .iter()
        .filter(|e| matches!(e, Entry::ToolResult { .. }))
        .count();
    let calls = report
        .state
        .transcript
        .iter()
        .filter(|e| matches!(e, Entry::ToolCall(_)))
        .count();
    assert_eq!(calls, results);
}
