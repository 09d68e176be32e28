//! The CRM simulator's admin API and wire-level vendor behaviour, over HTTP.

#[path = "services_support.rs"]
mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{ctx, world};
use voxguard::resilience::CallError;
use voxguard::testbed::crm::{SimError, run_standalone};

const T: Duration = Duration::from_secs(2);

async fn get_json(url: String) -> Value {
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

async fn put_faults(base: &str, body: Value) -> reqwest::Response {
    reqwest::Client::new()
        .put(format!("{base}/_sim/faults"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn faults_start_healthy_and_a_preset_can_be_put() {
    let w = world().await;
    let base = w.sim.base_url();
    assert_eq!(
        get_json(format!("{base}/_sim/faults")).await["preset"],
        "healthy"
    );
    let response = put_faults(&base, json!({"preset": "hang"})).await;
    assert_eq!(response.status(), 200);
    let faults = get_json(format!("{base}/_sim/faults")).await;
    assert_eq!(faults["preset"], "hang");
    assert!(faults["default"]["hang_rate"].as_f64().unwrap() > 0.0);
}

#[tokio::test]
async fn a_per_service_override_affects_only_that_service() {
    let w = world().await;
    let base = w.sim.base_url();
    let body = json!({"preset": "healthy", "services": {"hubspot": {"error_rate": 1.0, "error_status": 502}}});
    assert_eq!(put_faults(&base, body).await.status(), 200);
    let email = w.sim.fixtures().people[0].email.clone();
    let err = w.hubspot().find_contact(&ctx(T), &email).await.unwrap_err();
    assert!(
        matches!(err, CallError::Status { code: 502, .. }),
        "{err:?}"
    );
    w.amplitude().user_activity(&ctx(T), &email).await.unwrap();
}

#[tokio::test]
async fn invalid_fault_updates_are_refused_with_a_reason() {
    let w = world().await;
    let base = w.sim.base_url();
    for body in [
        json!({"preset": "apocalypse"}),
        json!({"services": {"hubspot": {"eror_rate": 1.0}}}),
        json!({"services": {"myspace": {}}}),
        json!({"default": {"error_rate": 2.0}}),
    ] {
        let response = put_faults(&base, body.clone()).await;
        assert_eq!(response.status(), 400, "{body}");
        let reason: Value = response.json().await.unwrap();
        assert!(
            reason["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{body}"
        );
    }
    assert_eq!(
        get_json(format!("{base}/_sim/faults")).await["preset"],
        "healthy",
        "nothing changed"
    );
}

#[tokio::test]
async fn the_request_log_and_bookings_are_readable_and_clearable() {
    let w = world().await;
    let base = w.sim.base_url();
    let booking = w.booking("2026-11-24T10:00:00Z");
    w.chilipiper()
        .book_meeting(&ctx(T), &booking)
        .await
        .unwrap();
    let log = get_json(format!("{base}/_sim/requests")).await;
    let entry = &log.as_array().unwrap()[0];
    assert_eq!(entry["endpoint"], "chilipiper.book");
    assert_eq!(entry["idempotency_key"], booking.idempotency_key.as_str());
    assert_eq!(entry["fault"], "none");
    let bookings = get_json(format!("{base}/_sim/bookings")).await;
    assert_eq!(bookings.as_array().unwrap().len(), 1);
    let cleared = reqwest::Client::new()
        .delete(format!("{base}/_sim/requests"))
        .send()
        .await
        .unwrap();
    assert_eq!(cleared.status(), 204);
    assert!(w.sim.requests().is_empty());
}

#[tokio::test]
async fn vendors_answer_auth_failures_in_their_own_json_shapes() {
    let w = world().await;
    let base = w.sim.base_url();
    let http = reqwest::Client::new();

    let hubspot = http
        .post(format!("{base}/crm/v3/objects/contacts/search"))
        .bearer_auth("wrong")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(hubspot.status(), 401);
    assert!(
        hubspot.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let body: Value = hubspot.json().await.unwrap();
    assert_eq!(body["category"], "INVALID_AUTHENTICATION");
    assert_eq!(body["status"], "error");

    let salesforce = http
        .get(format!(
            "{base}/services/data/v62.0/query?q=SELECT+Id+FROM+Contact"
        ))
        .bearer_auth("stale")
        .send()
        .await
        .unwrap();
    assert_eq!(salesforce.status(), 401);
    let body: Value = salesforce.json().await.unwrap();
    assert_eq!(body[0]["errorCode"], "INVALID_SESSION_ID");

    let token = http
        .post(format!("{base}/services/oauth2/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "x"),
            ("client_secret", "y"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(token.status(), 400);
    let body: Value = token.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");

    let chilipiper = http
        .post(format!("{base}/api/fire-edge/v1/org/availability/slots"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(chilipiper.status(), 401);
    let body: Value = chilipiper.json().await.unwrap();
    assert_eq!(body["errorCode"], "Unauthorized");

    let amplitude = http
        .get(format!("{base}/api/2/usersearch?user=x"))
        .basic_auth("k", Some("s"))
        .send()
        .await
        .unwrap();
    assert_eq!(amplitude.status(), 401);
}

#[tokio::test]
async fn a_rate_limited_answer_carries_retry_after_and_hubspot_limit_headers() {
    let w = world().await;
    let base = w.sim.base_url();
    put_faults(
        &base,
        json!({"services": {"hubspot": {"rate_limit_rate": 1.0, "retry_after_secs": 4}}}),
    )
    .await;
    let response = reqwest::Client::new()
        .post(format!("{base}/crm/v3/objects/contacts/search"))
        .bearer_auth(w.creds().hubspot_token.expose())
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "4");
    assert_eq!(response.headers()["x-hubspot-ratelimit-remaining"], "0");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["errorType"], "RATE_LIMIT");
}

#[tokio::test]
async fn the_standalone_runner_rejects_an_unusable_address() {
    let err = run_standalone("not an address").await.unwrap_err();
    assert!(matches!(err, SimError::Address(_)), "{err:?}");
}
