//! ToolRunner behaviour on tokio's paused clock: the latency ladder, rollback,
//! pairing, honest phrases, side-effect rules and the session failure policy.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::{Instant, sleep};
use voxguard::recovery::*;
use voxguard::resilience::*;

const MS: fn(u64) -> Duration = Duration::from_millis;

fn voice_timing() -> LadderTiming {
    LadderTiming {
        filler_after: MS(700),
        filler_repeat: MS(1200),
        filler_max: 3,
        budget: MS(3500),
    }
}

fn guard(service: &str) -> Arc<Guard> {
    Guard::new(GuardConfig {
        service: service.into(),
        // Longer than the budget: the call's deadline is what stops a hang.
        retry: RetryConfig {
            max_attempts: 3,
            attempt_timeout: Duration::from_secs(10),
            backoff: BackoffConfig {
                kind: BackoffKind::Full,
                base: MS(50),
                cap: MS(200),
            },
        },
        breaker: BreakerConfig {
            consecutive_failures: 10,
            window_size: 20,
            min_calls: 10,
            failure_rate: 0.5,
            slow_call_threshold: Duration::from_secs(1),
            slow_call_rate: 0.8,
            open_base: Duration::from_secs(5),
            open_cap: Duration::from_secs(60),
            half_open_probes: 1,
        },
        bulkhead_size: 8,
        budget: BudgetConfig {
            retry_ratio: 0.2,
            min_retries_per_sec: 5,
            window: Duration::from_secs(10),
        },
    })
}

struct Rig {
    runner: ToolRunner,
    heard: mpsc::UnboundedReceiver<Speech>,
    state: ConversationState,
    book: Arc<PhraseBook>,
}

fn rig(seed: u64) -> Rig {
    rig_with(seed, BreakerState::Closed)
}

fn rig_with(seed: u64, breaker: BreakerState) -> Rig {
    let (speech, heard) = mpsc::unbounded_channel();
    let book = PhraseBook::embedded();
    let mut runner = ToolRunner::new(
        PhraseSession::new(book.clone(), seed),
        FailurePolicy::default(),
        speech,
    );
    for (service, display) in [
        ("calendar", "the calendar"),
        ("crm", "your account records"),
    ] {
        let binding = ServiceBinding::new(guard(service), display, voice_timing())
            .with_breaker_probe(Arc::new(move || breaker));
        runner.add_service(service, binding);
    }
    let mut state = ConversationState::new();
    state.move_to(Stage::Discovery).unwrap();
    state.signals.team_size = Some(40);
    state.transcript.push_user("Can we meet Friday?");
    Rig {
        runner,
        heard,
        state,
        book,
    }
}

fn drain(heard: &mut mpsc::UnboundedReceiver<Speech>) -> Vec<Speech> {
    std::iter::from_fn(|| heard.try_recv().ok()).collect()
}

fn read(tool: &str) -> ToolCall {
    ToolCall::new(
        ToolSpec::new(tool, "calendar", SideEffect::None),
        serde_json::json!({"day": "friday"}),
    )
}

fn write(tool: &str, side_effect: SideEffect) -> ToolCall {
    ToolCall::new(
        ToolSpec::new(tool, "calendar", side_effect),
        serde_json::json!({"slot": "10:00"}),
    )
}

fn texts_of(
    book: &PhraseBook,
    category: Category,
    level: Option<Level>,
    display: &str,
) -> Vec<String> {
    book.variants(category)
        .iter()
        .filter(|v| level.is_none() || v.level.is_none() || v.level == level)
        .map(|v| capitalise_sentences(&v.text.replace("{service}", display)))
        .collect()
}

/// Sentence starts are capitalised after the display name is filled in.
fn capitalise_sentences(text: &str) -> String {
    let mut out = String::new();
    let mut start = true;
    for c in text.chars() {
        if start && c.is_alphabetic() {
            out.extend(c.to_uppercase());
            start = false;
        } else {
            out.push(c);
            if c.is_alphabetic() {
                start = false;
            }
        }
        if matches!(c, '.' | '!' | '?') {
            start = true;
        }
    }
    out
}

