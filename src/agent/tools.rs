//! The toolbox: the brain's tool names bound to the CRM clients, each tool
//! declared with its service and side-effect class for the `ToolRunner`.
//! A service without credentials has no client: its tools are refused at
//! once as not configured (never counted against the service's breaker), so
//! the agent says it cannot check and the call goes on.
//!
//! Answers are turned into the JSON shapes the brain reads: CRM records and
//! activity as the services return them, slots with a spoken label.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::brain::ToolName;
use crate::recovery::{SideEffect, ToolAnswer, ToolSpec};
use crate::resilience::{AttemptCtx, CallError, Rejection};
use crate::services::{
    AmplitudeClient, BookingRequest, ChiliPiperClient, HubSpotClient, SalesforceClient, SlotQuery,
};
use crate::session::{Attempt, Tools};

/// Where meetings get booked.
#[derive(Debug, Clone, Default)]
pub struct CalendarSettings {
    pub host_user_id: String,
    pub meeting_type_id: String,
    /// How far ahead slots are offered.
    pub window: Duration,
}

/// The four CRM clients (absent when not configured) and the calendar settings.
#[derive(Clone)]
pub struct Toolbox {
    pub amplitude: Option<Arc<AmplitudeClient>>,
    pub salesforce: Option<Arc<SalesforceClient>>,
    pub hubspot: Option<Arc<HubSpotClient>>,
    pub chilipiper: Option<Arc<ChiliPiperClient>>,
    pub calendar: CalendarSettings,
}

impl Tools for Toolbox {
    fn spec(&self, tool: ToolName) -> ToolSpec {
        spec(tool)
    }

    fn attempt(&self, tool: ToolName, args: &Value, ctx: AttemptCtx) -> Attempt {
        let toolbox = self.clone();
        let args = args.clone();
        Box::pin(async move { toolbox.invoke(tool, &args, ctx).await })
    }
}

/// `client`, or the refusal a tool of an unconfigured service answers with.
fn configured<T>(client: &Option<Arc<T>>) -> Result<&T, CallError> {
    client
        .as_deref()
        .ok_or(CallError::Rejected(Rejection::NotConfigured))
}

/// The service and side-effect class of each tool.
pub fn spec(tool: ToolName) -> ToolSpec {
    let (service, side_effect) = match tool {
        ToolName::AmplitudeActivity => ("amplitude", SideEffect::None),
        ToolName::SalesforceLookup => ("salesforce", SideEffect::None),
        ToolName::HubspotLookup => ("hubspot", SideEffect::None),
        ToolName::ChilipiperSlots => ("chilipiper", SideEffect::None),
        ToolName::ChilipiperBook => ("chilipiper", SideEffect::NonIdempotent),
    };
    ToolSpec::new(tool.as_str(), service, side_effect)
}

fn arg<'a>(args: &'a Value, name: &str) -> Result<&'a str, CallError> {
    args.get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| CallError::Status {
            code: 400,
            detail: Some(format!("tool argument `{name}` is missing")),
        })
}

fn found<T: serde::Serialize>(value: Option<T>) -> ToolAnswer<Value> {
    match value {
        Some(v) => ToolAnswer::Found(serde_json::to_value(v).unwrap_or(Value::Null)),
        None => ToolAnswer::NotFound,
    }
}

