//! The `voxguard simulate` report: the JSON contract of DESIGN.md and a
//! readable summary table.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

/// p50 / p99 / max of a latency series, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct LatencySummary {
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

impl LatencySummary {
    /// Nearest-rank percentiles over `samples_ms`; all zero when empty.
    pub fn of(samples_ms: &[f64]) -> Self {
        if samples_ms.is_empty() {
            return LatencySummary::default();
        }
        let mut sorted = samples_ms.to_vec();
        sorted.sort_by(f64::total_cmp);
        LatencySummary {
            p50: nearest_rank(&sorted, 0.50),
            p99: nearest_rank(&sorted, 0.99),
            max: *sorted.last().expect("non-empty"),
        }
    }
}

fn nearest_rank(sorted: &[f64], quantile: f64) -> f64 {
    let rank = (quantile * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Outcomes {
    pub ok: u64,
    pub fallback: u64,
    pub unknown_outcome: u64,
}

/// One JSON object on stdout with `--json`; keys per DESIGN.md, extras allowed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SimulationReport {
    pub scenario: String,
    /// `text` or `audio`.
    pub media: String,
    pub calls: u64,
    pub turns: u64,
    pub tool_calls: u64,
    pub first_speech_ms: LatencySummary,
    pub resolution_ms: LatencySummary,
    pub budget_overruns: u64,
    pub unpaired_tool_calls: u64,
    pub state_violations: u64,
    pub immediate_repeats: u64,
    pub false_promises: u64,
    pub panics: u64,
    pub outcomes: Outcomes,
    pub breaker_transitions: BTreeMap<String, Vec<String>>,
    pub sessions_peak: u64,
    /// The worker's process only when `mode` is `child-process`.
    pub rss_peak_bytes: u64,
    /// `child-process` (the CRM simulator and LiveKit stand-in ran in a
    /// `voxguard sim-peer` child) or `in-process` (one process for all).
    pub mode: String,
    /// The child peer's own VmHWM, when there was one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_rss_peak_bytes: Option<u64>,
    pub seed: u64,
    pub concurrency: u64,
    pub wall_ms: f64,
    pub event_loop_lag_ms: LatencySummary,
    pub sessions_failed: u64,
    /// Where the run kept its shared state, and that it cleaned it up.
    pub fleet: FleetUse,
    /// With `--media audio`: measured on the audio the callers received.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub audio: Option<AudioFigures>,
}

/// A spoken run's figures, measured at the callers' ears.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AudioFigures {
    /// End of a caller's line → the agent's first audio after it.
    pub mouth_to_ear_ms: LatencySummary,
    /// A tool call starts → the caller hears the agent (0 if it is talking).
    pub first_audio_after_tool_ms: LatencySummary,
    /// The longest silence the caller sat through between the end of a
    /// line and the agent's last stretch of answer.
    pub dead_air_ms: LatencySummary,
    /// The caller starts talking over the agent → its audio stops.
    pub interruption_stop_ms: LatencySummary,
    /// Job dispatched → the greeting's first audio.
    pub greeting_ms: LatencySummary,
    pub lost_caller_turns: u64,
    pub truncation_mismatches: u64,
    pub playout_underruns: u64,
    /// Lines the agent did not take by ear, which callers then typed.
    pub typed_lines: u64,
    /// Calls whose voice pipeline never reported (it could not start).
    pub voice_reports_missing: u64,
    /// Minutes of call, dispatch to hang-up, over every call.
    pub call_minutes: f64,
    /// The worker process's CPU (espeak-ng children included) per call-minute.
    pub cpu_s_per_call_minute: f64,
    /// The simulator peer's (callers, stand-in, simulators) per call-minute.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_cpu_s_per_call_minute: Option<f64>,
    /// The phrase audio cache, shared by every call.
    pub phrase_cache_bytes: u64,
}

impl AudioFigures {
    pub fn of(
        heard: &crate::simulate::audio::AudioChecked,
        cpu_used: Option<f64>,
        peer_cpu_used: Option<f64>,
        voice: Option<&crate::agent::VoiceStack>,
    ) -> AudioFigures {
        let minutes = heard.call_seconds / 60.0;
        let per_minute = |cpu: f64| if minutes > 0.0 { cpu / minutes } else { 0.0 };
        AudioFigures {
            mouth_to_ear_ms: LatencySummary::of(&heard.mouth_to_ear_ms),
            first_audio_after_tool_ms: LatencySummary::of(&heard.first_audio_after_tool_ms),
            dead_air_ms: LatencySummary::of(&heard.dead_air_ms),
            interruption_stop_ms: LatencySummary::of(&heard.interruption_stop_ms),
            greeting_ms: LatencySummary::of(&heard.greeting_ms),
            lost_caller_turns: heard.lost_caller_turns,
            truncation_mismatches: heard.truncation_mismatches,
            playout_underruns: heard.playout_underruns,
            typed_lines: heard.typed_lines,
            voice_reports_missing: heard.voice_reports_missing,
            call_minutes: minutes,
            cpu_s_per_call_minute: cpu_used.map(per_minute).unwrap_or(0.0),
            peer_cpu_s_per_call_minute: peer_cpu_used.map(per_minute),
            phrase_cache_bytes: voice.map_or(0, |v| v.cache_report().bytes as u64),
        }
    }
}

