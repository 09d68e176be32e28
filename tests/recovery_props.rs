//! Property tests: a restore undoes any mutation sequence exactly, a failing
//! tool leaves the state rolled back, and tool-call pairing survives the
//! runner being dropped or interrupted at any moment.

use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use tokio::sync::mpsc;
use voxguard::brain::understanding::{Industry, Integration, Urgency};
use voxguard::recovery::*;
use voxguard::resilience::*;

#[derive(Debug, Clone)]
enum Mutation {
    TeamSize(Option<u32>),
    Volume(Option<u32>),
    AddIntegration(u8),
    ClearIntegrations,
    Urgency(Option<u8>),
    Industry(Option<u8>),
    Note(String),
    Move(u8),
    UserTurn(String),
    AgentLine(String),
    CallTool(String),
    AnswerOldestCall,
    CancelOpenCalls,
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        proptest::option::of(0u32..500).prop_map(Mutation::TeamSize),
        proptest::option::of(any::<u32>()).prop_map(Mutation::Volume),
        (0u8..6).prop_map(Mutation::AddIntegration),
        Just(Mutation::ClearIntegrations),
        proptest::option::of(0u8..4).prop_map(Mutation::Urgency),
        proptest::option::of(0u8..4).prop_map(Mutation::Industry),
        "[a-z ]{0,12}".prop_map(Mutation::Note),
        (0u8..7).prop_map(Mutation::Move),
        "[a-z ]{0,12}".prop_map(Mutation::UserTurn),
        "[a-z ]{0,12}".prop_map(Mutation::AgentLine),
        "[a-z_]{1,8}".prop_map(Mutation::CallTool),
        Just(Mutation::AnswerOldestCall),
        Just(Mutation::CancelOpenCalls),
    ]
}