impl Toolbox {
    /// One attempt of `tool` with `args`; the Guard around it decides retries.
    pub async fn invoke(
        &self,
        tool: ToolName,
        args: &Value,
        ctx: AttemptCtx,
    ) -> Result<ToolAnswer<Value>, CallError> {
        match tool {
            ToolName::AmplitudeActivity => {
                let activity = configured(&self.amplitude)?
                    .user_activity(&ctx, arg(args, "email")?)
                    .await?;
                Ok(match activity {
                    Some(summary) => {
                        let mut value = serde_json::to_value(&summary).unwrap_or(Value::Null);
                        value["docs_processed"] = json!(summary.event_count);
                        ToolAnswer::Found(value)
                    }
                    None => ToolAnswer::NotFound,
                })
            }
            ToolName::SalesforceLookup => Ok(found(
                configured(&self.salesforce)?
                    .find_contact(&ctx, arg(args, "email")?)
                    .await?,
            )),
            ToolName::HubspotLookup => Ok(found(
                configured(&self.hubspot)?
                    .find_contact(&ctx, arg(args, "email")?)
                    .await?,
            )),
            ToolName::ChilipiperSlots => {
                let query = SlotQuery {
                    host_user_id: self.calendar.host_user_id.clone(),
                    meeting_type_id: self.calendar.meeting_type_id.clone(),
                    starts_at: now_rfc3339(),
                    window: self.calendar.window,
                };
                let slots = configured(&self.chilipiper)?
                    .available_slots(&ctx, &query)
                    .await?;
                let offered: Vec<Value> = slots
                    .slots
                    .iter()
                    .map(|s| json!({ "id": s.start_time, "label": spoken_time(&s.start_time) }))
                    .collect();
                Ok(ToolAnswer::Found(json!({ "slots": offered })))
            }
            ToolName::ChilipiperBook => {
                let email = arg(args, "email")?;
                let request = BookingRequest::new(
                    &self.calendar.meeting_type_id,
                    &self.calendar.host_user_id,
                    arg(args, "slot_id")?,
                    email,
                    email.split('@').next().unwrap_or(email),
                );
                let confirmation = configured(&self.chilipiper)?
                    .book_meeting(&ctx, &request)
                    .await?;
                Ok(ToolAnswer::Found(
                    serde_json::to_value(confirmation).unwrap_or(Value::Null),
                ))
            }
        }
    }
}

fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a civil date (proleptic Gregorian).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 } as i64;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// "2026-11-24T15:30:00Z" → "Tuesday at 3:30 PM UTC"; the input unchanged if it is not RFC 3339.
pub fn spoken_time(rfc3339: &str) -> String {
    const WEEKDAYS: [&str; 7] = [
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
        "Monday",
        "Tuesday",
        "Wednesday",
    ];
    let parse = || -> Option<String> {
        let y: i64 = rfc3339.get(0..4)?.parse().ok()?;
        let m: u32 = rfc3339.get(5..7)?.parse().ok()?;
        let d: u32 = rfc3339.get(8..10)?.parse().ok()?;
        let hour: u32 = rfc3339.get(11..13)?.parse().ok()?;
        let minute: u32 = rfc3339.get(14..16)?.parse().ok()?;
        if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hour > 23 || minute > 59 {
            return None;
        }
        let weekday = WEEKDAYS[days_from_civil(y, m, d).rem_euclid(7) as usize];
        let (h12, half) = match hour {
            0 => (12, "AM"),
            1..=11 => (hour, "AM"),
            12 => (12, "PM"),
            _ => (hour - 12, "PM"),
        };
        Some(if minute == 0 {
            format!("{weekday} at {h12} {half} UTC")
        } else {
            format!("{weekday} at {h12}:{minute:02} {half} UTC")
        })
    };
    parse().unwrap_or_else(|| rfc3339.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_times_are_spoken_with_their_weekday() {
        assert_eq!(
            spoken_time("2026-11-24T15:30:00Z"),
            "Tuesday at 3:30 PM UTC"
        );
        assert_eq!(spoken_time("2026-11-23T09:00:00Z"), "Monday at 9 AM UTC");
        assert_eq!(spoken_time("2000-01-01T00:00:00Z"), "Saturday at 12 AM UTC");
        assert_eq!(spoken_time("soon"), "soon");
    }

    #[test]
    fn civil_dates_round_trip() {
        for days in [-1000i64, 0, 10_957, 20_415, 60_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn only_the_booking_is_a_side_effecting_tool() {
        for tool in ToolName::ALL {
            let expected = if tool == ToolName::ChilipiperBook {
                SideEffect::NonIdempotent
            } else {
                SideEffect::None
            };
            assert_eq!(spec(tool).side_effect, expected, "{tool:?}");
        }
    }
}
