//! One conversation: the turn loop between a caller (through [`SessionIo`]),
//! the brain, and the recovery layer that runs risky tool calls.
//!
//! The loop reads caller events, asks the brain what to do, speaks, and runs
//! tools through the `ToolRunner` while still listening, so a barge-in
//! cancels the call in flight and a hang-up ends the session with every tool
//! call paired.

pub mod brain;
pub mod env;
pub mod io;
mod outcome;
pub mod resume;
pub mod tools;

use std::collections::VecDeque;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::brain::{Action, BrainState, StartContext, ToolName, ToolResultView};
use crate::recovery::ladder::until_due;
use crate::recovery::{
    CancelReason, Category, ConversationState, FailurePolicy, HeardLine, Interrupt, Ladder,
    LadderTiming, Level, OutcomeKind, PhraseContext, PhraseSession, PromiseSet, SessionAction,
    Speech, SpeechKind, ToolCall, ToolRunner,
};

pub use brain::{LlmSetup, SessionBrain, Turn};
pub use env::SessionEnv;
pub use io::{AgentEvent, AgentState, CallerEvent, SessionIo, TransportIo};
pub use resume::{SavedSession, SessionSaver};
pub use tools::{Attempt, Tools};

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
    brain: SessionBrain,
    runner: ToolRunner,
    outbound: mpsc::Sender<AgentEvent>,
    speech_rx: mpsc::UnboundedReceiver<Speech>,
    tool_calls: Vec<ToolCallReport>,
    turns: u64,
    pending_user: VecDeque<String>,
    ended: Option<EndReason>,
    /// Where each committed turn's state goes, when the call is resumable.
    saver: Option<SessionSaver>,
    /// Said instead of the greeting when this session picks a call up.
    resume_line: Option<String>,
    /// Told each agent state as it is emitted (the room publishes it).
    state_mirror: Option<StateMirror>,
}

/// Receives the agent's state as it changes.
type StateMirror = Box<dyn Fn(AgentState) + Send + Sync>;

impl Session {
    pub fn new(env: SessionEnv, outbound: mpsc::Sender<AgentEvent>, seed: u64) -> Session {
        let (speech_tx, speech_rx) = mpsc::unbounded_channel();
        let phrases = PhraseSession::new(env.phrasebook.clone(), seed);
        let mut runner = ToolRunner::new(phrases, FailurePolicy::new(env.handoff_after), speech_tx);
        runner.share_services(env.bindings.clone());
        let mut scripted = env.scripted.clone();
        scripted.seed = seed;
        Session {
            brain: SessionBrain::new(scripted, env.llm.as_ref()),
            env,
            state: ConversationState::new(),
            runner,
            outbound,
            speech_rx,
            tool_calls: Vec::new(),
            turns: 0,
            pending_user: VecDeque::new(),
            ended: None,
            saver: None,
            resume_line: None,
            state_mirror: None,
        }
    }

    /// Pick up a conversation another session saved: no greeting, the
    /// state, signals and transcript carry on from its last committed turn.
    /// A model that was leading leads again with its own history (when this
    /// worker has a model configured); otherwise the script carries on, as
    /// after a model failure.
    pub fn resume(
        env: SessionEnv,
        outbound: mpsc::Sender<AgentEvent>,
        seed: u64,
        saved: SavedSession,
    ) -> Session {
        let mut scripted = env.scripted.clone();
        scripted.seed = seed;
        let mut session = Session::new(env, outbound, seed);
        session.resume_line = Some(saved.resume_line(seed));
        session.brain =
            SessionBrain::resume(scripted, session.env.llm.as_ref(), saved.brain, saved.model);
        session.state = saved.state;
        session.turns = saved.turns;
        if let Some(failures) = saved.failures {
            // The counts carry over; the threshold is this worker's.
            let handoff_after = session.runner.policy().handoff_after();
            session
                .runner
                .restore_policy(failures.with_handoff_after(handoff_after));
        }
        session
    }

    /// Save the state after every committed turn through `saver`.
    pub fn saving_to(mut self, saver: SessionSaver) -> Session {
        self.saver = Some(saver);
        self
    }

    /// Call `mirror` with each agent state the session emits, as well as
    /// sending it as an event (a LiveKit job publishes it on the room).
    pub fn mirroring_state_to(
        mut self,
        mirror: impl Fn(AgentState) + Send + Sync + 'static,
    ) -> Session {
        self.state_mirror = Some(Box::new(mirror));
        self
    }

    /// The state a resumed session needs. Cheap: the transcript's sealed
    /// chunks are shared, not copied.
    pub fn snapshot(&self) -> SavedSession {
        SavedSession {
            version: resume::SAVED_SESSION_VERSION,
            state: self.state.clone(),
            brain: self.brain.state().clone(),
            turns: self.turns,
            failures: Some(self.runner.policy().clone()),
            model: self.brain.model_history().map(<[_]>::to_vec),
        }
    }

