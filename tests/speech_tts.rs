//! Text-to-speech against the speech simulator and the real espeak-ng: each
//! voice's happy path, every fault a voice can have, and the chain that
//! carries an answer to the next voice without deadlocking.

mod speech_support;

use std::time::Duration;

use speech_support::*;
use tokio::sync::mpsc;
use voxguard::resilience::{BreakerState, CallError, Deadline, Retryability};
use voxguard::speech::tts::{TtsChainError, TtsEvent, TtsLimits, TtsVoice, first_audio};
use voxguard::testbed::speech::{DropClose, FaultSpec, FaultUpdate, Malformed};

/// Speak `text` on `chain`, collecting every event.
async fn speak(
    chain: &voxguard::speech::tts::TtsChain,
    text: &str,
) -> (
    Result<voxguard::speech::tts::TtsReport, TtsChainError>,
    Vec<TtsEvent>,
) {
    let (tx, mut rx) = mpsc::channel(1024);
    let collect = tokio::spawn(async move {
        let mut events = Vec::new();
        while let Some(event) = rx.recv().await {
            events.push(event);
        }
        events
    });
    let result = tokio::time::timeout(WAIT, chain.speak(text, &tx))
        .await
        .expect("speaking is bounded");
    drop(tx);
    (result, collect.await.unwrap())
}

fn audio_of(events: &[TtsEvent], voice: &str) -> usize {
    events
        .iter()
        .filter_map(|e| match e {
            TtsEvent::Audio(chunk) if chunk.voice == voice => Some(chunk.chunk.samples.len()),
            _ => None,
        })
        .sum()
}

/// Synthesize one sentence with a voice under its guard, whole.
async fn synthesize(voice: &TtsVoice, text: &str) -> Result<(u32, usize), CallError> {
    let limits = TtsLimits {
        max_audio_per_sentence: Duration::from_secs(10),
        chunk_stall: Duration::from_millis(800),
    };
    let outcome = voice
        .guard
        .call(
            Deadline::after(Duration::from_secs(3)),
            Retryability::Never,
            |ctx| async move { first_audio(&voice.provider, &ctx, text, limits).await },
        )
        .await;
    let (chunk, mut stream) = outcome.result?;
    let rate = chunk.sample_rate;
    let mut samples = chunk.samples.len();
    while let Some(chunk) = stream.next().await? {
        assert_eq!(chunk.sample_rate, rate);
        samples += chunk.samples.len();
    }
    Ok((rate, samples))
}

#[tokio::test]
async fn openai_speech_streams_24_khz_pcm_as_long_as_the_text_asks() {
    let sim = sim().await;
    let voice = openai_tts(&sim, &registry());
    let (rate, samples) = synthesize(&voice, "Thanks for calling.").await.unwrap();
    assert_eq!(rate, 24_000);
    // The simulator speaks 65 ms a character.
    assert_eq!(samples, "Thanks for calling.".len() * 24_000 * 65 / 1000);
}

#[tokio::test]
async fn cartesia_streams_the_rate_the_request_declared() {
    let sim = sim().await;
    let voice = cartesia(&sim, &registry());
    let (rate, samples) = synthesize(&voice, "One moment please.").await.unwrap();
    assert_eq!(rate, 24_000);
    assert_eq!(samples, "One moment please.".len() * 24_000 * 65 / 1000);
}

#[tokio::test]
async fn a_voice_answering_without_audio_is_a_failure_not_a_wait() {
    let sim = sim().await;
    sim.set_faults(FaultUpdate::preset("zero-audio")).unwrap();
    let registry = registry();
    for voice in [openai_tts(&sim, &registry), cartesia(&sim, &registry)] {
        let error = synthesize(&voice, "Hello there.").await.unwrap_err();
        assert!(
            matches!(&error, CallError::Decode { detail } if detail.contains("without any audio")),
            "{}: {error}",
            voice.provider.name()
        );
    }
}

