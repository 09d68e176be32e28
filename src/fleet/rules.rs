//! The shared-state rules, as plain data and functions: one sync of a
//! service's fleet breaker and one sync of its fleet retry budget.
//!
//! The in-process backend runs these functions under a lock; the Redis
//! backend runs the same rules as Lua scripts (`lua/*.lua`), atomically.
//! Times are milliseconds on the backend's clock (Redis `TIME` for Redis), so
//! workers' own clocks never have to agree.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::resilience::{BreakerConfig, BreakerState, BreakerTally, BudgetConfig};

/// What a worker's local breaker did since its last sync, as a request to
/// the shared breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Intent {
    /// Nothing to publish; just push counts and read the shared state.
    None,
    /// The local breaker tripped while closed and stays open this much
    /// longer: open the fleet's (if closed) until then, so a trip published
    /// late (the fleet was out of reach) keeps its own open period.
    Trip(Duration),
    /// A probe failed on the worker that holds the probe lease: reopen.
    ProbeFailed,
    /// Every probe succeeded on the lease holder: close.
    ProbesSucceeded,
    /// Ask for the probe lease once the open period elapsed.
    Claim,
    /// The local breaker closed on probes of its own, without the lease (the
    /// fleet was out of reach): close the fleet's unless its open period is
    /// still running or another worker holds a live lease.
    Recovered,
    /// An operator forced the breaker open for this long.
    ForceOpen(Duration),
    /// An operator forced the breaker closed.
    ForceClosed,
}

impl Intent {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Intent::None => "none",
            Intent::Trip(_) => "trip",
            Intent::ProbeFailed => "probe_failed",
            Intent::ProbesSucceeded => "probes_succeeded",
            Intent::Claim => "claim",
            Intent::Recovered => "recovered",
            Intent::ForceOpen(_) => "force_open",
            Intent::ForceClosed => "force_closed",
        }
    }

    /// The open period the intent asks for (0: the rules decide).
    pub(crate) fn force_ms(self) -> u64 {
        match self {
            Intent::ForceOpen(d) | Intent::Trip(d) => millis(d),
            _ => 0,
        }
    }
}

/// The thresholds and timings the shared breaker is judged by.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct BreakerRules {
    pub min_calls: u64,
    pub failure_rate: f64,
    pub slow_rate: f64,
    pub open_base_ms: u64,
    pub open_cap_ms: u64,
    pub window_ms: u64,
    pub bucket_ms: u64,
    pub lease_ms: u64,
    pub ttl_ms: u64,
}

impl BreakerRules {
    pub(crate) fn new(
        breaker: &BreakerConfig,
        window: Duration,
        lease: Duration,
        ttl: Duration,
    ) -> Self {
        let window_ms = millis(window).max(10);
        BreakerRules {
            min_calls: u64::from(breaker.min_calls.max(1)),
            failure_rate: breaker.failure_rate,
            slow_rate: breaker.slow_call_rate,
            open_base_ms: millis(breaker.open_base),
            open_cap_ms: millis(breaker.open_cap),
            window_ms,
            bucket_ms: (window_ms / 10).max(1),
            lease_ms: millis(lease).max(1),
            ttl_ms: millis(ttl).max(1000),
        }
    }

    fn open_ms(&self, reopenings: u32) -> u64 {
        let factor = 1u64.checked_shl(reopenings.min(30)).unwrap_or(u64::MAX);
        self.open_base_ms
            .saturating_mul(factor)
            .min(self.open_cap_ms)
    }
}

/// The shared state as one worker sees it after a sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SharedView {
    pub state: BreakerState,
    /// Bumped on every shared transition.
    pub generation: u64,
    /// Open: until the open period ends. Half-open: until the probe lease ends.
    pub remaining: Duration,
    /// Whether this worker holds the half-open probe lease.
    pub owner_is_me: bool,
    /// The fleet's window while closed.
    pub window: BreakerTally,
}

