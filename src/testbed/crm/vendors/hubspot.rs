//! Simulated HubSpot CRM v3: contact and deal search, owners; private-app bearer token.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use super::Sim;
use super::bearer_is;
use crate::services::Vendor;
use crate::testbed::crm::respond::{Incoming, json_response, serve, vendor_error};

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

pub(super) async fn contacts_search(State(sim): Sim, headers: HeaderMap, body: Bytes) -> Response {
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

pub(super) async fn owner(
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

pub(super) async fn deals_search(State(sim): Sim, headers: HeaderMap, body: Bytes) -> Response {
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
