//! What calls hear and speak with, built once per worker from `[speech]`
//! and `[voice]`: each recognizer and voice under its own breaker (in the
//! agent's registry, so `/worker`, `/metrics` and the dev page show them),
//! a background prober that brings failed providers back, and the phrase
//! audio cache — every line of the phrase book rendered once, in the
//! background, shared by every call.

use std::sync::Arc;

use tokio::task::JoinHandle;

use crate::config::Config;
use crate::recovery::{Category, PhraseBook};
use crate::resilience::BreakerRegistry;
use crate::room::MediaOptions;
use crate::session::AgentEvent;
use crate::speech::{CacheReport, PhraseCache, SpeechStack};
use crate::voice::call::{VoiceSettings, Voices};

use super::wiring::{AgentError, Unconfigured};

/// How the model's waits are named aloud (the session's word for it).
const THINKING_DISPLAY: &str = "the system";

/// Who else hears each call's session events (tool calls, the end of the
/// call) besides its room: called with the room's name and the event.
/// `voxguard dev` fills its service cards and its page from it.
pub type SessionEventTap = Arc<dyn Fn(&str, &AgentEvent) + Send + Sync>;

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
    /// `None` in production: the events stay with the call.
    pub session_events: Option<SessionEventTap>,
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
        let (settings, absent) = config.speech_settings();
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
        let (phrases, rendering) = PhraseCache::render(speech.tts.clone(), lines);
        let prober = speech.spawn_prober(settings.probe_interval);
        let texts = |category: Category| -> Arc<[String]> {
            phrasebook
                .variants(category)
                .iter()
                .map(|v| v.text.clone())
                .collect()
        };
        let voices = Voices {
            stt: speech.stt.clone(),
            tts: speech.tts.clone(),
            phrases,
            voice_trouble: texts(Category::VoiceTrouble),
            cannot_hear: texts(Category::CannotHear),
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
            session_events: None,
            rendering,
            prober,
        })
    }

    /// The phrase cache's size and progress, for `/worker` and `/metrics`.
    pub fn cache_report(&self) -> CacheReport {
        self.voices.phrases.report()
    }

    /// Say once, at startup, which recognizers and voices are left out.
    pub fn log_unconfigured(&self) {
        for missing in &self.unconfigured {
            tracing::info!(provider = missing.service, fix = %missing.fix, "speech provider not configured");
        }
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
