//! Shared setup for the speech tests: the speech simulator on 127.0.0.1:0,
//! providers pointed at it with short test timings, scripted utterances,
//! and espeak-ng installed on demand.
#![allow(dead_code)]

use std::sync::{Arc, Once};
use std::time::Duration;

use tokio::sync::mpsc;
use voxguard::media::Pcm;
use voxguard::resilience::{BreakerRegistry, Clock, Guard, GuardConfig};
use voxguard::speech::SpeechSettings;
use voxguard::speech::stt::{
    DeepgramSettings, DeepgramStt, OpenAiStt, OpenAiSttSettings, SttBackend, SttChain,
    SttChainSettings, SttEvent, SttProvider,
};
use voxguard::speech::tts::{
    CartesiaSettings, CartesiaTts, EspeakSettings, EspeakTts, OpenAiTts, OpenAiTtsSettings,
    TtsChain, TtsLimits, TtsProvider, TtsVoice,
};
use voxguard::testbed::speech::{SpeechSimulator, voice};

pub const WAIT: Duration = Duration::from_secs(20);

pub async fn sim() -> SpeechSimulator {
    SpeechSimulator::start("127.0.0.1:0".parse().unwrap(), 7)
        .await
        .expect("speech simulator binds")
}

/// A guard for tests: short attempts, breaker opening after 3 failures in
/// a row and probing again after 300 ms.
pub fn test_guard(name: &str) -> GuardConfig {
    let mut config = SpeechSettings::voice_guard(name);
    config.retry.attempt_timeout = Duration::from_millis(800);
    config.breaker.consecutive_failures = 3;
    config.breaker.min_calls = 3;
    config.breaker.window_size = 10;
    config.breaker.open_base = Duration::from_millis(300);
    config.breaker.open_cap = Duration::from_millis(600);
    config.breaker.half_open_probes = 1;
    config.breaker.slow_call_threshold = Duration::from_millis(700);
    config
}

pub fn guard(registry: &BreakerRegistry, name: &str) -> Arc<Guard> {
    let config = test_guard(name);
    let breaker = registry.get_or_register(name, config.breaker.clone());
    Guard::builder(config)
        .breaker(breaker)
        .seed(3)
        .build()
        .expect("valid test guard")
}

pub fn registry() -> BreakerRegistry {
    BreakerRegistry::new(Clock::tokio())
}

pub fn deepgram(sim: &SpeechSimulator, registry: &BreakerRegistry) -> SttBackend {
    let mut settings =
        DeepgramSettings::new(sim.deepgram_url(), sim.credentials().deepgram.clone());
    settings.endpointing = Duration::from_millis(300);
    SttBackend {
        provider: Arc::new(SttProvider::Deepgram(DeepgramStt::new(settings))),
        guard: guard(registry, "stt.deepgram"),
    }
}

pub fn openai_stt(sim: &SpeechSimulator, registry: &BreakerRegistry) -> SttBackend {
    let settings = OpenAiSttSettings::new(
        sim.openai_base_url(),
        Some(sim.credentials().openai.clone()),
    );
    SttBackend {
        provider: Arc::new(SttProvider::OpenAi(OpenAiStt::new(
            reqwest::Client::new(),
            settings,
        ))),
        guard: guard(registry, "stt.openai"),
    }
}

pub fn stt_settings() -> SttChainSettings {
    SttChainSettings {
        connect_budget: Duration::from_millis(1500),
        transcribe_budget: Duration::from_millis(2500),
        result_timeout: Duration::from_secs(2),
        ..SttChainSettings::default()
    }
}

pub fn stt_chain(backends: Vec<SttBackend>) -> Arc<SttChain> {
    SttChain::new(backends, stt_settings())
}

pub fn openai_tts(sim: &SpeechSimulator, registry: &BreakerRegistry) -> TtsVoice {
    let settings = OpenAiTtsSettings::new(
        sim.openai_base_url(),
        Some(sim.credentials().openai.clone()),
    );
    TtsVoice {
        provider: TtsProvider::OpenAi(OpenAiTts::new(reqwest::Client::new(), settings)),
        guard: guard(registry, "tts.openai"),
    }
}

pub fn cartesia(sim: &SpeechSimulator, registry: &BreakerRegistry) -> TtsVoice {
    let settings = CartesiaSettings::new(
        sim.cartesia_base_url(),
        sim.credentials().cartesia.clone(),
        "a0e99841-438c-4a64-b679-ae501e7d6091",
    );
    TtsVoice {
        provider: TtsProvider::Cartesia(CartesiaTts::new(settings)),
        guard: guard(registry, "tts.cartesia"),
    }
}

pub fn espeak(registry: &BreakerRegistry) -> TtsVoice {
    ensure_espeak();
    TtsVoice {
        provider: TtsProvider::Espeak(EspeakTts::new(EspeakSettings::default())),
        guard: guard(registry, "tts.espeak"),
    }
}

pub fn tts_chain(voices: Vec<TtsVoice>) -> TtsChain {
    TtsChain::new(
        voices,
        TtsLimits {
            max_audio_per_sentence: Duration::from_secs(20),
            chunk_stall: Duration::from_millis(800),
        },
        Duration::from_millis(2000),
        Duration::from_millis(300),
    )
}

/// What a scripted caller says: 16 kHz speech-like audio, registered with
/// the simulator's recognizer.
pub fn say(sim: &SpeechSimulator, text: &str) -> Vec<i16> {
    let samples = voice::synthesize(text, 16_000);
    sim.register_utterance(
        text,
        &Pcm {
            sample_rate: 16_000,
            samples: samples.clone(),
        },
    );
    samples
}

/// Install espeak-ng with the repository's script when it is missing; fail
/// (never skip) naming it when that is impossible.
pub fn ensure_espeak() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let present = std::process::Command::new("espeak-ng")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if present {
            return;
        }
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/install-system-deps.sh");
        let status = std::process::Command::new("bash")
            .arg(script)
            .status()
            .expect("run scripts/install-system-deps.sh");
        assert!(
            status.success(),
            "espeak-ng is required by the local-voice tests and could not be installed by scripts/install-system-deps.sh"
        );
    });
}

/// Feed `samples` in 20 ms frames, as fast as the chain takes them.
pub async fn feed(handle: &voxguard::speech::stt::SttHandle, samples: &[i16]) {
    for frame in samples.chunks(320) {
        loop {
            match handle.push_samples(frame) {
                Ok(()) => break,
                Err(voxguard::speech::stt::SttInputError::Backlogged(_)) => {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err(error) => panic!("push failed: {error}"),
            }
        }
    }
}

/// Feed `samples` at real time (20 ms a frame).
pub async fn feed_live(handle: &voxguard::speech::stt::SttHandle, samples: &[i16]) {
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    for frame in samples.chunks(320) {
        tick.tick().await;
        handle.push_samples(frame).expect("push");
    }
}

/// Events until a final transcript with text arrives (or `WAIT` passes).
pub async fn until_final(events: &mut mpsc::Receiver<SttEvent>) -> (Option<String>, Vec<SttEvent>) {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(event)) => {
                if let SttEvent::Final { text, .. } = &event
                    && !text.is_empty()
                {
                    let text = text.clone();
                    seen.push(event);
                    return (Some(text), seen);
                }
                seen.push(event);
            }
            Ok(None) | Err(_) => return (None, seen),
        }
    }
}