/// The most a tool call may leave the caller without hearing the agent.
pub const FIRST_AUDIO_LIMIT_MS: f64 = 750.0;

/// The fleet state of one run: its own key prefix, never the production
/// one, and the keys deleted under it at the end.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FleetUse {
    pub backend: crate::fleet::BackendKind,
    pub key_prefix: String,
    pub keys_removed: u64,
    /// Why the keys could not be deleted (they expire after
    /// `[fleet] state_ttl` anyway).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cleanup_error: Option<String>,
}

impl SimulationReport {
    /// The invariant counters that must all be zero.
    pub fn violations(&self) -> Vec<(&'static str, u64)> {
        [
            ("budget_overruns", self.budget_overruns),
            ("unpaired_tool_calls", self.unpaired_tool_calls),
            ("state_violations", self.state_violations),
            ("immediate_repeats", self.immediate_repeats),
            ("false_promises", self.false_promises),
            ("panics", self.panics),
            ("sessions_failed", self.sessions_failed),
        ]
        .into_iter()
        .chain(self.audio.iter().flat_map(|audio| {
            [
                ("lost_caller_turns", audio.lost_caller_turns),
                ("truncation_mismatches", audio.truncation_mismatches),
                ("voice_reports_missing", audio.voice_reports_missing),
                (
                    "first_audio_after_tool_over_750ms",
                    u64::from(audio.first_audio_after_tool_ms.max > FIRST_AUDIO_LIMIT_MS),
                ),
            ]
        }))
        .filter(|(_, n)| *n > 0)
        .collect()
    }

