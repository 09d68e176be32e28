//! The `[speech]` section: ordered recognizer and voice chains, each
//! provider's settings and credentials reference, and the timeout profile
//! they run under; environment overrides; validation; and the plain
//! [`SpeechSettings`] the composition root hands to `speech/`.
//!
//! A provider without credentials is left out of its chain (said once, with
//! the variable to set). With no recognizer at all the caller's words come
//! from LiveKit's `lk.chat` text; the local voice (espeak-ng) needs nothing,
//! so `voxguard start` with only the `LIVEKIT_*` variables still speaks.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::Config;
use super::duration;
use super::secret::CredentialRef;
use super::validate::Report;
use crate::secret::Secret;
use crate::speech::stt::{DeepgramSettings, OpenAiSttSettings, SttChainSettings};
use crate::speech::tts::{CartesiaSettings, EspeakSettings, OpenAiTtsSettings, TtsLimits};
use crate::speech::{PhraseStore, SpeechSettings, SttSettings, TtsSettings};

/// Recognizers `speech.stt` may name.
pub const STT_PROVIDERS: [&str; 2] = ["deepgram", "openai"];
/// Voices `speech.tts` may name.
pub const TTS_PROVIDERS: [&str; 3] = ["openai", "cartesia", "espeak"];

/// The `[speech]` section.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SpeechConfig {
    /// Recognizers in fallback order (`VOXGUARD_STT` overrides, comma-separated).
    pub stt: Vec<String>,
    /// Voices in fallback order (`VOXGUARD_TTS` overrides).
    pub tts: Vec<String>,
    /// The timeout profile for connecting, transcribing and first audio.
    pub profile: String,
    /// The wait for a sentence's first audio across every voice tried.
    #[serde(deserialize_with = "duration::required")]
    pub first_audio_budget: Duration,
    /// A sentence producing more audio than this is an endless stream.
    #[serde(deserialize_with = "duration::required")]
    pub max_audio_per_sentence: Duration,
    /// Unfinalized caller audio kept for replay after a recognizer fails.
    #[serde(deserialize_with = "duration::required")]
    pub replay: Duration,
    /// How often a provider whose breaker is not closed is probed.
    #[serde(deserialize_with = "duration::required")]
    pub probe_interval: Duration,
    /// Where rendered phrase lines are kept between starts (empty: not
    /// kept; `VOXGUARD_PHRASE_CACHE` overrides).
    pub phrase_cache_dir: PathBuf,
    pub deepgram: DeepgramSection,
    pub openai_stt: OpenAiSttSection,
    pub openai_tts: OpenAiTtsSection,
    pub cartesia: CartesiaSection,
    pub espeak: EspeakSection,
}

