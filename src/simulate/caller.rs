//! The scripted caller: speaks each line once the agent listens, and checks
//! what it hears as it hears it (see [`CallCheck`]).

use std::time::Duration;

use tokio::time::Instant;

use crate::session::{AgentEvent, AgentState, CallerEvent, TransportIo};

use super::checks::{CallLog, Expectations, HeardEvent};

/// The caller's lines: discovery, the email that triggers the lookups, slots, a booking.
const LINES: [&str; 8] = [
    "Hi, we're a law firm, about eight people",
    "twelve hundred docs a month",
    "we use HubSpot",
    "this month ideally",
    "yes, that sounds great",
    "sure, it's {email}",
    "yes please",
    "{choice}",
];

/// What a caller says, in order, asking about `email` and picking `choice`.
pub fn script(email: &str, choice: &str) -> Vec<String> {
    LINES
        .iter()
        .map(|line| line.replace("{email}", email).replace("{choice}", choice))
        .collect()
}

/// Callers spread their picks so concurrent callers rarely want the same slot.
pub const CHOICES: [&str; 3] = ["the first one", "the second one", "the third one"];

/// A call that has not ended by then is reported as timed out.
const CALL_LIMIT: Duration = Duration::from_secs(120);

/// Who is calling and how they behave.
pub struct Caller<'a> {
    pub email: &'a str,
    pub choice: &'a str,
    /// Pause between hearing the agent listen and speaking again.
    pub think: Duration,
    /// Keep every event heard, with its time (for `VOXGUARD_SIM_TRACE`).
    pub trace: bool,
}

impl Caller<'_> {
    /// Talks until the session ends, the transport closes or the call limit.
    pub async fn call(&self, mut transport: TransportIo, expectations: &Expectations) -> CallLog {
        let start = Instant::now();
        let mut log = CallLog {
            trace: self.trace.then(Vec::new),
            ..CallLog::default()
        };
        let mut lines = LINES.iter();
        let deadline = start + CALL_LIMIT;
        loop {
            let event = match tokio::time::timeout_at(deadline, transport.from_session.recv()).await
            {
                Ok(Some(event)) => event,
                Ok(None) => break,
                Err(_) => {
                    log.timed_out = true;
                    break;
                }
            };
            let at = start.elapsed();
            log.heard.hear(&event, at, expectations);
            let listening = matches!(&event, AgentEvent::State { agent_state, .. } if *agent_state == AgentState::Listening);
            let ended = matches!(&event, AgentEvent::SessionEnded { .. });
            if let Some(trace) = log.trace.as_mut() {
                trace.push(HeardEvent { at, event });
            }
            if ended {
                break;
            }
            if listening {
                if !self.think.is_zero() {
                    tokio::time::sleep(self.think).await;
                }
                let next = match lines.next() {
                    Some(line) => CallerEvent::User {
                        text: line
                            .replace("{email}", self.email)
                            .replace("{choice}", self.choice),
                    },
                    None => CallerEvent::Hangup,
                };
                if transport.to_session.send(next).await.is_err() {
                    break;
                }
            }
        }
        log
    }
}