fn apply(state: &mut ConversationState, m: &Mutation) {
    match m {
        Mutation::TeamSize(v) => state.signals.team_size = *v,
        Mutation::Volume(v) => state.signals.monthly_volume = *v,
        Mutation::AddIntegration(i) => {
            let integration = match i {
                0 => Integration::Salesforce,
                1 => Integration::HubSpot,
                2 => Integration::Zapier,
                3 => Integration::GoogleDrive,
                4 => Integration::Slack,
                _ => Integration::Api,
            };
            let mut known = state.signals.integrations.take().unwrap_or_default();
            known.push(integration);
            state.signals.integrations = Some(known);
        }
        Mutation::ClearIntegrations => state.signals.integrations = Some(Vec::new()),
        Mutation::Urgency(u) => {
            state.signals.urgency = u.map(|u| {
                [
                    Urgency::JustExploring,
                    Urgency::NextQuarter,
                    Urgency::ThisMonth,
                    Urgency::Asap,
                ][u as usize]
            })
        }
        Mutation::Industry(v) => {
            state.signals.industry = v.map(|i| {
                [
                    Industry::Legal,
                    Industry::Retail,
                    Industry::Logistics,
                    Industry::Finance,
                ][i as usize]
            })
        }
        Mutation::Note(text) => state.note(text.clone()),
        Mutation::Move(i) => {
            let _ = state.move_to(Stage::ALL[*i as usize]);
        }
        Mutation::UserTurn(text) => state.transcript.push_user(text.clone()),
        Mutation::AgentLine(text) => state
            .transcript
            .push_agent(text.clone(), SpeechKind::Answer),
        Mutation::CallTool(name) => {
            state
                .transcript
                .record_tool_call(name.clone(), "crm", serde_json::json!({}), None);
        }
        Mutation::AnswerOldestCall => {
            if let Some(id) = state.transcript.unpaired_tool_calls().first() {
                state
                    .transcript
                    .record_result(*id, ToolResult::NotFound)
                    .unwrap();
            }
        }
        Mutation::CancelOpenCalls => {
            state.transcript.cancel_unpaired(CancelReason::BargeIn);
        }
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn guard() -> Arc<Guard> {
    Guard::new(GuardConfig {
        service: "crm".into(),
        retry: RetryConfig {
            max_attempts: 3,
            attempt_timeout: ms(1500),
            backoff: BackoffConfig {
                kind: BackoffKind::Full,
                base: ms(50),
                cap: ms(200),
            },
        },
        breaker: BreakerConfig {
            consecutive_failures: 5,
            window_size: 20,
            min_calls: 10,
            failure_rate: 0.5,
            slow_call_threshold: ms(1000),
            slow_call_rate: 0.8,
            open_base: ms(5000),
            open_cap: ms(60_000),
            half_open_probes: 1,
        },
        bulkhead_size: 8,
        budget: BudgetConfig {
            retry_ratio: 0.2,
            min_retries_per_sec: 5,
            window: ms(10_000),
        },
    })
}

fn runner(seed: u64) -> (ToolRunner, mpsc::UnboundedReceiver<Speech>) {
    let (speech, heard) = mpsc::unbounded_channel();
    let mut runner = ToolRunner::new(
        PhraseSession::new(PhraseBook::embedded(), seed),
        FailurePolicy::default(),
        speech,
    );
    let timing = LadderTiming {
        filler_after: ms(700),
        filler_repeat: ms(1200),
        filler_max: 3,
        budget: ms(3500),
    };
    runner.add_service(
        "crm",
        ServiceBinding::new(guard(), "your account records", timing),
    );
    (runner, heard)
}

fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap()
}

#[derive(Debug, Clone)]
enum Behaviour {
    Answer { after_ms: u64 },
    Fail { after_ms: u64, status: u16 },
    Hang,
    Panic { after_ms: u64 },
}

fn behaviour() -> impl Strategy<Value = Behaviour> {
    prop_oneof![
        (0u64..2000).prop_map(|after_ms| Behaviour::Answer { after_ms }),
        (
            0u64..2000,
            prop_oneof![Just(404u16), Just(500), Just(503), Just(400)]
        )
            .prop_map(|(after_ms, status)| Behaviour::Fail { after_ms, status }),
        Just(Behaviour::Hang),
        (0u64..2000).prop_map(|after_ms| Behaviour::Panic { after_ms }),
    ]
}

async fn act(behaviour: Behaviour) -> Result<ToolAnswer<u32>, CallError> {
    match behaviour {
        Behaviour::Answer { after_ms } => {
            tokio::time::sleep(ms(after_ms)).await;
            Ok(ToolAnswer::Found(7))
        }
        Behaviour::Fail { after_ms, status } => {
            tokio::time::sleep(ms(after_ms)).await;
            Err(CallError::from_status(status, None, None))
        }
        Behaviour::Hang => std::future::pending().await,
        Behaviour::Panic { after_ms } => {
            tokio::time::sleep(ms(after_ms)).await;
            panic!("tool bug")
        }
    }
}

#[derive(Debug, Clone)]
struct PlannedCall {
    behaviour: Behaviour,
    side_effect: u8,
    /// Drop the runner's future after this long (the task running it went away).
    drop_after_ms: Option<u64>,
    /// Barge in after this long.
    barge_in_after_ms: Option<u64>,
}

fn planned_call() -> impl Strategy<Value = PlannedCall> {
    (
        behaviour(),
        0u8..3,
        proptest::option::of(0u64..4000),
        proptest::option::of(0u64..4000),
    )
        .prop_map(
            |(behaviour, side_effect, drop_after_ms, barge_in_after_ms)| PlannedCall {
                behaviour,
                side_effect,
                drop_after_ms,
                barge_in_after_ms,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn restore_undoes_any_sequence_of_mutations(
        before in proptest::collection::vec(mutation(), 0..80),
        inside in proptest::collection::vec(mutation(), 0..80),
    ) {
        let mut state = ConversationState::new();
        for m in &before { apply(&mut state, m); }
        let snapshot = state.snapshot();
        for m in &inside { apply(&mut state, m); }
        state.restore(&snapshot);
        prop_assert_eq!(&state, snapshot.state());
        let json = serde_json::to_string(&state).unwrap();
        let back: ConversationState = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(&back, snapshot.state());
    }

    #[test]
    fn a_tool_that_fails_after_mutating_the_state_leaves_it_rolled_back(
        before in proptest::collection::vec(mutation(), 0..60),
        inside in proptest::collection::vec(mutation(), 0..60),
        seed in any::<u64>(),
    ) {
        let rt = paused_runtime();
        let (state, snapshot) = rt.block_on(async {
            let (mut runner, _heard) = runner(seed);
            let mut state = ConversationState::new();
            for m in &before { apply(&mut state, m); }
            let snapshot = state.snapshot();
            let call = ToolCall::new(ToolSpec::new("enrich", "crm", SideEffect::None), serde_json::json!({}));
            runner
                .run_with_commit(&mut state, call, |_, _| async { Ok(ToolAnswer::Found(1u32)) }, |state, _| {
                    for m in &inside { apply(state, m); }
                    Err(CallError::Decode { detail: "half applied".into() })
                })
                .await
                .unwrap();
            (state, snapshot)
        });
        prop_assert!(state.rolled_back_to(&snapshot));
        // Only the failed call and its phrase were appended, and it is paired.
        let appended = state.transcript.entries_since(snapshot.state().transcript.len());
        let call_id = match &appended[0] { Entry::ToolCall(c) => c.id, other => panic!("{other:?}") };
        prop_assert!(state.transcript.result(call_id).is_some());
        prop_assert_eq!(
            state.transcript.unpaired_tool_calls(),
            snapshot.state().transcript.unpaired_tool_calls()
        );
    }

    #[test]
    fn every_tool_call_is_paired_whatever_moment_the_runner_is_cancelled(
        calls in proptest::collection::vec(planned_call(), 1..8),
        seed in any::<u64>(),
    ) {
        let rt = paused_runtime();
        let (state, abandoned, open_before_shutdown) = rt.block_on(async {
            let (mut runner, _heard) = runner(seed);
            let mut state = ConversationState::new();
            let mut abandoned = 0;
            for planned in calls {
                let side_effect = [SideEffect::None, SideEffect::Idempotent, SideEffect::NonIdempotent][planned.side_effect as usize];
                let mut call = ToolCall::new(ToolSpec::new("tool", "crm", side_effect), serde_json::json!({}));
                if let Some(after) = planned.barge_in_after_ms {
                    let interrupt = Interrupt::new();
                    let trigger = interrupt.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(ms(after)).await;
                        trigger.trigger();
                    });
                    call = call.with_interrupt(interrupt);
                }
                let behaviour = planned.behaviour.clone();
                let run = runner.run(&mut state, call, move |_, _| act(behaviour.clone()));
                match planned.drop_after_ms {
                    Some(after) => {
                        if tokio::time::timeout(ms(after), run).await.is_err() {
                            abandoned += 1;
                        }
                    }
                    None => {
                        run.await.unwrap();
                    }
                }
            }
            let open = state.transcript.unpaired_tool_calls().len();
            // The session's shutdown path.
            state.transcript.cancel_unpaired(CancelReason::Shutdown);
            (state, abandoned, open)
        });
        prop_assert_eq!(open_before_shutdown, abandoned);
        prop_assert_eq!(check_pairing(&state.transcript), Ok(()));
        prop_assert!(state.transcript.unpaired_tool_calls().is_empty());
    }
}
