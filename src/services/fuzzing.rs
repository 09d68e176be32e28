//! Entry points for the fuzz targets in `fuzz/`, not a public API: every
//! decoder the CRM clients run on a vendor's answer, and the classification
//! of a failed answer, callable on raw bytes without a network.

use std::time::Duration;

use super::http::{Endpoint, classify_status};
use super::model::{BookingConfirmation, CrmRecord, OpenOpportunity, SlotQuery, Slots};
use super::ratelimit::{RateLimitInfo, Vendor};
use super::{amplitude, chilipiper, hubspot, salesforce};
use crate::resilience::CallError;
use crate::services::ActivitySummary;

pub use super::amplitude::RECENT_EVENTS;

/// The Amplitude id of the first user a search answer matched.
pub fn amplitude_user_search(body: &[u8]) -> Result<Option<u64>, CallError> {
    amplitude::decode_user_search(body).map(|found| found.map(|m| m.amplitude_id))
}

/// A `useractivity` answer for a user found as `user` with no user id of its own.
pub fn amplitude_user_activity(body: &[u8], user: &str) -> Result<ActivitySummary, CallError> {
    let found = amplitude::UserMatch {
        user_id: None,
        amplitude_id: 1,
    };
    amplitude::decode_user_activity(body, found, user)
}

/// The record and owner id of the first contact a HubSpot search answer holds.
pub fn hubspot_contact_search(
    body: &[u8],
) -> Result<Option<(CrmRecord, Option<String>)>, CallError> {
    hubspot::decode_contact_search(body).map(|found| found.map(|c| (c.record, c.owner_id)))
}

pub fn hubspot_owner_name(body: &[u8]) -> Result<Option<String>, CallError> {
    hubspot::decode_owner_name(body)
}

pub fn hubspot_deal_search(body: &[u8]) -> Result<Option<OpenOpportunity>, CallError> {
    hubspot::decode_deal_search(body)
}

/// The instance URL and access token of a Salesforce token answer.
pub fn salesforce_token(body: &[u8], login_url: &str) -> Result<(String, String), CallError> {
    salesforce::decode_token(body, login_url)
        .map(|s| (s.instance_url, s.access_token.expose().to_string()))
}

/// The record and account id of the first contact a SOQL answer holds.
pub fn salesforce_contact_query(
    body: &[u8],
) -> Result<Option<(CrmRecord, Option<String>)>, CallError> {
    salesforce::decode_contact_query(body).map(|found| found.map(|c| (c.record, c.account_id)))
}

pub fn salesforce_lead_query(body: &[u8]) -> Result<Option<CrmRecord>, CallError> {
    salesforce::decode_lead_query(body)
}

pub fn salesforce_opportunity_query(body: &[u8]) -> Result<Option<OpenOpportunity>, CallError> {
    salesforce::decode_opportunity_query(body)
}

pub fn chilipiper_slots(body: &[u8], query: &SlotQuery) -> Result<Slots, CallError> {
    chilipiper::decode_slots(body, query)
}

pub fn chilipiper_booking(body: &[u8]) -> Result<BookingConfirmation, CallError> {
    chilipiper::decode_booking(body)
}

/// How a non-2xx answer from `vendor` is classified, with `retry_after` as
/// its headers reported it.
pub fn classify_failure(
    vendor: Vendor,
    code: u16,
    body: &[u8],
    retry_after: Option<Duration>,
) -> CallError {
    let endpoint = Endpoint {
        vendor,
        name: "fuzz",
    };
    let rate_limit = RateLimitInfo {
        retry_after,
        ..RateLimitInfo::default()
    };
    classify_status(endpoint, code, body, rate_limit)
}