#[tokio::test]
async fn malformed_audio_is_named_for_what_is_wrong_with_it() {
    let sim = sim().await;
    let registry = registry();
    let voice = openai_tts(&sim, &registry);
    for (kind, expected) in [
        (Malformed::OddBytes, "odd number of bytes"),
        (Malformed::WrongRate, "declared at 16000 Hz where 24000 Hz"),
        (Malformed::Garbage, "not the protocol"),
    ] {
        sim.set_faults(FaultUpdate::provider(
            "openai_tts",
            FaultSpec {
                malformed_rate: 1.0,
                malformed: Some(kind),
                ..FaultSpec::default()
            },
        ))
        .unwrap();
        let error = synthesize(&voice, "Hello there.").await.unwrap_err();
        assert!(error.to_string().contains(expected), "{kind:?}: {error}");
        assert!(!error.is_transient());
    }
    let voice = cartesia(&sim, &registry);
    for (kind, expected) in [
        (Malformed::OddBytes, "odd number of bytes"),
        (Malformed::Garbage, "not JSON"),
    ] {
        sim.set_faults(FaultUpdate::provider(
            "cartesia",
            FaultSpec {
                malformed_rate: 1.0,
                malformed: Some(kind),
                ..FaultSpec::default()
            },
        ))
        .unwrap();
        let error = synthesize(&voice, "Hello there.").await.unwrap_err();
        assert!(error.to_string().contains(expected), "{kind:?}: {error}");
    }
}

#[tokio::test]
async fn an_endless_stream_is_cut_at_the_cap() {
    let sim = sim().await;
    let voice = openai_tts(&sim, &registry());
    let limits = TtsLimits {
        max_audio_per_sentence: Duration::from_millis(500),
        chunk_stall: Duration::from_millis(800),
    };
    let outcome = voice
        .guard
        .call(
            Deadline::after(Duration::from_secs(3)),
            Retryability::Never,
            |ctx| {
                let voice = &voice;
                async move {
                    first_audio(
                        &voice.provider,
                        &ctx,
                        &"a long sentence ".repeat(10),
                        limits,
                    )
                    .await
                }
            },
        )
        .await;
    let mut stream = match outcome.result {
        Ok((_, stream)) => stream,
        Err(error) => panic!("{error}"),
    };
    let error = loop {
        match stream.next().await {
            Ok(Some(_)) => {}
            Ok(None) => panic!("the stream ended under the cap"),
            Err(error) => break error,
        }
    };
    assert!(error.to_string().contains("does not end"), "{error}");
}

