//! Helpers shared by the fleet integration tests: a real Redis (required,
//! never skipped), unique key prefixes, breakers that trip quickly, and a
//! TCP proxy in front of Redis that a test can stall or cut.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use redis::ConnectionAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use voxguard::fleet::{BackendKind, Fleet, FleetBackend, FleetConfig, MemoryStore};
use voxguard::resilience::{CallResult, CircuitBreaker, Clock, GuardConfig};

pub const START_REDIS: &str = "start one with `redis-server --daemonize yes --port 6379 --save \"\" --appendonly no` \
     or point VOXGUARD_TEST_REDIS_URL at one";

pub fn redis_url() -> String {
    std::env::var("VOXGUARD_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A connection to the test Redis; fails the test (with how to start one)
/// when it cannot be reached.
pub async fn require_redis() -> redis::aio::MultiplexedConnection {
    let url = redis_url();
    let client = redis::Client::open(url.as_str()).expect("VOXGUARD_TEST_REDIS_URL is a Redis URL");
    let connect = async {
        let mut connection = client.get_multiplexed_async_connection().await?;
        redis::cmd("PING")
            .query_async::<String>(&mut connection)
            .await?;
        Ok::<_, redis::RedisError>(connection)
    };
    match tokio::time::timeout(Duration::from_secs(2), connect).await {
        Ok(Ok(connection)) => connection,
        Ok(Err(error)) => panic!("cannot reach Redis at {url} ({error}): {START_REDIS}"),
        Err(_) => panic!("Redis at {url} did not answer within 2 s: {START_REDIS}"),
    }
}

/// A key prefix no other test (or run) uses.
pub fn unique_prefix(test: &str) -> String {
    format!(
        "voxguard-test:{test}:{}:{:08x}",
        std::process::id(),
        rand::random::<u32>()
    )
}

/// Delete every key under `prefix`.
pub async fn cleanup(prefix: &str) {
    let mut connection = require_redis().await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(&mut connection)
        .await
        .expect("KEYS");
    if !keys.is_empty() {
        redis::cmd("DEL")
            .arg(keys)
            .query_async::<()>(&mut connection)
            .await
            .expect("DEL");
    }
}

pub fn config(kind: BackendKind, prefix: &str) -> FleetConfig {
    FleetConfig {
        backend: kind,
        url: redis_url(),
        key_prefix: prefix.to_string(),
        state_ttl: Duration::from_secs(60),
        ..FleetConfig::default()
    }
}

/// Two fleet instances sharing state: one in-process store, or two
/// separate Redis connections.
pub async fn pair(kind: BackendKind, prefix: &str) -> (Fleet, Fleet) {
    pair_with(config(kind, prefix)).await
}

/// Two fleet instances sharing state, both built from `config`.
pub async fn pair_with(config: FleetConfig) -> (Fleet, Fleet) {
    match config.backend {
        BackendKind::Memory => {
            let store = MemoryStore::new();
            let a = Fleet::with_backend(config.clone(), FleetBackend::Memory(store.clone()));
            let b = Fleet::with_backend(config, FleetBackend::Memory(store));
            (a, b)
        }
        BackendKind::Redis => {
            require_redis().await;
            let a = Fleet::new(config.clone()).expect("valid URL");
            let b = Fleet::new(config).expect("valid URL");
            (a, b)
        }
    }
}

/// A breaker that opens on 3 failures in a row for `open_base`, with 2 probes.
pub fn breaker(service: &str, open_base: Duration) -> Arc<CircuitBreaker> {
    let mut config = GuardConfig::for_service(service).breaker;
    config.consecutive_failures = 3;
    config.open_base = open_base;
    config.open_cap = open_base * 8;
    config.half_open_probes = 2;
    Arc::new(CircuitBreaker::new(service, config, Clock::tokio()))
}

pub fn fail_three_times(breaker: &CircuitBreaker) {
    for _ in 0..3 {
        if let Ok(permit) = breaker.try_acquire() {
            permit.record(CallResult::Failure, Duration::from_millis(5));
        }
    }
}

/// Wait (polling every millisecond, at most `limit`) until `done` holds;
/// returns how long it took.
pub async fn within(limit: Duration, mut done: impl FnMut() -> bool) -> Option<Duration> {
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        if done() {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    done().then(|| start.elapsed())
}

/// What a [`RedisProxy`] does with traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyMode {
    Pass,
    /// Hold every connection open but forward nothing (a hung Redis).
    Stall,
    /// Close every connection, refuse new ones (a dead Redis).
    Down,
}

/// A TCP proxy in front of the test Redis, under the test's control.
pub struct RedisProxy {
    pub url: String,
    mode: watch::Sender<ProxyMode>,
}

impl RedisProxy {
    pub async fn start() -> RedisProxy {
        RedisProxy::start_with_handshake_delay(Duration::ZERO).await
    }

    /// A proxy that holds each connection's first reply for `delay`, as a
    /// distant Redis behind TLS answers its handshake.
    pub async fn start_with_handshake_delay(delay: Duration) -> RedisProxy {
        let upstream = match redis::Client::open(redis_url().as_str())
            .expect("Redis URL")
            .get_connection_info()
            .addr
            .clone()
        {
            ConnectionAddr::Tcp(host, port) => format!("{host}:{port}"),
            other => panic!("the proxy needs a TCP Redis URL, got {other:?}"),
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let url = format!("redis://{}", listener.local_addr().expect("proxy address"));
        let (mode, watcher) = watch::channel(ProxyMode::Pass);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if *watcher.borrow() == ProxyMode::Down {
                    continue;
                }
                tokio::spawn(relay(client, upstream.clone(), watcher.clone(), delay));
            }
        });
        RedisProxy { url, mode }
    }

    pub fn set(&self, mode: ProxyMode) {
        self.mode.send_replace(mode);
    }
}

