//! Speech-to-text against the speech simulator: Deepgram streaming and the
//! OpenAI-compatible batch recognizer, each under its guard, and the chain
//! that replays a broken turn so no word is lost.

mod speech_support;

use std::time::Duration;

use speech_support::*;
use voxguard::resilience::{BreakerState, CallError, Deadline, Retryability};
use voxguard::speech::probe::probe_once;
use voxguard::speech::stt::{SttEvent, SttProvider};
use voxguard::speech::{SpeechSettings, SpeechStack, SttSettings};
use voxguard::testbed::speech::{DropClose, FaultSpec, FaultUpdate, Malformed};

const DEMO: &str = "I would like to book a demo for my team";
const EMAIL: &str = "my email is ada at example dot com";

fn silence(ms: usize) -> Vec<i16> {
    vec![0; 16 * ms]
}

#[tokio::test]
async fn deepgram_streams_interim_words_then_the_final_transcript() {
    let sim = sim().await;
    let speech = say(&sim, DEMO);
    let registry = registry();
    let chain = stt_chain(vec![deepgram(&sim, &registry)]);
    let (handle, mut events) = chain.start();
    feed(&handle, &speech).await;
    feed(&handle, &silence(600)).await;
    let (text, seen) = until_final(&mut events).await;
    assert_eq!(text.as_deref(), Some(DEMO), "{seen:?}");
    assert!(
        seen.iter().any(|e| matches!(e, SttEvent::Interim { .. })),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .any(|e| matches!(e, SttEvent::SpeechStarted { .. })),
        "{seen:?}"
    );
    handle.hang_up().await;
}

#[tokio::test]
async fn the_end_of_a_turn_asks_for_the_final_result_at_once() {
    let sim = sim().await;
    let speech = say(&sim, EMAIL);
    let registry = registry();
    let chain = stt_chain(vec![deepgram(&sim, &registry)]);
    let (handle, mut events) = chain.start();
    // No trailing silence: only Finalize can end this turn.
    feed(&handle, &speech).await;
    handle.end_turn().await.unwrap();
    let (text, seen) = until_final(&mut events).await;
    assert_eq!(text.as_deref(), Some(EMAIL));
    assert!(
        seen.iter().any(|e| matches!(
            e,
            SttEvent::Final {
                from_finalize: true,
                ..
            }
        )),
        "{seen:?}"
    );
    handle.hang_up().await;
}

#[tokio::test]
async fn every_turn_on_one_stream_is_finalized_without_a_failover() {
    let sim = sim().await;
    let demo = say(&sim, DEMO);
    let email = say(&sim, EMAIL);
    let registry = registry();
    let chain = stt_chain(vec![deepgram(&sim, &registry)]);
    let (handle, mut events) = chain.start();
    for (speech, words) in [(&demo, DEMO), (&email, EMAIL), (&demo, DEMO)] {
        feed(&handle, speech).await;
        handle.end_turn().await.unwrap();
        // Each Finalize is answered at once; a stream left waiting for an
        // answer to a Finalize it never sent would be abandoned as hung.
        let answered = tokio::time::timeout(Duration::from_secs(3), async {
            let mut seen = Vec::new();
            while let Some(event) = events.recv().await {
                let done = matches!(
                    event,
                    SttEvent::Final {
                        from_finalize: true,
                        ..
                    }
                );
                seen.push(event);
                if done {
                    break;
                }
            }
            seen
        })
        .await
        .expect("the Finalize of every turn is answered");
        assert!(
            answered
                .iter()
                .any(|e| matches!(e, SttEvent::Final { text, .. } if text == words)),
            "{words}: {answered:?}"
        );
        assert!(
            !answered
                .iter()
                .any(|e| matches!(e, SttEvent::Failover { .. })),
            "{answered:?}"
        );
    }
    handle.hang_up().await;
}

#[tokio::test]
async fn a_stream_dropped_mid_utterance_is_replayed_into_the_next_recognizer_and_no_word_is_lost() {
    let sim = sim().await;
    let speech = say(&sim, EMAIL);
    sim.set_faults(FaultUpdate::provider(
        "deepgram",
        FaultSpec {
            drop_rate: 1.0,
            drop_close: DropClose::ServerError1011,
            drop_after_ms: 1_000,
            ..FaultSpec::default()
        },
    ))
    .unwrap();
    let registry = registry();
    let chain = stt_chain(vec![deepgram(&sim, &registry), openai_stt(&sim, &registry)]);
    let (handle, mut events) = chain.start();
    feed(&handle, &speech).await;
    feed(&handle, &silence(200)).await;
    handle.end_turn().await.unwrap();
    let (text, seen) = until_final(&mut events).await;
    assert_eq!(text.as_deref(), Some(EMAIL), "{seen:?}");
    let failover = seen.iter().find_map(|e| match e {
        SttEvent::Failover {
            from, to, error, ..
        } if *to == "stt.openai" => Some((*from, error.clone())),
        _ => None,
    });
    let (from, error) = failover.unwrap_or_else(|| panic!("no failover to stt.openai: {seen:?}"));
    assert_eq!(from, "stt.deepgram");
    assert!(error.is_transient(), "{error}");
    assert!(
        matches!(
            seen.last(),
            Some(SttEvent::Final {
                provider: "stt.openai",
                ..
            })
        ),
        "{seen:?}"
    );
    handle.hang_up().await;
}