    fn commit_turn(&self) {
        if let Some(saver) = &self.saver {
            saver.save(self.snapshot());
        }
    }

    /// Run until the caller leaves, the agent closes, or `inbound` ends.
    pub fn run(
        self,
        inbound: mpsc::Receiver<CallerEvent>,
    ) -> impl Future<Output = SessionReport> + Send {
        // The session lives on the heap once: an `async fn` taking `self`
        // by value would hold it twice (its argument and its local) for the
        // whole call.
        Box::new(self).converse(inbound)
    }

    async fn converse(
        mut self: Box<Self>,
        mut inbound: mpsc::Receiver<CallerEvent>,
    ) -> SessionReport {
        self.emit_state(AgentState::Listening).await;
        match self.resume_line.take() {
            Some(line) => {
                self.runner
                    .speak(&mut self.state, line, SpeechKind::Recovered);
                self.flush_speech().await;
            }
            None => {
                let greeting = self.brain.on_start(&StartContext::default());
                self.perform(greeting, &mut inbound).await;
            }
        }
        self.commit_turn();
        while self.ended.is_none() {
            let text = match self.pending_user.pop_front() {
                Some(text) => text,
                None => match inbound.recv().await {
                    Some(CallerEvent::User { text }) => text,
                    Some(CallerEvent::Interrupt { heard }) => {
                        self.cut_off(heard);
                        continue;
                    }
                    Some(CallerEvent::Unplayed { lines }) => {
                        self.unplayed(lines);
                        continue;
                    }
                    Some(CallerEvent::Hangup) | None => {
                        self.ended = Some(EndReason::CallerLeft);
                        break;
                    }
                },
            };
            self.turns += 1;
            self.state.transcript.push_user(text.clone());
            self.emit_state(AgentState::Thinking).await;
            let actions = self.ask(Ask::User(&text)).await;
            self.perform(actions, &mut inbound).await;
            self.commit_turn();
            if self.ended.is_none() {
                self.emit_state(AgentState::Listening).await;
            }
        }
        // Nothing is in flight here (tools are awaited in `perform`), but a
        // session must never leave a tool call without a result.
        self.state
            .transcript
            .cancel_unpaired(CancelReason::Shutdown);
        let ended = self.ended.unwrap_or(EndReason::Shutdown);
        if let Some(saver) = &self.saver {
            saver.end(ended);
        }
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
                Action::SetStage { stage: next } => {
                    if self.state.stage() != next
                        && let Err(err) = self.state.move_to(next)
                    {
                        tracing::debug!(error = %err, "brain asked for a stage move the state machine refuses");
                    }
                }
                Action::RecordSignals { signals } => self.state.signals.merge(&signals),
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
                    let follow = self.ask(Ask::ToolResult(&call_id, view)).await;
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
        let spec = self.env.tools.spec(tool);
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
            .send(AgentEvent::ToolStarted(Box::new(io::ToolStarted {
                call_id: call_id.clone(),
                tool: tool.as_str().into(),
                service: service.clone(),
            })))
            .await;

        let tools = self.env.tools.clone();
        // What the caller heard when they cut in during the call; recorded
        // once the call has resolved (the call holds the state meanwhile).
        let mut cut_off = Vec::new();
        let mut unplayed = Vec::new();
        let outcome = {
            // Boxed: the recovery stack's future (Guard, retries, HTTP) is
            // several KiB, and an idle session should not carry it.
            let mut run = Box::pin(self.runner.run(
                &mut self.state,
                call,
                move |attempt, _call| tools.attempt(tool, &args, attempt),
            ));
            let mut speech_rx_closed = false;
            loop {
                tokio::select! {
                    outcome = &mut run => break outcome,
                    speech = self.speech_rx.recv(), if !speech_rx_closed => match speech {
                        Some(speech) => forward_speech(&self.outbound, speech).await,
                        None => speech_rx_closed = true,
                    },
                    event = inbound.recv(), if self.ended.is_none() => match event {
                        Some(CallerEvent::Interrupt { heard }) => {
                            interrupt.trigger();
                            cut_off.extend(heard);
                        }
                        Some(CallerEvent::Unplayed { lines }) => unplayed.extend(lines),
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
        self.cut_off(cut_off);
        self.unplayed(unplayed);

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
        let name = outcome::outcome_name(&outcome);
        let error = outcome.error.as_ref().map(ToString::to_string);
        let _ = self
            .outbound
            .send(AgentEvent::ToolFinished(Box::new(io::ToolFinished {
                call_id,
                tool: tool.as_str().into(),
                outcome: name.into(),
                elapsed_ms: outcome.resolved_at.as_secs_f64() * 1000.0,
                error,
            })))
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
        (outcome::result_view(&outcome), handoff)
    }

    /// Ask the brain what to do next. While the model thinks the caller
    /// hears the `llm` profile's filler ladder; when the model fails the
    /// caller hears an honest line and the script carries on.
    async fn ask(&mut self, ask: Ask<'_>) -> Vec<Action> {
        let session = BrainState {
            stage: self.state.stage(),
        };
        let ladder = self
            .env
            .llm
            .as_ref()
            .filter(|_| self.brain.thinks_remotely())
            .map(|llm| llm.timing);
        let turn = {
            let brain = &mut self.brain;
            let thinking = async move {
                match ask {
                    Ask::User(text) => brain.on_user(text, &session).await,
                    Ask::ToolResult(call_id, view) => {
                        brain.on_tool_result(call_id, view, &session).await
                    }
                }
            };
            match ladder {
                // Boxed: only a model-led turn carries the filler ladder.
                Some(ladder) => {
                    Box::pin(keep_company(
                        thinking,
                        &ladder,
                        &mut self.runner,
                        &mut self.state,
                        &mut self.speech_rx,
                        &self.outbound,
                    ))
                    .await
                }
                None => thinking.await,
            }
        };
        if let Some(error) = &turn.fell_back {
            tracing::warn!(%error, "the model failed; the scripted policy carries on");
            metrics::counter!("voxguard_llm_fallbacks_total").increment(1);
            let line = draw_line(&mut self.runner, Category::Generic);
            self.runner
                .speak(&mut self.state, line, SpeechKind::Failure);
            self.flush_speech().await;
        }
        turn.actions
    }

    /// The caller cut in: record what they heard of the agent's last lines,
    /// and tell the brain, so the conversation goes on from what was heard.
    fn cut_off(&mut self, heard: Vec<HeardLine>) {
        if heard.is_empty() {
            return;
        }
        self.brain.heard_only(&heard);
        self.state.transcript.push_interrupted(heard);
    }

    /// Lines the caller never heard (withdrawn before they played): the
    /// conversation goes on as if they had not been said.
    fn unplayed(&mut self, lines: Vec<String>) {
        if lines.is_empty() {
            return;
        }
        let heard: Vec<HeardLine> = lines
            .iter()
            .map(|spoken| HeardLine {
                spoken: spoken.clone(),
                heard: String::new(),
            })
            .collect();
        self.brain.heard_only(&heard);
        self.state.transcript.push_unplayed(lines);
    }

    async fn flush_speech(&mut self) {
        while let Ok(speech) = self.speech_rx.try_recv() {
            forward_speech(&self.outbound, speech).await;
        }
    }

    async fn emit_state(&self, agent_state: AgentState) {
        if let Some(mirror) = &self.state_mirror {
            mirror(agent_state);
        }
        let _ = self
            .outbound
            .send(AgentEvent::State {
                stage: format!("{:?}", self.state.stage()).to_uppercase(),
                agent_state,
            })
            .await;
    }
}

/// What the brain is asked.
enum Ask<'a> {
    User(&'a str),
    ToolResult(&'a str, ToolResultView),
}

/// How a model request's wait is described to the caller.
const THINKING_DISPLAY: &str = "the system";

/// A promise-free line of `category` from the session's phrase bags.
fn draw_line(runner: &mut ToolRunner, category: Category) -> String {
    let ctx = PhraseContext {
        service_display: THINKING_DISPLAY,
        level: Level::First,
        allowed_promises: PromiseSet::NONE_ONLY,
    };
    match runner.phrases_mut().draw(category, &ctx) {
        Ok(phrase) => phrase.text,
        Err(err) => {
            tracing::warn!(error = %err, "phrase draw failed; using the last-resort line");
            "Sorry, give me a moment.".to_string()
        }
    }
}

/// Await `thinking` while the caller hears the ladder's lines.
async fn keep_company<T>(
    thinking: impl std::future::Future<Output = T>,
    timing: &LadderTiming,
    runner: &mut ToolRunner,
    state: &mut ConversationState,
    speech_rx: &mut mpsc::UnboundedReceiver<Speech>,
    outbound: &mpsc::Sender<AgentEvent>,
) -> T {
    let mut ladder = Ladder::start(*timing, tokio::time::Instant::now());
    tokio::pin!(thinking);
    loop {
        tokio::select! {
            biased;
            done = &mut thinking => return done,
            () = until_due(ladder.next_due()) => {
                let rung = ladder.step();
                let line = draw_line(runner, rung.category);
                runner.speak(state, line, rung.kind);
                while let Ok(speech) = speech_rx.try_recv() {
                    forward_speech(outbound, speech).await;
                }
            }
        }
    }
}

async fn forward_speech(outbound: &mpsc::Sender<AgentEvent>, speech: Speech) {
    let _ = outbound
        .send(AgentEvent::Speech {
            text: speech.text,
            kind: speech.kind,
            interruptible: speech.interruptible,
        })
        .await;
}