/// One service's shared breaker, for the in-process backend.
#[derive(Debug, Clone, Default)]
pub(crate) struct SharedBreaker {
    state: Option<BreakerState>,
    generation: u64,
    open_until: u64,
    reopenings: u32,
    owner: String,
    lease_until: u64,
    window: BTreeMap<u64, BreakerTally>,
}

impl SharedBreaker {
    fn open(&mut self, reopenings: u32, now: u64, rules: &BreakerRules) {
        self.set_open(now + rules.open_ms(reopenings), reopenings);
    }

    fn set_open(&mut self, until: u64, reopenings: u32) {
        self.state = Some(BreakerState::Open);
        self.reopenings = reopenings;
        self.open_until = until;
        self.owner.clear();
        self.lease_until = 0;
        self.generation += 1;
        self.window.clear();
    }

    fn close(&mut self) {
        *self = SharedBreaker {
            state: Some(BreakerState::Closed),
            generation: self.generation + 1,
            ..SharedBreaker::default()
        };
    }
}

/// Apply one worker's sync to the shared breaker (the rules of `breaker_sync.lua`).
pub(crate) fn sync_breaker(
    shared: &mut SharedBreaker,
    instance: &str,
    intent: Intent,
    deltas: BreakerTally,
    rules: &BreakerRules,
    now: u64,
) -> SharedView {
    use BreakerState::*;
    let state = shared.state.unwrap_or(Closed);
    let owner_is_me = shared.owner == instance;
    match intent {
        Intent::None => {}
        Intent::Trip(left) if state == Closed => {
            let until = match millis(left) {
                0 => now + rules.open_ms(0),
                left => now + left.min(rules.open_cap_ms),
            };
            shared.set_open(until, 0);
        }
        Intent::ProbeFailed if state == HalfOpen && owner_is_me => {
            shared.open(shared.reopenings + 1, now, rules)
        }
        Intent::ProbesSucceeded if state == HalfOpen && owner_is_me => shared.close(),
        Intent::Claim
            if (state == Open && now >= shared.open_until)
                || (state == HalfOpen && now >= shared.lease_until) =>
        {
            shared.state = Some(HalfOpen);
            shared.owner = instance.to_string();
            shared.lease_until = now + rules.lease_ms;
            shared.generation += 1;
        }
        Intent::Recovered
            if (state == Open && now >= shared.open_until)
                || (state == HalfOpen && (owner_is_me || now >= shared.lease_until)) =>
        {
            shared.close()
        }
        Intent::ForceOpen(duration) => shared.set_open(now + millis(duration), shared.reopenings),
        Intent::ForceClosed if state != Closed => shared.close(),
        _ => {}
    }

    let mut window = BreakerTally::default();
    if shared.state.unwrap_or(Closed) == Closed {
        let bucket = now / rules.bucket_ms;
        let oldest = (bucket + 1).saturating_sub(rules.window_ms / rules.bucket_ms);
        if deltas != BreakerTally::default() {
            let slot = shared.window.entry(bucket).or_default();
            slot.calls += deltas.calls;
            slot.failures += deltas.failures;
            slot.slow += deltas.slow;
        }
        shared.window.retain(|b, _| *b >= oldest);
        for tally in shared.window.values() {
            window.calls += tally.calls;
            window.failures += tally.failures;
            window.slow += tally.slow;
        }
        if window_trips(window, rules) {
            shared.open(0, now, rules);
            window = BreakerTally::default();
        }
    }

    let state = shared.state.unwrap_or(Closed);
    let until = match state {
        Open => shared.open_until,
        HalfOpen => shared.lease_until,
        Closed => now,
    };
    SharedView {
        state,
        generation: shared.generation,
        remaining: Duration::from_millis(until.saturating_sub(now)),
        owner_is_me: shared.owner == instance,
        window,
    }
}

fn window_trips(window: BreakerTally, rules: &BreakerRules) -> bool {
    if window.calls == 0 || window.calls < rules.min_calls {
        return false;
    }
    let rate = |n: u64| n as f64 / window.calls as f64;
    rate(window.failures) >= rules.failure_rate || rate(window.slow) >= rules.slow_rate
}