#[tokio::test]
async fn a_connection_lost_without_a_close_frame_reconnects_the_same_recognizer_and_replays_the_turn()
 {
    let sim = sim().await;
    let speech = say(&sim, DEMO);
    sim.set_faults(FaultUpdate::provider(
        "deepgram",
        FaultSpec {
            drop_rate: 1.0,
            drop_close: DropClose::Abnormal1006,
            drop_after_ms: 800,
            times: Some(1),
            ..FaultSpec::default()
        },
    ))
    .unwrap();
    let registry = registry();
    let chain = stt_chain(vec![deepgram(&sim, &registry), openai_stt(&sim, &registry)]);
    let (handle, mut events) = chain.start();
    feed(&handle, &speech).await;
    feed(&handle, &silence(600)).await;
    let (text, seen) = until_final(&mut events).await;
    assert_eq!(text.as_deref(), Some(DEMO), "{seen:?}");
    let replayed = seen.iter().find_map(|e| match e {
        SttEvent::Failover {
            from: "stt.deepgram",
            to: "stt.deepgram",
            error,
            replayed,
            ..
        } => Some((error.clone(), *replayed)),
        _ => None,
    });
    let (error, replayed) = replayed.unwrap_or_else(|| panic!("no reconnect: {seen:?}"));
    assert!(error.to_string().contains("1006"), "{error}");
    assert!(replayed >= Duration::from_millis(800), "{replayed:?}");
    assert_eq!(sim.requests_to("deepgram").len(), 2);
    handle.hang_up().await;
}

#[tokio::test]
async fn a_recognizer_that_takes_audio_but_never_answers_is_abandoned_and_the_turn_finished_elsewhere()
 {
    let sim = sim().await;
    let speech = say(&sim, DEMO);
    sim.set_faults(FaultUpdate::provider(
        "deepgram",
        FaultSpec {
            hang_rate: 1.0,
            ..FaultSpec::default()
        },
    ))
    .unwrap();
    let registry = registry();
    let chain = stt_chain(vec![deepgram(&sim, &registry), openai_stt(&sim, &registry)]);
    let (handle, mut events) = chain.start();
    feed(&handle, &speech).await;
    handle.end_turn().await.unwrap();
    let (text, seen) = until_final(&mut events).await;
    assert_eq!(text.as_deref(), Some(DEMO), "{seen:?}");
    assert!(
        seen.iter().any(|e| matches!(
            e,
            SttEvent::Failover {
                error: CallError::Timeout { .. },
                to: "stt.openai",
                ..
            }
        )),
        "{seen:?}"
    );
    handle.hang_up().await;
}

#[tokio::test]
async fn garbage_on_the_socket_is_a_decode_failure_and_fails_over() {
    let sim = sim().await;
    let speech = say(&sim, EMAIL);
    sim.set_faults(FaultUpdate::provider(
        "deepgram",
        FaultSpec {
            malformed_rate: 1.0,
            malformed: Some(Malformed::Garbage),
            ..FaultSpec::default()
        },
    ))
    .unwrap();
    let registry = registry();
    let chain = stt_chain(vec![deepgram(&sim, &registry), openai_stt(&sim, &registry)]);
    let (handle, mut events) = chain.start();
    feed(&handle, &speech).await;
    handle.end_turn().await.unwrap();
    let (text, seen) = until_final(&mut events).await;
    assert_eq!(text.as_deref(), Some(EMAIL), "{seen:?}");
    assert!(
        seen.iter().any(|e| matches!(
            e,
            SttEvent::Failover {
                error: CallError::Decode { .. },
                ..
            }
        )),
        "{seen:?}"
    );
    handle.hang_up().await;
}

