//! The Redis backend, guarded like any other risky dependency: every call
//! goes through the `redis` circuit breaker and a short timeout, so a slow or
//! dead Redis costs a caller at most `redis_timeout`, then nothing while the
//! breaker is open. The breaker's growing open periods double as the
//! reconnect backoff.
//!
//! Connecting (TCP, TLS, handshake) runs in a task of its own with a longer
//! [`CONNECT_TIMEOUT`]: an operation waits for it no longer than
//! `redis_timeout`, but a handshake slower than that still completes and is
//! used by the next operation, so a distant Redis is reachable at all.

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, FromRedisValue, RedisResult, Script, Value};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::FleetError;
use super::rules::{BreakerRules, BudgetRules, BudgetView, Intent, SharedView, millis};
use crate::resilience::{
    BreakerConfig, BreakerState, BreakerTally, CallResult, CircuitBreaker, Clock, metrics_listener,
    tracing_listener,
};

const BREAKER_SYNC: &str = include_str!("lua/breaker_sync.lua");
const BUDGET_SYNC: &str = include_str!("lua/budget_sync.lua");

/// How long a connection attempt may take, whatever `redis_timeout` is.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// The state of the store's one multiplexed connection.
#[derive(Debug, Default)]
enum Link {
    #[default]
    Idle,
    Connecting(JoinHandle<RedisResult<MultiplexedConnection>>),
    Ready(MultiplexedConnection),
}

/// A guarded Redis connection and the fleet's scripts.
#[derive(Debug)]
pub struct RedisStore {
    client: Client,
    connection: Mutex<Link>,
    breaker: CircuitBreaker,
    timeout: Duration,
    prefix: String,
    breaker_script: Script,
    budget_script: Script,
    clock: RedisClock,
}

/// Redis time as this worker last saw it, so each sync can carry the Redis
/// time after which its worker has given up on it. A sync that Redis runs
/// later — it sat in a paused Redis' socket, or behind a stalled network —
/// changes nothing: its worker already runs alone on its local breakers and
/// sends the same counts again with what it has learned since, and a stale
/// trip or claim must not override that.
#[derive(Debug, Default)]
struct RedisClock {
    /// Redis time (ms) in the last reply, and when that reply arrived.
    seen: std::sync::Mutex<Option<(u64, Instant)>>,
}

impl RedisClock {
    fn observe(&self, redis_ms: u64) {
        *self.seen.lock().unwrap_or_else(|p| p.into_inner()) = Some((redis_ms, Instant::now()));
    }

    /// The Redis time by which a call made now, allowed `timeout`, has been
    /// given up; 0 (no deadline) before the first reply. The estimate runs
    /// behind Redis by the last reply's transit time, so the deadline falls
    /// just before the worker gives up, never after.
    fn deadline(&self, timeout: Duration) -> u64 {
        match *self.seen.lock().unwrap_or_else(|p| p.into_inner()) {
            Some((redis_ms, at)) => redis_ms + millis(at.elapsed()) + millis(timeout),
            None => 0,
        }
    }
}

impl RedisStore {
    /// Checks the URL only; the connection is made on first use.
    pub fn open(url: &str, prefix: &str, timeout: Duration) -> Result<Self, FleetError> {
        let client = Client::open(url).map_err(|e| FleetError::BadUrl(e.to_string()))?;
        let breaker = CircuitBreaker::new("redis", redis_breaker_config(timeout), Clock::tokio());
        breaker.subscribe(tracing_listener());
        breaker.subscribe(metrics_listener());
        Ok(RedisStore {
            client,
            connection: Mutex::new(Link::Idle),
            breaker,
            timeout,
            prefix: prefix.to_string(),
            breaker_script: Script::new(BREAKER_SYNC),
            budget_script: Script::new(BUDGET_SYNC),
            clock: RedisClock::default(),
        })
    }

    /// The breaker guarding Redis itself.
    pub fn breaker(&self) -> &CircuitBreaker {
        &self.breaker
    }

    pub(crate) fn key(&self, kind: &str, name: &str) -> String {
        format!("{}:{kind}:{name}", self.prefix)
    }

