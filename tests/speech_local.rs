//! The local voice for real (espeak-ng, installed by
//! scripts/install-system-deps.sh when missing) and the phrase audio cache.

mod speech_support;

use std::sync::Arc;
use std::time::Duration;

use speech_support::*;
use voxguard::resilience::{Deadline, Retryability};
use voxguard::speech::cache::render_one;
use voxguard::speech::tts::{
    EspeakSettings, EspeakTts, TtsLimits, TtsProvider, TtsVoice, first_audio,
};
use voxguard::speech::{PhraseCache, PhraseStore};
use voxguard::testbed::speech::FaultUpdate;

#[tokio::test]
async fn espeak_speaks_22050_hz_speech_streamed_from_its_output() {
    let registry = registry();
    let voice = espeak(&registry);
    let phrase = render_one(
        &voice,
        "Thanks for your patience, I am still checking.",
        TtsLimits::default(),
    )
    .await
    .unwrap();
    assert_eq!(phrase.voice, "tts.espeak");
    let seconds = phrase.duration.as_secs_f64();
    assert!((1.0..8.0).contains(&seconds), "{seconds} s");
    assert!(phrase.level_dbfs > -35.0, "{}", phrase.level_dbfs);
    // Kept as Opus: a few KB per second, not 44 KB of 22 050 Hz samples.
    assert!(
        phrase.bytes() < 8_000 * seconds.ceil() as usize,
        "{} bytes",
        phrase.bytes()
    );
    assert_eq!(phrase.packets.len() as f64, (seconds * 50.0).round());
}

#[tokio::test]
async fn a_missing_program_is_a_permanent_error_that_says_how_to_install_it() {
    let registry = registry();
    let voice = TtsVoice {
        provider: TtsProvider::Espeak(EspeakTts::new(EspeakSettings {
            program: "/nonexistent/espeak-ng".into(),
            ..EspeakSettings::default()
        })),
        guard: guard(&registry, "tts.espeak"),
    };
    let outcome =
        voice
            .guard
            .call(
                Deadline::after(Duration::from_secs(1)),
                Retryability::Transient,
                |ctx| {
                    let voice = &voice;
                    async move {
                        first_audio(&voice.provider, &ctx, "Hello.", TtsLimits::default()).await
                    }
                },
            )
            .await;
    let error = outcome.result.map(|_| ()).unwrap_err();
    assert!(!error.is_transient());
    assert!(
        error.to_string().contains("install-system-deps.sh"),
        "{error}"
    );
}

#[tokio::test]
async fn an_espeak_sentence_over_the_audio_cap_is_cut_and_its_process_stopped() {
    let registry = registry();
    let voice = espeak(&registry);
    let limits = TtsLimits {
        max_audio_per_sentence: Duration::from_millis(300),
        chunk_stall: Duration::from_secs(2),
    };
    let error = render_one(
        &voice,
        "This sentence takes far longer than three hundred milliseconds to say.",
        limits,
    )
    .await
    .unwrap_err();
    assert!(error.to_string().contains("does not end"), "{error}");
}

#[tokio::test]
async fn the_phrase_cache_renders_every_line_in_every_voice_and_shares_it() {
    let sim = sim().await;
    let registry = registry();
    let chain = Arc::new(tts_chain(vec![
        openai_tts(&sim, &registry),
        espeak(&registry),
    ]));
    let phrases = vec![
        "One moment while I check that.".to_string(),
        "I'm having trouble reaching our CRM.".to_string(),
        "One moment while I check that.".to_string(),
    ];
    let (cache, rendering) = PhraseCache::render(chain, phrases, None);
    tokio::time::timeout(WAIT, rendering)
        .await
        .unwrap()
        .unwrap();
    let report = cache.report();
    assert!(report.complete);
    assert_eq!(report.phrases, 2);
    assert_eq!(report.rendered, vec![("tts.openai", 2), ("tts.espeak", 2)]);
    let first = cache.lookup("One moment while I check that.").unwrap();
    assert_eq!(first.voice, "tts.openai");
    let again = cache.lookup("One moment while I check that.").unwrap();
    assert!(
        Arc::ptr_eq(&first.packets, &again.packets),
        "shared, not copied"
    );
    let local = cache
        .lookup_in("I'm having trouble reaching our CRM.", "tts.espeak")
        .unwrap();
    assert_eq!(local.voice, "tts.espeak");
    assert!(local.level_dbfs > -35.0, "audible: {}", local.level_dbfs);
    let expected_bytes: usize = [
        "One moment while I check that.",
        "I'm having trouble reaching our CRM.",
    ]
    .iter()
    .flat_map(|t| ["tts.openai", "tts.espeak"].map(|v| cache.lookup_in(t, v).unwrap().bytes()))
    .sum();
    assert_eq!(report.bytes, expected_bytes);
    assert!(cache.lookup("Something never rendered.").is_none());

    // Every voice down afterwards: the cached lines still play.
    sim.set_faults(FaultUpdate::preset("tts-down")).unwrap();
    assert!(
        cache
            .lookup("I'm having trouble reaching our CRM.")
            .is_some()
    );
}

