//! Circuit breaker: stops calling a service that keeps failing, then probes it.
//!
//! Closed → Open on `consecutive_failures` failures in a row, or when the
//! sliding window (of the last `window_size` calls, judged from `min_calls`)
//! reaches `failure_rate` failures or `slow_call_rate` slow calls. Open lasts
//! `open_base × 2^n` (capped at `open_cap`; `n` counts re-openings since the
//! breaker last closed), then HalfOpen admits exactly `half_open_probes`
//! probes: all succeeding closes it, any failing (or slow) reopens it.
//!
//! The closed path (admit + record) takes no lock: the state is one atomic
//! word, transitions are compare-exchanges so exactly one thread makes each.
//! A probe permit dropped without a verdict is *cancelled*: its slot is freed
//! for another probe and it counts as neither success nor failure.
//!
//! ```
//! use std::time::Duration;
//! use voxguard::resilience::{CallResult, CircuitBreaker, Clock, GuardConfig};
//! let breaker = CircuitBreaker::new("crm", GuardConfig::for_service("crm").breaker, Clock::monotonic());
//! let permit = breaker.try_acquire().expect("a new breaker is closed");
//! permit.record(CallResult::Success, Duration::from_millis(120));
//! ```

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::*};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::breaker_events::{BreakerEvent, BreakerListener, Listeners, TransitionReason};
use super::breaker_window::{FAILED, SLOW, SlidingWindow};
use super::clock::{Clock, as_nanos};
use super::error::{CallError, Rejection};

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

/// The largest sliding window a breaker accepts: one byte per slot is
/// allocated up front, and no failure rate needs more calls than this to judge.
pub const MAX_WINDOW_SIZE: u32 = 100_000;

impl BreakerConfig {
    /// How long the breaker stays open after its `reopenings`-th re-opening.
    pub fn open_duration(&self, reopenings: u32) -> Duration {
        let factor = 1u32.checked_shl(reopenings).unwrap_or(u32::MAX);
        self.open_base.saturating_mul(factor).min(self.open_cap)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

/// The verdict on one admitted call, from the service's health point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallResult {
    Success,
    Failure,
}

impl CallResult {
    /// Success unless the error says something about the service's health
    /// (see [`CallError::counts_against_service`]).
    pub fn of<T>(result: &Result<T, CallError>) -> Self {
        match result {
            Err(error) if error.counts_against_service() => CallResult::Failure,
            _ => CallResult::Success,
        }
    }
}

// The state word: bits 0-1 state, bits 2-7 re-openings since last closed,
// bits 8-63 payload: the open-until time in µs when open, else a generation
// number, so every period of every state has a distinct word.
const CLOSED: u64 = 0;
const OPEN: u64 = 1;
const HALF_OPEN: u64 = 2;
const STATE_MASK: u64 = 0b11;
const PAYLOAD_MAX: u64 = (1 << 56) - 1;

fn encode(state: u64, reopenings: u32, payload: u64) -> u64 {
    state | (u64::from(reopenings.min(63)) << 2) | (payload.min(PAYLOAD_MAX) << 8)
}

pub(super) fn state_of(word: u64) -> BreakerState {
    match word & STATE_MASK {
        CLOSED => BreakerState::Closed,
        OPEN => BreakerState::Open,
        _ => BreakerState::HalfOpen,
    }
}

pub(super) fn reopenings_of(word: u64) -> u32 {
    ((word >> 2) & 63) as u32
}

fn payload_of(word: u64) -> u64 {
    word >> 8
}

pub(super) enum Target {
    Closed,
    HalfOpen,
    Open { reopenings: u32, until_nanos: u64 },
}

/// Calls a breaker has recorded while closed since it was created (never
/// reset): a fleet sync reads the difference between two tallies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BreakerTally {
    pub calls: u64,
    pub failures: u64,
    pub slow: u64,
}

/// Half-open bookkeeping for one half-open period (identified by its word).
#[derive(Debug, Default)]
struct ProbeBook {
    word: u64,
    admitted: u32,
    succeeded: u32,
}

/// Keeps hot atomics on their own cache lines.
#[derive(Debug)]
#[repr(align(128))]
pub(super) struct Padded<T>(pub(super) T);

#[derive(Debug)]
pub struct CircuitBreaker {
    pub(super) state: Padded<AtomicU64>,
    consecutive: Padded<AtomicU32>,
    window: SlidingWindow,
    service: Arc<str>,
    pub(super) config: BreakerConfig,
    clock: Clock,
    generation: AtomicU64,
    probes: Mutex<ProbeBook>,
    pub(super) listeners: Arc<Listeners>,
}