#[tokio::test(start_paused = true)]
async fn a_hanging_voice_is_bounded_by_its_deadline() {
    let sim = sim().await;
    sim.set_faults(FaultUpdate::preset("tts-hang")).unwrap();
    let voice = openai_tts(&sim, &registry());
    let started = tokio::time::Instant::now();
    let deadline = Deadline::after(Duration::from_millis(1500));
    let outcome = voice
        .guard
        .call(deadline, Retryability::Transient, |ctx| {
            let voice = &voice;
            async move { first_audio(&voice.provider, &ctx, "Hello.", TtsLimits::default()).await }
        })
        .await;
    assert!(matches!(outcome.result, Err(CallError::Timeout { .. })));
    assert!(
        started.elapsed() <= Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    let attempt_total: Duration = outcome.attempts.iter().map(|a| a.duration).sum();
    assert!(attempt_total <= Duration::from_millis(1500));
}

#[tokio::test]
async fn a_rate_limited_voice_reports_how_long_to_wait() {
    let sim = sim().await;
    sim.set_faults(FaultUpdate::provider(
        "openai_tts",
        FaultSpec {
            rate_limit_rate: 1.0,
            retry_after_secs: 7,
            ..FaultSpec::default()
        },
    ))
    .unwrap();
    let voice = openai_tts(&sim, &registry());
    let error = synthesize(&voice, "Hello.").await.unwrap_err();
    assert_eq!(error.retry_after(), Some(Duration::from_secs(7)));
}

#[tokio::test]
async fn the_chain_speaks_sentence_by_sentence_on_the_first_voice() {
    let sim = sim().await;
    let registry = registry();
    let chain = tts_chain(vec![openai_tts(&sim, &registry), cartesia(&sim, &registry)]);
    let (result, events) = speak(&chain, "Hello there. I found your account. One moment!").await;
    let report = result.unwrap();
    assert_eq!(report.sentences, 3);
    assert_eq!(report.voices, ["tts.openai"; 3]);
    assert_eq!(report.fallbacks, 0);
    let sentences: Vec<usize> = events
        .iter()
        .filter_map(|e| match e {
            TtsEvent::Audio(chunk) => Some(chunk.sentence),
            _ => None,
        })
        .collect();
    assert!(sentences.windows(2).all(|w| w[0] <= w[1]), "in order");
    assert_eq!(sentences.last(), Some(&2));
}

#[tokio::test]
async fn zero_audio_from_the_primary_falls_back_without_deadlock() {
    let sim = sim().await;
    sim.set_faults(FaultUpdate::provider(
        "openai_tts",
        FaultSpec {
            zero_audio_rate: 1.0,
            ..FaultSpec::default()
        },
    ))
    .unwrap();
    let registry = registry();
    let chain = tts_chain(vec![openai_tts(&sim, &registry), cartesia(&sim, &registry)]);
    let (result, events) = speak(&chain, "Let me check that for you.").await;
    let report = result.unwrap();
    assert_eq!(report.voices, ["tts.cartesia"]);
    assert!(events.iter().any(|e| matches!(
        e,
        TtsEvent::Fallback {
            from: "tts.openai",
            to: "tts.cartesia",
            error: CallError::Decode { .. },
            ..
        }
    )));
    assert_eq!(audio_of(&events, "tts.openai"), 0);
    assert!(audio_of(&events, "tts.cartesia") > 0);
}

#[tokio::test]
async fn a_voice_failing_mid_answer_hands_the_rest_from_the_unfinished_sentence_to_the_next() {
    let sim = sim().await;
    sim.set_faults(FaultUpdate::provider(
        "openai_tts",
        FaultSpec {
            drop_rate: 1.0,
            drop_close: DropClose::Abnormal1006,
            drop_after_ms: 300,
            // The first sentence is spoken whole; the second breaks.
            times: None,
            ..FaultSpec::default()
        },
    ))
    .unwrap();
    let registry = registry();
    let chain = tts_chain(vec![openai_tts(&sim, &registry), cartesia(&sim, &registry)]);
    let text = "Yes. I can see the booking on our calendar for Tuesday. Anything else?";
    let (result, events) = speak(&chain, text).await;
    let report = result.unwrap();
    // "Yes." is shorter than 300 ms of audio: the first voice finishes it.
    assert_eq!(
        report.voices,
        ["tts.openai", "tts.cartesia", "tts.cartesia"]
    );
    assert!(
        events.iter().any(|e| matches!(
            e,
            TtsEvent::SentenceRestarted {
                sentence: 1,
                voice: "tts.cartesia"
            }
        )),
        "{events:?}"
    );
    let cartesia_sentences: Vec<usize> = events
        .iter()
        .filter_map(|e| match e {
            TtsEvent::Audio(chunk) if chunk.voice == "tts.cartesia" => Some(chunk.sentence),
            _ => None,
        })
        .collect();
    assert_eq!(cartesia_sentences.first(), Some(&1));
}

#[tokio::test]
async fn with_every_remote_voice_down_the_local_voice_speaks() {
    let sim = sim().await;
    sim.set_faults(FaultUpdate::preset("tts-down")).unwrap();
    let registry = registry();
    let chain = tts_chain(vec![
        openai_tts(&sim, &registry),
        cartesia(&sim, &registry),
        espeak(&registry),
    ]);
    let (result, events) = speak(&chain, "Sorry, one moment.").await;
    let report = result.unwrap();
    assert_eq!(report.voices, ["tts.espeak"]);
    assert!(audio_of(&events, "tts.espeak") > 0);
    assert!(
        report.first_audio <= Duration::from_millis(2000),
        "{:?}",
        report.first_audio
    );
}

#[tokio::test]
async fn a_voice_whose_breaker_is_open_is_skipped_and_probed_back() {
    let sim = sim().await;
    sim.set_faults(FaultUpdate::provider(
        "openai_tts",
        FaultSpec {
            error_rate: 1.0,
            ..FaultSpec::default()
        },
    ))
    .unwrap();
    let registry = registry();
    let chain = std::sync::Arc::new(tts_chain(vec![
        openai_tts(&sim, &registry),
        cartesia(&sim, &registry),
    ]));
    let breaker = registry.get("tts.openai").unwrap();
    for _ in 0..3 {
        let _ = speak(&chain, "Hello.").await;
    }
    assert_eq!(breaker.state(), BreakerState::Open);
    sim.set_faults(FaultUpdate::preset("healthy")).unwrap();
    sim.clear_requests();
    let (result, _) = speak(&chain, "Hello.").await;
    assert_eq!(result.unwrap().voices, ["tts.cartesia"]);
    assert!(
        sim.requests_to("openai_tts").is_empty(),
        "an open voice is not called"
    );

    let probing = chain.clone();
    let target = voxguard::speech::probe::ProbeTarget {
        guard: chain.voices()[0].guard.clone(),
        probe: std::sync::Arc::new(move |ctx| {
            let chain = probing.clone();
            Box::pin(async move {
                let voice = &chain.voices()[0].provider;
                first_audio(voice, &ctx, "Okay.", chain.limits())
                    .await
                    .map(|_| ())
            })
        }),
    };
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert!(voxguard::speech::probe::probe_once(&target).await);
    assert_eq!(breaker.state(), BreakerState::Closed);
    let (result, _) = speak(&chain, "Hello.").await;
    assert_eq!(result.unwrap().voices, ["tts.openai"]);
}

#[tokio::test]
async fn text_that_is_too_long_or_empty_is_refused_before_any_call() {
    let sim = sim().await;
    let registry = registry();
    let chain = tts_chain(vec![openai_tts(&sim, &registry)]);
    let (result, events) = speak(&chain, &"word ".repeat(20 * 1024)).await;
    assert!(matches!(result, Err(TtsChainError::Text(_))), "{result:?}");
    assert!(result.unwrap_err().to_string().contains("split it"));
    let (result, _) = speak(&chain, "  \n ").await;
    assert!(matches!(result, Err(TtsChainError::Text(_))));
    assert!(events.is_empty());
    assert!(sim.requests_to("openai_tts").is_empty());
}

#[tokio::test]
async fn an_interrupted_answer_stops_at_once() {
    let sim = sim().await;
    let registry = registry();
    let chain = tts_chain(vec![openai_tts(&sim, &registry)]);
    let (tx, mut rx) = mpsc::channel(1);
    let speaking = tokio::spawn(async move {
        chain
            .speak(
                "This is a long answer. It has several sentences. The caller will interrupt it.",
                &tx,
            )
            .await
    });
    let first = rx.recv().await;
    assert!(matches!(first, Some(TtsEvent::Audio(_))));
    drop(rx);
    let result = tokio::time::timeout(Duration::from_secs(2), speaking)
        .await
        .expect("stops promptly")
        .unwrap();
    assert_eq!(result.unwrap_err(), TtsChainError::ListenerGone);
}

#[tokio::test]
async fn a_hanging_primary_still_lets_the_next_voice_speak_within_the_first_audio_budget() {
    let sim = sim().await;
    sim.set_faults(FaultUpdate::provider(
        "openai_tts",
        FaultSpec {
            hang_rate: 1.0,
            ..FaultSpec::default()
        },
    ))
    .unwrap();
    let registry = registry();
    let chain = tts_chain(vec![openai_tts(&sim, &registry), cartesia(&sim, &registry)]);
    let (result, events) = speak(&chain, "Still there?").await;
    let report = result.unwrap();
    assert_eq!(report.voices, ["tts.cartesia"]);
    // The test chain's first-audio budget is 2 s.
    assert!(
        report.first_audio <= Duration::from_millis(2000),
        "{:?}",
        report.first_audio
    );
    assert!(events.iter().any(|e| matches!(
        e,
        TtsEvent::Fallback {
            from: "tts.openai",
            error: CallError::Timeout { .. },
            ..
        }
    )));
}
