//! The `[speech]` section: defaults that speak with no keys at all,
//! providers joining their chains when their keys are set, overrides from
//! the environment, and errors that name file, line and field.

use voxguard::config::{Config, DEFAULT_ORIGIN, DEFAULT_TOML};
use voxguard::speech::{SttSettings, TtsSettings};

fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
    move |name| {
        pairs
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    }
}

#[test]
fn with_no_keys_there_is_no_recognizer_and_the_local_voice_speaks() {
    let config = Config::embedded_default().unwrap();
    let (settings, absent) = config.speech_settings_with(&|_| None);
    assert!(settings.stt.is_empty());
    assert_eq!(settings.tts.len(), 1);
    assert!(matches!(settings.tts[0].0, TtsSettings::Espeak(_)));
    let named: Vec<_> = absent.iter().map(|a| (a.name, a.reason.clone())).collect();
    assert_eq!(named.len(), 4, "{named:?}");
    let deepgram = named.iter().find(|(n, _)| *n == "stt.deepgram").unwrap();
    assert!(deepgram.1.contains("DEEPGRAM_API_KEY"), "{deepgram:?}");
    let cartesia = named.iter().find(|(n, _)| *n == "tts.cartesia").unwrap();
    assert!(cartesia.1.contains("CARTESIA_API_KEY"), "{cartesia:?}");
}

#[test]
fn keys_bring_providers_into_their_chains_in_the_configured_order() {
    let config = Config::embedded_default().unwrap();
    let env = env_of(&[
        ("DEEPGRAM_API_KEY", "dg-secret"),
        ("OPENAI_API_KEY", "sk-secret"),
    ]);
    let (settings, absent) = config.speech_settings_with(&env);
    let stt: Vec<_> = settings.stt.iter().map(|(s, _)| s.name()).collect();
    let tts: Vec<_> = settings.tts.iter().map(|(t, _)| t.name()).collect();
    assert_eq!(stt, ["stt.deepgram", "stt.openai"]);
    assert_eq!(tts, ["tts.openai", "tts.espeak"]);
    assert_eq!(absent.len(), 1);
    for (provider, guard) in &settings.stt {
        assert_eq!(
            guard.retry.max_attempts,
            config.profile("voice").unwrap().max_attempts,
            "{}",
            provider.name()
        );
    }
    let printed = format!("{settings:?}");
    assert!(
        !printed.contains("dg-secret") && !printed.contains("sk-secret"),
        "{printed}"
    );
}

#[test]
fn a_self_hosted_openai_compatible_server_needs_no_key() {
    let env = env_of(&[
        ("VOXGUARD_STT_BASE_URL", "http://127.0.0.1:8000/v1"),
        ("VOXGUARD_STT", "openai"),
    ]);
    let config = Config::from_toml_with_env(DEFAULT_TOML, DEFAULT_ORIGIN, &env).unwrap();
    let (settings, _) = config.speech_settings_with(&env);
    let [(SttSettings::OpenAi(openai), _)] = &settings.stt[..] else {
        panic!("{:?}", settings.stt)
    };
    assert_eq!(openai.base_url, "http://127.0.0.1:8000/v1");
    assert!(openai.api_key.is_none());
}

#[test]
fn an_unknown_voice_is_reported_with_file_line_and_field() {
    let text = DEFAULT_TOML.replace(
        r#"tts = ["openai", "cartesia", "espeak"]"#,
        r#"tts = ["openai", "polly"]"#,
    );
    let error = Config::from_toml(&text, "voice.toml").unwrap_err();
    let problem = error
        .problems()
        .iter()
        .find(|p| p.field == "speech.tts")
        .unwrap_or_else(|| panic!("{error}"));
    let line = text.lines().position(|l| l.contains("\"polly\"")).unwrap() + 1;
    assert_eq!(problem.line, Some(line));
    assert!(
        problem.to_string().starts_with(&format!(
            "voice.toml:{line}: speech.tts: unknown provider \"polly\""
        )),
        "{problem}"
    );
}

#[test]
fn a_chain_without_any_voice_and_a_short_utterance_end_are_refused() {
    let text = DEFAULT_TOML
        .replace(r#"tts = ["openai", "cartesia", "espeak"]"#, "tts = []")
        .replace(r#"utterance_end = "1s""#, r#"utterance_end = "500ms""#);
    let error = Config::from_toml(&text, "t.toml").unwrap_err();
    let fields: Vec<_> = error.problems().iter().map(|p| p.field.as_str()).collect();
    assert!(fields.contains(&"speech.tts"), "{error}");
    assert!(fields.contains(&"speech.deepgram.utterance_end"), "{error}");
    assert!(error.to_string().contains("espeak"), "{error}");
}

#[test]
fn a_bad_chain_from_the_environment_names_the_variable() {
    let env = env_of(&[("VOXGUARD_TTS", "espeak,espeak")]);
    let error = Config::from_toml_with_env(DEFAULT_TOML, DEFAULT_ORIGIN, &env).unwrap_err();
    let problem = &error.problems()[0];
    assert_eq!(problem.origin, "environment variable VOXGUARD_TTS");
    assert!(problem.message.contains("listed twice"), "{problem}");
}

#[test]
fn a_config_without_a_speech_section_gets_the_defaults() {
    let start = DEFAULT_TOML.find("\n[speech]").unwrap();
    let text = &DEFAULT_TOML[..start];
    let config = Config::from_toml(text, "old.toml").unwrap();
    assert_eq!(config.speech, voxguard::config::SpeechConfig::default());
    assert_eq!(config.speech, Config::embedded_default().unwrap().speech);
}
