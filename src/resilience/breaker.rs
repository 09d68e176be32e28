//! Circuit breaker.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub struct BreakerConfig {
    /// Opens after this many consecutive failures.
    pub consecutive_failures: u32,
    /// Count-based sliding window size (calls).
    pub window_size: u32,
    /// The window's rates are only judged once it holds this many calls.
    pub min_calls: u32,
    /// Opens when failures / calls in the window reach this (0.0..=1.0).
    pub failure_rate: f64,
    /// A call slower than this counts as slow.
    pub slow_call_threshold: Duration,
    /// Opens when slow calls / calls in the window reach this (0.0..=1.0).
    pub slow_call_rate: f64,
    /// First open duration; doubles on each re-opening up to `open_cap`.
    pub open_base: Duration,
    pub open_cap: Duration,
    /// Probe calls admitted while half-open.
    pub half_open_probes: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}