/// Leave to make one call. Record its verdict with [`Permit::record`].
#[must_use = "record the call's result on the permit"]
#[derive(Debug)]
pub struct Permit<'a> {
    breaker: &'a CircuitBreaker,
    word: u64,
    probe: bool,
}

impl Permit<'_> {
    /// Whether this is a half-open probe.
    pub fn is_probe(&self) -> bool {
        self.probe
    }

    /// Record the call's verdict and how long it took (slow calls count as slow).
    #[inline(always)]
    pub fn record(self, result: CallResult, duration: Duration) {
        // A recorded permit has nothing left to release: skip its drop.
        let this = std::mem::ManuallyDrop::new(self);
        if this.probe {
            this.breaker.record_probe(this.word, result, duration);
        } else {
            this.breaker.record_closed(this.word, result, duration);
        }
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if self.probe {
            self.breaker.cancel_probe(self.word);
        }
    }
}

impl CircuitBreaker {
    pub fn new(service: impl Into<Arc<str>>, config: BreakerConfig, clock: Clock) -> Self {
        Self::with_listeners(service, config, clock, Listeners::new())
    }

    /// A breaker sharing a listener list (e.g. its registry's).
    pub fn with_listeners(
        service: impl Into<Arc<str>>,
        config: BreakerConfig,
        clock: Clock,
        listeners: Arc<Listeners>,
    ) -> Self {
        CircuitBreaker {
            state: Padded(AtomicU64::new(encode(CLOSED, 0, 0))),
            consecutive: Padded(AtomicU32::new(0)),
            window: SlidingWindow::new(config.window_size),
            service: service.into(),
            config,
            clock,
            generation: AtomicU64::new(1),
            probes: Mutex::new(ProbeBook::default()),
            listeners,
        }
    }

    pub fn service(&self) -> &str {
        &self.service
    }

    pub fn config(&self) -> &BreakerConfig {
        &self.config
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The current state. An open breaker whose open period elapsed still
    /// reads `Open` until the next call attempt moves it to `HalfOpen`.
    pub fn state(&self) -> BreakerState {
        state_of(self.state.0.load(Acquire))
    }

    /// When an open breaker will let probes through, on its clock.
    pub fn open_until(&self) -> Option<Duration> {
        let word = self.state.0.load(Acquire);
        (state_of(word) == BreakerState::Open).then(|| Duration::from_micros(payload_of(word)))
    }

    /// Cumulative closed-state call counts (see [`BreakerTally`]).
    pub fn tally(&self) -> BreakerTally {
        let (calls, failures, slow) = self.window.tally();
        BreakerTally {
            calls,
            failures,
            slow,
        }
    }

    pub fn subscribe(&self, listener: BreakerListener) {
        self.listeners.subscribe(listener);
    }

    /// Admit a call, or reject it fast with [`Rejection::BreakerOpen`].
    #[inline(always)]
    pub fn try_acquire(&self) -> Result<Permit<'_>, Rejection> {
        let word = self.state.0.load(Acquire);
        if word & STATE_MASK == CLOSED {
            return Ok(Permit {
                breaker: self,
                word,
                probe: false,
            });
        }
        self.acquire_not_closed(word)
    }

