//! The one HTTP layer every CRM client shares: a pooled reqwest client and the
//! edge where every failure is classified into [`CallError`], once.
//!
//! Each request gets the attempt's remaining time as its timeout; bodies are
//! read chunk by chunk up to a size limit; error details name the vendor and
//! what went wrong, never a URL, header, token or body content.

use std::time::{Duration, SystemTime};

use reqwest::{RequestBuilder, StatusCode};
use serde::de::DeserializeOwned;

use super::ratelimit::{RateLimitInfo, Vendor, read_rate_limit};
use crate::edge;
use crate::resilience::{AttemptCtx, CallError, Deadline};

/// Default cap on a response body.
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;
/// Error bodies are only read for a short code; a smaller cap keeps that cheap.
const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// A named endpoint of a vendor, for logs, metrics and error details.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint {
    pub vendor: Vendor,
    pub name: &'static str,
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.vendor.as_str(), self.name)
    }
}

/// The client could not be built (TLS backend initialisation failed).
#[derive(Debug, thiserror::Error)]
#[error("could not build the HTTP client: {0}")]
pub struct HttpSetupError(String);

/// The shared HTTP layer. Cheap to clone; all clones share one connection pool.
#[derive(Debug, Clone)]
pub struct HttpLayer {
    client: reqwest::Client,
    body_limit: usize,
}

/// A successful (2xx) answer, its body fully read.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Vec<u8>,
    pub rate_limit: RateLimitInfo,
}

/// The time one attempt has, fixed when the attempt starts so that several
/// requests inside it (token refresh, follow-up lookups) share one budget.
#[derive(Debug, Clone, Copy)]
pub struct AttemptBudget {
    until: Deadline,
}

impl AttemptBudget {
    pub fn start(ctx: &AttemptCtx) -> Self {
        AttemptBudget {
            until: ctx.deadline.child(ctx.timeout),
        }
    }

    pub fn remaining(&self) -> Duration {
        self.until.remaining()
    }
}

impl HttpLayer {
    /// Build the pooled client (rustls). Call once and share the result.
    pub fn new() -> Result<Self, HttpSetupError> {
        let client = reqwest::Client::builder()
            .use_rustls_tls()
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(16)
            .tcp_nodelay(true)
            .user_agent(concat!("voxguard/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| HttpSetupError(e.without_url().to_string()))?;
        Ok(HttpLayer {
            client,
            body_limit: DEFAULT_BODY_LIMIT,
        })
    }

    /// Responses larger than `bytes` fail with [`CallError::Decode`].
    pub fn with_body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Send `request` within the attempt's budget and return a 2xx reply or a classified error.
    pub async fn send(
        &self,
        budget: &AttemptBudget,
        endpoint: Endpoint,
        request: RequestBuilder,
    ) -> Result<Reply, CallError> {
        let timeout = budget.remaining();
        if timeout.is_zero() {
            return Err(CallError::Timeout {
                after: Duration::ZERO,
            });
        }
        let started = tokio::time::Instant::now();
        let response = request
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| edge::classify_transport(&e, &endpoint.to_string(), timeout))?;
        let status = response.status();
        let rate_limit = read_rate_limit(endpoint.vendor, response.headers(), SystemTime::now());
        if rate_limit.remaining.is_some() || rate_limit.wait().is_some() {
            tracing::debug!(
                service = endpoint.vendor.as_str(),
                endpoint = endpoint.name,
                remaining = rate_limit.remaining,
                limit = rate_limit.limit,
                wait_ms = rate_limit.wait().map(|d| d.as_millis() as u64),
                "rate limit reported"
            );
        }
        if status.is_success() {
            let body =
                edge::read_limited(response, self.body_limit, &endpoint.to_string(), timeout)
                    .await?;
            tracing::debug!(
                service = endpoint.vendor.as_str(),
                endpoint = endpoint.name,
                status = status.as_u16(),
                elapsed_ms = started.elapsed().as_millis() as u64,
                "crm response"
            );
            return Ok(Reply {
                status,
                body,
                rate_limit,
            });
        }
        let body = edge::read_limited(response, ERROR_BODY_LIMIT, &endpoint.to_string(), timeout)
            .await
            .unwrap_or_default();
        let error = classify_status(endpoint, status.as_u16(), &body, rate_limit);
        tracing::warn!(
            service = endpoint.vendor.as_str(),
            endpoint = endpoint.name,
            status = status.as_u16(),
            error = %error,
            "crm call failed"
        );
        Err(error)
    }

    /// [`HttpLayer::send`] then decode the JSON body.
    pub async fn send_json<T: DeserializeOwned>(
        &self,
        budget: &AttemptBudget,
        endpoint: Endpoint,
        request: RequestBuilder,
    ) -> Result<T, CallError> {
        let reply = self.send(budget, endpoint, request).await?;
        decode_json(endpoint, &reply.body)
    }
}

/// Decode a JSON body; the error says where and what kind of problem, never the content.
pub fn decode_json<T: DeserializeOwned>(endpoint: Endpoint, body: &[u8]) -> Result<T, CallError> {
    edge::decode_json(&endpoint.to_string(), body)
}

/// Classify a non-2xx answer. Auth failures get a detail naming the credential
/// to check; other details carry only the vendor's error code.
pub(crate) fn classify_status(
    endpoint: Endpoint,
    code: u16,
    body: &[u8],
    rate_limit: RateLimitInfo,
) -> CallError {
    edge::classify_status(
        &endpoint.to_string(),
        credential_hint(endpoint.vendor),
        code,
        rate_limit.wait(),
        vendor_error_code(endpoint.vendor, body).as_deref(),
    )
}

fn credential_hint(vendor: Vendor) -> &'static str {
    match vendor {
        Vendor::Amplitude => "the Amplitude API key and secret key",
        Vendor::Salesforce => "the Salesforce connected app's client id and client secret",
        Vendor::HubSpot => "the HubSpot private app access token",
        Vendor::ChiliPiper => "the ChiliPiper API key",
    }
}