#[tokio::test]
async fn with_every_recognizer_down_the_chain_says_so_once_then_recovers() {
    let sim = sim().await;
    let speech = say(&sim, DEMO);
    sim.set_faults(FaultUpdate::preset("stt-down")).unwrap();
    let registry = registry();
    let chain = stt_chain(vec![deepgram(&sim, &registry), openai_stt(&sim, &registry)]);
    let (handle, mut events) = chain.start();
    feed(&handle, &speech).await;
    handle.end_turn().await.unwrap();
    let unavailable = tokio::time::timeout(WAIT, async {
        loop {
            match events.recv().await {
                Some(SttEvent::Unavailable { errors }) => return errors,
                Some(_) => {}
                None => panic!("chain stopped"),
            }
        }
    })
    .await
    .expect("unavailable reported");
    let names: Vec<_> = unavailable.iter().map(|(name, _)| *name).collect();
    assert!(
        names.contains(&"stt.deepgram") && names.contains(&"stt.openai"),
        "{unavailable:?}"
    );

    sim.set_faults(FaultUpdate::preset("healthy")).unwrap();
    tokio::time::sleep(stt_settings().retry_unavailable_after + Duration::from_millis(100)).await;
    feed(&handle, &speech).await;
    handle.end_turn().await.unwrap();
    let (text, seen) = until_final(&mut events).await;
    assert!(
        seen.iter().any(|e| matches!(e, SttEvent::Recovered { .. })),
        "{seen:?}"
    );
    assert!(
        !seen
            .iter()
            .any(|e| matches!(e, SttEvent::Unavailable { .. })),
        "reported twice: {seen:?}"
    );
    assert!(
        text.as_ref().is_some_and(|t| t.contains(DEMO)),
        "{text:?} {seen:?}"
    );
    handle.hang_up().await;
}

#[tokio::test]
async fn a_rate_limited_transcription_is_retried_no_sooner_than_retry_after() {
    let sim = sim().await;
    let speech = say(&sim, EMAIL);
    sim.set_faults(FaultUpdate::provider(
        "openai_stt",
        FaultSpec {
            rate_limit_rate: 1.0,
            retry_after_secs: 1,
            times: Some(1),
            ..FaultSpec::default()
        },
    ))
    .unwrap();
    let registry = registry();
    let chain = stt_chain(vec![openai_stt(&sim, &registry)]);
    let (handle, mut events) = chain.start();
    feed(&handle, &speech).await;
    handle.end_turn().await.unwrap();
    let (text, seen) = until_final(&mut events).await;
    assert_eq!(text.as_deref(), Some(EMAIL), "{seen:?}");
    let requests = sim.requests_to("openai_stt");
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert_eq!(requests[0].fault, "rate_limited");
    assert!(
        requests[1].at_ms >= requests[0].at_ms + 1000,
        "{requests:?}"
    );
    handle.hang_up().await;
}

#[tokio::test]
async fn a_refused_key_is_permanent_and_names_the_variable_to_check() {
    let sim = sim().await;
    let registry = registry();
    let mut settings =
        voxguard::speech::stt::DeepgramSettings::new(sim.deepgram_url(), "wrong".into());
    settings.model = "nova-3".into();
    let deepgram = voxguard::speech::stt::DeepgramStt::new(settings);
    let guard = guard(&registry, "stt.deepgram");
    let outcome = guard
        .call(
            Deadline::after(Duration::from_secs(2)),
            Retryability::Transient,
            |ctx| {
                let deepgram = &deepgram;
                async move { deepgram.connect(&ctx).await.map(|_| ()) }
            },
        )
        .await;
    let error = outcome.result.unwrap_err();
    assert!(
        matches!(error, CallError::Status { code: 401, .. }),
        "{error}"
    );
    assert!(error.to_string().contains("DEEPGRAM_API_KEY"));
    assert_eq!(
        outcome.attempts.len(),
        1,
        "a permanent error is not retried"
    );
}