impl Default for SpeechConfig {
    fn default() -> Self {
        SpeechConfig {
            stt: vec!["deepgram".into(), "openai".into()],
            tts: vec!["openai".into(), "cartesia".into(), "espeak".into()],
            profile: "voice".into(),
            first_audio_budget: Duration::from_millis(1200),
            max_audio_per_sentence: Duration::from_secs(30),
            replay: crate::speech::stt::turn::DEFAULT_REPLAY,
            probe_interval: Duration::from_secs(1),
            phrase_cache_dir: PathBuf::new(),
            deepgram: DeepgramSection::default(),
            openai_stt: OpenAiSttSection::default(),
            openai_tts: OpenAiTtsSection::default(),
            cartesia: CartesiaSection::default(),
            espeak: EspeakSection::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeepgramSection {
    /// `VOXGUARD_DEEPGRAM_URL` overrides.
    pub url: String,
    pub model: String,
    pub language: String,
    #[serde(deserialize_with = "duration::required")]
    pub endpointing: Duration,
    #[serde(deserialize_with = "duration::required")]
    pub utterance_end: Duration,
    pub credentials: CredentialRef,
}

impl Default for DeepgramSection {
    fn default() -> Self {
        DeepgramSection {
            url: "wss://api.deepgram.com/v1/listen".into(),
            model: "nova-3".into(),
            language: "en".into(),
            endpointing: Duration::from_millis(300),
            utterance_end: Duration::from_secs(1),
            credentials: CredentialRef::Env("DEEPGRAM_API_KEY".into()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OpenAiSttSection {
    /// `VOXGUARD_STT_BASE_URL` overrides (any OpenAI-compatible server).
    pub base_url: String,
    pub model: String,
    pub language: Option<String>,
    pub credentials: CredentialRef,
}

impl Default for OpenAiSttSection {
    fn default() -> Self {
        OpenAiSttSection {
            base_url: OPENAI.into(),
            model: "gpt-4o-mini-transcribe".into(),
            language: Some("en".into()),
            credentials: CredentialRef::Env("OPENAI_API_KEY".into()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OpenAiTtsSection {
    /// `VOXGUARD_TTS_BASE_URL` overrides.
    pub base_url: String,
    pub model: String,
    pub voice: String,
    pub credentials: CredentialRef,
}

impl Default for OpenAiTtsSection {
    fn default() -> Self {
        OpenAiTtsSection {
            base_url: OPENAI.into(),
            model: "gpt-4o-mini-tts".into(),
            voice: "alloy".into(),
            credentials: CredentialRef::Env("OPENAI_API_KEY".into()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CartesiaSection {
    pub base_url: String,
    pub model: String,
    /// A Cartesia voice id.
    pub voice: String,
    pub language: String,
    pub sample_rate: u32,
    pub credentials: CredentialRef,
}

impl Default for CartesiaSection {
    fn default() -> Self {
        CartesiaSection {
            base_url: "wss://api.cartesia.ai".into(),
            model: "sonic-2".into(),
            voice: "a0e99841-438c-4a64-b679-ae501e7d6091".into(),
            language: "en".into(),
            sample_rate: 24_000,
            credentials: CredentialRef::Env("CARTESIA_API_KEY".into()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EspeakSection {
    pub program: PathBuf,
    pub voice: String,
    pub words_per_minute: u32,
}

impl Default for EspeakSection {
    fn default() -> Self {
        let defaults = EspeakSettings::default();
        EspeakSection {
            program: defaults.program,
            voice: defaults.voice,
            words_per_minute: defaults.words_per_minute,
        }
    }
}

const OPENAI: &str = "https://api.openai.com/v1";

/// Whether `base_url` is OpenAI's own API (which needs a key), rather than
/// a self-hosted compatible server (which may take none).
pub(crate) fn is_openai(base_url: &str) -> bool {
    base_url.starts_with(OPENAI)
}

/// The speech variables voxguard reads, and the field each overrides.
pub const SPEECH_ENV_OVERRIDES: [(&str, &str); 6] = [
    ("VOXGUARD_STT", "speech.stt"),
    ("VOXGUARD_TTS", "speech.tts"),
    ("VOXGUARD_STT_BASE_URL", "speech.openai_stt.base_url"),
    ("VOXGUARD_TTS_BASE_URL", "speech.openai_tts.base_url"),
    ("VOXGUARD_DEEPGRAM_URL", "speech.deepgram.url"),
    ("VOXGUARD_PHRASE_CACHE", "speech.phrase_cache_dir"),
];

/// Apply the speech variables from `env`; record where each field came from.
pub(crate) fn apply_env(
    speech: &mut SpeechConfig,
    env: &dyn Fn(&str) -> Option<String>,
    sources: &mut BTreeMap<String, &'static str>,
) {
    let list = |value: String| -> Vec<String> {
        value
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    };
    for (var, field) in SPEECH_ENV_OVERRIDES {
        let Some(value) = env(var) else { continue };
        sources.insert(field.to_string(), var);
        match var {
            "VOXGUARD_STT" => speech.stt = list(value),
            "VOXGUARD_TTS" => speech.tts = list(value),
            "VOXGUARD_STT_BASE_URL" => speech.openai_stt.base_url = value,
            "VOXGUARD_TTS_BASE_URL" => speech.openai_tts.base_url = value,
            "VOXGUARD_PHRASE_CACHE" => speech.phrase_cache_dir = PathBuf::from(value),
            _ => speech.deepgram.url = value,
        }
    }
}

/// Check the section; every problem names its field.
pub(crate) fn check(config: &Config, report: &mut Report<'_>) {
    let speech = &config.speech;
    check_chain(&speech.stt, "speech.stt", &STT_PROVIDERS, report);
    check_chain(&speech.tts, "speech.tts", &TTS_PROVIDERS, report);
    if speech.tts.is_empty() {
        report.error(
            "speech.tts",
            "the agent needs at least one voice; add \"espeak\", the local voice that needs no key"
                .into(),
        );
    }
    if !config.profiles.contains_key(&speech.profile) {
        let known: Vec<_> = config.profiles.keys().cloned().collect();
        report.error(
            "speech.profile",
            format!(
                "unknown profile {:?}; known profiles: {}",
                speech.profile,
                known.join(", ")
            ),
        );
    }
    let url = |report: &mut Report<'_>, field: &str, value: &str, schemes: &[&str]| {
        if !schemes
            .iter()
            .any(|s| value.starts_with(&format!("{s}://")))
        {
            report.error(
                field,
                format!(
                    "{value:?} must start with {}",
                    schemes.join(":// or ") + "://"
                ),
            );
        }
    };
    url(
        report,
        "speech.deepgram.url",
        &speech.deepgram.url,
        &["wss", "ws"],
    );
    url(
        report,
        "speech.openai_stt.base_url",
        &speech.openai_stt.base_url,
        &["https", "http"],
    );
    url(
        report,
        "speech.openai_tts.base_url",
        &speech.openai_tts.base_url,
        &["https", "http"],
    );
    url(
        report,
        "speech.cartesia.base_url",
        &speech.cartesia.base_url,
        &["wss", "ws"],
    );
    if speech.deepgram.endpointing < Duration::from_millis(10) {
        report.error(
            "speech.deepgram.endpointing",
            "must be at least 10ms; Deepgram counts it in milliseconds".into(),
        );
    }
    if speech.deepgram.utterance_end < Duration::from_secs(1) {
        report.error(
            "speech.deepgram.utterance_end",
            "must be at least 1s; Deepgram refuses a shorter utterance_end_ms".into(),
        );
    }
    if !(8_000..=48_000).contains(&speech.cartesia.sample_rate) {
        report.error(
            "speech.cartesia.sample_rate",
            format!(
                "{} Hz is not a rate Cartesia speaks; use 8000 to 48000, e.g. 24000",
                speech.cartesia.sample_rate
            ),
        );
    }
    if speech.tts.iter().any(|p| p == "cartesia") && speech.cartesia.voice.trim().is_empty() {
        report.error("speech.cartesia.voice", "name a Cartesia voice id".into());
    }
    let store = &speech.phrase_cache_dir;
    if store.exists() && !store.is_dir() {
        report.error(
            "speech.phrase_cache_dir",
            format!(
                "{} is a file; name a directory for the rendered phrase lines (it is created when missing), or \"\" to keep none",
                store.display()
            ),
        );
    }
    if !(80..=450).contains(&speech.espeak.words_per_minute) {
        report.error(
            "speech.espeak.words_per_minute",
            format!(
                "{} is outside espeak-ng's 80 to 450",
                speech.espeak.words_per_minute
            ),
        );
    }
    if speech.first_audio_budget > Duration::from_secs(10) {
        report.error(
            "speech.first_audio_budget",
            "more than 10s of silence before a sentence is not a voice; keep it near 1s".into(),
        );
    }
}

fn check_chain(chain: &[String], field: &str, known: &[&str], report: &mut Report<'_>) {
    for (at, name) in chain.iter().enumerate() {
        if !known.contains(&name.as_str()) {
            report.error(
                field,
                format!("unknown provider {name:?}; known: {}", known.join(", ")),
            );
        } else if chain[..at].contains(name) {
            report.error(field, format!("{name:?} is listed twice"));
        }
    }
}

/// A provider left out of its chain, and the variable that would bring it in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbsentProvider {
    /// `stt.deepgram`, `tts.cartesia`, ...
    pub name: &'static str,
    pub reason: String,
}

impl Config {
    /// The filler ladder of a caller's wait on a slow voice: the speech
    /// profile's.
    pub fn speech_waiting(&self) -> crate::recovery::LadderTiming {
        self.profiles
            .get(&self.speech.profile)
            .map_or(crate::voice::call::DEFAULT_WAITING, |p| p.ladder())
    }

    /// The speech layer's settings, credentials read from `env` (and secret
    /// files). Providers whose credentials are missing are left out and
    /// listed; [`Config::load_for`] warns about each for `start`.
    pub fn speech_settings_with(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> (SpeechSettings, Vec<AbsentProvider>) {
        let speech = &self.speech;
        let profile = self.profiles.get(&speech.profile);
        let guard = |name: &str| {
            let mut guard = SpeechSettings::voice_guard(name);
            if let Some(profile) = profile {
                guard.retry = profile.retry_config();
                guard.breaker.slow_call_threshold = profile.slow_call_threshold;
            }
            guard.bulkhead_size = self.worker.max_sessions.max(1).saturating_mul(2);
            guard
        };
        let mut absent = Vec::new();
        let mut key =
            |name: &'static str, field: &str, reference: &CredentialRef, optional: bool| {
                match reference.resolve_with(field, env) {
                    Ok(secret) => Some(Some(Secret::new(secret.expose()))),
                    Err(_) if optional => Some(None),
                    Err(error) => {
                        absent.push(AbsentProvider {
                            name,
                            reason: error.to_string(),
                        });
                        None
                    }
                }
            };
        let mut stt = Vec::new();
        for provider in &speech.stt {
            match provider.as_str() {
                "deepgram" => {
                    let Some(Some(api_key)) = key(
                        "stt.deepgram",
                        "speech.deepgram.credentials",
                        &speech.deepgram.credentials,
                        false,
                    ) else {
                        continue;
                    };
                    let d = &speech.deepgram;
                    let mut settings = DeepgramSettings::new(d.url.clone(), api_key);
                    settings.model = d.model.clone();
                    settings.language = d.language.clone();
                    settings.endpointing = d.endpointing;
                    settings.utterance_end = d.utterance_end;
                    stt.push((SttSettings::Deepgram(settings), guard("stt.deepgram")));
                }
                "openai" => {
                    let o = &speech.openai_stt;
                    let self_hosted = !is_openai(&o.base_url);
                    let Some(api_key) = key(
                        "stt.openai",
                        "speech.openai_stt.credentials",
                        &o.credentials,
                        self_hosted,
                    ) else {
                        continue;
                    };
                    let mut settings = OpenAiSttSettings::new(o.base_url.clone(), api_key);
                    settings.model = o.model.clone();
                    settings.language = o.language.clone();
                    settings.credential_hint = o.credentials.to_string();
                    stt.push((SttSettings::OpenAi(settings), guard("stt.openai")));
                }
                _ => {}
            }
        }
        let mut tts = Vec::new();
        for provider in &speech.tts {
            match provider.as_str() {
                "openai" => {
                    let o = &speech.openai_tts;
                    let self_hosted = !is_openai(&o.base_url);
                    let Some(api_key) = key(
                        "tts.openai",
                        "speech.openai_tts.credentials",
                        &o.credentials,
                        self_hosted,
                    ) else {
                        continue;
                    };
                    let mut settings = OpenAiTtsSettings::new(o.base_url.clone(), api_key);
                    settings.model = o.model.clone();
                    settings.voice = o.voice.clone();
                    settings.credential_hint = o.credentials.to_string();
                    tts.push((TtsSettings::OpenAi(settings), guard("tts.openai")));
                }
                "cartesia" => {
                    let c = &speech.cartesia;
                    let Some(Some(api_key)) = key(
                        "tts.cartesia",
                        "speech.cartesia.credentials",
                        &c.credentials,
                        false,
                    ) else {
                        continue;
                    };
                    let mut settings =
                        CartesiaSettings::new(c.base_url.clone(), api_key, c.voice.clone());
                    settings.model = c.model.clone();
                    settings.language = c.language.clone();
                    settings.sample_rate = c.sample_rate;
                    tts.push((TtsSettings::Cartesia(settings), guard("tts.cartesia")));
                }
                "espeak" => {
                    let e = &speech.espeak;
                    let settings = EspeakSettings {
                        program: e.program.clone(),
                        voice: e.voice.clone(),
                        words_per_minute: e.words_per_minute,
                    };
                    tts.push((TtsSettings::Espeak(settings), guard("tts.espeak")));
                }
                _ => {}
            }
        }
        let budget = profile.map_or(Duration::from_millis(1500), |p| p.budget);
        let settings = SpeechSettings {
            stt,
            tts,
            stt_chain: SttChainSettings {
                connect_budget: budget,
                transcribe_budget: budget,
                replay: speech.replay,
                ..SttChainSettings::default()
            },
            tts_limits: TtsLimits {
                max_audio_per_sentence: speech.max_audio_per_sentence,
                ..TtsLimits::default()
            },
            first_audio_budget: speech.first_audio_budget,
            reserve_per_later_voice: Duration::from_millis(250),
            probe_interval: speech.probe_interval,
            phrase_store: (!speech.phrase_cache_dir.as_os_str().is_empty())
                .then(|| PhraseStore::at(&speech.phrase_cache_dir)),
        };
        (settings, absent)
    }

    /// [`Config::speech_settings_with`] the process environment.
    pub fn speech_settings(&self) -> (SpeechSettings, Vec<AbsentProvider>) {
        self.speech_settings_with(&|name| std::env::var(name).ok())
    }
}