#[tokio::test]
async fn a_restart_reads_every_line_back_from_the_phrase_store_even_with_its_voice_down() {
    let sim = sim().await;
    let dir = std::env::temp_dir().join(format!(
        "voxguard-phrase-store-{}-{:x}",
        std::process::id(),
        rand::random::<u32>()
    ));
    let store = PhraseStore::at(&dir);
    let texts = [
        "One moment while I check that.",
        "I'm having trouble reaching our CRM.",
    ];
    let phrases: Vec<String> = texts.iter().map(|t| t.to_string()).collect();
    let start = |voices: Vec<TtsVoice>| {
        let (cache, rendering) = PhraseCache::render(
            Arc::new(tts_chain(voices)),
            phrases.clone(),
            Some(store.clone()),
        );
        async move {
            tokio::time::timeout(WAIT, rendering)
                .await
                .unwrap()
                .unwrap();
            cache
        }
    };

    // First start: every line rendered, and saved.
    let registry = registry();
    let first = start(vec![openai_tts(&sim, &registry), espeak(&registry)]).await;
    assert_eq!(first.report().stored, 0);
    assert_eq!(
        first.report().rendered,
        vec![("tts.openai", 2), ("tts.espeak", 2)]
    );

    // Second start, with the network voice down: its lines come back from
    // disk, exactly as rendered.
    sim.set_faults(FaultUpdate::preset("tts-down")).unwrap();
    let registry = voxguard::resilience::BreakerRegistry::new(voxguard::resilience::Clock::tokio());
    let second = start(vec![openai_tts(&sim, &registry), espeak(&registry)]).await;
    let report = second.report();
    assert!(report.complete);
    assert_eq!(report.stored, 4);
    assert_eq!(report.rendered, vec![("tts.openai", 2), ("tts.espeak", 2)]);
    assert_eq!(report.bytes, first.report().bytes);
    for text in texts {
        for voice in ["tts.openai", "tts.espeak"] {
            assert_eq!(
                *second.lookup_in(text, voice).unwrap(),
                *first.lookup_in(text, voice).unwrap(),
                "{text} in {voice}"
            );
        }
    }

    // A voice that sounds different (faster) is not served the old lines:
    // it renders its own, beside the network voice's saved ones.
    let registry = voxguard::resilience::BreakerRegistry::new(voxguard::resilience::Clock::tokio());
    let faster = TtsVoice {
        provider: TtsProvider::Espeak(EspeakTts::new(EspeakSettings {
            words_per_minute: 260,
            ..EspeakSettings::default()
        })),
        guard: guard(&registry, "tts.espeak"),
    };
    let third = start(vec![openai_tts(&sim, &registry), faster]).await;
    assert_eq!(third.report().stored, 2);
    let quick = third.lookup_in(texts[0], "tts.espeak").unwrap();
    let slow = first.lookup_in(texts[0], "tts.espeak").unwrap();
    assert!(
        quick.duration < slow.duration,
        "{:?} at 260 wpm against {:?} at 175",
        quick.duration,
        slow.duration
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_local_voices_identity_names_the_espeak_release_so_an_upgrade_renders_its_lines_again() {
    let dir = std::env::temp_dir().join(format!("voxguard-espeak-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let program = |name: &str, release: &str| {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join(name);
        std::fs::write(
            &path,
            format!(
                "#!/bin/sh\necho 'eSpeak NG text-to-speech: {release}  Data at: /usr/share/espeak-ng-data'\n"
            ),
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    };
    let identity = |path: std::path::PathBuf| {
        EspeakTts::new(EspeakSettings {
            program: path,
            ..EspeakSettings::default()
        })
        .identity()
    };
    // The same program path, upgraded in place from one release to the next.
    let before = identity(program("espeak-ng", "1.51"));
    let after = identity(program("espeak-ng", "1.52"));
    assert!(before.contains("1.51"), "{before}");
    assert!(
        !before.contains("Data at"),
        "the data path is not part of it: {before}"
    );
    assert_ne!(before, after, "a new release is a new voice");
    let missing = identity(dir.join("not-installed"));
    assert!(missing.contains("version unknown"), "{missing}");
    let _ = std::fs::remove_dir_all(&dir);
}
