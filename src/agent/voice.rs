//! What calls hear and speak with, built once per worker from `[speech]`
//! and `[voice]`: each recognizer and voice under its own breaker (in the
//! agent's registry, so `/worker`, `/metrics` and the dev page show them),
//! a background prober that brings failed providers back, and the phrase
//! audio cache — every line of the phrase book rendered once, in the
//! background, shared by every call.

use std::sync::Arc;

use tokio::task::JoinHandle;

use crate::config::Config;
use crate::recovery::{Category, PhraseBook, Promise};
use crate::resilience::BreakerRegistry;
use crate::room::MediaOptions;
use crate::session::AgentEvent;
use crate::speech::{CacheReport, PhraseCache, SpeechStack};
use crate::voice::call::VoiceReport;
use crate::voice::call::{VoiceSettings, Voices};

use super::wiring::{AgentError, Unconfigured};

/// How the model's waits are named aloud (the session's word for it).
const THINKING_DISPLAY: &str = "the system";

/// Watches calls from the agent's side: what each session said, when, and
/// how its voice went. With an observer a call's voice runs to its end after
/// the caller leaves (it is not cut short), so its report is complete.
pub trait CallObserver: Send + Sync {
    /// The session of the call in `room` said `event`.
    fn event(&self, room: &str, event: &AgentEvent);
    /// The call's voice ended (`None`: it could not start).
    fn finished(&self, room: &str, report: Option<VoiceReport>);
}

/// The worker's speech: providers, phrase cache, and the pipeline's settings.
pub struct VoiceStack {
    pub voices: Voices,
    pub settings: VoiceSettings,
    pub speech: SpeechStack,
    /// Recognizers and voices left out for want of credentials.
    pub unconfigured: Vec<Unconfigured>,
    /// How calls join their rooms' media (loopback candidates only for a
    /// server on this machine).
    pub media: MediaOptions,
    /// Sees every call's session events and voice report (`simulate`
    /// checks calls with it); `None` in production.
    pub observer: Option<Arc<dyn CallObserver>>,
    rendering: JoinHandle<()>,
    prober: JoinHandle<()>,
}

impl Drop for VoiceStack {
    fn drop(&mut self) {
        self.rendering.abort();
        self.prober.abort();
    }
}

impl VoiceStack {
    /// Build every configured provider under a breaker in `registry` and
    /// start rendering `phrasebook`'s lines (with each of `display_names`
    /// for `{service}`). Must be called inside a tokio runtime.
    pub fn build(
        config: &Config,
        registry: &BreakerRegistry,
        phrasebook: &PhraseBook,
        display_names: &[&str],
    ) -> Result<VoiceStack, AgentError> {
        Self::build_with(
            config,
            &|name| std::env::var(name).ok(),
            registry,
            phrasebook,
            display_names,
        )
    }

    /// [`VoiceStack::build`] with credentials read through `env` instead of
    /// the process environment.
    pub fn build_with(
        config: &Config,
        env: &dyn Fn(&str) -> Option<String>,
        registry: &BreakerRegistry,
        phrasebook: &PhraseBook,
        display_names: &[&str],
    ) -> Result<VoiceStack, AgentError> {
        let (settings, absent) = config.speech_settings_with(env);
        Self::from_settings(
            config,
            settings,
            absent,
            registry,
            phrasebook,
            display_names,
        )
    }

    /// [`VoiceStack::build`] from speech settings already derived from
    /// `config` (`absent`: the providers left out for want of credentials).
    pub fn from_settings(
        config: &Config,
        settings: crate::speech::SpeechSettings,
        absent: Vec<crate::config::AbsentProvider>,
        registry: &BreakerRegistry,
        phrasebook: &PhraseBook,
        display_names: &[&str],
    ) -> Result<VoiceStack, AgentError> {
        let http = reqwest::Client::builder()
            .build()
            .map_err(AgentError::LlmHttp)?;
        let speech =
            SpeechStack::build(&settings, registry, http).map_err(|source| AgentError::Guard {
                service: "speech".into(),
                source,
            })?;
        let mut names: Vec<&str> = display_names.to_vec();
        names.push(THINKING_DISPLAY);
        let lines = phrasebook.all_lines(&names);
        let (phrases, rendering) =
            PhraseCache::render(speech.tts.clone(), lines, settings.phrase_store.clone());
        let prober = speech.spawn_prober(settings.probe_interval);
        let texts = |category: Category| -> Arc<[String]> {
            phrasebook
                .variants(category)
                .iter()
                .map(|v| v.text.clone())
                .collect()
        };
        // Lines that promise nothing and name no service.
        let neutral = |category: Category| -> Arc<[String]> {
            phrasebook
                .variants(category)
                .iter()
                .filter(|v| v.promises == Promise::None && !v.text.contains('{'))
                .map(|v| v.text.clone())
                .collect()
        };
        let voices = Voices {
            stt: speech.stt.clone(),
            tts: speech.tts.clone(),
            phrases,
            voice_trouble: texts(Category::VoiceTrouble),
            cannot_hear: texts(Category::CannotHear),
            fillers: neutral(Category::Filler),
            still_working: neutral(Category::StillWorking),
            waiting: config.speech_waiting(),
        };
        let unconfigured = absent
            .into_iter()
            .map(|provider| Unconfigured {
                service: provider.name,
                fix: provider.reason,
            })
            .collect();
        Ok(VoiceStack {
            voices,
            settings: config.voice.settings(),
            speech,
            unconfigured,
            media: MediaOptions::default(),
            observer: None,
            rendering,
            prober,
        })
    }

    /// The phrase cache's size and progress, for `/worker` and `/metrics`.
    pub fn cache_report(&self) -> CacheReport {
        self.voices.phrases.report()
    }

    /// Say once, at startup, how callers' words reach the agent. Which
    /// recognizers and voices are left out, and why, the configuration's
    /// check for `start` has said already.
    pub fn log_hearing(&self) {
        if !self.hears() {
            tracing::info!(
                "no speech recognizer configured: callers' words come from lk.chat text"
            );
        }
    }

    /// Whether a recognizer is configured (otherwise words come from `lk.chat`).
    pub fn hears(&self) -> bool {
        self.voices.stt.is_some()
    }
}
