//! ChiliPiper Edge API client (`Authorization: Bearer <api key>`).
//!
//! Slots follow the published availability operation,
//! `POST /v1/org/availability/slots` with `{expectedHost, attendees,
//! meetingTypeRef, interval}` → `{meetingTypeRef, startTimes: [{startTime}], failures}`.
//!
//! ChiliPiper publishes no booking operation with idempotency; voxguard uses
//! this shape (the simulator implements it):
//! `POST /v1/org/meetings/book` with header `Idempotency-Key: <key>` and body
//! `{meetingTypeId, hostUserId, startTime, guest: {email, name}}` →
//! `200 {meetingId, startTime, hostUserId, hostName}`; a slot already taken →
//! `409 {"errorCode": "SlotUnavailable", ...}`. The same key always returns the
//! original booking, so a retried booking never double-books.

use std::time::Duration;

use serde::Deserialize;
use serde_json::json;

use super::SideEffect;
use super::http::{AttemptBudget, Endpoint, HttpLayer, decode_json};
use super::model::{BookingConfirmation, BookingRequest, Slot, SlotQuery, Slots};
use super::ratelimit::Vendor;
use crate::resilience::{AttemptCtx, CallError};
use crate::secret::Secret;

const SLOTS: Endpoint = Endpoint {
    vendor: Vendor::ChiliPiper,
    name: "slots",
};
const BOOK: Endpoint = Endpoint {
    vendor: Vendor::ChiliPiper,
    name: "book",
};
/// The header carrying a booking's idempotency key.
pub const IDEMPOTENCY_KEY_HEADER: &str = "Idempotency-Key";

pub struct ChiliPiperClient {
    http: HttpLayer,
    base_url: String,
    api_key: Secret,
}

#[derive(Deserialize)]
struct StartTimes {
    #[serde(rename = "startTimes", default)]
    start_times: Vec<StartTime>,
}

#[derive(Deserialize)]
struct StartTime {
    #[serde(rename = "startTime")]
    start_time: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Booked {
    meeting_id: String,
    start_time: String,
    host_user_id: String,
    host_name: Option<String>,
}

impl ChiliPiperClient {
    /// Slot lookups are reads.
    pub const SLOTS_SIDE_EFFECT: SideEffect = SideEffect::None;
    /// Booking creates a meeting: non-idempotent on its own, made safe by the idempotency key.
    pub const BOOKING_SIDE_EFFECT: SideEffect = SideEffect::NonIdempotent;

    /// `base_url` is e.g. `https://fire.chilipiper.com/api/fire-edge`.
    pub fn new(http: HttpLayer, base_url: impl Into<String>, api_key: Secret) -> Self {
        ChiliPiperClient {
            http,
            base_url: base_url.into().trim_end_matches('/').to_string(),
            api_key,
        }
    }

    /// Bookable start times for the host in the window.
    pub async fn available_slots(
        &self,
        ctx: &AttemptCtx,
        query: &SlotQuery,
    ) -> Result<Slots, CallError> {
        let budget = AttemptBudget::start(ctx);
        let body = json!({
            "expectedHost": {"type": "User", "userId": query.host_user_id},
            "attendees": [{"type": "ManuallyAssigned", "userId": query.host_user_id, "required": true}],
            "meetingTypeRef": {"id": query.meeting_type_id, "timestamp": query.starts_at},
            "interval": {"startsAt": query.starts_at, "duration": iso_duration(query.window)}
        });
        let reply = self
            .http
            .send(
                &budget,
                SLOTS,
                self.post("/v1/org/availability/slots").json(&body),
            )
            .await?;
        decode_slots(&reply.body, query)
    }

    /// Book the meeting. Every attempt sends the request's idempotency key.
    pub async fn book_meeting(
        &self,
        ctx: &AttemptCtx,
        booking: &BookingRequest,
    ) -> Result<BookingConfirmation, CallError> {
        let budget = AttemptBudget::start(ctx);
        let body = json!({
            "meetingTypeId": booking.meeting_type_id,
            "hostUserId": booking.host_user_id,
            "startTime": booking.start_time,
            "guest": {"email": booking.guest_email, "name": booking.guest_name}
        });
        let request = self
            .post("/v1/org/meetings/book")
            .header(IDEMPOTENCY_KEY_HEADER, &booking.idempotency_key)
            .json(&body);
        let reply = self.http.send(&budget, BOOK, request).await?;
        decode_booking(&reply.body)
    }

    fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.http
            .client()
            .post(format!("{}{path}", self.base_url))
            .bearer_auth(self.api_key.expose())
    }
}

/// The start times an availability answer offers for `query`.
pub(crate) fn decode_slots(body: &[u8], query: &SlotQuery) -> Result<Slots, CallError> {
    let found: StartTimes = decode_json(SLOTS, body)?;
    Ok(Slots {
        host_user_id: query.host_user_id.clone(),
        meeting_type_id: query.meeting_type_id.clone(),
        slots: found
            .start_times
            .into_iter()
            .map(|s| Slot {
                start_time: s.start_time,
            })
            .collect(),
    })
}

/// The meeting a booking answer confirms.
pub(crate) fn decode_booking(body: &[u8]) -> Result<BookingConfirmation, CallError> {
    let booked: Booked = decode_json(BOOK, body)?;
    Ok(BookingConfirmation {
        meeting_id: booked.meeting_id,
        start_time: booked.start_time,
        host_user_id: booked.host_user_id,
        host_name: booked.host_name,
    })
}

/// `PT<seconds>S`, the ISO 8601 form the availability operation accepts.
fn iso_duration(window: Duration) -> String {
    format!("PT{}S", window.as_secs().max(1))
}