    /// Run one Redis operation under the breaker and the timeout.
    async fn guarded<T, F, Fut>(&self, op: F) -> Result<T, FleetError>
    where
        F: FnOnce(MultiplexedConnection) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let permit = self
            .breaker
            .try_acquire()
            .map_err(|_| FleetError::Unavailable)?;
        let start = Instant::now();
        let result = tokio::time::timeout(self.timeout, async {
            let connection = self.connection().await?;
            op(connection).await.map_err(FleetError::from)
        })
        .await
        .unwrap_or(Err(FleetError::Timeout(self.timeout)));
        let verdict = match &result {
            Ok(_) => CallResult::Success,
            Err(_) => CallResult::Failure,
        };
        permit.record(verdict, start.elapsed());
        if result.is_err() {
            // A timed-out request may still be queued on the multiplexed
            // connection: start afresh next time. A connection attempt still
            // under way is left to finish. Never wait for the lock here;
            // whoever holds it is connecting already.
            if let Ok(mut slot) = self.connection.try_lock()
                && matches!(*slot, Link::Ready(_))
            {
                *slot = Link::Idle;
            }
        }
        result
    }

    /// The connection, connecting first if needed. Dropping this future
    /// (the operation timed out) leaves a connection attempt running.
    async fn connection(&self) -> Result<MultiplexedConnection, FleetError> {
        let mut slot = self.connection.lock().await;
        if let Link::Ready(connection) = &*slot {
            return Ok(connection.clone());
        }
        // An attempt that ended before this call (it gave up on a Redis that
        // was stopped then) says nothing about Redis now: its failure must
        // not fail this call — after an outage that would cost the first try
        // of a Redis that is back, and a whole open period of the breaker.
        if let Link::Connecting(attempt) = &*slot
            && attempt.is_finished()
            && let Link::Connecting(attempt) = std::mem::take(&mut *slot)
            && let Ok(Ok(connection)) = attempt.await
        {
            *slot = Link::Ready(connection.clone());
            return Ok(connection);
        }
        if matches!(*slot, Link::Idle) {
            let client = self.client.clone();
            let config = AsyncConnectionConfig::new()
                .set_connection_timeout(CONNECT_TIMEOUT)
                .set_response_timeout(self.timeout);
            *slot = Link::Connecting(tokio::spawn(async move {
                client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await
            }));
        }
        let Link::Connecting(attempt) = &mut *slot else {
            return Err(FleetError::Unavailable);
        };
        let joined = attempt.await;
        match joined {
            Ok(Ok(connection)) => {
                *slot = Link::Ready(connection.clone());
                Ok(connection)
            }
            Ok(Err(error)) => {
                *slot = Link::Idle;
                Err(error.into())
            }
            Err(join) => {
                *slot = Link::Idle;
                Err(FleetError::Unavailable).inspect_err(|_| {
                    tracing::warn!(error = %join, "the Redis connection attempt did not finish")
                })
            }
        }
    }

    pub(crate) async fn sync_breaker(
        &self,
        service: &str,
        instance: &str,
        intent: Intent,
        deltas: BreakerTally,
        rules: &BreakerRules,
    ) -> Result<SharedView, FleetError> {
        let invocation = {
            let mut i = self.breaker_script.prepare_invoke();
            i.key(self.key("breaker", service))
                .key(self.key("window", service))
                .arg(instance)
                .arg(intent.as_str())
                .arg(deltas.calls)
                .arg(deltas.failures)
                .arg(deltas.slow)
                .arg(rules.min_calls)
                .arg(rules.failure_rate)
                .arg(rules.slow_rate)
                .arg(rules.open_base_ms)
                .arg(rules.open_cap_ms)
                .arg(rules.window_ms)
                .arg(rules.bucket_ms)
                .arg(rules.lease_ms)
                .arg(rules.ttl_ms)
                .arg(intent.force_ms())
                .arg(self.clock.deadline(self.timeout));
            i
        };
        let reply: Vec<Value> = self
            .guarded(|mut c| async move { invocation.invoke_async(&mut c).await })
            .await?;
        type Reply = (String, u64, u64, u8, u64, u64, u64);
        let (state, generation, remaining_ms, owner, calls, failures, slow): Reply =
            self.on_time(reply, 7)?;
        let state = match state.as_str() {
            "closed" => BreakerState::Closed,
            "open" => BreakerState::Open,
            "half_open" => BreakerState::HalfOpen,
            other => {
                return Err(FleetError::Protocol(format!(
                    "unknown breaker state {other:?}"
                )));
            }
        };
        Ok(SharedView {
            state,
            generation,
            remaining: Duration::from_millis(remaining_ms),
            owner_is_me: owner == 1,
            window: BreakerTally {
                calls,
                failures,
                slow,
            },
        })
    }

    pub(crate) async fn sync_budget(
        &self,
        service: &str,
        deposits: u64,
        returned: u64,
        rules: &BudgetRules,
    ) -> Result<BudgetView, FleetError> {
        let invocation = {
            let mut i = self.budget_script.prepare_invoke();
            i.key(self.key("budget", service))
                .arg(deposits)
                .arg(returned)
                .arg(rules.retry_ratio)
                .arg(rules.floor_per_window)
                .arg(rules.window_ms)
                .arg(rules.bucket_ms)
                .arg(rules.ttl_ms)
                .arg(self.clock.deadline(self.timeout));
            i
        };
        let reply: Vec<Value> = self
            .guarded(|mut c| async move { invocation.invoke_async(&mut c).await })
            .await?;
        let (deposits, withdrawals, granted): (u64, u64, u64) = self.on_time(reply, 3)?;
        Ok(BudgetView {
            deposits,
            withdrawals,
            granted,
        })
    }

    pub(crate) async fn save_session(
        &self,
        room: &str,
        state: String,
        ttl: Duration,
    ) -> Result<(), FleetError> {
        let key = self.key("session", room);
        let ttl_ms = ttl.as_millis().clamp(1, u128::from(u64::MAX)) as u64;
        self.guarded(|mut c| async move {
            redis::cmd("SET")
                .arg(key)
                .arg(state)
                .arg("PX")
                .arg(ttl_ms)
                .query_async::<()>(&mut c)
                .await
        })
        .await
    }

    pub(crate) async fn load_session(&self, room: &str) -> Result<Option<String>, FleetError> {
        let key = self.key("session", room);
        self.guarded(|mut c| async move {
            redis::cmd("GET")
                .arg(key)
                .query_async::<Option<String>>(&mut c)
                .await
        })
        .await
    }

    /// A sync script's `fields` values, after noting the Redis time it
    /// ends with; [`FleetError::Late`] when it ran past its deadline.
    fn on_time<T: FromRedisValue>(
        &self,
        mut reply: Vec<Value>,
        fields: usize,
    ) -> Result<T, FleetError> {
        let late = matches!(reply.first(), Some(Value::BulkString(s)) if s == b"late");
        let now_at = if late { 1 } else { fields };
        if let Some(Ok(now)) = reply.get(now_at).map(u64::from_redis_value) {
            self.clock.observe(now);
        }
        if late {
            return Err(FleetError::Late);
        }
        reply.truncate(fields);
        T::from_owned_redis_value(Value::Array(reply))
            .map_err(|e| FleetError::Protocol(e.to_string()))
    }

    /// Delete every key under this store's prefix (SCAN, then DEL in
    /// batches), within `limit` overall; returns how many were deleted.
    /// Runs on the store's own connection, after anything already sent on it.
    pub(crate) async fn purge(&self, limit: Duration) -> Result<u64, FleetError> {
        let pattern = format!("{}:*", escape_glob(&self.prefix));
        let purge = async {
            let mut connection = self.connection().await?;
            let mut cursor: u64 = 0;
            let mut deleted = 0u64;
            loop {
                let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(1000)
                    .query_async(&mut connection)
                    .await?;
                if !keys.is_empty() {
                    deleted += redis::cmd("DEL")
                        .arg(&keys)
                        .query_async::<u64>(&mut connection)
                        .await?;
                }
                if next == 0 {
                    return Ok(deleted);
                }
                cursor = next;
            }
        };
        tokio::time::timeout(limit, purge)
            .await
            .unwrap_or(Err(FleetError::Timeout(limit)))
    }

    pub(crate) async fn delete_session(&self, room: &str) -> Result<(), FleetError> {
        let key = self.key("session", room);
        self.guarded(
            |mut c| async move { redis::cmd("DEL").arg(key).query_async::<()>(&mut c).await },
        )
        .await
    }
}

/// `text` matched literally by a Redis glob pattern.
fn escape_glob(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// Redis is judged quickly: three failures in a row (or most of a short
/// window) open it for 250 ms, doubling up to 5 s between reconnect tries.
fn redis_breaker_config(timeout: Duration) -> BreakerConfig {
    BreakerConfig {
        consecutive_failures: 3,
        window_size: 20,
        min_calls: 10,
        failure_rate: 0.5,
        slow_call_threshold: timeout,
        slow_call_rate: 1.0,
        open_base: Duration::from_millis(250),
        open_cap: Duration::from_secs(5),
        half_open_probes: 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_is_matched_literally_when_purging() {
        assert_eq!(escape_glob("voxguard-sim:12-ab"), "voxguard-sim:12-ab");
        assert_eq!(escape_glob("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
    }
}
