//! Simulated ChiliPiper Edge API: availability slots and idempotent booking.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::Sim;
use super::bearer_is;
use crate::services::Vendor;
use crate::testbed::crm::calendar;
use crate::testbed::crm::respond::{Incoming, json_response, serve, vendor_error};
use crate::testbed::crm::state::{SimBooking, lock};

/// Whether a host has a given weekday slot free in the fixtures (before bookings).
fn slot_open(seed_material: &str, day: i64, minute: u32) -> bool {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in seed_material
        .bytes()
        .chain(day.to_le_bytes())
        .chain(minute.to_le_bytes())
    {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    !hash.is_multiple_of(3)
}

const MAX_SLOTS: usize = 24;

pub(super) async fn slots(State(sim): Sim, headers: HeaderMap, body: Bytes) -> Response {
    let incoming = Incoming {
        endpoint: "chilipiper.slots",
        vendor: Vendor::ChiliPiper,
        method: "POST",
        path: "/v1/org/availability/slots",
        idempotency_key: None,
        authorized: bearer_is(&headers, sim.credentials.chilipiper_api_key.expose()),
    };
    serve(&sim, incoming, || async {
        let Ok(request) = serde_json::from_slice::<Value>(&body) else {
            return bad_request("Invalid value for: body");
        };
        let host_id = request.pointer("/expectedHost/userId").and_then(Value::as_str).unwrap_or_default();
        let meeting_type = request.pointer("/meetingTypeRef/id").and_then(Value::as_str).unwrap_or_default();
        let (Some(host), Some(first_day)) = (
            sim.fixtures.hosts.iter().find(|h| h.user_id == host_id),
            request.pointer("/interval/startsAt").and_then(Value::as_str).and_then(calendar::parse_date),
        ) else {
            return bad_request("Invalid value for: body");
        };
        if meeting_type != sim.fixtures.meeting_type_id {
            return vendor_error(&sim, Vendor::ChiliPiper, "chilipiper.slots", StatusCode::NOT_FOUND);
        }
        let days = calendar::window_days(request.pointer("/interval/duration").and_then(Value::as_str).unwrap_or("P7D"));
        let booked: Vec<String> =
            lock(&sim.bookings).iter().filter(|b| b.host_user_id == host.user_id).map(|b| b.start_time.clone()).collect();
        let start_times: Vec<Value> = (first_day + 1..=first_day + days.min(14))
            .filter(|day| calendar::is_weekday(*day))
            .flat_map(|day| (0..16).map(move |half_hour| (day, 9 * 60 + half_hour * 30)))
            .filter(|(day, minute)| slot_open(&host.user_id, *day, *minute))
            .map(|(day, minute)| calendar::format_slot(day, minute))
            .filter(|start| !booked.contains(start))
            .take(MAX_SLOTS)
            .map(|start| json!({"startTime": start, "attendees": [{"type": "ManuallyAssigned", "userId": host.user_id, "required": true}]}))
            .collect();
        json_response(
            StatusCode::OK,
            json!({"meetingTypeRef": request.get("meetingTypeRef"), "startTimes": start_times, "failures": {}}),
        )
    })
    .await
}

fn bad_request(message: &'static str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        [(header::CONTENT_TYPE, "text/plain; charset=UTF-8")],
        message,
    )
        .into_response()
}

pub(super) async fn book(State(sim): Sim, headers: HeaderMap, body: Bytes) -> Response {
    let idempotency_key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let incoming = Incoming {
        endpoint: "chilipiper.book",
        vendor: Vendor::ChiliPiper,
        method: "POST",
        path: "/v1/org/meetings/book",
        idempotency_key: idempotency_key.clone(),
        authorized: bearer_is(&headers, sim.credentials.chilipiper_api_key.expose()),
    };
    serve(&sim, incoming, || async {
        let Ok(request) = serde_json::from_slice::<Value>(&body) else {
            return bad_request("Invalid value for: body");
        };
        let field = |pointer: &str| request.pointer(pointer).and_then(Value::as_str).unwrap_or_default().to_string();
        let (host_id, start_time, guest_email) = (field("/hostUserId"), field("/startTime"), field("/guest/email"));
        let Some(host) = sim.fixtures.hosts.iter().find(|h| h.user_id == host_id) else {
            return vendor_error(&sim, Vendor::ChiliPiper, "chilipiper.book", StatusCode::NOT_FOUND);
        };
        if field("/meetingTypeId") != sim.fixtures.meeting_type_id || calendar::parse_date(&start_time).is_none() {
            return bad_request("Invalid value for: body");
        }
        let confirmation = |b: &SimBooking| {
            json_response(
                StatusCode::OK,
                json!({
                    "meetingId": b.meeting_id,
                    "startTime": b.start_time,
                    "hostUserId": b.host_user_id,
                    "hostName": host.name,
                    "idempotencyKey": b.idempotency_key
                }),
            )
        };
        // Check and insert under one lock so concurrent retries cannot both book.
        let mut bookings = lock(&sim.bookings);
        if let Some(key) = &idempotency_key
            && let Some(original) = bookings.iter().find(|b| b.idempotency_key.as_ref() == Some(key))
        {
            if original.host_user_id == host_id && original.start_time == start_time && original.guest_email == guest_email {
                return confirmation(original);
            }
            return json_response(
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({"errorCode": "IdempotencyKeyReused", "errorMessage": "The idempotency key was used for a different booking"}),
            );
        }
        if bookings.iter().any(|b| b.host_user_id == host_id && b.start_time == start_time) {
            return vendor_error(&sim, Vendor::ChiliPiper, "chilipiper.book", StatusCode::CONFLICT);
        }
        let booking = SimBooking {
            meeting_id: format!("mtg-sim-{:06}", bookings.len() + 1),
            idempotency_key,
            host_user_id: host_id,
            start_time,
            guest_email,
        };
        let response = confirmation(&booking);
        bookings.push(booking);
        response
    })
    .await
}
