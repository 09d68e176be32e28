//! Simulated Amplitude Dashboard REST API: user search and user activity, Basic auth.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};

use super::Sim;
use super::base64;
use crate::services::Vendor;
use crate::testbed::crm::respond::{Incoming, json_response, serve, vendor_error};
use crate::testbed::crm::state::SimState;

fn amplitude_authorized(sim: &SimState, headers: &HeaderMap) -> bool {
    let c = &sim.credentials;
    let expected = format!(
        "Basic {}",
        base64(
            format!(
                "{}:{}",
                c.amplitude_api_key.expose(),
                c.amplitude_secret_key.expose()
            )
            .as_bytes()
        )
    );
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        == Some(expected.as_str())
}

pub(super) async fn user_search(
    State(sim): Sim,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let incoming = Incoming {
        endpoint: "amplitude.usersearch",
        vendor: Vendor::Amplitude,
        method: "GET",
        path: "/api/2/usersearch",
        idempotency_key: None,
        authorized: amplitude_authorized(&sim, &headers),
    };
    serve(&sim, incoming, || async {
        let user = q.get("user").map(String::as_str).unwrap_or_default();
        let matches: Vec<Value> = sim
            .fixtures
            .people
            .iter()
            .filter_map(|p| {
                let activity = p.activity.as_ref()?;
                (p.email.eq_ignore_ascii_case(user) || activity.amplitude_id.to_string() == user)
                    .then(|| json!({"user_id": p.email, "amplitude_id": activity.amplitude_id}))
            })
            .collect();
        json_response(
            StatusCode::OK,
            json!({"matches": matches, "type": "match_user_or_device_id"}),
        )
    })
    .await
}

pub(super) async fn user_activity(
    State(sim): Sim,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let incoming = Incoming {
        endpoint: "amplitude.useractivity",
        vendor: Vendor::Amplitude,
        method: "GET",
        path: "/api/2/useractivity",
        idempotency_key: None,
        authorized: amplitude_authorized(&sim, &headers),
    };
    serve(&sim, incoming, || async {
        let wanted: Option<u64> = q.get("user").and_then(|u| u.parse().ok());
        let limit: usize = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(1000);
        let found = sim.fixtures.people.iter().find_map(|p| {
            let activity = p.activity.as_ref()?;
            (Some(activity.amplitude_id) == wanted).then_some((p, activity))
        });
        let Some((person, activity)) = found else {
            return vendor_error(&sim, Vendor::Amplitude, "amplitude.useractivity", StatusCode::BAD_REQUEST);
        };
        let events: Vec<Value> = activity
            .events
            .iter()
            .take(limit)
            .map(|(kind, time)| json!({"event_type": kind, "event_time": time, "amplitude_id": activity.amplitude_id, "user_id": person.email}))
            .collect();
        json_response(
            StatusCode::OK,
            json!({
                "userData": {
                    "user_id": person.email,
                    "canonical_amplitude_id": activity.amplitude_id,
                    "num_events": activity.num_events,
                    "num_sessions": activity.num_sessions,
                    "first_used": activity.first_used,
                    "last_used": activity.last_used,
                    "platform": activity.platform,
                    "country": activity.country,
                    "properties": {"plan": "business"}
                },
                "events": events
            }),
        )
    })
    .await
}
