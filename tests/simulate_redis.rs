//! `voxguard simulate` with its fleet state in Redis: each run keeps its
//! state under a prefix of its own and deletes it at the end, so runs never
//! see each other's breakers and never touch a production prefix.

#[path = "fleet_support.rs"]
mod support;

use std::process::Command;

use serde_json::Value;
use support::{redis_url, require_redis};

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
