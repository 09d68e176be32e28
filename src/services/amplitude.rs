//! Amplitude Dashboard REST API client: find a user by user id (or email used
//! as user id) with `GET /api/2/usersearch?user=`, then read their profile and
//! recent events with `GET /api/2/useractivity?user=<amplitude_id>`.
//!
//! Auth is HTTP Basic with the project's API key as user name and secret key
//! as password, as Amplitude documents. Amplitude does not document an error
//! body; voxguard reads `{"error": {"code": N, "type": "..."}}` when present
//! and otherwise classifies by status alone.

use serde::Deserialize;

use super::SideEffect;
use super::http::{AttemptBudget, Endpoint, HttpLayer, decode_json};
use super::model::{ActivitySummary, RecentEvent};
use super::ratelimit::Vendor;
use crate::resilience::{AttemptCtx, CallError};
use crate::secret::Secret;

const USER_SEARCH: Endpoint = Endpoint {
    vendor: Vendor::Amplitude,
    name: "usersearch",
};
const USER_ACTIVITY: Endpoint = Endpoint {
    vendor: Vendor::Amplitude,
    name: "useractivity",
};
/// How many recent events to summarise.
pub const RECENT_EVENTS: usize = 5;

pub struct AmplitudeClient {
    http: HttpLayer,
    base_url: String,
    api_key: Secret,
    secret_key: Secret,
}

#[derive(Deserialize)]
struct UserSearch {
    #[serde(default)]
    matches: Vec<UserMatch>,
}

/// One user a search matched.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub(crate) struct UserMatch {
    pub(crate) user_id: Option<String>,
    pub(crate) amplitude_id: u64,
}

#[derive(Deserialize)]
struct UserActivity {
    #[serde(rename = "userData")]
    user_data: UserData,
    #[serde(default)]
    events: Vec<Event>,
}

#[derive(Deserialize)]
struct UserData {
    user_id: Option<String>,
    #[serde(default)]
    num_events: u64,
    #[serde(default)]
    num_sessions: u64,
    first_used: Option<String>,
    last_used: Option<String>,
    platform: Option<String>,
    country: Option<String>,
}

#[derive(Deserialize)]
struct Event {
    event_type: String,
    event_time: String,
}

impl AmplitudeClient {
    /// Reads only.
    pub const SIDE_EFFECT: SideEffect = SideEffect::None;

    /// `base_url` is e.g. `https://amplitude.com` (or the EU host); no trailing `/api/2`.
    pub fn new(
        http: HttpLayer,
        base_url: impl Into<String>,
        api_key: Secret,
        secret_key: Secret,
    ) -> Self {
        AmplitudeClient {
            http,
            base_url: base_url.into().trim_end_matches('/').to_string(),
            api_key,
            secret_key,
        }
    }

    pub fn side_effect(&self) -> SideEffect {
        Self::SIDE_EFFECT
    }

    /// The user's recent activity, or `None` when Amplitude knows no such user.
    pub async fn user_activity(
        &self,
        ctx: &AttemptCtx,
        user: &str,
    ) -> Result<Option<ActivitySummary>, CallError> {
        let budget = AttemptBudget::start(ctx);
        let search = self
            .http
            .send(
                &budget,
                USER_SEARCH,
                self.get("/api/2/usersearch").query(&[("user", user)]),
            )
            .await?;
        let Some(found) = decode_user_search(&search.body)? else {
            return Ok(None);
        };
        let request = self.get("/api/2/useractivity").query(&[
            ("user", found.amplitude_id.to_string()),
            ("limit", RECENT_EVENTS.to_string()),
        ]);
        let activity = self.http.send(&budget, USER_ACTIVITY, request).await?;
        decode_user_activity(&activity.body, found, user).map(Some)
    }

    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http
            .client()
            .get(format!("{}{path}", self.base_url))
            .basic_auth(self.api_key.expose(), Some(self.secret_key.expose()))
    }
}

/// The first user a `usersearch` answer matched, if any.
pub(crate) fn decode_user_search(body: &[u8]) -> Result<Option<UserMatch>, CallError> {
    let search: UserSearch = decode_json(USER_SEARCH, body)?;
    Ok(search.matches.into_iter().next())
}

/// The summary of a `useractivity` answer for the user `found` by searching for `user`.
pub(crate) fn decode_user_activity(
    body: &[u8],
    found: UserMatch,
    user: &str,
) -> Result<ActivitySummary, CallError> {
    let activity: UserActivity = decode_json(USER_ACTIVITY, body)?;
    let data = activity.user_data;
    Ok(ActivitySummary {
        user_id: data
            .user_id
            .or(found.user_id)
            .unwrap_or_else(|| user.to_string()),
        amplitude_id: found.amplitude_id,
        last_seen: data.last_used,
        first_seen: data.first_used,
        event_count: data.num_events,
        session_count: data.num_sessions,
        platform: data.platform,
        country: data.country,
        recent_events: activity
            .events
            .into_iter()
            .take(RECENT_EVENTS)
            .map(|e| RecentEvent {
                event_type: e.event_type,
                time: e.event_time,
            })
            .collect(),
    })
}