#[tokio::test(start_paused = true)]
async fn a_hanging_service_gets_a_filler_exactly_at_filler_after_and_no_long_silence_until_it_resolves()
 {
    let mut rig = rig(1);
    let timing = voice_timing();
    let started = Instant::now();
    let outcome = rig
        .runner
        .run(&mut rig.state, read("free_slots"), |_, _| {
            std::future::pending::<Result<ToolAnswer<()>, CallError>>()
        })
        .await
        .unwrap();
    let heard = drain(&mut rig.heard);

    assert_eq!(outcome.first_speech_at, Some(timing.filler_after));
    assert_eq!(heard[0].at - started, timing.filler_after);
    assert_eq!(heard[0].kind, SpeechKind::Filler);
    let mut last = started;
    for (i, line) in heard.iter().enumerate() {
        let allowed = if i == 0 {
            timing.filler_after
        } else {
            timing.filler_repeat
        };
        assert!(
            line.at - last <= allowed,
            "silence of {:?} before line {i}",
            line.at - last
        );
        last = line.at;
    }
    assert!(outcome.resolved_at <= timing.budget);
    assert_eq!(heard.last().unwrap().kind, SpeechKind::Failure);
    assert_eq!(heard.last().unwrap().at - started, outcome.resolved_at);
    assert_eq!(outcome.kind, OutcomeKind::Fallback);
}

