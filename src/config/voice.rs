//! The `[voice]` section: turn taking and interruptions, in LiveKit Agents'
//! words, so a user's settings carry over.

use std::time::Duration;

use serde::Deserialize;

use super::duration;
use super::validate::Report;
use crate::voice::call::VoiceSettings;
use crate::voice::endpoint::EndpointSettings;
use crate::voice::interrupt::InterruptSettings;

/// The `[voice]` section.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VoiceConfig {
    /// The least silence after the caller's speech before their turn ends.
    #[serde(deserialize_with = "duration::required")]
    pub min_endpointing_delay: Duration,
    /// The most silence after the caller's speech before their turn ends,
    /// words from the recognizer or not.
    #[serde(deserialize_with = "duration::required")]
    pub max_endpointing_delay: Duration,
    /// Caller speech at least this long while the agent speaks interrupts it.
    #[serde(deserialize_with = "duration::required")]
    pub min_interruption_duration: Duration,
    /// An interruption with no words this long after the caller stopped
    /// was not one: the agent resumes.
    #[serde(deserialize_with = "duration::required")]
    pub false_interruption_timeout: Duration,
}

impl Default for VoiceConfig {
    fn default() -> Self {
        let endpoint = EndpointSettings::default();
        let interrupt = InterruptSettings::default();
        VoiceConfig {
            min_endpointing_delay: endpoint.min_delay,
            max_endpointing_delay: endpoint.max_delay,
            min_interruption_duration: interrupt.min_duration,
            false_interruption_timeout: interrupt.false_timeout,
        }
    }
}

impl VoiceConfig {
    /// The pipeline's settings: these values, the rest at their defaults.
    pub fn settings(&self) -> VoiceSettings {
        VoiceSettings {
            endpoint: EndpointSettings {
                min_delay: self.min_endpointing_delay,
                max_delay: self.max_endpointing_delay,
            },
            interrupt: InterruptSettings {
                min_duration: self.min_interruption_duration,
                false_timeout: self.false_interruption_timeout,
            },
            ..VoiceSettings::default()
        }
    }
}

pub(super) fn check(voice: &VoiceConfig, report: &mut Report<'_>) {
    if voice.max_endpointing_delay < voice.min_endpointing_delay {
        report.error(
            "voice.max_endpointing_delay",
            format!(
                "{} is shorter than min_endpointing_delay ({}); the turn would end before it may",
                humantime::format_duration(voice.max_endpointing_delay),
                humantime::format_duration(voice.min_endpointing_delay)
            ),
        );
    }
    if voice.max_endpointing_delay > Duration::from_secs(10) {
        report.error(
            "voice.max_endpointing_delay",
            "more than 10s of waiting after the caller stops is dead air; keep it near 3s".into(),
        );
    }
    if voice.min_interruption_duration > Duration::from_secs(3) {
        report.error(
            "voice.min_interruption_duration",
            "a caller would have to talk over the agent for more than 3s; keep it near 0.5s".into(),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, VoiceConfig};

    #[test]
    fn a_file_without_a_voice_section_takes_the_defaults() {
        let text = "[profiles.voice]\nbudget = \"3s\"\nattempt_timeout = \"1s\"\nmax_attempts = 2\n\
                    backoff = { kind = \"full\", base = \"100ms\", cap = \"400ms\" }\n\
                    filler_after = \"600ms\"\nfiller_repeat = \"1s\"\nfiller_max = 2\n\
                    slow_call_threshold = \"900ms\"\n[llm]\nprofile = \"voice\"\n";
        let config = Config::from_toml(text, "minimal.toml").unwrap();
        assert_eq!(config.voice, VoiceConfig::default());
    }

    #[test]
    fn an_endpointing_window_that_ends_before_it_starts_is_refused() {
        let text = crate::config::DEFAULT_TOML
            .replace(
                "min_endpointing_delay = \"500ms\"",
                "min_endpointing_delay = \"2s\"",
            )
            .replace(
                "max_endpointing_delay = \"3s\"",
                "max_endpointing_delay = \"1s\"",
            );
        let err = Config::from_toml(&text, "v.toml").unwrap_err().to_string();
        assert!(err.contains("voice.max_endpointing_delay"), "{err}");
    }
}
