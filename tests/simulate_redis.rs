//! `voxguard simulate` with its fleet state in Redis: each run keeps its
//! state under a prefix of its own and deletes it at the end, so runs never
//! see each other's breakers and never touch a production prefix; and a
//! Redis that stalls for 3 s in the middle of a run costs no caller turn.

#[path = "fleet_support.rs"]
mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{OwnRedis, redis_url, require_redis};

const VOXGUARD: &str = env!("CARGO_BIN_EXE_voxguard");

/// Runs the real binary against `redis`; its JSON report.
fn simulate_on_redis(redis: &str, scenario: &str, calls: &str) -> Value {
    let out = Command::new(VOXGUARD)
        .args(["simulate", "--scenario", scenario, "--calls", calls])
        .args(["--concurrency", "5", "--seed", "7", "--json"])
        .env("VOXGUARD_FLEET_BACKEND", "redis")
        .env("VOXGUARD_REDIS_URL", redis)
        .output()
        .expect("run voxguard simulate");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{scenario}: {stderr}");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{scenario}: {e}: {stderr}"))
}

async fn keys_under(prefix: &str) -> Vec<String> {
    let mut redis = require_redis().await;
    redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(&mut redis)
        .await
        .expect("KEYS")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_simultaneous_runs_share_no_state_and_leave_no_keys() {
    require_redis().await;
    let url = redis_url();

    // A run whose services fail and trip breakers, beside a healthy one.
    let failing = std::thread::spawn({
        let url = url.clone();
        move || simulate_on_redis(&url, "errors", "20")
    });
    let healthy = simulate_on_redis(&url, "healthy", "20");
    let failing = failing.join().expect("the errors run");

    let tripped = failing["breaker_transitions"].as_object().unwrap();
    assert!(
        !tripped.is_empty(),
        "the errors run trips breakers: {failing}"
    );
    assert_eq!(
        healthy["breaker_transitions"],
        serde_json::json!({}),
        "the healthy run saw no breaker move, though the other run's opened"
    );
    assert_eq!(healthy["outcomes"]["unknown_outcome"], 0, "{healthy}");
    let mut prefixes = Vec::new();
    for report in [&failing, &healthy] {
        let fleet = &report["fleet"];
        assert_eq!(fleet["backend"], "redis", "{fleet}");
        let prefix = fleet["key_prefix"].as_str().expect("key_prefix");
        assert!(prefix.starts_with("voxguard-sim:"), "{fleet}");
        assert!(
            fleet["keys_removed"].as_u64().unwrap() > 0,
            "the run kept state in Redis and removed it: {fleet}"
        );
        assert!(fleet.get("cleanup_error").is_none(), "{fleet}");
        assert_eq!(keys_under(prefix).await, Vec::<String>::new());
        prefixes.push(prefix.to_owned());
    }
    assert_ne!(prefixes[0], prefixes[1]);
}

/// `voxguard simulate --scenario outage-recovery` (every CRM down for its
/// first 5 s, calls spread over 16 s) on the given fleet backend.
async fn outage_recovery_run(backend: &str, redis_url: Option<&str>) -> Value {
    let mut command = tokio::process::Command::new(VOXGUARD);
    command
        .args(["simulate", "--scenario", "outage-recovery", "--calls", "60"])
        .args(["--concurrency", "10", "--seed", "7", "--json"])
        .env("VOXGUARD_FLEET_BACKEND", backend)
        .env_remove("VOXGUARD_REDIS_URL");
    if let Some(url) = redis_url {
        command.env("VOXGUARD_REDIS_URL", url);
    }
    let out = command.output().await.expect("run voxguard simulate");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{backend}: {stderr}");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{backend}: {e}: {stderr}"))
}

/// Waits (polling the paused-to-be Redis) until `ready` holds for the run's
/// keys, then stalls Redis for `stall` with SIGSTOP.
async fn stall_when(
    redis: &OwnRedis,
    stall: Duration,
    ready: impl AsyncFn(&mut redis::aio::MultiplexedConnection) -> bool,
) {
    let mut connection = redis.connection().await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ready(&mut connection).await {
        assert!(Instant::now() < deadline, "the run never got there");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    redis.pause();
    tokio::time::sleep(stall).await;
    redis.resume();
}

async fn run_keys(connection: &mut redis::aio::MultiplexedConnection, kind: &str) -> Vec<String> {
    redis::cmd("KEYS")
        .arg(format!("voxguard-sim:*:{kind}:*"))
        .query_async(connection)
        .await
        .expect("KEYS")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_stalled_for_3_s_mid_run_costs_no_caller_turn() {
    const STALL: Duration = Duration::from_secs(3);
    // Stalled as the first calls start, before any breaker trips: the
    // worker trips its breakers alone and rejoins while they are open.
    let early = OwnRedis::start().await;
    // Stalled 3 s after the Salesforce trip reached Redis: the worker's
    // breakers recover alone (5 s open period) while Redis is stopped.
    let late = OwnRedis::start().await;

    let (memory, early_run, late_run, (), ()) = tokio::join!(
        outage_recovery_run("memory", None),
        outage_recovery_run("redis", Some(&early.url)),
        outage_recovery_run("redis", Some(&late.url)),
        stall_when(&early, STALL, async |c| !run_keys(c, "budget")
            .await
            .is_empty()),
        async {
            stall_when(&late, STALL, async |c| {
                for key in run_keys(c, "breaker").await {
                    let state: Option<String> = redis::cmd("HGET")
                        .arg(&key)
                        .arg("state")
                        .query_async(c)
                        .await
                        .expect("HGET");
                    if key.ends_with(":salesforce") && state.as_deref() == Some("open") {
                        tokio::time::sleep(Duration::from_secs(3)).await;
                        return true;
                    }
                }
                false
            })
            .await
        },
    );

    let fallbacks = |r: &Value| r["outcomes"]["fallback"].as_i64().unwrap();
    for (when, stalled) in [("early", &early_run), ("late", &late_run)] {
        eprintln!(
            "{when} stall: outcomes {} vs memory {}",
            stalled["outcomes"], memory["outcomes"]
        );
        assert_eq!(
            stalled["breaker_transitions"], memory["breaker_transitions"],
            "{when} stall: the breakers moved differently from the memory backend"
        );
        assert!(
            (fallbacks(stalled) - fallbacks(&memory)).abs() <= 3,
            "{when} stall: {} fallbacks, {} with the memory backend",
            stalled["outcomes"],
            memory["outcomes"]
        );
        for key in ["unpaired_tool_calls", "state_violations", "sessions_failed"] {
            assert_eq!(stalled[key], 0, "{when} stall: {key}");
        }
    }
}
