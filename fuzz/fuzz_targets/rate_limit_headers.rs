//! Rate-limit headers: `Retry-After` (delta-seconds or HTTP-date) and the
//! vendors' own headers through `read_rate_limit`, then the retry decision a
//! 429 with that wait leads to.
//!
//! Input: one vendor byte, then header lines `name: value`.

#![no_main]

use std::time::{Duration, SystemTime};

use libfuzzer_sys::fuzz_target;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use voxguard::resilience::{
    BackoffConfig, BackoffKind, CallError, GiveUpReason, RetryConfig, RetryDecision, RetryPolicy,
    Retryability,
};
use voxguard::services::Vendor;
use voxguard::edge::parse_retry_after;
use voxguard::services::ratelimit::read_rate_limit;

const VENDORS: [Vendor; 4] = [
    Vendor::Amplitude,
    Vendor::Salesforce,
    Vendor::HubSpot,
    Vendor::ChiliPiper,
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, text)) = data.split_first() else {
        return;
    };
    let vendor = VENDORS[usize::from(selector) % VENDORS.len()];
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let mut headers = HeaderMap::new();
    for line in text.split(|b| *b == b'\n') {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(&line[..colon]),
            HeaderValue::from_bytes(line[colon + 1..].trim_ascii()),
        ) else {
            continue;
        };
        headers.append(name, value);
    }

    let info = read_rate_limit(vendor, &headers, now);
    let retry_after = headers.get(RETRY_AFTER).and_then(|v| v.to_str().ok());
    assert_eq!(
        info.retry_after,
        retry_after.and_then(|v| parse_retry_after(v, now))
    );
    if let Some(value) = retry_after {
        if let Ok(seconds) = value.trim().parse::<u64>() {
            assert_eq!(info.retry_after, Some(Duration::from_secs(seconds)));
        }
    }
    assert_eq!(info.wait(), info.retry_after.or(info.implied_wait));
    if let (Some(remaining), Some(limit), Vendor::Salesforce) = (info.remaining, info.limit, vendor)
    {
        assert!(remaining <= limit);
    }

    // However long the wait, a 429 leads to a decision that fits the deadline.
    let policy = RetryPolicy::new(RetryConfig {
        max_attempts: 3,
        attempt_timeout: Duration::from_millis(1200),
        backoff: BackoffConfig {
            kind: BackoffKind::Full,
            base: Duration::from_millis(100),
            cap: Duration::from_millis(400),
        },
    });
    let remaining = Duration::from_millis(3000);
    let error = CallError::from_status(429, info.wait(), None);
    match policy.after_failure(1, &error, Retryability::Transient, remaining, || {
        Duration::from_millis(250)
    }) {
        RetryDecision::RetryAfter(sleep) => {
            assert!(sleep.saturating_add(policy.min_useful_attempt()) <= remaining);
            if let Some(wait) = info.wait() {
                assert_eq!(sleep, wait, "Retry-After that fits is honoured");
            }
        }
        RetryDecision::GiveUp(reason) => {
            assert_eq!(reason, GiveUpReason::RetryAfterTooLong);
            assert!(info.wait().is_some());
        }
    }
});
