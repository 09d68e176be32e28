//! Simulated Salesforce: the OAuth client-credentials token endpoint and SOQL
//! queries for Contact, Lead and Opportunity, bearer sessions that can expire.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use super::Sim;
use super::bearer;
use crate::services::Vendor;
use crate::testbed::crm::fixtures::SalesforcePresence;
use crate::testbed::crm::respond::{Incoming, json_response, serve, vendor_error};
use crate::testbed::crm::state::lock;

pub(super) async fn token(State(sim): Sim, body: Bytes) -> Response {
    let incoming = Incoming {
        endpoint: "salesforce.token",
        vendor: Vendor::Salesforce,
        method: "POST",
        path: "/services/oauth2/token",
        idempotency_key: None,
        authorized: true,
    };
    serve(&sim, incoming, || async {
        let form: HashMap<String, String> = form_pairs(&body);
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
fn form_pairs(body: &[u8]) -> HashMap<String, String> {
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

pub(super) async fn query(
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

#[cfg(test)]
mod tests {
    use super::*;

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
        let form = form_pairs(b"grant_type=client_credentials&client_id=a%2Bb&client_secret=c+d");
        assert_eq!(form["client_id"], "a+b");
        assert_eq!(form["client_secret"], "c d");
    }
}
