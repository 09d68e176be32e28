//! Plain settings the composition root builds from the configuration, and
//! the [`SpeechStack`] built from them: every provider with its guard (its
//! breaker registered by provider name), both chains, and the probes that
//! bring failed providers back.
//!
//! ```
//! use voxguard::resilience::{BreakerRegistry, Clock};
//! use voxguard::speech::{SpeechSettings, SpeechStack};
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let registry = BreakerRegistry::new(Clock::tokio());
//! let stack = SpeechStack::build(&SpeechSettings::local_only(), &registry, reqwest::Client::new()).unwrap();
//! assert!(stack.stt.is_none()); // words come from lk.chat text
//! assert_eq!(stack.tts.voices()[0].provider.name(), "tts.espeak");
//! assert!(registry.get("tts.espeak").is_some());
//! # }
//! ```

use std::sync::Arc;
use std::time::Duration;

use super::probe::{ProbeFn, ProbeTarget, spawn_prober};
use super::stt::{
    DeepgramSettings, DeepgramStt, OpenAiStt, OpenAiSttSettings, SttBackend, SttChain,
    SttChainSettings, SttProvider,
};
use super::tts::{
    CartesiaSettings, CartesiaTts, EspeakSettings, EspeakTts, OpenAiTts, OpenAiTtsSettings,
    TtsChain, TtsLimits, TtsProvider, TtsVoice, first_audio,
};
use crate::media::wav;
use crate::resilience::{BreakerRegistry, BreakerState, Guard, GuardConfig, GuardConfigError};

#[derive(Debug, Clone, PartialEq)]
pub enum SttSettings {
    Deepgram(DeepgramSettings),
    OpenAi(OpenAiSttSettings),
}

impl SttSettings {
    pub fn name(&self) -> &'static str {
        match self {
            SttSettings::Deepgram(_) => super::stt::deepgram::NAME,
            SttSettings::OpenAi(_) => super::stt::openai::NAME,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum TtsSettings {
    OpenAi(OpenAiTtsSettings),
    Cartesia(CartesiaSettings),
    Espeak(EspeakSettings),
}

impl TtsSettings {
    pub fn name(&self) -> &'static str {
        match self {
            TtsSettings::OpenAi(_) => super::tts::openai::NAME,
            TtsSettings::Cartesia(_) => super::tts::cartesia::NAME,
            TtsSettings::Espeak(_) => super::tts::espeak::NAME,
        }
    }
}

/// Everything speech needs, as plain data.
#[derive(Debug, Clone, PartialEq)]
pub struct SpeechSettings {
    /// Recognizers in fallback order, each with its guard's configuration.
    pub stt: Vec<(SttSettings, GuardConfig)>,
    /// Voices in fallback order.
    pub tts: Vec<(TtsSettings, GuardConfig)>,
    pub stt_chain: SttChainSettings,
    pub tts_limits: TtsLimits,
    /// The wait for a sentence's first audio across every voice tried.
    pub first_audio_budget: Duration,
    /// Of that budget, what each voice leaves for each voice after it.
    pub reserve_per_later_voice: Duration,
    /// How often providers with a breaker not closed are probed.
    pub probe_interval: Duration,
    /// Where rendered phrase lines are kept between starts (`None`: every
    /// start renders them).
    pub phrase_store: Option<super::PhraseStore>,
}

impl SpeechSettings {
    /// Voice guard defaults: attempts short enough that a failed voice
    /// still leaves the next one time inside the first-audio budget.
    pub fn voice_guard(name: &str) -> GuardConfig {
        let mut guard = GuardConfig::for_service(name);
        guard.retry.attempt_timeout = Duration::from_millis(600);
        guard.retry.backoff.base = Duration::from_millis(20);
        guard.retry.backoff.cap = Duration::from_millis(60);
        guard.breaker.slow_call_threshold = Duration::from_millis(500);
        guard.bulkhead_size = 256;
        guard
    }

    /// No recognizer (words from `lk.chat`), the local voice only.
    pub fn local_only() -> SpeechSettings {
        SpeechSettings {
            stt: Vec::new(),
            tts: vec![(
                TtsSettings::Espeak(EspeakSettings::default()),
                Self::voice_guard(super::tts::espeak::NAME),
            )],
            stt_chain: SttChainSettings::default(),
            tts_limits: TtsLimits::default(),
            first_audio_budget: Duration::from_millis(1200),
            reserve_per_later_voice: Duration::from_millis(250),
            probe_interval: Duration::from_secs(1),
            phrase_store: None,
        }
    }
}

/// Every provider built and guarded.
#[derive(Debug, Clone)]
pub struct SpeechStack {
    /// `None` when no recognizer is configured.
    pub stt: Option<Arc<SttChain>>,
    pub tts: Arc<TtsChain>,
    pub probes: Vec<ProbeTarget>,
}

/// A provider's state for `/worker`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ProviderStatus {
    pub name: String,
    pub direction: &'static str,
    pub breaker: BreakerState,
}

