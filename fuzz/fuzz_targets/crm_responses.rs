//! CRM answers: every decoder the Amplitude, HubSpot, Salesforce and
//! ChiliPiper clients run on a response body, and the classification of a
//! failed answer (status code + error body).
//!
//! Input: one selector byte, then the body (for a failed answer: a
//! little-endian u16 status code, then the body).

#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use voxguard::resilience::{CallError, ErrorKind};
use voxguard::services::fuzzing as crm;
use voxguard::services::http::vendor_error_code;
use voxguard::services::salesforce::{UNUSABLE_INSTANCE, UNUSABLE_TOKEN};
use voxguard::services::{CrmSource, SlotQuery, Vendor};

const VENDORS: [Vendor; 4] = [
    Vendor::Amplitude,
    Vendor::Salesforce,
    Vendor::HubSpot,
    Vendor::ChiliPiper,
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    match selector % 12 {
        0 => {
            decoded(Vendor::Amplitude, crm::amplitude_user_search(body));
        }
        1 => {
            let summary = decoded(Vendor::Amplitude, crm::amplitude_user_activity(body, "ada"));
            if let Some(summary) = summary {
                assert!(summary.recent_events.len() <= crm::RECENT_EVENTS);
                assert_eq!(summary.amplitude_id, 1);
            }
        }
        2 => {
            if let Some(Some((record, owner_id))) =
                decoded(Vendor::HubSpot, crm::hubspot_contact_search(body))
            {
                assert_eq!(record.source, CrmSource::HubSpot);
                assert!(record.name.as_ref().is_none_or(|n| !n.is_empty()));
                assert!(owner_id.is_none_or(|id| !id.is_empty()));
                assert!(record.owner.is_none() && record.open_opportunity.is_none());
            }
        }
        3 => {
            if let Some(Some(name)) = decoded(Vendor::HubSpot, crm::hubspot_owner_name(body)) {
                assert!(!name.is_empty());
            }
        }
        4 => {
            if let Some(Some(deal)) = decoded(Vendor::HubSpot, crm::hubspot_deal_search(body)) {
                assert!(deal.close_date.is_none_or(|d| d.chars().count() <= 10));
            }
        }
        5 => {
            let login = "https://acme.my.salesforce.com";
            if let Some((instance, token)) =
                decoded(Vendor::Salesforce, crm::salesforce_token(body, login))
            {
                // A session is only worth caching if it can be used.
                assert!(!token.is_empty(), "empty access token accepted");
                let header = format!("Bearer {token}");
                assert!(
                    reqwest::header::HeaderValue::from_str(&header).is_ok(),
                    "access token {token:?} cannot be sent"
                );
                let url = reqwest::Url::parse(&format!("{instance}/services/data/v62.0/query"));
                assert!(
                    url.is_ok_and(|u| matches!(u.scheme(), "http" | "https")),
                    "instance URL {instance:?} cannot be queried"
                );
            }
        }
        6 => {
            if let Some(Some((record, _))) =
                decoded(Vendor::Salesforce, crm::salesforce_contact_query(body))
            {
                assert_eq!(record.source, CrmSource::SalesforceContact);
                assert!(record.open_opportunity.is_none());
            }
        }
        7 => {
            if let Some(Some(record)) =
                decoded(Vendor::Salesforce, crm::salesforce_lead_query(body))
            {
                assert_eq!(record.source, CrmSource::SalesforceLead);
            }
        }
        8 => {
            decoded(Vendor::Salesforce, crm::salesforce_opportunity_query(body));
        }
        9 => {
            let query = SlotQuery {
                host_user_id: "u-1".into(),
                meeting_type_id: "mt-1".into(),
                starts_at: "2026-01-05T09:00:00Z".into(),
                window: Duration::from_secs(86_400),
            };
            if let Some(slots) = decoded(Vendor::ChiliPiper, crm::chilipiper_slots(body, &query)) {
                assert_eq!(slots.host_user_id, query.host_user_id);
                assert_eq!(slots.meeting_type_id, query.meeting_type_id);
            }
        }
        10 => {
            decoded(Vendor::ChiliPiper, crm::chilipiper_booking(body));
        }
        _ => failed_answer(body),
    }
});

/// A decoder answers a value or a `Decode` error whose detail names vendor,
/// endpoint and the kind of problem, and nothing of the body.
fn decoded<T>(vendor: Vendor, result: Result<T, CallError>) -> Option<T> {
    match result {
        Ok(value) => Some(value),
        Err(CallError::Decode { detail }) => {
            let (place, problem) = detail.split_once(": ").expect(&detail);
            let (service, endpoint) = place.split_once(' ').expect(&detail);
            assert_eq!(service, vendor.as_str());
            assert!(
                endpoint
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_')
            );
            if [UNUSABLE_TOKEN, UNUSABLE_INSTANCE].contains(&problem) {
                assert_eq!(place, "salesforce token");
                return None;
            }
            let (kind, position) = problem.split_once(" at line ").expect(&detail);
            assert!(
                [
                    "malformed JSON",
                    "unexpected JSON shape",
                    "truncated JSON",
                    "io error"
                ]
                .contains(&kind),
                "{detail}"
            );
            let (line, column) = position.split_once(" column ").expect(&detail);
            assert!(line.parse::<usize>().is_ok() && column.parse::<usize>().is_ok());
            None
        }
        Err(other) => panic!("decoding failed with a non-decode error: {other:?}"),
    }
}

/// A failed answer becomes `RateLimited` (429) or `Status` with the code;
/// its detail carries the vendor's error code at most, never free text.
fn failed_answer(data: &[u8]) {
    if data.len() < 3 {
        return;
    }
    let vendor = VENDORS[usize::from(data[0]) % VENDORS.len()];
    let code = u16::from_le_bytes([data[1], data[2]]) % 1000;
    let body = &data[3..];
    let retry_after = Some(Duration::from_millis(u64::from(data[1])));
    let vendor_code = vendor_error_code(vendor, body);
    if let Some(vendor_code) = &vendor_code {
        assert!(!vendor_code.is_empty() && vendor_code.len() <= 64);
        assert!(
            vendor_code
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        );
    }
    let error = crm::classify_failure(vendor, code, body, retry_after);
    match &error {
        CallError::RateLimited { retry_after: after } => {
            assert_eq!(code, 429);
            assert_eq!(*after, retry_after);
            assert!(error.is_transient());
        }
        CallError::Status { code: got, detail } => {
            assert_eq!(*got, code);
            let detail = detail.as_deref().expect("a status error names its vendor");
            assert!(detail.starts_with(vendor.as_str()), "{detail}");
            if !matches!(code, 401 | 403) {
                let expected = match &vendor_code {
                    Some(vendor_code) => format!("{} fuzz: {vendor_code}", vendor.as_str()),
                    None => format!("{} fuzz", vendor.as_str()),
                };
                assert_eq!(detail, &expected);
            }
            assert_eq!(error.kind(), ErrorKind::Status);
        }
        other => panic!("status {code} classified as {other:?}"),
    }
}
