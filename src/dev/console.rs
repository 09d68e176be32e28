//! `voxguard console`: talk to the agent in the terminal, against the
//! embedded CRM simulator. Lines starting with `/` control the simulator:
//! `/fault SERVICE FAULT` (healthy, slow, errors, hang, rate_limited, outage),
//! `/quit`.

use std::io::Write as _;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

use crate::agent::Agent;
use crate::config::Config;
use crate::recovery::SpeechKind;
use crate::session::{AgentEvent, CallerEvent, Session};
use crate::testbed::crm::{CrmSimulator, FaultUpdate};

use super::DevError;

use super::api::fault_spec;

/// Run one conversation on stdin/stdout.
pub async fn run(config: &Config) -> Result<(), DevError> {
    let sim = CrmSimulator::start(([127, 0, 0, 1], 0).into(), 42).await?;
    let agent = Agent::from_config(config, sim.crm_endpoints(), rand::random())?;
    let env = agent.sessions;
    let (events_tx, mut events_rx) = mpsc::channel(256);
    let (caller_tx, caller_rx) = mpsc::channel(16);
    let session = tokio::spawn(Session::new(env, events_tx, rand::random()).run(caller_rx));
    println!(
        "voxguard console — type to talk; /fault SERVICE FAULT to break a CRM; /quit to hang up"
    );
    println!(
        "  services: amplitude, salesforce, hubspot, chilipiper; faults: healthy, slow, errors, hang, rate_limited, outage"
    );
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    let mut stdin_open = true;
    loop {
        tokio::select! {
            event = events_rx.recv() => match event {
                Some(event) => {
                    if render(&event) {
                        break;
                    }
                }
                None => break,
            },
            line = stdin.next_line(), if stdin_open => match line {
                Ok(Some(line)) => {
                    let line = line.trim();
                    if line == "/quit" {
                        let _ = caller_tx.send(CallerEvent::Hangup).await;
                    } else if let Some(rest) = line.strip_prefix("/fault ") {
                        println!("  [{}]", set_fault(&sim, rest));
                    } else if !line.is_empty() {
                        let _ = caller_tx.send(CallerEvent::User { text: line.to_string() }).await;
                    }
                }
                Ok(None) | Err(_) => {
                    stdin_open = false;
                    let _ = caller_tx.send(CallerEvent::Hangup).await;
                }
            },
        }
    }
    let _ = session.await;
    Ok(())
}

fn set_fault(sim: &CrmSimulator, args: &str) -> String {
    let mut parts = args.split_whitespace();
    let (Some(service), Some(fault)) = (parts.next(), parts.next()) else {
        return "usage: /fault SERVICE FAULT".into();
    };
    let Some(spec) = fault_spec(fault) else {
        return format!("unknown fault `{fault}`");
    };
    let update = serde_json::json!({ "services": { service: spec } });
    match serde_json::from_value::<FaultUpdate>(update)
        .map_err(|e| e.to_string())
        .and_then(|u| sim.set_faults(u))
    {
        Ok(_) => format!("{service} is now {fault}"),
        Err(err) => err,
    }
}

/// Print one agent event; true when the session ended.
fn render(event: &AgentEvent) -> bool {
    match event {
        AgentEvent::Speech {
            text,
            kind: SpeechKind::Answer,
            ..
        } => println!("agent: {text}"),
        AgentEvent::Speech { text, kind, .. } => println!("agent ({kind}): {text}"),
        AgentEvent::ToolStarted(started) => {
            println!("  → {} ({})", started.tool, started.service)
        }
        AgentEvent::ToolFinished(finished) => println!(
            "  ← {}: {} in {:.0} ms",
            finished.tool, finished.outcome, finished.elapsed_ms
        ),
        AgentEvent::SessionEnded { reason } => {
            println!("call ended: {reason}");
            return true;
        }
        AgentEvent::State { .. } | AgentEvent::Error { .. } => {}
    }
    let _ = std::io::stdout().flush();
    false
}
