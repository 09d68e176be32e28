//! One conversation: the turn loop between a caller (through [`SessionIo`]),
//! the brain, and the recovery layer that runs risky tool calls.
//!
//! The loop reads caller events, asks the brain what to do, speaks, and runs
//! tools through the `ToolRunner` while still listening, so a barge-in
//! cancels the call in flight and a hang-up ends the session with every tool
//! call paired.

pub mod convert;
pub mod env;
pub mod io;
pub mod room;
pub mod tools;

use std::collections::VecDeque;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::brain::{Action, BrainState, ScriptedBrain, StartContext, ToolName};
use crate::recovery::{
    CancelReason, ConversationState, FailurePolicy, Interrupt, OutcomeKind, PhraseSession,
    SessionAction, Speech, SpeechKind, ToolCall, ToolRunner,
};

pub use env::{CrmEndpoints, EnvError, SessionEnv};
pub use io::{AgentEvent, CallerEvent, SessionIo, TransportIo};

/// How one tool call went, as measured by the session.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCallReport {
    pub tool: String,
    pub service: String,
    pub outcome: &'static str,
    /// From the call's start to the first line the caller heard for it.
    pub first_heard: Duration,
    pub resolved: Duration,
    pub budget: Duration,
    /// Whether the state after a failed call equals its pre-call snapshot.
    pub rolled_back_exactly: Option<bool>,
    pub retried: bool,
}

/// What a finished session leaves behind for checks and reports.
#[derive(Debug, Clone)]
pub struct SessionReport {
    pub state: ConversationState,
    pub tool_calls: Vec<ToolCallReport>,
    pub turns: u64,
    pub ended: EndReason,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    CallerLeft,
    AgentClosed,
    HandedOff,
    Shutdown,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::CallerLeft => "caller_left",
            EndReason::AgentClosed => "agent_closed",
            EndReason::HandedOff => "handed_off",
            EndReason::Shutdown => "shutdown",
        }
    }
}

/// One conversation.
pub struct Session {
    env: SessionEnv,
    state: ConversationState,
    brain: ScriptedBrain,
    runner: ToolRunner,
    outbound: mpsc::Sender<AgentEvent>,
    speech_rx: mpsc::UnboundedReceiver<Speech>,
    tool_calls: Vec<ToolCallReport>,
    turns: u64,
    pending_user: VecDeque<String>,
    ended: Option<EndReason>,
}

impl Session {
    pub fn new(env: SessionEnv, outbound: mpsc::Sender<AgentEvent>, seed: u64) -> Session {
        let (speech_tx, speech_rx) = mpsc::unbounded_channel();
        let phrases = PhraseSession::new(env.phrasebook.clone(), seed);
        let mut runner = ToolRunner::new(phrases, FailurePolicy::new(env.handoff_after), speech_tx);
        for (service, binding) in &env.bindings {
            runner.add_service(service.clone(), binding.clone());
        }
        let mut scripted = env.scripted.clone();
        scripted.seed = seed;
        Session {
            brain: ScriptedBrain::new(scripted),
            env,
            state: ConversationState::new(),
            runner,
            outbound,
            speech_rx,
            tool_calls: Vec::new(),
            turns: 0,
            pending_user: VecDeque::new(),
            ended: None,
        }
    }

    /// Run until the caller leaves, the agent closes, or `inbound` ends.
    pub async fn run(mut self, mut inbound: mpsc::Receiver<CallerEvent>) -> SessionReport {
        self.emit_state("listening").await;
        let greeting = self.brain.on_start(&StartContext::default());
        self.perform(greeting, &mut inbound).await;
        while self.ended.is_none() {
            let text = match self.pending_user.pop_front() {
                Some(text) => text,
                None => match inbound.recv().await {
                    Some(CallerEvent::User { text }) => text,
                    Some(CallerEvent::Interrupt) => continue,
                    Some(CallerEvent::Hangup) | None => {
                        self.ended = Some(EndReason::CallerLeft);
                        break;
                    }
                },
            };
            self.turns += 1;
            self.state.transcript.push_user(text.clone());
            self.emit_state("thinking").await;
            let stage = convert::brain_stage(self.state.stage());
            let actions = self.brain.on_user(&text, &BrainState { stage });
            self.perform(actions, &mut inbound).await;
            if self.ended.is_none() {
                self.emit_state("listening").await;
            }
        }
        // Nothing is in flight here (tools are awaited in `perform`), but a
        // session must never leave a tool call without a result.
        self.state
            .transcript
            .cancel_unpaired(CancelReason::Shutdown);
        let ended = self.ended.unwrap_or(EndReason::Shutdown);
        let _ = self
            .outbound
            .send(AgentEvent::SessionEnded {
                reason: ended.as_str().into(),
            })
            .await;
        SessionReport {
            state: self.state,
            tool_calls: self.tool_calls,
            turns: self.turns,
            ended,
        }
    }

