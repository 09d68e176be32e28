//! The simulated vendor endpoints: the paths, auth checks and response
//! shapes the clients in `services::{amplitude, salesforce, hubspot,
//! chilipiper}` speak, served from the seeded fixtures.

mod amplitude;
mod chilipiper;
mod hubspot;
mod salesforce;

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::routing::{get, post};

use super::state::SimState;

type Sim = State<Arc<SimState>>;

pub(crate) fn routes() -> Router<Arc<SimState>> {
    Router::new()
        .route("/api/2/usersearch", get(amplitude::user_search))
        .route("/api/2/useractivity", get(amplitude::user_activity))
        .route("/services/oauth2/token", post(salesforce::token))
        .route("/services/data/{version}/query", get(salesforce::query))
        .route(
            "/crm/v3/objects/contacts/search",
            post(hubspot::contacts_search),
        )
        .route("/crm/v3/owners/{owner_id}", get(hubspot::owner))
        .route("/crm/v3/objects/deals/search", post(hubspot::deals_search))
        .route(
            "/api/fire-edge/v1/org/availability/slots",
            post(chilipiper::slots),
        )
        .route(
            "/api/fire-edge/v1/org/meetings/book",
            post(chilipiper::book),
        )
}

pub(super) fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

pub(super) fn bearer_is(headers: &HeaderMap, expected: &str) -> bool {
    bearer(headers).is_some_and(|token| token == expected)
}

pub(super) fn base64(input: &[u8]) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_standard_alphabet_and_padding() {
        assert_eq!(base64(b"key:secret"), "a2V5OnNlY3JldA==");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b"abc"), "YWJj");
    }
}