#[tokio::test]
async fn a_recognizer_whose_breaker_opened_is_probed_back_to_closed_and_used_again() {
    let sim = sim().await;
    let speech = say(&sim, DEMO);
    let registry = registry();
    let mut settings = SpeechSettings::local_only();
    settings.stt = vec![
        (
            SttSettings::Deepgram(voxguard::speech::stt::DeepgramSettings::new(
                sim.deepgram_url(),
                sim.credentials().deepgram.clone(),
            )),
            test_guard("stt.deepgram"),
        ),
        (
            SttSettings::OpenAi(voxguard::speech::stt::OpenAiSttSettings::new(
                sim.openai_base_url(),
                Some(sim.credentials().openai.clone()),
            )),
            test_guard("stt.openai"),
        ),
    ];
    settings.stt_chain = stt_settings();
    let stack = SpeechStack::build(&settings, &registry, reqwest::Client::new()).unwrap();
    let chain = stack.stt.clone().unwrap();
    let deepgram_breaker = registry.get("stt.deepgram").unwrap();

    sim.set_faults(FaultUpdate::provider(
        "deepgram",
        FaultSpec {
            error_rate: 1.0,
            ..FaultSpec::default()
        },
    ))
    .unwrap();
    let SttProvider::Deepgram(deepgram) = chain.backends()[0].provider.as_ref() else {
        unreachable!()
    };
    for _ in 0..3 {
        let _ = chain.backends()[0]
            .guard
            .call(
                Deadline::after(Duration::from_secs(2)),
                Retryability::Transient,
                |ctx| async move { deepgram.connect(&ctx).await.map(|_| ()) },
            )
            .await;
    }
    assert_eq!(deepgram_breaker.state(), BreakerState::Open);

    // While it is open the chain goes straight to the next recognizer.
    let (handle, mut events) = chain.start();
    feed(&handle, &speech).await;
    handle.end_turn().await.unwrap();
    let (text, seen) = until_final(&mut events).await;
    assert_eq!(text.as_deref(), Some(DEMO), "{seen:?}");
    assert!(
        matches!(
            seen.last(),
            Some(SttEvent::Final {
                provider: "stt.openai",
                ..
            })
        ),
        "{seen:?}"
    );

    sim.set_faults(FaultUpdate::preset("healthy")).unwrap();
    let probe = stack
        .probes
        .iter()
        .find(|p| p.guard.service() == "stt.deepgram")
        .unwrap();
    let closed = tokio::time::timeout(WAIT, async {
        loop {
            probe_once(probe).await;
            if deepgram_breaker.state() == BreakerState::Closed {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(closed.is_ok(), "still {:?}", deepgram_breaker.state());

    // The next turn is on the primary again.
    feed(&handle, &speech).await;
    feed(&handle, &silence(600)).await;
    let (text, seen) = until_final(&mut events).await;
    assert_eq!(text.as_deref(), Some(DEMO));
    assert!(
        matches!(
            seen.last(),
            Some(SttEvent::Final {
                provider: "stt.deepgram",
                ..
            })
        ),
        "{seen:?}"
    );
    handle.hang_up().await;
}

#[tokio::test]
async fn frames_at_the_wrong_rate_are_refused_with_what_to_do() {
    let sim = sim().await;
    let registry = registry();
    let chain = stt_chain(vec![deepgram(&sim, &registry)]);
    let (handle, _events) = chain.start();
    let frame = voxguard::media::AudioFrame::silence(48_000, voxguard::media::FrameLength::Ms20);
    let error = handle.push(&frame).unwrap_err();
    assert!(error.to_string().contains("resample"), "{error}");
    handle.hang_up().await;
}

#[tokio::test]
async fn keepalives_hold_a_silent_stream_open() {
    let sim = sim().await;
    sim.set_idle_close(Duration::from_millis(800));
    let speech = say(&sim, DEMO);
    let registry = registry();
    let settings = voxguard::speech::stt::SttChainSettings {
        keepalive_every: Duration::from_millis(250),
        ..stt_settings()
    };
    let chain = voxguard::speech::stt::SttChain::new(vec![deepgram(&sim, &registry)], settings);
    let (handle, mut events) = chain.start();
    // The caller is muted for three idle periods.
    tokio::time::sleep(Duration::from_millis(2_400)).await;
    feed(&handle, &speech).await;
    feed(&handle, &silence(600)).await;
    let (text, seen) = until_final(&mut events).await;
    assert_eq!(text.as_deref(), Some(DEMO), "{seen:?}");
    assert!(
        !seen.iter().any(|e| matches!(e, SttEvent::Failover { .. })),
        "{seen:?}"
    );
    assert_eq!(
        sim.requests_to("deepgram").len(),
        1,
        "one stream throughout"
    );
    handle.hang_up().await;
}

#[tokio::test]
async fn a_stream_closed_for_idleness_is_reopened_and_hears_the_next_turn() {
    let sim = sim().await;
    sim.set_idle_close(Duration::from_millis(500));
    let speech = say(&sim, EMAIL);
    let registry = registry();
    let settings = voxguard::speech::stt::SttChainSettings {
        keepalive_every: Duration::from_secs(30),
        ..stt_settings()
    };
    let chain = voxguard::speech::stt::SttChain::new(vec![deepgram(&sim, &registry)], settings);
    let (handle, mut events) = chain.start();
    // Silent past the idle close; then the caller speaks.
    tokio::time::sleep(Duration::from_millis(900)).await;
    sim.set_idle_close(Duration::from_secs(10));
    feed(&handle, &speech).await;
    handle.end_turn().await.unwrap();
    let (text, seen) = until_final(&mut events).await;
    let closed = seen.iter().find_map(|e| match e {
        SttEvent::Failover { error, .. } => Some(error.clone()),
        _ => None,
    });
    let closed = closed.unwrap_or_else(|| panic!("the idle close is reported: {seen:?}"));
    assert!(closed.to_string().contains("NET-0001"), "{closed}");
    assert_eq!(text.as_deref(), Some(EMAIL), "{seen:?}");
    handle.hang_up().await;
}