    #[cold]
    fn acquire_not_closed(&self, mut word: u64) -> Result<Permit<'_>, Rejection> {
        loop {
            match state_of(word) {
                BreakerState::Closed => {
                    return Ok(Permit {
                        breaker: self,
                        word,
                        probe: false,
                    });
                }
                BreakerState::Open => {
                    if self.clock.now_nanos() < payload_of(word).saturating_mul(1000) {
                        return Err(Rejection::BreakerOpen);
                    }
                    self.transition_and_emit(word, Target::HalfOpen, TransitionReason::OpenElapsed);
                }
                BreakerState::HalfOpen => {
                    let mut book = self.lock_probes();
                    if book.word != word {
                        *book = ProbeBook {
                            word,
                            ..ProbeBook::default()
                        };
                    }
                    if self.state.0.load(Acquire) == word {
                        if book.admitted >= self.config.half_open_probes {
                            return Err(Rejection::BreakerOpen);
                        }
                        book.admitted += 1;
                        return Ok(Permit {
                            breaker: self,
                            word,
                            probe: true,
                        });
                    }
                }
            }
            word = self.state.0.load(Acquire);
        }
    }

    #[inline(always)]
    fn record_closed(&self, word: u64, result: CallResult, duration: Duration) {
        if self.state.0.load(Relaxed) != word {
            return; // a verdict from a closed period that already ended
        }
        let failed = result == CallResult::Failure;
        if failed {
            let in_a_row = self.consecutive.0.fetch_add(1, Relaxed) + 1;
            if in_a_row >= self.config.consecutive_failures {
                self.window.tally_only(FAILED);
                self.trip(word, TransitionReason::ConsecutiveFailures(in_a_row));
                return;
            }
        } else if self.consecutive.0.load(Relaxed) != 0 {
            self.consecutive.0.store(0, Relaxed);
        }
        let slow = duration > self.config.slow_call_threshold;
        let outcome = if failed { FAILED } else { 0 } | if slow { SLOW } else { 0 };
        let calls = self.window.push(outcome);
        // A fast success can only lower the rates, except when it is the call
        // that brings the window up to `min_calls`.
        if calls >= self.config.min_calls && (outcome != 0 || calls == self.config.min_calls) {
            self.judge_window(word, calls);
        }
    }

    #[cold]
    fn judge_window(&self, word: u64, calls: u32) {
        let counts = self.window.counts(calls);
        let reached = |n: u32, rate: f64| f64::from(n) / f64::from(calls) >= rate;
        if reached(counts.failures, self.config.failure_rate) {
            self.trip(
                word,
                TransitionReason::FailureRate {
                    failures: counts.failures,
                    calls,
                },
            );
        } else if reached(counts.slow, self.config.slow_call_rate) {
            self.trip(
                word,
                TransitionReason::SlowCallRate {
                    slow: counts.slow,
                    calls,
                },
            );
        }
    }

    #[cold]
    fn trip(&self, word: u64, reason: TransitionReason) {
        let reopenings = reopenings_of(word);
        let until_nanos = self.open_until_nanos(self.config.open_duration(reopenings));
        self.transition_and_emit(
            word,
            Target::Open {
                reopenings,
                until_nanos,
            },
            reason,
        );
    }

    #[cold]
    fn record_probe(&self, word: u64, result: CallResult, duration: Duration) {
        let failed = result == CallResult::Failure || duration > self.config.slow_call_threshold;
        let transition = {
            let mut book = self.lock_probes();
            if book.word != word || self.state.0.load(Acquire) != word {
                return; // a probe of a half-open period that already ended
            }
            if failed {
                let reopenings = reopenings_of(word) + 1;
                let until_nanos = self.open_until_nanos(self.config.open_duration(reopenings));
                self.transition(
                    word,
                    Target::Open {
                        reopenings,
                        until_nanos,
                    },
                    TransitionReason::ProbeFailed,
                )
            } else {
                book.succeeded += 1;
                if book.succeeded < self.config.half_open_probes {
                    return;
                }
                self.transition(word, Target::Closed, TransitionReason::ProbesSucceeded)
            }
        };
        if let Some(event) = transition {
            self.listeners.emit(&event);
        }
    }

    #[cold]
    fn cancel_probe(&self, word: u64) {
        let mut book = self.lock_probes();
        if book.word == word && book.admitted > 0 {
            book.admitted -= 1;
        }
    }

    pub(super) fn open_until_nanos(&self, duration: Duration) -> u64 {
        self.clock.now_nanos().saturating_add(as_nanos(duration))
    }

    fn transition_and_emit(&self, from_word: u64, target: Target, reason: TransitionReason) {
        if let Some(event) = self.transition(from_word, target, reason) {
            self.listeners.emit(&event);
        }
    }

    /// Move from exactly `from_word` to `target`; `None` if another thread moved first.
    pub(super) fn transition(
        &self,
        from_word: u64,
        target: Target,
        reason: TransitionReason,
    ) -> Option<BreakerEvent> {
        let new_word = match target {
            Target::Closed => {
                self.window.clear();
                self.consecutive.0.store(0, Relaxed);
                encode(CLOSED, 0, self.generation.fetch_add(1, Relaxed))
            }
            Target::HalfOpen => encode(
                HALF_OPEN,
                reopenings_of(from_word),
                self.generation.fetch_add(1, Relaxed),
            ),
            Target::Open {
                reopenings,
                until_nanos,
            } => encode(OPEN, reopenings, until_nanos.div_ceil(1000)),
        };
        self.state
            .0
            .compare_exchange(from_word, new_word, AcqRel, Acquire)
            .ok()?;
        Some(BreakerEvent {
            service: self.service.clone(),
            from: state_of(from_word),
            to: state_of(new_word),
            reason,
            at: self.clock.now(),
        })
    }

    fn lock_probes(&self) -> std::sync::MutexGuard<'_, ProbeBook> {
        self.probes
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}