    /// A readable summary table.
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "voxguard simulate — scenario {} (seed {}, {} calls)",
            self.scenario, self.seed, self.media
        );
        let _ = writeln!(
            out,
            "  calls {:>7}   turns {:>7}   tool calls {:>7}   concurrency {}   wall {:.1}s",
            self.calls,
            self.turns,
            self.tool_calls,
            self.concurrency,
            self.wall_ms / 1000.0
        );
        let _ = writeln!(
            out,
            "  {:<22} {:>9} {:>9} {:>9}",
            "latency (ms)", "p50", "p99", "max"
        );
        for (name, s) in [
            ("first speech", self.first_speech_ms),
            ("resolution", self.resolution_ms),
            ("event-loop lag", self.event_loop_lag_ms),
        ] {
            let _ = writeln!(
                out,
                "  {:<22} {:>9.1} {:>9.1} {:>9.1}",
                name, s.p50, s.p99, s.max
            );
        }
        if let Some(audio) = &self.audio {
            for (name, s) in [
                ("greeting (dispatch→ear)", audio.greeting_ms),
                ("mouth to ear", audio.mouth_to_ear_ms),
                ("tool → first audio", audio.first_audio_after_tool_ms),
                ("dead air", audio.dead_air_ms),
                ("interruption stop", audio.interruption_stop_ms),
            ] {
                let _ = writeln!(
                    out,
                    "  {:<22} {:>9.1} {:>9.1} {:>9.1}",
                    name, s.p50, s.p99, s.max
                );
            }
            let _ = writeln!(
                out,
                "  audio: lost_caller_turns {}  truncation_mismatches {}  playout_underruns {}  typed_lines {}  voice_reports_missing {}",
                audio.lost_caller_turns,
                audio.truncation_mismatches,
                audio.playout_underruns,
                audio.typed_lines,
                audio.voice_reports_missing
            );
            let _ = writeln!(
                out,
                "  cpu: worker {:.3} s per call-minute{}  ({:.1} call-minutes; phrase cache {:.1} MiB, shared)",
                audio.cpu_s_per_call_minute,
                match audio.peer_cpu_s_per_call_minute {
                    Some(peer) => format!(", simulator peer {peer:.3}"),
                    None => String::new(),
                },
                audio.call_minutes,
                audio.phrase_cache_bytes as f64 / (1024.0 * 1024.0)
            );
        }
        let _ = writeln!(
            out,
            "  outcomes: ok {}  fallback {}  unknown_outcome {}",
            self.outcomes.ok, self.outcomes.fallback, self.outcomes.unknown_outcome
        );
        let _ = writeln!(
            out,
            "  invariants: budget_overruns {}  unpaired_tool_calls {}  state_violations {}  immediate_repeats {}  false_promises {}  panics {}",
            self.budget_overruns,
            self.unpaired_tool_calls,
            self.state_violations,
            self.immediate_repeats,
            self.false_promises,
            self.panics
        );
        for (service, transitions) in &self.breaker_transitions {
            let _ = writeln!(out, "  breaker {service}: {}", transitions.join(" → "));
        }
        let per_session = self
            .rss_peak_bytes
            .checked_div(self.sessions_peak)
            .unwrap_or(0);
        let _ = writeln!(
            out,
            "  sessions peak {}   rss peak {:.1} MiB ({} B/session, {})",
            self.sessions_peak,
            self.rss_peak_bytes as f64 / (1024.0 * 1024.0),
            per_session,
            self.mode
        );
        if self.fleet.backend == crate::fleet::BackendKind::Redis {
            let _ = writeln!(
                out,
                "  fleet: redis keys under {}: {} removed{}",
                self.fleet.key_prefix,
                self.fleet.keys_removed,
                match &self.fleet.cleanup_error {
                    Some(error) => format!(" (cleanup failed: {error})"),
                    None => String::new(),
                }
            );
        }
        if let Some(peer) = self.peer_rss_peak_bytes {
            let _ = writeln!(
                out,
                "  simulator peer rss peak {:.1} MiB",
                peer as f64 / (1024.0 * 1024.0)
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles_of_one_to_one_hundred() {
        let samples: Vec<f64> = (1..=100).map(f64::from).collect();
        let s = LatencySummary::of(&samples);
        assert_eq!((s.p50, s.p99, s.max), (50.0, 99.0, 100.0));
    }

    #[test]
    fn a_single_sample_is_every_percentile() {
        let s = LatencySummary::of(&[7.5]);
        assert_eq!((s.p50, s.p99, s.max), (7.5, 7.5, 7.5));
    }

    #[test]
    fn violations_lists_only_nonzero_counters() {
        let report = SimulationReport {
            false_promises: 2,
            panics: 1,
            ..Default::default()
        };
        assert_eq!(
            report.violations(),
            vec![("false_promises", 2), ("panics", 1)]
        );
    }

    #[test]
    fn json_report_has_every_contract_key() {
        let json = serde_json::to_value(SimulationReport::default()).unwrap();
        for key in [
            "scenario",
            "media",
            "calls",
            "turns",
            "tool_calls",
            "first_speech_ms",
            "resolution_ms",
            "budget_overruns",
            "unpaired_tool_calls",
            "state_violations",
            "immediate_repeats",
            "false_promises",
            "panics",
            "outcomes",
            "breaker_transitions",
            "sessions_peak",
            "rss_peak_bytes",
        ] {
            assert!(json.get(key).is_some(), "missing {key}");
        }
        assert!(json["first_speech_ms"].get("p99").is_some());
        assert!(json["outcomes"].get("unknown_outcome").is_some());
        assert!(
            json.get("mouth_to_ear_ms").is_none(),
            "audio keys only with audio"
        );
        let spoken = SimulationReport {
            audio: Some(AudioFigures::default()),
            ..Default::default()
        };
        let json = serde_json::to_value(spoken).unwrap();
        for key in [
            "mouth_to_ear_ms",
            "first_audio_after_tool_ms",
            "dead_air_ms",
            "interruption_stop_ms",
            "lost_caller_turns",
            "truncation_mismatches",
            "playout_underruns",
            "cpu_s_per_call_minute",
        ] {
            assert!(json.get(key).is_some(), "missing {key}");
        }
    }

    #[test]
    fn a_tool_call_heard_after_750_ms_or_a_lost_turn_fails_a_spoken_run() {
        let mut report = SimulationReport {
            audio: Some(AudioFigures::default()),
            ..Default::default()
        };
        assert!(report.violations().is_empty());
        if let Some(audio) = report.audio.as_mut() {
            audio.first_audio_after_tool_ms.max = 751.0;
            audio.lost_caller_turns = 1;
        }
        assert_eq!(
            report.violations(),
            vec![
                ("lost_caller_turns", 1),
                ("first_audio_after_tool_over_750ms", 1)
            ]
        );
    }
}
