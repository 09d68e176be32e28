//! The simulated vendor endpoints: the paths, auth checks and response
//! shapes the clients in `services::{amplitude, salesforce, hubspot,
//! chilipiper}` speak, served from the seeded fixtures.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::calendar;
use super::fixtures::SalesforcePresence;
use super::respond::{Incoming, json_response, serve, vendor_error};
use super::state::{SimBooking, SimState, lock};
use crate::services::Vendor;

type Sim = State<Arc<SimState>>;

pub(crate) fn routes() -> Router<Arc<SimState>> {
    Router::new()
        .route("/api/2/usersearch", get(amplitude_user_search))
        .route("/api/2/useractivity", get(amplitude_user_activity))
        .route("/services/oauth2/token", post(salesforce_token))
        .route("/services/data/{version}/query", get(salesforce_query))
        .route(
            "/crm/v3/objects/contacts/search",
            post(hubspot_contacts_search),
        )
        .route("/crm/v3/owners/{owner_id}", get(hubspot_owner))
        .route("/crm/v3/objects/deals/search", post(hubspot_deals_search))
        .route(
            "/api/fire-edge/v1/org/availability/slots",
            post(chilipiper_slots),
        )
        .route("/api/fire-edge/v1/org/meetings/book", post(chilipiper_book))
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

fn bearer_is(headers: &HeaderMap, expected: &str) -> bool {
    bearer(headers).is_some_and(|token| token == expected)
}

fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

// ---- Amplitude ----

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

async fn amplitude_user_search(
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

async fn amplitude_user_activity(
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

// ---- Salesforce ----

async fn salesforce_token(State(sim): Sim, body: Bytes) -> Response {
    let incoming = Incoming {
        endpoint: "salesforce.token",
        vendor: Vendor::Salesforce,
        method: "POST",
        path: "/services/oauth2/token",
        idempotency_key: None,
        authorized: true,
    };
    serve(&sim, incoming, || async {
        let form: HashMap<String, String> = serde_urlencoded_pairs(&body);
        let c = &sim.credentials;
        let valid = form.get("grant_type").map(String::as_str) == Some("client_credentials")
            && form.get("client_id").map(String::as_str) == Some(c.salesforce_client_id.expose())
            && form.get("client_secret").map(String::as_str) == Some(c.salesforce_client_secret.expose());
        if !valid {
            return json_response(
                StatusCode::BAD_REQUEST,
                json!({"error": "invalid_client", "error_description": "invalid client credentials"}),
            );
        }
        let n = sim.next("salesforce-token");
        let token = format!("00DSim0000000001!AQ{n:08}.sim-session-{:016x}", n.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        lock(&sim.sessions).insert(token.clone());
        json_response(
            StatusCode::OK,
            json!({
                "access_token": token,
                "signature": "c2ltdWxhdGVk",
                "scope": "api",
                "instance_url": sim.base_url,
                "id": format!("{}/id/00DSim0000000001/005Sim000000001", sim.base_url),
                "token_type": "Bearer",
                "issued_at": sim.started.elapsed().as_millis().to_string()
            }),
        )
    })
    .await
}

/// Minimal `application/x-www-form-urlencoded` parsing for the token form.
fn serde_urlencoded_pairs(body: &[u8]) -> HashMap<String, String> {
    fn decode(s: &str) -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < bytes.len() => {
                    match u8::from_str_radix(
                        std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"),
                        16,
                    ) {
                        Ok(b) => {
                            out.push(b);
                            i += 2;
                        }
                        Err(_) => out.push(b'%'),
                    }
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    String::from_utf8_lossy(body)
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

/// The object after `FROM`.
fn soql_object(soql: &str) -> Option<&str> {
    let at = soql.find(" FROM ")? + " FROM ".len();
    soql[at..].split_whitespace().next()
}

/// The unescaped string literal compared with `field`, as in `Email = '...'`.
fn soql_literal(soql: &str, field: &str) -> Option<String> {
    let start = soql.find(&format!("{field} = '"))? + field.len() + 4;
    let mut value = String::new();
    let mut chars = soql[start..].chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next()? {
                'n' => value.push('\n'),
                'r' => value.push('\r'),
                't' => value.push('\t'),
                'b' => value.push('\u{8}'),
                'f' => value.push('\u{c}'),
                other => value.push(other),
            },
            '\'' => return Some(value),
            other => value.push(other),
        }
    }
    None
}

async fn salesforce_query(
    State(sim): Sim,
    Path(version): Path<String>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let authorized = bearer(&headers).is_some_and(|token| lock(&sim.sessions).contains(token));
    let path = format!("/services/data/{version}/query");
    let incoming = Incoming {
        endpoint: "salesforce.query",
        vendor: Vendor::Salesforce,
        method: "GET",
        path: &path,
        idempotency_key: None,
        authorized,
    };
    serve(&sim, incoming, || async {
        let soql = q.get("q").map(String::as_str).unwrap_or_default();
        let fixtures = &sim.fixtures;
        let attributes = |kind: &str, id: &str| json!({"type": kind, "url": format!("/services/data/{version}/sobjects/{kind}/{id}")});
        let records: Vec<Value> = match soql_object(soql) {
            Some("Contact") => {
                let email = soql_literal(soql, "Email").unwrap_or_default();
                fixtures
                    .people
                    .iter()
                    .filter(|p| p.salesforce == SalesforcePresence::Contact && p.email.eq_ignore_ascii_case(&email))
                    .take(1)
                    .map(|p| {
                        let account = &fixtures.accounts[p.account];
                        let owner = &fixtures.owners[account.owner];
                        json!({
                            "attributes": attributes("Contact", &p.salesforce_id),
                            "Id": p.salesforce_id,
                            "Name": p.name(),
                            "AccountId": account.id,
                            "Account": {
                                "attributes": attributes("Account", &account.id),
                                "Name": account.name,
                                "Type": account.kind,
                                "Owner": {"attributes": attributes("User", &owner.id), "Name": owner.name()}
                            }
                        })
                    })
                    .collect()
            }
            Some("Lead") => {
                let email = soql_literal(soql, "Email").unwrap_or_default();
                fixtures
                    .people
                    .iter()
                    .filter(|p| p.salesforce == SalesforcePresence::Lead && p.email.eq_ignore_ascii_case(&email))
                    .take(1)
                    .map(|p| {
                        let owner = &fixtures.owners[fixtures.accounts[p.account].owner];
                        json!({
                            "attributes": attributes("Lead", &p.salesforce_id),
                            "Id": p.salesforce_id,
                            "Name": p.name(),
                            "Company": fixtures.accounts[p.account].name,
                            "Status": p.lead_status,
                            "Owner": {"attributes": attributes("User", &owner.id), "Name": owner.name()}
                        })
                    })
                    .collect()
            }
            Some("Opportunity") => {
                let account_id = soql_literal(soql, "AccountId").unwrap_or_default();
                let account = fixtures.accounts.iter().position(|a| a.id == account_id);
                account
                    .and_then(|a| fixtures.open_opportunity(a))
                    .map(|o| {
                        json!({
                            "attributes": attributes("Opportunity", &o.hubspot_deal_id),
                            "Name": o.name,
                            "StageName": o.stage,
                            "Amount": o.amount,
                            "CloseDate": o.close_date
                        })
                    })
                    .into_iter()
                    .collect()
            }
            _ => return vendor_error(&sim, Vendor::Salesforce, "salesforce.query", StatusCode::BAD_REQUEST),
        };
        json_response(StatusCode::OK, json!({"totalSize": records.len(), "done": true, "records": records}))
    })
    .await
}

// ---- HubSpot ----

/// The value of the first `EQ` filter on `property` in a CRM search body.
fn search_filter(body: &Value, property: &str) -> Option<String> {
    body.get("filterGroups")?
        .as_array()?
        .iter()
        .find_map(|group| {
            group.get("filters")?.as_array()?.iter().find_map(|f| {
                (f.get("propertyName")?.as_str()? == property
                    && f.get("operator")?.as_str()? == "EQ")
                    .then(|| f.get("value")?.as_str().map(str::to_string))
                    .flatten()
            })
        })
}

async fn hubspot_contacts_search(State(sim): Sim, headers: HeaderMap, body: Bytes) -> Response {
    let incoming = Incoming {
        endpoint: "hubspot.contacts_search",
        vendor: Vendor::HubSpot,
        method: "POST",
        path: "/crm/v3/objects/contacts/search",
        idempotency_key: None,
        authorized: bearer_is(&headers, sim.credentials.hubspot_token.expose()),
    };
    serve(&sim, incoming, || async {
        let Some(email) = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|b| search_filter(&b, "email"))
        else {
            return vendor_error(
                &sim,
                Vendor::HubSpot,
                "hubspot.contacts_search",
                StatusCode::BAD_REQUEST,
            );
        };
        let fixtures = &sim.fixtures;
        let results: Vec<Value> = fixtures
            .people
            .iter()
            .filter(|p| p.hubspot_id.is_some() && p.email.eq_ignore_ascii_case(&email))
            .map(|p| {
                let id = p.hubspot_id.clone().unwrap_or_default();
                json!({
                    "id": id,
                    "properties": {
                        "createdate": "2025-06-02T10:15:00.000Z",
                        "email": p.email,
                        "firstname": p.first_name,
                        "lastname": p.last_name,
                        "lifecyclestage": p.lifecycle_stage,
                        "hubspot_owner_id": p.hubspot_owner.map(|o| fixtures.owners[o].id.clone()),
                        "company": fixtures.accounts[p.account].name,
                        "hs_object_id": id,
                        "lastmodifieddate": "2026-11-01T08:00:00.000Z"
                    },
                    "createdAt": "2025-06-02T10:15:00.000Z",
                    "updatedAt": "2026-11-01T08:00:00.000Z",
                    "archived": false
                })
            })
            .collect();
        json_response(
            StatusCode::OK,
            json!({"total": results.len(), "results": results}),
        )
    })
    .await
}

async fn hubspot_owner(
    State(sim): Sim,
    Path(owner_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let incoming = Incoming {
        endpoint: "hubspot.owners",
        vendor: Vendor::HubSpot,
        method: "GET",
        path: "/crm/v3/owners/{ownerId}",
        idempotency_key: None,
        authorized: bearer_is(&headers, sim.credentials.hubspot_token.expose()),
    };
    serve(&sim, incoming, || async {
        let Some(owner) = sim.fixtures.owners.iter().find(|o| o.id == owner_id) else {
            return vendor_error(&sim, Vendor::HubSpot, "hubspot.owners", StatusCode::NOT_FOUND);
        };
        json_response(
            StatusCode::OK,
            json!({
                "id": owner.id,
                "email": format!("{}.{}@voxguard-sim.example", owner.first_name.to_lowercase(), owner.last_name.to_lowercase()),
                "firstName": owner.first_name,
                "lastName": owner.last_name,
                "userId": owner.id.parse::<u64>().unwrap_or(0) + 1,
                "createdAt": "2024-01-10T09:00:00.000Z",
                "updatedAt": "2026-10-01T09:00:00.000Z",
                "archived": false
            }),
        )
    })
    .await
}

async fn hubspot_deals_search(State(sim): Sim, headers: HeaderMap, body: Bytes) -> Response {
    let incoming = Incoming {
        endpoint: "hubspot.deals_search",
        vendor: Vendor::HubSpot,
        method: "POST",
        path: "/crm/v3/objects/deals/search",
        idempotency_key: None,
        authorized: bearer_is(&headers, sim.credentials.hubspot_token.expose()),
    };
    serve(&sim, incoming, || async {
        let Some(contact_id) = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|b| search_filter(&b, "associations.contact"))
        else {
            return vendor_error(
                &sim,
                Vendor::HubSpot,
                "hubspot.deals_search",
                StatusCode::BAD_REQUEST,
            );
        };
        let fixtures = &sim.fixtures;
        let deal = fixtures
            .people
            .iter()
            .find(|p| p.hubspot_id.as_deref() == Some(contact_id.as_str()))
            .and_then(|p| fixtures.open_opportunity(p.account));
        let results: Vec<Value> = deal
            .map(|o| {
                json!({
                    "id": o.hubspot_deal_id,
                    "properties": {
                        "dealname": o.name,
                        "dealstage": o.stage.to_lowercase().replace([' ', '/'], ""),
                        "amount": format!("{}", o.amount),
                        "closedate": format!("{}T00:00:00Z", o.close_date),
                        "hs_is_closed": "false",
                        "hs_object_id": o.hubspot_deal_id
                    },
                    "createdAt": "2026-09-01T12:00:00.000Z",
                    "updatedAt": "2026-11-01T12:00:00.000Z",
                    "archived": false
                })
            })
            .into_iter()
            .collect();
        json_response(
            StatusCode::OK,
            json!({"total": results.len(), "results": results}),
        )
    })
    .await
}

// ---- ChiliPiper ----

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

async fn chilipiper_slots(State(sim): Sim, headers: HeaderMap, body: Bytes) -> Response {
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

async fn chilipiper_book(State(sim): Sim, headers: HeaderMap, body: Bytes) -> Response {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_standard_alphabet_and_padding() {
        assert_eq!(base64(b"key:secret"), "a2V5OnNlY3JldA==");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b"abc"), "YWJj");
    }

    #[test]
    fn soql_literals_are_read_back_unescaped() {
        let soql = r"SELECT Id FROM Contact WHERE Email = 'liam.o\'brien@x.example' LIMIT 1";
        assert_eq!(soql_object(soql), Some("Contact"));
        assert_eq!(
            soql_literal(soql, "Email").as_deref(),
            Some("liam.o'brien@x.example")
        );
    }

    #[test]
    fn form_bodies_decode_percent_escapes() {
        let form = serde_urlencoded_pairs(
            b"grant_type=client_credentials&client_id=a%2Bb&client_secret=c+d",
        );
        assert_eq!(form["client_id"], "a+b");
        assert_eq!(form["client_secret"], "c d");
    }
}
