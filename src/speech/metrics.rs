//! The speech layer's metrics, recorded with the `metrics` crate like the
//! rest of voxguard (exported on `/metrics` by the worker's recorder):
//!
//! - `voxguard_stt_first_result_seconds{provider}`: audio in → first result;
//! - `voxguard_tts_first_audio_seconds{provider}`: sentence asked → first audio;
//! - `voxguard_speech_fallbacks_total{direction, from, to}`;
//! - `voxguard_speech_errors_total{provider, kind}`: every classified failure;
//! - `voxguard_stt_replay_seconds{provider}`: turn audio replayed after a failover;
//! - `voxguard_stt_replay_lost_seconds`: turn audio that no longer fit the buffer;
//! - `voxguard_phrase_cache_bytes`, `voxguard_phrase_cache_entries{voice}`.

use std::time::Duration;

use crate::resilience::CallError;

pub fn stt_first_result(provider: &'static str, took: Duration) {
    metrics::histogram!("voxguard_stt_first_result_seconds", "provider" => provider)
        .record(took.as_secs_f64());
}

pub fn tts_first_audio(provider: &'static str, took: Duration) {
    metrics::histogram!("voxguard_tts_first_audio_seconds", "provider" => provider)
        .record(took.as_secs_f64());
}

pub fn fallback(direction: &'static str, from: &'static str, to: &'static str) {
    metrics::counter!("voxguard_speech_fallbacks_total", "direction" => direction, "from" => from, "to" => to)
        .increment(1);
}

pub fn error(provider: &'static str, error: &CallError) {
    metrics::counter!("voxguard_speech_errors_total", "provider" => provider, "kind" => error.kind().as_str())
        .increment(1);
}

pub fn replayed(provider: &'static str, audio: Duration) {
    metrics::histogram!("voxguard_stt_replay_seconds", "provider" => provider)
        .record(audio.as_secs_f64());
}

pub fn replay_lost(audio: Duration) {
    metrics::histogram!("voxguard_stt_replay_lost_seconds").record(audio.as_secs_f64());
}
