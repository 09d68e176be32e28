//! Where the other side of simulate's boundaries runs: the CRM simulator and
//! the loopback LiveKit stand-in, either in this process ([`Peer::InProcess`])
//! or in a `voxguard sim-peer` child process driven over HTTP
//! ([`Peer::ChildProcess`], see [`super::peer`]). The callers' media side
//! (the in-process room transports) stays with the worker either way.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};

use std::sync::Arc;

use crate::agent::{CalendarSettings, CrmEndpoints};
use crate::testbed::crm::{FaultUpdate, SimCredentials, crm_endpoints};
use crate::testbed::livekit::LoopbackHandle;

use super::measure::{cpu_seconds_of, rss_bytes_of};
use super::peer::{OtherSide, PeerOptions, PeerReady, RoomParticipant, start_other_side};
use super::voice::{self, SpokenLines, VOICE_CALL_LIMIT, VoiceCallPlan, VoiceCallRecord};

/// How long a child peer may take to print its ready line.
const READY_WAIT: Duration = Duration::from_secs(20);
/// Bounds every control request, so a wedged peer fails the call, not the run.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(30);
/// Control requests in flight at once. A burst of calls dials in through
/// this many connections (each request takes a few milliseconds) instead of
/// opening one HTTP connection per call: the harness's own memory would
/// otherwise be counted in the worker process's peak.
const CONTROL_CONNECTIONS: usize = 128;

/// Where the run's peer lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peer {
    /// Simulator and stand-in on this process's runtime (one process).
    InProcess,
    /// `<program> sim-peer --seed S` as a child process.
    ChildProcess { program: PathBuf },
}

impl Peer {
    /// The `mode` the report names.
    pub fn mode(&self) -> &'static str {
        match self {
            Peer::InProcess => "in-process",
            Peer::ChildProcess { .. } => "child-process",
        }
    }
}

/// What the run learns of its peer at start.
pub struct PeerSetup {
    pub link: PeerLink,
    /// Keeps an in-process peer alive / owns the child process.
    pub holder: PeerHolder,
    pub livekit_url: String,
    pub api_key: String,
    pub api_secret: String,
    pub endpoints: CrmEndpoints,
    pub emails: Vec<String>,
    /// The speech simulator's `HOST:PORT`, with audio.
    pub speech_addr: Option<String>,
}

/// What the calls use to act on rooms on the other side.
#[derive(Clone)]
pub enum PeerLink {
    InProcess {
        loopback: LoopbackHandle,
        lines: Option<Arc<SpokenLines>>,
    },
    Http {
        client: reqwest::Client,
        control_url: String,
        /// One permit per control request in flight.
        slots: std::sync::Arc<tokio::sync::Semaphore>,
    },
}

/// Owns the other side for the length of the run.
pub enum PeerHolder {
    InProcess(Box<OtherSide>),
    Child(ChildPeer),
}

/// A running `voxguard sim-peer`; it exits when its stdin closes.
pub struct ChildPeer {
    child: Child,
    stdin: Option<ChildStdin>,
    pid: u32,
}

/// Start the peer and put the CRM simulator's fault preset `crm_preset`
/// in place.
pub async fn start(
    peer: &Peer,
    options: PeerOptions,
    crm_preset: &str,
) -> Result<PeerSetup, String> {
    let preset = serde_json::json!({ "preset": crm_preset });
    match peer {
        Peer::InProcess => {
            let side = start_other_side(options).await?;
            let update: FaultUpdate = serde_json::from_value(preset).map_err(|e| e.to_string())?;
            side.crm.set_faults(update)?;
            let emails = side
                .crm
                .fixtures()
                .people
                .iter()
                .map(|p| p.email.clone())
                .collect();
            let endpoints = side.crm.crm_endpoints();
            let loopback = side.loopback.clone();
            Ok(PeerSetup {
                livekit_url: loopback.url(),
                api_key: loopback.config().api_key.clone(),
                api_secret: loopback.config().api_secret.clone(),
                speech_addr: side.speech.as_ref().map(|s| s.addr().to_string()),
                link: PeerLink::InProcess {
                    loopback,
                    lines: side.lines.clone(),
                },
                holder: PeerHolder::InProcess(Box::new(side)),
                endpoints,
                emails,
            })
        }
        Peer::ChildProcess { program } => {
            let (child, ready) = spawn_child(program, options).await?;
            let client = reqwest::Client::builder()
                .no_proxy()
                .timeout(CONTROL_TIMEOUT)
                .pool_max_idle_per_host(CONTROL_CONNECTIONS)
                .build()
                .map_err(|e| format!("control client: {e}"))?;
            let faults_url = format!("{}/_sim/faults", ready.crm_base_url);
            let answer = client
                .put(&faults_url)
                .json(&preset)
                .send()
                .await
                .map_err(|e| format!("the simulator peer did not take the faults: {e}"))?;
            if !answer.status().is_success() {
                return Err(format!(
                    "the simulator peer refused the `{crm_preset}` faults: {} {}",
                    answer.status(),
                    answer.text().await.unwrap_or_default()
                ));
            }
            Ok(PeerSetup {
                endpoints: endpoints_of(&ready),
                link: PeerLink::Http {
                    client,
                    control_url: ready.control_url,
                    slots: std::sync::Arc::new(tokio::sync::Semaphore::new(CONTROL_CONNECTIONS)),
                },
                holder: PeerHolder::Child(child),
                livekit_url: ready.livekit_url,
                api_key: ready.api_key,
                api_secret: ready.api_secret,
                emails: ready.emails,
                speech_addr: ready.speech_addr,
            })
        }
    }
}

