//! Reading how long a service wants us to wait: the standard `Retry-After`
//! header (delta-seconds or HTTP-date) and the vendors' own rate-limit headers.
//!
//! Vendor headers understood:
//! - HubSpot: `X-HubSpot-RateLimit-{Max,Remaining,Interval-Milliseconds}` and
//!   `X-HubSpot-RateLimit-{Secondly,Secondly-Remaining,Daily,Daily-Remaining}`.
//!   An exhausted interval implies a wait of up to one interval, an exhausted
//!   secondly bucket a wait of one second.
//! - Salesforce: `Sforce-Limit-Info: api-usage=USED/LIMIT` (daily usage; it
//!   never implies a short wait, it is surfaced in tracing only).
//! - Amplitude and ChiliPiper document no rate-limit headers; the common
//!   `X-RateLimit-Reset` / `RateLimit-Reset` (seconds until reset) are honoured
//!   when present.

use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, RETRY_AFTER};

/// Which vendor a response came from, for its header and error-body conventions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Vendor {
    Amplitude,
    Salesforce,
    HubSpot,
    ChiliPiper,
}

impl Vendor {
    pub fn as_str(self) -> &'static str {
        match self {
            Vendor::Amplitude => "amplitude",
            Vendor::Salesforce => "salesforce",
            Vendor::HubSpot => "hubspot",
            Vendor::ChiliPiper => "chilipiper",
        }
    }
}

/// Rate-limit state a response reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RateLimitInfo {
    /// From `Retry-After`.
    pub retry_after: Option<Duration>,
    /// Requests left in the current window, when the vendor says.
    pub remaining: Option<u64>,
    /// The window's size, when the vendor says.
    pub limit: Option<u64>,
    /// A wait implied by vendor headers (exhausted window).
    pub implied_wait: Option<Duration>,
}

impl RateLimitInfo {
    /// The wait to report on a 429: `Retry-After` first, then what vendor headers imply.
    pub fn wait(&self) -> Option<Duration> {
        self.retry_after.or(self.implied_wait)
    }
}

fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// Read everything rate-limit related from a response's headers.
pub fn read_rate_limit(vendor: Vendor, headers: &HeaderMap, now: SystemTime) -> RateLimitInfo {
    let retry_after = headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| crate::edge::parse_retry_after(v, now));
    let mut info = RateLimitInfo {
        retry_after,
        ..RateLimitInfo::default()
    };
    match vendor {
        Vendor::HubSpot => {
            info.limit = header_u64(headers, "x-hubspot-ratelimit-max");
            info.remaining = header_u64(headers, "x-hubspot-ratelimit-remaining");
            let interval = header_u64(headers, "x-hubspot-ratelimit-interval-milliseconds")
                .map(Duration::from_millis);
            if info.remaining == Some(0) {
                info.implied_wait = interval;
            } else if header_u64(headers, "x-hubspot-ratelimit-secondly-remaining") == Some(0) {
                info.implied_wait = Some(Duration::from_secs(1));
            }
        }
        Vendor::Salesforce => {
            if let Some((used, limit)) = headers
                .get("sforce-limit-info")
                .and_then(|v| v.to_str().ok())
                .and_then(parse_sforce_limit_info)
            {
                info.limit = Some(limit);
                info.remaining = Some(limit.saturating_sub(used));
            }
        }
        Vendor::Amplitude | Vendor::ChiliPiper => {
            info.remaining = header_u64(headers, "x-ratelimit-remaining")
                .or(header_u64(headers, "ratelimit-remaining"));
            info.limit =
                header_u64(headers, "x-ratelimit-limit").or(header_u64(headers, "ratelimit-limit"));
            info.implied_wait = header_u64(headers, "x-ratelimit-reset")
                .or(header_u64(headers, "ratelimit-reset"))
                .map(Duration::from_secs);
        }
    }
    info
}

/// `api-usage=25/15000` → `(25, 15000)`.
fn parse_sforce_limit_info(value: &str) -> Option<(u64, u64)> {
    let usage = value
        .split(',')
        .find_map(|part| part.trim().strip_prefix("api-usage="))?;
    let (used, limit) = usage.split_once('/')?;
    Some((used.trim().parse().ok()?, limit.trim().parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn an_exhausted_hubspot_interval_implies_waiting_one_interval() {
        let mut headers = HeaderMap::new();
        headers.insert("x-hubspot-ratelimit-max", HeaderValue::from_static("100"));
        headers.insert(
            "x-hubspot-ratelimit-remaining",
            HeaderValue::from_static("0"),
        );
        headers.insert(
            "x-hubspot-ratelimit-interval-milliseconds",
            HeaderValue::from_static("10000"),
        );
        let info = read_rate_limit(Vendor::HubSpot, &headers, SystemTime::now());
        assert_eq!(info.wait(), Some(Duration::from_secs(10)));
        assert_eq!(info.remaining, Some(0));
    }

    #[test]
    fn salesforce_limit_info_reports_remaining_daily_calls() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "sforce-limit-info",
            HeaderValue::from_static("api-usage=25/15000"),
        );
        let info = read_rate_limit(Vendor::Salesforce, &headers, SystemTime::now());
        assert_eq!(info.remaining, Some(14975));
        assert_eq!(info.wait(), None);
    }
}