async fn relay(
    mut client: TcpStream,
    upstream: String,
    mut mode: watch::Receiver<ProxyMode>,
    mut first_reply_delay: Duration,
) {
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    let (mut to_server, mut to_client) = (vec![0u8; 16 * 1024], vec![0u8; 16 * 1024]);
    loop {
        let current = *mode.borrow_and_update();
        match current {
            ProxyMode::Down => return,
            ProxyMode::Stall => {
                if mode.changed().await.is_err() {
                    return;
                }
            }
            ProxyMode::Pass => tokio::select! {
                read = client.read(&mut to_server) => match read {
                    Ok(n) if n > 0 => if server.write_all(&to_server[..n]).await.is_err() { return },
                    _ => return,
                },
                read = server.read(&mut to_client) => match read {
                    Ok(n) if n > 0 => {
                        tokio::time::sleep(std::mem::take(&mut first_reply_delay)).await;
                        if client.write_all(&to_client[..n]).await.is_err() { return }
                    }
                    _ => return,
                },
                changed = mode.changed() => if changed.is_err() { return },
            },
        }
    }
}

/// A `redis-server` process of the test's own, on a free loopback port, that
/// the test can pause (SIGSTOP) and resume (SIGCONT) — never the machine's
/// shared Redis. Killed when dropped.
pub struct OwnRedis {
    pub url: String,
    pub port: u16,
    process: std::process::Child,
}

impl OwnRedis {
    pub async fn start() -> OwnRedis {
        ensure_redis_server();
        let port = free_port();
        let process = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--loglevel", "warning"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server starts");
        let redis = OwnRedis {
            url: format!("redis://127.0.0.1:{port}"),
            port,
            process,
        };
        let client = redis::Client::open(redis.url.as_str()).expect("Redis URL");
        for _ in 0..200 {
            if let Ok(mut connection) = client.get_multiplexed_async_connection().await
                && redis::cmd("PING")
                    .query_async::<String>(&mut connection)
                    .await
                    .is_ok()
            {
                return redis;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("redis-server on port {port} did not answer PING within 5 s");
    }

    pub fn pid(&self) -> u32 {
        self.process.id()
    }

    /// SIGSTOP: connections stay open, requests queue unanswered.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// SIGCONT: the queued requests run now.
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, which: &str) {
        let status = std::process::Command::new("kill")
            .args([which, &self.pid().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill {which} {}", self.pid());
    }

    pub async fn connection(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url.as_str())
            .expect("Redis URL")
            .get_multiplexed_async_connection()
            .await
            .expect("own Redis answers")
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// `redis-server` on PATH, installed by scripts/install-system-deps.sh when
/// missing.
fn ensure_redis_server() {
    static DONE: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    let outcome = DONE.get_or_init(|| {
        if redis_server_found() {
            return Ok(());
        }
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../scripts/install-system-deps.sh"
        );
        let output = std::process::Command::new("bash")
            .arg(script)
            .output()
            .map_err(|e| format!("cannot run {script}: {e}"))?;
        if output.status.success() && redis_server_found() {
            Ok(())
        } else {
            Err(format!(
                "redis-server is missing and {script} could not install it: {}",
                String::from_utf8_lossy(&output.stderr)
            ))
        }
    });
    if let Err(e) = outcome {
        panic!("{e}; install redis-server (apt-get install redis-server)");
    }
}

fn redis_server_found() -> bool {
    std::process::Command::new("redis-server")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}