/// The simulator's endpoints as the peer announced them; it runs with the
/// default simulator credentials.
fn endpoints_of(ready: &PeerReady) -> CrmEndpoints {
    crm_endpoints(
        &ready.crm_base_url,
        &SimCredentials::default(),
        CalendarSettings {
            host_user_id: ready.host_user_id.clone(),
            meeting_type_id: ready.meeting_type_id.clone(),
            window: Duration::from_secs(7 * 86_400),
        },
    )
}

async fn spawn_child(
    program: &PathBuf,
    options: PeerOptions,
) -> Result<(ChildPeer, PeerReady), String> {
    let mut child = Command::new(program)
        .args([
            "sim-peer",
            "--seed",
            &options.seed.to_string(),
            "--media",
            options.media.as_str(),
            "--media-loss",
            &options.media_loss.to_string(),
            "--media-jitter-ms",
            &options.media_jitter.as_millis().to_string(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            format!(
                "cannot start the simulator peer `{} sim-peer`: {e}",
                program.display()
            )
        })?;
    let pid = child.id().unwrap_or_default();
    let stdin = child.stdin.take();
    let stdout = child
        .stdout
        .take()
        .ok_or("the simulator peer has no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let first = match tokio::time::timeout(READY_WAIT, lines.next_line()).await {
        Err(_) => {
            let _ = child.start_kill();
            return Err(format!(
                "the simulator peer (pid {pid}) printed nothing within {READY_WAIT:?}"
            ));
        }
        Ok(Err(err)) => return Err(format!("cannot read the simulator peer's output: {err}")),
        Ok(Ok(None)) => {
            let status = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
            return Err(format!(
                "the simulator peer (pid {pid}) exited before it was ready: {}",
                match status {
                    Ok(Ok(status)) => status.to_string(),
                    _ => "no exit status".into(),
                }
            ));
        }
        Ok(Ok(Some(line))) => line,
    };
    let ready: PeerReady = serde_json::from_str(&first).map_err(|err| {
        let _ = child.start_kill();
        format!("the simulator peer printed {first:?}, not its addresses: {err}")
    })?;
    // The peer prints nothing more; keep its stdout drained all the same.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok((ChildPeer { child, stdin, pid }, ready))
}

impl PeerLink {
    /// A job for `room`, where `participant` is present, goes to the worker.
    pub async fn dispatch_job(&self, room: &str, participant: &str) -> Result<(), String> {
        match self {
            PeerLink::InProcess { loopback, .. } => loopback
                .dispatch_job(room, participant)
                .await
                .map(drop)
                .map_err(|e| e.to_string()),
            PeerLink::Http {
                client,
                control_url,
                slots,
            } => {
                let answer = control(client, control_url, slots, "jobs", room, participant).await?;
                match answer.get("job_id") {
                    Some(serde_json::Value::String(_)) => Ok(()),
                    _ => Err(format!(
                        "the simulator peer did not dispatch a job: {}",
                        answer
                            .get("error")
                            .and_then(|e| e.as_str())
                            .map_or_else(|| answer.to_string(), str::to_owned)
                    )),
                }
            }
        }
    }

    /// `participant` leaves `room`.
    pub async fn participant_leaves(&self, room: &str, participant: &str) {
        match self {
            PeerLink::InProcess { loopback, .. } => {
                loopback.participant_leaves(room, participant);
            }
            PeerLink::Http {
                client,
                control_url,
                slots,
            } => {
                // A lost leave shows up in the checks (the session outlives
                // its caller), so its error needs no second report here.
                let _ = control(client, control_url, slots, "leaves", room, participant).await;
            }
        }
    }
}

impl PeerLink {
    /// One spoken call, from the caller joining to its leaving; what the
    /// caller observed (what went wrong included).
    pub async fn voice_call(&self, plan: &VoiceCallPlan) -> VoiceCallRecord {
        let failed = |error: String| VoiceCallRecord {
            error: Some(error),
            ..VoiceCallRecord::default()
        };
        match self {
            PeerLink::InProcess { loopback, lines } => match lines {
                Some(lines) => voice::call(loopback, lines, plan).await,
                None => failed("the peer was started for text calls".into()),
            },
            PeerLink::Http {
                client,
                control_url,
                ..
            } => {
                // No control slot: the request lasts the whole call, and
                // the run's own gate already bounds how many are in flight
                // (taking a slot would cap spoken calls at the slots).
                let answer = client
                    .post(format!("{control_url}/voice-calls"))
                    .timeout(VOICE_CALL_LIMIT + CONTROL_TIMEOUT)
                    .json(plan)
                    .send()
                    .await;
                match answer {
                    Ok(answer) if answer.status().is_success() => {
                        answer.json().await.unwrap_or_else(|e| {
                            failed(format!(
                                "simulator peer /voice-calls: unreadable answer: {e}"
                            ))
                        })
                    }
                    Ok(answer) => failed(format!(
                        "simulator peer /voice-calls: {} {}",
                        answer.status(),
                        answer.text().await.unwrap_or_default()
                    )),
                    Err(e) => failed(format!("simulator peer /voice-calls: {e}")),
                }
            }
        }
    }
}

async fn control(
    client: &reqwest::Client,
    control_url: &str,
    slots: &tokio::sync::Semaphore,
    path: &str,
    room: &str,
    participant: &str,
) -> Result<serde_json::Value, String> {
    let _slot = slots
        .acquire()
        .await
        .map_err(|_| format!("simulator peer /{path}: the run is over"))?;
    let body = RoomParticipant {
        room: room.into(),
        participant: participant.into(),
    };
    let answer = client
        .post(format!("{control_url}/{path}"))
        .json(&body)
        .send()
        .await
        .map_err(|e| format!("simulator peer /{path}: {e}"))?;
    answer
        .json()
        .await
        .map_err(|e| format!("simulator peer /{path}: unreadable answer: {e}"))
}

impl PeerHolder {
    /// Resolves only if a child peer exits (an in-process peer never does).
    pub async fn exited(&mut self) -> String {
        match self {
            PeerHolder::InProcess(_) => std::future::pending().await,
            PeerHolder::Child(child) => {
                let status = child.child.wait().await;
                format!(
                    "the simulator peer (pid {}) exited during the run: {}",
                    child.pid,
                    status.map_or_else(|e| e.to_string(), |s| s.to_string())
                )
            }
        }
    }

    /// A child peer's CPU time so far (user + system, its children too).
    pub fn peer_cpu_seconds(&self) -> Option<f64> {
        match self {
            PeerHolder::InProcess(_) => None,
            PeerHolder::Child(child) => cpu_seconds_of(&child.pid.to_string()),
        }
    }

    /// A child peer's peak resident set (VmHWM), in bytes.
    pub fn peer_rss_peak(&self) -> Option<u64> {
        match self {
            PeerHolder::InProcess(_) => None,
            PeerHolder::Child(child) => rss_bytes_of(&child.pid.to_string()).map(|(_, peak)| peak),
        }
    }

    /// Stop the peer: close a child's stdin and wait (bounded) for it.
    pub async fn stop(self) {
        match self {
            PeerHolder::InProcess(side) => side.shutdown().await,
            PeerHolder::Child(mut child) => {
                drop(child.stdin.take());
                if tokio::time::timeout(Duration::from_secs(5), child.child.wait())
                    .await
                    .is_err()
                {
                    let _ = child.child.kill().await;
                }
            }
        }
    }
}