#[tokio::test(start_paused = true)]
async fn the_ladder_speaks_filler_then_still_working_at_most_filler_max_times() {
    let mut rig = rig(2);
    rig.runner
        .run(&mut rig.state, read("free_slots"), |_, _| {
            std::future::pending::<Result<ToolAnswer<()>, CallError>>()
        })
        .await
        .unwrap();
    let kinds: Vec<SpeechKind> = drain(&mut rig.heard).iter().map(|s| s.kind).collect();
    assert_eq!(
        kinds,
        [
            SpeechKind::Filler,
            SpeechKind::StillWorking,
            SpeechKind::StillWorking,
            SpeechKind::Failure
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_fast_success_says_nothing_but_leaves_the_answer_to_the_caller() {
    let mut rig = rig(3);
    let outcome = rig
        .runner
        .run(&mut rig.state, read("free_slots"), |_, _| async {
            sleep(MS(300)).await;
            Ok(ToolAnswer::Found(vec!["10:00"]))
        })
        .await
        .unwrap();
    assert!(drain(&mut rig.heard).is_empty());
    assert_eq!(outcome.kind, OutcomeKind::Ok);
    assert_eq!(outcome.first_speech_at, None);
    assert_eq!(outcome.resolved_at, MS(300));
    rig.runner
        .speak(&mut rig.state, "Friday at ten works.", SpeechKind::Answer);
    let heard = drain(&mut rig.heard);
    assert_eq!(heard.len(), 1);
    assert_eq!(heard[0].kind, SpeechKind::Answer);
    assert_eq!(check_pairing(&rig.state.transcript), Ok(()));
}

#[tokio::test(start_paused = true)]
async fn an_answer_at_exactly_filler_after_wins_over_the_filler() {
    let mut rig = rig(4);
    let outcome = rig
        .runner
        .run(&mut rig.state, read("free_slots"), |_, _| async {
            sleep(MS(700)).await;
            Ok(ToolAnswer::Found(1))
        })
        .await
        .unwrap();
    assert!(drain(&mut rig.heard).is_empty());
    assert_eq!(outcome.kind, OutcomeKind::Ok);
}

#[tokio::test(start_paused = true)]
async fn with_a_single_attempt_no_line_ever_promises_a_retry() {
    for seed in 0..40 {
        let mut rig = rig(seed);
        let outcome = rig
            .runner
            .run(&mut rig.state, read("free_slots"), |_, _| {
                std::future::pending::<Result<ToolAnswer<()>, CallError>>()
            })
            .await
            .unwrap();
        assert!(
            outcome.spoken.iter().all(|l| l.promises == Promise::None),
            "seed {seed}"
        );
        assert!(!outcome.broke_a_promise());
    }
}

#[tokio::test(start_paused = true)]
async fn a_failure_rolls_the_state_back_and_pairs_the_call_with_its_error() {
    let mut rig = rig(5);
    let snapshot = rig.state.snapshot();
    let outcome = rig
        .runner
        .run(&mut rig.state, read("free_slots"), |_, _| async {
            Err::<ToolAnswer<()>, _>(CallError::Connect {
                detail: "refused".into(),
                sent: false,
            })
        })
        .await
        .unwrap();
    assert_eq!(outcome.kind, OutcomeKind::Fallback);
    assert!(rig.state.rolled_back_to(&snapshot));
    assert_eq!(
        rig.state.transcript.result(outcome.call_id),
        Some(&ToolResult::Error {
            error: ErrorKind::Connect,
            message: "connection failed: refused".into()
        })
    );
    let heard = drain(&mut rig.heard);
    let expected = texts_of(
        &rig.book,
        Category::ConnectionIssue,
        Some(Level::First),
        "the calendar",
    );
    assert!(expected.contains(&heard[0].text), "{:?}", heard[0].text);
}

#[tokio::test(start_paused = true)]
async fn a_failing_commit_undoes_its_partial_mutations() {
    let mut rig = rig(6);
    let snapshot = rig.state.snapshot();
    let outcome = rig
        .runner
        .run_with_commit(
            &mut rig.state,
            read("lookup_company"),
            |_, _| async { Ok(ToolAnswer::Found(serde_json::json!({"employees": "many"}))) },
            |state, _answer| {
                state.signals.industry = Some(voxguard::brain::understanding::Industry::Retail);
                state.note("half-applied");
                Err(CallError::Decode {
                    detail: "employees is not a number".into(),
                })
            },
        )
        .await
        .unwrap();
    assert_eq!(outcome.kind, OutcomeKind::Fallback);
    assert!(rig.state.rolled_back_to(&snapshot));
    assert_eq!(rig.state.signals, snapshot.state().signals);
}

#[tokio::test(start_paused = true)]
async fn failures_escalate_from_first_to_repeat_for_the_same_service() {
    let mut rig = rig(7);
    let refused = |_, _| async {
        Err::<ToolAnswer<()>, _>(CallError::Connect {
            detail: "refused".into(),
            sent: false,
        })
    };
    rig.runner
        .run(&mut rig.state, read("a"), refused)
        .await
        .unwrap();
    rig.runner
        .run(&mut rig.state, read("b"), refused)
        .await
        .unwrap();
    let heard = drain(&mut rig.heard);
    let first = texts_of(
        &rig.book,
        Category::ConnectionIssue,
        Some(Level::First),
        "the calendar",
    );
    let repeat = texts_of(
        &rig.book,
        Category::ConnectionIssue,
        Some(Level::Repeat),
        "the calendar",
    );
    assert!(first.contains(&heard[0].text));
    let said: Vec<_> = heard.iter().map(|s| (s.kind, s.text.clone())).collect();
    assert!(
        repeat.contains(&heard[1].text) && !first.contains(&heard[1].text),
        "{said:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn an_open_breaker_is_spoken_as_service_unavailable_at_the_open_level() {
    let mut rig = rig(8);
    rig.runner
        .run(&mut rig.state, read("a"), |_, _| async {
            Err::<ToolAnswer<()>, _>(CallError::Rejected(Rejection::BreakerOpen))
        })
        .await
        .unwrap();
    let heard = drain(&mut rig.heard);
    let open = texts_of(
        &rig.book,
        Category::ServiceUnavailable,
        Some(Level::Open),
        "the calendar",
    );
    assert!(open.contains(&heard[0].text), "{:?}", heard[0].text);
}

#[tokio::test(start_paused = true)]
async fn the_breaker_probe_decides_the_level_of_other_errors() {
    let mut rig = rig_with(9, BreakerState::Open);
    rig.runner
        .run(&mut rig.state, read("a"), |_, _| async {
            Err::<ToolAnswer<()>, _>(CallError::Timeout { after: MS(10) })
        })
        .await
        .unwrap();
    let heard = drain(&mut rig.heard);
    let open = texts_of(
        &rig.book,
        Category::Timeout,
        Some(Level::Open),
        "the calendar",
    );
    assert!(open.contains(&heard[0].text), "{:?}", heard[0].text);
}

#[tokio::test(start_paused = true)]
async fn a_non_idempotent_write_that_times_out_is_an_unknown_outcome() {
    let mut rig = rig(10);
    let outcome = rig
        .runner
        .run(
            &mut rig.state,
            write("book_meeting", SideEffect::NonIdempotent),
            |_, _| std::future::pending::<Result<ToolAnswer<()>, CallError>>(),
        )
        .await
        .unwrap();
    assert_eq!(outcome.kind, OutcomeKind::UnknownOutcome);
    assert!(matches!(
        rig.state.transcript.result(outcome.call_id),
        Some(ToolResult::UnknownOutcome { .. })
    ));
    let last = drain(&mut rig.heard).pop().unwrap();
    assert_eq!(last.kind, SpeechKind::UnknownOutcome);
    assert!(!last.interruptible);
}

#[tokio::test(start_paused = true)]
async fn a_write_rejected_before_sending_is_a_plain_failure_not_an_unknown_outcome() {
    let mut rig = rig(11);
    let outcome = rig
        .runner
        .run(
            &mut rig.state,
            write("book_meeting", SideEffect::NonIdempotent),
            |_, _| async {
                Err::<ToolAnswer<()>, _>(CallError::Connect {
                    detail: "refused".into(),
                    sent: false,
                })
            },
        )
        .await
        .unwrap();
    assert_eq!(outcome.kind, OutcomeKind::Fallback);
}

#[tokio::test(start_paused = true)]
async fn writes_get_one_idempotency_key_per_call_and_reads_none() {
    let mut rig = rig(12);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let outcome = rig
        .runner
        .run(
            &mut rig.state,
            write("update_lead", SideEffect::Idempotent),
            move |_, call: ToolCallCtx| {
                log.lock().unwrap().push(call.idempotency_key.clone());
                async { Ok(ToolAnswer::Found(true)) }
            },
        )
        .await
        .unwrap();
    let key = seen.lock().unwrap()[0]
        .clone()
        .expect("a write carries a key");
    assert_eq!(
        rig.state
            .transcript
            .call(outcome.call_id)
            .unwrap()
            .idempotency_key
            .as_deref(),
        Some(key.as_str())
    );

    let log = seen.clone();
    rig.runner
        .run(
            &mut rig.state,
            read("lookup"),
            move |_, call: ToolCallCtx| {
                log.lock().unwrap().push(call.idempotency_key.clone());
                async { Ok(ToolAnswer::Found(true)) }
            },
        )
        .await
        .unwrap();
    assert_eq!(seen.lock().unwrap()[1], None);
}

#[tokio::test(start_paused = true)]
async fn a_panicking_tool_is_caught_rolled_back_and_paired() {
    let mut rig = rig(13);
    let snapshot = rig.state.snapshot();
    let outcome = rig
        .runner
        .run(&mut rig.state, read("lookup"), |_, _| async {
            if true {
                panic!("tool bug");
            }
            Ok(ToolAnswer::Found(()))
        })
        .await
        .unwrap();
    assert_eq!(outcome.kind, OutcomeKind::Fallback);
    assert!(matches!(outcome.error, Some(ToolFailure::Panicked(ref m)) if m == "tool bug"));
    assert!(rig.state.rolled_back_to(&snapshot));
    assert_eq!(check_pairing(&rig.state.transcript), Ok(()));
    assert_eq!(drain(&mut rig.heard)[0].kind, SpeechKind::Failure);
}

#[tokio::test(start_paused = true)]
async fn barge_in_cancels_the_call_rolls_back_and_pairs_it_as_cancelled() {
    let mut rig = rig(14);
    let snapshot = rig.state.snapshot();
    let interrupt = Interrupt::new();
    let trigger = interrupt.clone();
    tokio::spawn(async move {
        sleep(MS(1000)).await;
        trigger.trigger();
    });
    let outcome = rig
        .runner
        .run(
            &mut rig.state,
            read("lookup").with_interrupt(interrupt),
            |_, _| std::future::pending::<Result<ToolAnswer<()>, CallError>>(),
        )
        .await
        .unwrap();
    assert_eq!(outcome.kind, OutcomeKind::Cancelled);
    assert_eq!(outcome.resolved_at, MS(1000));
    assert!(rig.state.rolled_back_to(&snapshot));
    assert_eq!(
        rig.state.transcript.result(outcome.call_id),
        Some(&ToolResult::Cancelled {
            reason: CancelReason::BargeIn,
            maybe_applied: false
        })
    );
    // Only the filler was spoken; nothing after the caller started talking.
    assert_eq!(drain(&mut rig.heard).len(), 1);
}

#[tokio::test(start_paused = true)]
async fn not_found_is_an_answer_committed_and_spoken_honestly() {
    let mut rig = rig(15);
    let outcome = rig
        .runner
        .run_with_commit(
            &mut rig.state,
            read("lookup"),
            |_, _| async { Ok(ToolAnswer::<u32>::NotFound) },
            |state, _| {
                state.note("no CRM record");
                Ok(())
            },
        )
        .await
        .unwrap();
    assert_eq!(outcome.kind, OutcomeKind::Ok);
    assert_eq!(rig.state.notes.last().unwrap().text, "no CRM record");
    assert_eq!(
        rig.state.transcript.result(outcome.call_id),
        Some(&ToolResult::NotFound)
    );
    assert_eq!(drain(&mut rig.heard)[0].kind, SpeechKind::NotFound);
}

#[tokio::test(start_paused = true)]
async fn three_failures_in_a_row_hand_off_and_a_404_does_not_count() {
    let mut rig = rig(16);
    let broken = |_, _| async {
        Err::<ToolAnswer<()>, _>(CallError::Status {
            code: 500,
            detail: None,
        })
    };
    let missing = |_, _| async {
        Err::<ToolAnswer<()>, _>(CallError::Status {
            code: 404,
            detail: None,
        })
    };
    assert_eq!(
        rig.runner
            .run(&mut rig.state, read("a"), broken)
            .await
            .unwrap()
            .action,
        SessionAction::Continue
    );
    assert_eq!(
        rig.runner
            .run(&mut rig.state, read("b"), missing)
            .await
            .unwrap()
            .action,
        SessionAction::Continue
    );
    assert_eq!(
        rig.runner
            .run(&mut rig.state, read("c"), broken)
            .await
            .unwrap()
            .action,
        SessionAction::Continue
    );
    let third = rig
        .runner
        .run(&mut rig.state, read("d"), broken)
        .await
        .unwrap();
    assert_eq!(third.action, SessionAction::HandOff);
    let kinds: Vec<SpeechKind> = drain(&mut rig.heard).iter().map(|s| s.kind).collect();
    assert_eq!(kinds[1], SpeechKind::NotFound);
    assert_eq!(
        kinds[kinds.len() - 2..],
        [SpeechKind::Failure, SpeechKind::Handoff]
    );
}

#[tokio::test(start_paused = true)]
async fn a_service_that_works_again_is_announced_as_recovered() {
    let mut rig = rig(17);
    rig.runner
        .run(&mut rig.state, read("a"), |_, _| async {
            Err::<ToolAnswer<()>, _>(CallError::Timeout { after: MS(5) })
        })
        .await
        .unwrap();
    rig.runner
        .run(&mut rig.state, read("b"), |_, _| async {
            Ok(ToolAnswer::Found(1))
        })
        .await
        .unwrap();
    let heard = drain(&mut rig.heard);
    assert_eq!(heard.last().unwrap().kind, SpeechKind::Recovered);
    assert!(
        texts_of(&rig.book, Category::Recovered, None, "the calendar")
            .contains(&heard.last().unwrap().text)
    );
}

#[tokio::test(start_paused = true)]
async fn alternatives_are_offered_only_when_the_caller_has_one() {
    let mut without = Vec::new();
    let mut with = Vec::new();
    for seed in 0..60 {
        let mut rig = rig(seed);
        let fail = |_, _| async {
            Err::<ToolAnswer<()>, _>(CallError::Connect {
                detail: "x".into(),
                sent: false,
            })
        };
        without.extend(
            rig.runner
                .run(&mut rig.state, read("a"), fail)
                .await
                .unwrap()
                .spoken,
        );
        with.extend(
            rig.runner
                .run(&mut rig.state, read("b").with_alternative(), fail)
                .await
                .unwrap()
                .spoken,
        );
    }
    assert!(without.iter().all(|l| l.promises == Promise::None));
    assert!(with.iter().any(|l| l.promises == Promise::Alternative));
    assert!(with.iter().all(|l| l.promises != Promise::Retry));
}

#[tokio::test(start_paused = true)]
async fn a_tool_on_an_unbound_service_is_refused_before_anything_is_recorded() {
    let mut rig = rig(18);
    let before = rig.state.clone();
    let call = ToolCall::new(
        ToolSpec::new("x", "nowhere", SideEffect::None),
        serde_json::Value::Null,
    );
    let err = rig
        .runner
        .run(&mut rig.state, call, |_, _| async {
            Ok(ToolAnswer::Found(()))
        })
        .await
        .unwrap_err();
    assert_eq!(
        err,
        RunnerError::UnknownService {
            tool: "x".into(),
            service: "nowhere".into()
        }
    );
    assert_eq!(rig.state, before);
}

#[tokio::test(start_paused = true)]
async fn a_runner_and_its_calls_can_live_on_a_spawned_session_task() {
    fn assert_send<T: Send>(_: &T) {}
    let mut rig = rig(19);
    assert_send(&rig.runner);
    let handle = tokio::spawn(async move {
        rig.runner
            .run(&mut rig.state, read("lookup"), |_, _| async {
                Ok(ToolAnswer::Found(1u8))
            })
            .await
            .unwrap()
            .kind
    });
    assert_eq!(handle.await.unwrap(), OutcomeKind::Ok);
}

/// Needs the retrying Guard (the provisional one makes a single attempt):
/// once attempt 2 has started, a ladder line may promise the retry, and
/// whatever was promised was kept.
#[tokio::test(start_paused = true)]
async fn a_retry_may_be_promised_only_once_it_has_started() {
    let mut promised = false;
    for seed in 0..40 {
        let mut rig = rig(seed);
        let outcome = rig
            .runner
            .run(
                &mut rig.state,
                read("lookup"),
                |attempt: AttemptCtx, _| async move {
                    if attempt.attempt == 1 {
                        sleep(MS(800)).await;
                        return Err(CallError::Connect {
                            detail: "reset".into(),
                            sent: false,
                        });
                    }
                    std::future::pending::<Result<ToolAnswer<()>, CallError>>().await
                },
            )
            .await
            .unwrap();
        assert!(outcome.attempts_started >= 2, "the guard did not retry");
        assert!(!outcome.broke_a_promise());
        for line in &outcome.spoken {
            if line.promises == Promise::Retry {
                assert!(line.at > MS(800), "retry promised before it started");
                promised = true;
            }
        }
    }
    assert!(promised, "no seed ever used a retry line");
}
