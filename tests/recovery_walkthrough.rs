//! A scripted conversation through the recovery layer, printed for
//! ERROR_RECOVERY_GUIDE.md (`cargo test --test suite recovery_walkthrough:: -- --nocapture`),
//! plus the snapshot-cost measurement the guide quotes.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::{Instant, sleep};
use voxguard::brain::understanding::Integration;
use voxguard::recovery::*;
use voxguard::resilience::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn guard(service: &str) -> Arc<Guard> {
    Guard::new(GuardConfig {
        service: service.into(),
        retry: RetryConfig {
            max_attempts: 3,
            attempt_timeout: Duration::from_secs(10),
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

#[tokio::test(start_paused = true)]
async fn a_conversation_with_a_slow_crm_a_dead_calendar_and_a_handoff() {
    let timing = LadderTiming {
        filler_after: ms(700),
        filler_repeat: ms(1200),
        filler_max: 3,
        budget: ms(3500),
    };
    let (speech, mut heard) = mpsc::unbounded_channel::<Speech>();
    let mut runner = ToolRunner::new(
        PhraseSession::new(PhraseBook::embedded(), 2026),
        FailurePolicy::new(3),
        speech,
    );
    runner.add_service(
        "salesforce",
        ServiceBinding::new(guard("salesforce"), "your account records", timing),
    );
    runner.add_service(
        "chilipiper",
        ServiceBinding::new(guard("chilipiper"), "the calendar", timing),
    );
    let mut state = ConversationState::new();
    let t0 = Instant::now();

    state.transcript.push_user("Hi, it's Dana from Northwind.");
    state.move_to(Stage::Discovery).unwrap();
    let lookup = ToolCall::new(
        ToolSpec::new("crm_lookup", "salesforce", SideEffect::None),
        serde_json::json!({"company": "Northwind"}),
    );
    let found = runner
        .run_with_commit(
            &mut state,
            lookup,
            |_, _| async {
                sleep(ms(1100)).await;
                Ok(ToolAnswer::Found(
                    serde_json::json!({"team_size": 40, "crm": "salesforce"}),
                ))
            },
            |state, _| {
                state.signals.team_size = Some(40);
                state.signals.integrations = Some(vec![Integration::Salesforce]);
                Ok(())
            },
        )
        .await
        .unwrap();
    runner.speak(
        &mut state,
        "I see you're a team of forty on Salesforce.",
        SpeechKind::Answer,
    );

    state.transcript.push_user("Can we find a time on Friday?");
    state.move_to(Stage::NextSteps).unwrap_err(); // not allowed straight from discovery
    state.move_to(Stage::Qualification).unwrap();
    state.move_to(Stage::NextSteps).unwrap();
    let slots = ToolCall::new(
        ToolSpec::new("free_slots", "chilipiper", SideEffect::None),
        serde_json::json!({"day": "friday"}),
    );
    let hang = |_, _| std::future::pending::<Result<ToolAnswer<Vec<String>>, CallError>>();
    let first_failure = runner.run(&mut state, slots.clone(), hang).await.unwrap();
    state.transcript.push_user("Could you try again?");
    let refused = |_, _| async {
        Err::<ToolAnswer<Vec<String>>, _>(CallError::Connect {
            detail: "connection refused".into(),
            sent: false,
        })
    };
    let second_failure = runner.run(&mut state, slots, refused).await.unwrap();
    state.transcript.push_user("Just book me at ten then.");
    let book = ToolCall::new(
        ToolSpec::new("book_meeting", "chilipiper", SideEffect::NonIdempotent),
        serde_json::json!({"day": "friday", "time": "10:00"}),
    );
    let booking = runner
        .run(&mut state, book, |_, _| {
            std::future::pending::<Result<ToolAnswer<String>, CallError>>()
        })
        .await
        .unwrap();

    println!("--- what the caller heard (offset from the start of the conversation)");
    while let Ok(line) = heard.try_recv() {
        println!(
            "{:>7} {:<15} {}",
            format!("{}ms", (line.at - t0).as_millis()),
            format!("{:?}", line.kind),
            line.text
        );
    }
    println!("--- tool outcomes");
    for (name, kind, first, resolved, action) in [
        (
            "crm_lookup",
            found.kind,
            found.first_speech_at,
            found.resolved_at,
            found.action,
        ),
        (
            "free_slots",
            first_failure.kind,
            first_failure.first_speech_at,
            first_failure.resolved_at,
            first_failure.action,
        ),
        (
            "free_slots",
            second_failure.kind,
            second_failure.first_speech_at,
            second_failure.resolved_at,
            second_failure.action,
        ),
        (
            "book_meeting",
            booking.kind,
            booking.first_speech_at,
            booking.resolved_at,
            booking.action,
        ),
    ] {
        println!(
            "{name:<13} {kind:?} first_speech_at={first:?} resolved_at={resolved:?} action={action:?}"
        );
    }
    println!("--- transcript (JSON, one entry a line)");
    for entry in state.transcript.iter() {
        println!("{}", serde_json::to_string(entry).unwrap());
    }

    assert_eq!(found.kind, OutcomeKind::Ok);
    assert_eq!(state.signals.team_size, Some(40));
    assert_eq!(first_failure.kind, OutcomeKind::Fallback);
    assert_eq!(booking.kind, OutcomeKind::UnknownOutcome);
    assert_eq!(booking.action, SessionAction::HandOff);
    assert_eq!(check_pairing(&state.transcript), Ok(()));
}

#[test]
fn a_snapshot_costs_a_fraction_of_a_deep_copy_on_a_long_call() {
    let mut state = ConversationState::new();
    for i in 0..2_000 {
        state
            .transcript
            .push_user(format!("caller turn number {i} with a few words in it"));
        let id = state.transcript.record_tool_call(
            "crm_lookup",
            "salesforce",
            serde_json::json!({"i": i}),
            None,
        );
        state
            .transcript
            .record_result(
                id,
                ToolResult::Ok {
                    value: serde_json::json!({"found": i}),
                },
            )
            .unwrap();
    }
    let entries: Vec<Entry> = state.transcript.iter().cloned().collect();
    let rounds = 200;

    let started = std::time::Instant::now();
    for _ in 0..rounds {
        std::hint::black_box(state.snapshot());
    }
    let snapshot_cost = started.elapsed() / rounds;
    let started = std::time::Instant::now();
    for _ in 0..rounds {
        std::hint::black_box(entries.clone());
    }
    let deep_copy_cost = started.elapsed() / rounds;
    println!(
        "{} transcript entries: snapshot {:?}, deep copy of the entries {:?}",
        state.transcript.len(),
        snapshot_cost,
        deep_copy_cost
    );

    let snapshot = state.snapshot();
    state.transcript.push_user("one more");
    state.restore(&snapshot);
    assert_eq!(&state, snapshot.state());
}
