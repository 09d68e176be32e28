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
}

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
        .filter(|(_, n)| *n > 0)
        .collect()
    }

    /// A readable summary table.
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "voxguard simulate — scenario {} (seed {})",
            self.scenario, self.seed
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
    }
}