/// The vendor's machine-readable error code, if the body carries one.
/// Messages are not kept: they may echo personal data.
pub fn vendor_error_code(vendor: Vendor, body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let code = match vendor {
        // `[{"message": "...", "errorCode": "INVALID_SESSION_ID"}]`, or OAuth `{"error": "invalid_client"}`.
        Vendor::Salesforce => value
            .get(0)
            .and_then(|e| e.get("errorCode"))
            .or_else(|| value.get("error"))
            .and_then(|c| c.as_str()),
        // `{"status": "error", "category": "VALIDATION_ERROR", "errorType": "RATE_LIMIT", ...}`.
        Vendor::HubSpot => value
            .get("errorType")
            .or_else(|| value.get("category"))
            .and_then(|c| c.as_str()),
        // `{"errorCode": "...", "errorMessage": "..."}`.
        Vendor::ChiliPiper => value.get("errorCode").and_then(|c| c.as_str()),
        // `{"error": {"code": 400, "type": "invalid_request"}}` (voxguard's reading; see amplitude.rs).
        Vendor::Amplitude => value
            .get("error")
            .and_then(|e| e.get("type").or(Some(e)))
            .and_then(|c| c.as_str()),
    }?;
    edge::http::safe_code(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUERY: Endpoint = Endpoint {
        vendor: Vendor::Salesforce,
        name: "query",
    };

    #[test]
    fn a_401_names_the_credential_to_check_and_is_permanent() {
        let err = classify_status(QUERY, 401, b"", RateLimitInfo::default());
        assert!(!err.is_transient());
        assert!(
            matches!(&err, CallError::Status { code: 401, detail: Some(d) } if d.contains("client secret"))
        );
    }

    #[test]
    fn salesforce_error_codes_are_read_from_the_array_shape() {
        let body =
            br#"[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]"#;
        assert_eq!(
            vendor_error_code(Vendor::Salesforce, body).as_deref(),
            Some("INVALID_SESSION_ID")
        );
    }
}
