//! The typed summaries the agent speaks from, independent of any vendor's wire format.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A user's recent product activity (Amplitude).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivitySummary {
    pub user_id: String,
    pub amplitude_id: u64,
    /// Date of the last activity, as the vendor reports it (project time zone).
    pub last_seen: Option<String>,
    pub first_seen: Option<String>,
    pub event_count: u64,
    pub session_count: u64,
    pub platform: Option<String>,
    pub country: Option<String>,
    /// Most recent first.
    pub recent_events: Vec<RecentEvent>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecentEvent {
    pub event_type: String,
    pub time: String,
}

/// Which CRM a record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CrmSource {
    SalesforceContact,
    SalesforceLead,
    HubSpot,
}

/// A person's CRM record, reduced to what the agent can say.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CrmRecord {
    pub source: CrmSource,
    pub id: String,
    pub name: Option<String>,
    /// The account (or contact/lead) owner's display name.
    pub owner: Option<String>,
    /// HubSpot lifecycle stage; for Salesforce the account type (contacts) or lead status.
    pub lifecycle_stage: Option<String>,
    pub company: Option<String>,
    pub open_opportunity: Option<OpenOpportunity>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenOpportunity {
    pub name: String,
    pub stage: String,
    pub amount: Option<f64>,
    /// `YYYY-MM-DD`.
    pub close_date: Option<String>,
}

/// What to look for when asking for meeting slots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotQuery {
    pub host_user_id: String,
    pub meeting_type_id: String,
    /// RFC 3339 start of the search window.
    pub starts_at: String,
    pub window: Duration,
}

/// Bookable start times for one host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slots {
    pub host_user_id: String,
    pub meeting_type_id: String,
    pub slots: Vec<Slot>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slot {
    /// RFC 3339, UTC.
    pub start_time: String,
}

/// A meeting to book. The idempotency key is fixed at construction so every
/// attempt of this booking carries the same one and the vendor books once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookingRequest {
    pub idempotency_key: String,
    pub meeting_type_id: String,
    pub host_user_id: String,
    pub start_time: String,
    pub guest_email: String,
    pub guest_name: String,
}

impl BookingRequest {
    /// A booking whose idempotency key is derived from what is booked: the same
    /// guest, host, meeting type and start time always produce the same key, so
    /// even a booking re-issued after a crash cannot double-book.
    pub fn new(
        meeting_type_id: impl Into<String>,
        host_user_id: impl Into<String>,
        start_time: impl Into<String>,
        guest_email: impl Into<String>,
        guest_name: impl Into<String>,
    ) -> Self {
        let mut request = BookingRequest {
            idempotency_key: String::new(),
            meeting_type_id: meeting_type_id.into(),
            host_user_id: host_user_id.into(),
            start_time: start_time.into(),
            guest_email: guest_email.into(),
            guest_name: guest_name.into(),
        };
        let material = [
            &request.meeting_type_id,
            &request.host_user_id,
            &request.start_time,
            &request.guest_email,
        ];
        request.idempotency_key = format!(
            "vg-{:016x}{:016x}",
            fnv1a(0xcbf2_9ce4_8422_2325, &material),
            fnv1a(0x8422_2325_cbf2_9ce4, &material)
        );
        request
    }
}

fn fnv1a(seed: u64, parts: &[&String]) -> u64 {
    let mut hash = seed;
    for part in parts {
        for byte in part.bytes().chain([0u8]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

/// A booked meeting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookingConfirmation {
    pub meeting_id: String,
    pub start_time: String,
    pub host_user_id: String,
    pub host_name: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_booking_always_gets_the_same_idempotency_key() {
        let a = BookingRequest::new("mt-1", "u-1", "2026-01-05T10:00:00Z", "a@example.com", "A");
        let b = BookingRequest::new(
            "mt-1",
            "u-1",
            "2026-01-05T10:00:00Z",
            "a@example.com",
            "Someone else",
        );
        let c = BookingRequest::new("mt-1", "u-1", "2026-01-05T10:30:00Z", "a@example.com", "A");
        assert_eq!(a.idempotency_key, b.idempotency_key);
        assert_ne!(a.idempotency_key, c.idempotency_key);
        assert!(!a.idempotency_key.contains("example"));
    }
}