fn guard(
    registry: &BreakerRegistry,
    name: &str,
    config: &GuardConfig,
) -> Result<Arc<Guard>, GuardConfigError> {
    let mut config = config.clone();
    config.service = name.to_string();
    let breaker = registry.get_or_register(name, config.breaker.clone());
    Guard::builder(config).breaker(breaker).build()
}

impl SpeechStack {
    pub fn build(
        settings: &SpeechSettings,
        registry: &BreakerRegistry,
        client: reqwest::Client,
    ) -> Result<SpeechStack, GuardConfigError> {
        let mut probes = Vec::new();
        let mut backends = Vec::new();
        for (provider, config) in &settings.stt {
            let guard = guard(registry, provider.name(), config)?;
            let provider = Arc::new(match provider {
                SttSettings::Deepgram(s) => SttProvider::Deepgram(DeepgramStt::new(s.clone())),
                SttSettings::OpenAi(s) => {
                    SttProvider::OpenAi(OpenAiStt::new(client.clone(), s.clone()))
                }
            });
            probes.push(ProbeTarget {
                guard: guard.clone(),
                probe: stt_probe(provider.clone()),
            });
            backends.push(SttBackend { provider, guard });
        }
        let mut voices = Vec::new();
        let mut voice_probes = Vec::new();
        for (provider, config) in &settings.tts {
            let guard = guard(registry, provider.name(), config)?;
            let provider = match provider {
                TtsSettings::OpenAi(s) => {
                    TtsProvider::OpenAi(OpenAiTts::new(client.clone(), s.clone()))
                }
                TtsSettings::Cartesia(s) => TtsProvider::Cartesia(CartesiaTts::new(s.clone())),
                TtsSettings::Espeak(s) => TtsProvider::Espeak(EspeakTts::new(s.clone())),
            };
            voice_probes.push(guard.clone());
            voices.push(TtsVoice { provider, guard });
        }
        let tts = Arc::new(TtsChain::new(
            voices,
            settings.tts_limits,
            settings.first_audio_budget,
            settings.reserve_per_later_voice,
        ));
        for (at, guard) in voice_probes.into_iter().enumerate() {
            probes.push(ProbeTarget {
                guard,
                probe: tts_probe(tts.clone(), at),
            });
        }
        let stt = (!backends.is_empty()).then(|| SttChain::new(backends, settings.stt_chain));
        Ok(SpeechStack { stt, tts, probes })
    }

    /// Probe every provider whose breaker is not closed, every `interval`.
    pub fn spawn_prober(&self, interval: Duration) -> tokio::task::JoinHandle<()> {
        spawn_prober(self.probes.clone(), interval)
    }

    /// Every provider's breaker state, STT first, in chain order.
    pub fn statuses(&self) -> Vec<ProviderStatus> {
        let stt = self.stt.iter().flat_map(|chain| {
            chain.backends().iter().map(|b| ProviderStatus {
                name: b.provider.name().to_string(),
                direction: "stt",
                breaker: b.guard.breaker().state(),
            })
        });
        let tts = self.tts.voices().iter().map(|v| ProviderStatus {
            name: v.provider.name().to_string(),
            direction: "tts",
            breaker: v.guard.breaker().state(),
        });
        stt.chain(tts).collect()
    }
}

/// Probe a recognizer: open and close a stream, or transcribe 300 ms of silence.
fn stt_probe(provider: Arc<SttProvider>) -> ProbeFn {
    Arc::new(move |ctx| {
        let provider = provider.clone();
        Box::pin(async move {
            match provider.as_ref() {
                SttProvider::Deepgram(deepgram) => {
                    let mut stream = deepgram.connect(&ctx).await?;
                    let _ = stream.close_stream().await;
                    Ok(())
                }
                SttProvider::OpenAi(openai) => {
                    let silence = wav::write(super::STT_SAMPLE_RATE, &[0; 4_800]);
                    openai.transcribe(&ctx, &silence).await.map(|_| ())
                }
            }
        })
    })
}

/// Probe a voice: the first audio of a one-word sentence.
fn tts_probe(chain: Arc<TtsChain>, at: usize) -> ProbeFn {
    Arc::new(move |ctx| {
        let chain = chain.clone();
        Box::pin(async move {
            let voice = &chain.voices()[at];
            first_audio(&voice.provider, &ctx, "Okay.", chain.limits())
                .await
                .map(|_| ())
        })
    })
}
