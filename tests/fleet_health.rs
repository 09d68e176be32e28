//! The worker's health endpoints show the fleet backend: `/worker` carries
//! its health as JSON and `/metrics` as gauges, through Redis being lost and
//! regained. Alone in its binary: the fleet gauges are process-wide.

#[path = "fleet_support.rs"]
mod support;

use std::sync::Arc;
use std::time::Duration;

use support::*;
use voxguard::fleet::{BackendKind, Fleet, FleetConfig, SessionWrite};
use voxguard::worker::{HealthServer, HoldUntilCallerLeaves, Worker, WorkerConfig};

async fn get(client: &reqwest::Client, url: &str) -> String {
    let response = client.get(url).send().await.expect("health server answers");
    assert!(
        response.status().is_success(),
        "{url}: {}",
        response.status()
    );
    response.text().await.expect("body")
}

async fn worker_view(client: &reqwest::Client, base: &str) -> serde_json::Value {
    serde_json::from_str(&get(client, &format!("{base}/worker")).await).expect("JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_and_metrics_show_the_fleet_losing_and_regaining_redis() {
    let prefix = unique_prefix("health");
    require_redis().await;
    let proxy = RedisProxy::start().await;
    let fleet = Fleet::new(FleetConfig {
        url: proxy.url.clone(),
        ..config(BackendKind::Redis, &prefix)
    })
    .expect("valid URL");
    fleet.sync_now().await.expect("Redis is reachable at first");
    let worker = Worker::new(
        WorkerConfig::new("ws://127.0.0.1:7880", "devkey", "secret"),
        Arc::new(HoldUntilCallerLeaves),
    )
    .expect("worker config");
    worker.handle().attach_fleet(fleet.clone());
    let health = HealthServer::start("127.0.0.1:0".parse().unwrap(), worker.handle())
        .await
        .expect("health server starts");
    let base = format!("http://{}", health.local_addr());
    let client = reqwest::Client::new();

    let view = worker_view(&client, &base).await;
    let shown = &view["fleet"];
    assert_eq!(shown["backend"], "redis", "{view}");
    assert_eq!(shown["connected"], true, "{view}");
    assert_eq!(shown["redis_breaker"], "closed", "{view}");
    assert_eq!(shown["queued_sessions"], 0, "{view}");
    assert!(
        shown["last_sync_age_ms"]
            .as_u64()
            .is_some_and(|ms| ms < 1000),
        "{view}"
    );
    let metrics = get(&client, &format!("{base}/metrics")).await;
    for line in [
        "voxguard_fleet_backend{backend=\"redis\"} 1",
        "voxguard_fleet_backend{backend=\"memory\"} 0",
        "voxguard_fleet_connected 1",
        "voxguard_fleet_redis_breaker_state 0",
        "voxguard_fleet_queued_sessions 0",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "no `{line}` in\n{metrics}"
        );
    }

    proxy.set(ProxyMode::Down);
    assert_eq!(
        fleet
            .save_session(
                "room-h",
                &serde_json::json!({"turn": 2}),
                Duration::from_secs(60)
            )
            .await,
        SessionWrite::Queued
    );
    let cut_off = within(Duration::from_secs(5), || {
        let health = fleet.health();
        !health.connected && health.redis_breaker == voxguard::resilience::BreakerState::Open
    })
    .await;
    assert!(cut_off.is_some(), "{:?}", fleet.health());
    let view = worker_view(&client, &base).await;
    let shown = &view["fleet"];
    assert_eq!(shown["connected"], false, "{view}");
    assert_eq!(shown["redis_breaker"], "open", "{view}");
    assert_eq!(shown["queued_sessions"], 1, "{view}");
    assert!(shown["errors"].as_u64().is_some_and(|n| n > 0), "{view}");
    let metrics = get(&client, &format!("{base}/metrics")).await;
    for line in [
        "voxguard_fleet_connected 0",
        "voxguard_fleet_redis_breaker_state 2",
        "voxguard_fleet_queued_sessions 1",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "no `{line}` in\n{metrics}"
        );
    }

    proxy.set(ProxyMode::Pass);
    let back = within(Duration::from_secs(10), || {
        let health = fleet.health();
        health.connected && health.queued_sessions == 0
    })
    .await;
    assert!(back.is_some(), "{:?}", fleet.health());
    let view = worker_view(&client, &base).await;
    assert_eq!(view["fleet"]["connected"], true, "{view}");
    assert_eq!(view["fleet"]["queued_sessions"], 0, "{view}");
    cleanup(&prefix).await;
}