/// The retry budget's rules over the fleet's time window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct BudgetRules {
    pub retry_ratio: f64,
    pub floor_per_window: u64,
    pub window_ms: u64,
    pub bucket_ms: u64,
    pub ttl_ms: u64,
}

impl BudgetRules {
    pub(crate) fn new(config: &BudgetConfig, ttl: Duration) -> Self {
        let window_ms = millis(config.window).max(10);
        BudgetRules {
            retry_ratio: config.retry_ratio,
            floor_per_window: config.floor_per_window(),
            window_ms,
            bucket_ms: (window_ms / 10).max(1),
            ttl_ms: millis(ttl).max(1000),
        }
    }
}

/// What a budget sync returns: fleet totals over the window and this
/// worker's new grant of retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BudgetView {
    pub deposits: u64,
    pub withdrawals: u64,
    pub granted: u64,
}

/// One service's shared retry budget, for the in-process backend:
/// per time bucket, first attempts and retries granted.
#[derive(Debug, Clone, Default)]
pub(crate) struct SharedBudget {
    buckets: BTreeMap<u64, (i64, i64)>,
}

/// Add this worker's first attempts, take back its unused grant, and grant
/// it half of what the fleet may still retry (the rules of `budget_sync.lua`).
pub(crate) fn sync_budget(
    budget: &mut SharedBudget,
    deposits_in: u64,
    returned: u64,
    rules: &BudgetRules,
    now: u64,
) -> BudgetView {
    let bucket = now / rules.bucket_ms;
    let oldest = (bucket + 1).saturating_sub(rules.window_ms / rules.bucket_ms);
    let current = budget.buckets.entry(bucket).or_default();
    current.0 += deposits_in as i64;
    current.1 -= returned as i64;
    budget.buckets.retain(|b, _| *b >= oldest);
    let (deposits, withdrawals) = budget
        .buckets
        .values()
        .fold((0i64, 0i64), |(d, w), (bd, bw)| (d + bd, w + bw));
    let (deposits, withdrawals) = (deposits.max(0) as u64, withdrawals.max(0) as u64);
    let allowed = (deposits as f64 * rules.retry_ratio) as u64 + rules.floor_per_window;
    let granted = allowed.saturating_sub(withdrawals).div_ceil(2);
    budget.buckets.entry(bucket).or_default().1 += granted as i64;
    BudgetView {
        deposits,
        withdrawals: withdrawals + granted,
        granted,
    }
}

pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resilience::GuardConfig;

    fn rules() -> BreakerRules {
        let mut breaker = GuardConfig::for_service("crm").breaker;
        breaker.open_base = Duration::from_millis(1000);
        BreakerRules::new(
            &breaker,
            Duration::from_secs(10),
            Duration::from_secs(2),
            Duration::from_secs(60),
        )
    }

    /// A trip that leaves the open period to the rules.
    const TRIP: Intent = Intent::Trip(Duration::ZERO);

    fn tally(calls: u64, failures: u64) -> BreakerTally {
        BreakerTally {
            calls,
            failures,
            slow: 0,
        }
    }

    #[test]
    fn the_fleet_window_opens_when_summed_workers_cross_the_failure_rate() {
        let (mut shared, rules) = (SharedBreaker::default(), rules());
        let a = sync_breaker(&mut shared, "a", Intent::None, tally(6, 2), &rules, 100);
        assert_eq!(a.state, BreakerState::Closed, "8 calls is below min_calls");
        let b = sync_breaker(&mut shared, "b", Intent::None, tally(6, 4), &rules, 200);
        assert_eq!(b.state, BreakerState::Open, "6 of 12 fleet calls failed");
        assert_eq!(b.remaining, Duration::from_millis(1000));
    }

    #[test]
    fn only_one_worker_wins_the_probe_lease() {
        let (mut shared, rules) = (SharedBreaker::default(), rules());
        sync_breaker(&mut shared, "a", TRIP, tally(0, 0), &rules, 0);
        let early = sync_breaker(&mut shared, "a", Intent::Claim, tally(0, 0), &rules, 999);
        assert_eq!(early.state, BreakerState::Open);
        let a = sync_breaker(&mut shared, "a", Intent::Claim, tally(0, 0), &rules, 1000);
        let b = sync_breaker(&mut shared, "b", Intent::Claim, tally(0, 0), &rules, 1001);
        assert!(a.owner_is_me && !b.owner_is_me);
        assert_eq!(b.state, BreakerState::HalfOpen);
        let stale = sync_breaker(
            &mut shared,
            "b",
            Intent::ProbesSucceeded,
            tally(0, 0),
            &rules,
            1002,
        );
        assert_eq!(
            stale.state,
            BreakerState::HalfOpen,
            "only the lease holder closes"
        );
        let reopened = sync_breaker(
            &mut shared,
            "a",
            Intent::ProbeFailed,
            tally(0, 0),
            &rules,
            1003,
        );
        assert_eq!(reopened.state, BreakerState::Open);
        assert_eq!(
            reopened.remaining,
            Duration::from_millis(2000),
            "open period doubles"
        );
    }

    #[test]
    fn an_expired_lease_can_be_claimed_by_another_worker() {
        let (mut shared, rules) = (SharedBreaker::default(), rules());
        sync_breaker(&mut shared, "a", TRIP, tally(0, 0), &rules, 0);
        sync_breaker(&mut shared, "a", Intent::Claim, tally(0, 0), &rules, 1000);
        let b = sync_breaker(&mut shared, "b", Intent::Claim, tally(0, 0), &rules, 3000);
        assert!(b.owner_is_me);
    }

    #[test]
    fn the_budget_grants_half_of_what_the_fleet_may_still_retry() {
        let mut budget = SharedBudget::default();
        let config = BudgetConfig {
            retry_ratio: 0.2,
            min_retries_per_sec: 0,
            window: Duration::from_secs(10),
        };
        let rules = BudgetRules::new(&config, Duration::from_secs(60));
        assert_eq!(sync_budget(&mut budget, 10, 0, &rules, 0).granted, 1);
        assert_eq!(sync_budget(&mut budget, 0, 0, &rules, 1).granted, 1);
        assert_eq!(sync_budget(&mut budget, 0, 0, &rules, 2).granted, 0);
        assert_eq!(
            sync_budget(&mut budget, 0, 1, &rules, 3).granted,
            1,
            "a returned grant is granted again"
        );
        assert_eq!(
            sync_budget(&mut budget, 0, 0, &rules, 20_000).granted,
            0,
            "old deposits expire"
        );
    }

    #[test]
    fn a_trip_published_late_keeps_the_open_period_its_worker_has_left() {
        let (mut shared, rules) = (SharedBreaker::default(), rules());
        let late = Intent::Trip(Duration::from_millis(300));
        let view = sync_breaker(&mut shared, "a", late, tally(0, 0), &rules, 5_000);
        assert_eq!(view.state, BreakerState::Open);
        assert_eq!(view.remaining, Duration::from_millis(300));
    }

    #[test]
    fn a_worker_that_recovered_alone_closes_the_fleet_only_once_nobody_else_may_probe() {
        let (mut shared, rules) = (SharedBreaker::default(), rules());
        sync_breaker(&mut shared, "a", TRIP, tally(0, 0), &rules, 0);
        let early = sync_breaker(
            &mut shared,
            "b",
            Intent::Recovered,
            tally(0, 0),
            &rules,
            500,
        );
        assert_eq!(
            early.state,
            BreakerState::Open,
            "the open period still runs"
        );
        sync_breaker(&mut shared, "a", Intent::Claim, tally(0, 0), &rules, 1000);
        let leased = sync_breaker(
            &mut shared,
            "b",
            Intent::Recovered,
            tally(0, 0),
            &rules,
            1500,
        );
        assert_eq!(leased.state, BreakerState::HalfOpen, "a's lease is live");
        let lapsed = sync_breaker(
            &mut shared,
            "b",
            Intent::Recovered,
            tally(0, 0),
            &rules,
            3001,
        );
        assert_eq!(lapsed.state, BreakerState::Closed);
    }
}