    async fn perform(&mut self, actions: Vec<Action>, inbound: &mut mpsc::Receiver<CallerEvent>) {
        let mut queue: VecDeque<Action> = actions.into();
        while let Some(action) = queue.pop_front() {
            match action {
                Action::Say { text } => {
                    self.runner.speak(&mut self.state, text, SpeechKind::Answer);
                    self.flush_speech().await;
                }
                Action::SetStage { stage } => {
                    let next = convert::stage(stage);
                    if self.state.stage() != next
                        && let Err(err) = self.state.move_to(next)
                    {
                        tracing::debug!(error = %err, "brain asked for a stage move the state machine refuses");
                    }
                }
                Action::RecordSignals { signals } => {
                    convert::merge_signals(&mut self.state.signals, &signals)
                }
                Action::FollowUp { follow_up } => {
                    self.state.note(format!(
                        "follow-up: {}",
                        serde_json::to_string(&follow_up).unwrap_or_default()
                    ));
                }
                Action::EndCall => {
                    self.ended.get_or_insert(EndReason::AgentClosed);
                }
                Action::CallTool {
                    call_id,
                    name,
                    args,
                } => {
                    let (view, handoff) = self.call_tool(name, args, inbound).await;
                    let follow = self.brain.on_tool_result(&call_id, view);
                    for action in follow.into_iter().rev() {
                        queue.push_front(action);
                    }
                    if handoff {
                        self.ended = Some(EndReason::HandedOff);
                    }
                }
            }
            if matches!(
                self.ended,
                Some(EndReason::CallerLeft | EndReason::HandedOff)
            ) {
                break;
            }
        }
    }

    /// Run one tool under the recovery layer while listening for barge-in.
    async fn call_tool(
        &mut self,
        tool: ToolName,
        args: serde_json::Value,
        inbound: &mut mpsc::Receiver<CallerEvent>,
    ) -> (crate::brain::ToolResultView, bool) {
        let spec = tools::spec(tool);
        let service = spec.service.clone();
        let budget = self
            .env
            .bindings
            .get(&service)
            .map(|b| b.timing.budget)
            .unwrap_or_default();
        let interrupt = Interrupt::new();
        let call = ToolCall::new(spec, args.clone()).with_interrupt(interrupt.clone());
        let before = self.state.snapshot();
        let call_id = format!("{}-{}", tool.as_str(), self.tool_calls.len() + 1);
        let _ = self
            .outbound
            .send(AgentEvent::ToolStarted {
                call_id: call_id.clone(),
                tool: tool.as_str().into(),
                service: service.clone(),
            })
            .await;

        let toolbox = self.env.toolbox.clone();
        let outcome = {
            let run = self
                .runner
                .run(&mut self.state, call, move |attempt, _call| {
                    let toolbox = toolbox.clone();
                    let args = args.clone();
                    async move { toolbox.invoke(tool, &args, attempt).await }
                });
            tokio::pin!(run);
            let mut speech_rx_closed = false;
            loop {
                tokio::select! {
                    outcome = &mut run => break outcome,
                    speech = self.speech_rx.recv(), if !speech_rx_closed => match speech {
                        Some(speech) => forward_speech(&self.outbound, speech).await,
                        None => speech_rx_closed = true,
                    },
                    event = inbound.recv(), if self.ended.is_none() => match event {
                        Some(CallerEvent::Interrupt) => interrupt.trigger(),
                        Some(CallerEvent::User { text }) => {
                            // Talking over a slow tool is a barge-in; the words are kept for the next turn.
                            interrupt.trigger();
                            self.pending_user.push_back(text);
                        }
                        Some(CallerEvent::Hangup) | None => {
                            interrupt.trigger();
                            self.ended = Some(EndReason::CallerLeft);
                        }
                    },
                }
            }
        };
        self.flush_speech().await;

        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(err) => {
                tracing::error!(error = %err, tool = tool.as_str(), "tool could not be run");
                return (
                    crate::brain::ToolResultView::Failed {
                        kind: crate::resilience::ErrorKind::Decode,
                    },
                    false,
                );
            }
        };
        let failed = matches!(
            outcome.kind,
            OutcomeKind::Fallback | OutcomeKind::UnknownOutcome | OutcomeKind::Cancelled
        );
        let rolled_back_exactly = failed.then(|| self.state.rolled_back_to(&before));
        let name = convert::outcome_name(&outcome);
        let error = outcome.error.as_ref().map(|e| format!("{e:?}"));
        let _ = self
            .outbound
            .send(AgentEvent::ToolFinished {
                call_id,
                tool: tool.as_str().into(),
                outcome: name.into(),
                elapsed_ms: outcome.resolved_at.as_secs_f64() * 1000.0,
                error,
            })
            .await;
        self.tool_calls.push(ToolCallReport {
            tool: tool.as_str().into(),
            service,
            outcome: name,
            first_heard: outcome.first_heard_at(),
            resolved: outcome.resolved_at,
            budget,
            rolled_back_exactly,
            retried: outcome.attempts_started > 1,
        });
        let handoff = outcome.action == SessionAction::HandOff;
        (convert::result_view(&outcome), handoff)
    }

    async fn flush_speech(&mut self) {
        while let Ok(speech) = self.speech_rx.try_recv() {
            forward_speech(&self.outbound, speech).await;
        }
    }

    async fn emit_state(&self, agent_state: &str) {
        let _ = self
            .outbound
            .send(AgentEvent::State {
                stage: format!("{:?}", self.state.stage()).to_uppercase(),
                agent_state: agent_state.into(),
            })
            .await;
    }
}

async fn forward_speech(outbound: &mpsc::Sender<AgentEvent>, speech: Speech) {
    let _ = outbound
        .send(AgentEvent::Speech {
            text: speech.text,
            kind: convert::speech_kind_name(speech.kind),
            interruptible: speech.interruptible,
        })
        .await;
}
