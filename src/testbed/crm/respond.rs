//! How a simulated endpoint answers: draw the fault, wait the latency, then
//! either fail in the vendor's own error format or run the handler and spoil
//! its answer (hang, reset mid-response, truncated or oversized body).

use std::future::Future;
use std::io;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::faults::{Fault, RetryAfterFormat};
use super::state::SimState;
use crate::services::Vendor;

/// A hung request is released after this long (or at shutdown), so no wait is unbounded.
pub const HANG_CAP: Duration = Duration::from_secs(120);
/// Size of an oversized body.
pub const OVERSIZED_BYTES: usize = 4 * 1024 * 1024;

/// One incoming request, as much as the pipeline needs.
pub(crate) struct Incoming<'a> {
    pub endpoint: &'static str,
    pub vendor: Vendor,
    pub method: &'a str,
    pub path: &'a str,
    pub idempotency_key: Option<String>,
    pub authorized: bool,
}

/// Run one request through faults, auth and the handler.
pub(crate) async fn serve<Fut>(
    state: &SimState,
    incoming: Incoming<'_>,
    handle: impl FnOnce() -> Fut,
) -> Response
where
    Fut: Future<Output = Response>,
{
    let (latency, fault) = state.admit(
        incoming.endpoint,
        incoming.method,
        incoming.path,
        incoming.idempotency_key,
    );
    if !wait_unless_shutdown(state, latency).await {
        return vendor_error(
            state,
            incoming.vendor,
            incoming.endpoint,
            StatusCode::SERVICE_UNAVAILABLE,
        );
    }
    let vendor = incoming.vendor;
    match fault {
        Fault::Outage { status } | Fault::Error { status } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            return vendor_error(state, vendor, incoming.endpoint, status);
        }
        Fault::RateLimited {
            retry_after_secs,
            format,
        } => {
            return rate_limited(state, vendor, incoming.endpoint, retry_after_secs, format);
        }
        _ => {}
    }
    if !incoming.authorized {
        return vendor_error(state, vendor, incoming.endpoint, StatusCode::UNAUTHORIZED);
    }
    let mut response = handle().await;
    decorate(state, vendor, &mut response);
    match fault {
        Fault::Hang => {
            wait_unless_shutdown(state, HANG_CAP).await;
            vendor_error(
                state,
                vendor,
                incoming.endpoint,
                StatusCode::GATEWAY_TIMEOUT,
            )
        }
        Fault::Reset => reset_mid_response(),
        Fault::Malformed => truncate_body(response).await,
        Fault::Oversized => oversized(),
        _ => response,
    }
}

/// Sleep `duration`; false when the simulator shut down first.
async fn wait_unless_shutdown(state: &SimState, duration: Duration) -> bool {
    if duration.is_zero() {
        return true;
    }
    let mut shutdown = state.shutdown.clone();
    tokio::select! {
        _ = tokio::time::sleep(duration) => true,
        _ = shutdown.wait_for(|down| *down) => false,
    }
}

/// Vendor headers every answer carries.
fn decorate(state: &SimState, vendor: Vendor, response: &mut Response) {
    let headers = response.headers_mut();
    match vendor {
        Vendor::HubSpot => {
            let used = state.next("hubspot-window") % 190;
            headers.insert("x-hubspot-ratelimit-max", HeaderValue::from_static("190"));
            headers.insert(
                "x-hubspot-ratelimit-remaining",
                HeaderValue::from(189 - used),
            );
            headers.insert(
                "x-hubspot-ratelimit-interval-milliseconds",
                HeaderValue::from_static("10000"),
            );
            headers.insert(
                "x-hubspot-ratelimit-daily",
                HeaderValue::from_static("500000"),
            );
            headers.insert(
                "x-hubspot-ratelimit-daily-remaining",
                HeaderValue::from(499_000 - used),
            );
        }
        Vendor::Salesforce => {
            let used = state.next("salesforce-usage");
            if let Ok(value) = HeaderValue::from_str(&format!("api-usage={used}/15000")) {
                headers.insert("sforce-limit-info", value);
            }
        }
        Vendor::Amplitude | Vendor::ChiliPiper => {}
    }
}

/// A JSON response with the right content type.
pub(crate) fn json_response(status: StatusCode, body: serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json;charset=UTF-8")],
        body.to_string(),
    )
        .into_response()
}

/// The vendor's error body for `status`.
pub(crate) fn vendor_error(
    state: &SimState,
    vendor: Vendor,
    endpoint: &str,
    status: StatusCode,
) -> Response {
    let code = status.as_u16();
    let body = match vendor {
        Vendor::Amplitude => {
            let kind = match code {
                400 => "invalid_request",
                401 => "unauthorized",
                404 => "not_found",
                429 => "too_many_requests",
                _ => "server_error",
            };
            json!({"error": {"code": code, "type": kind, "message": status.canonical_reason().unwrap_or("error")}})
        }
        Vendor::Salesforce if endpoint == "salesforce.token" => {
            let error = match code {
                400 => "invalid_request",
                401 => "invalid_client",
                _ => "unknown_error",
            };
            json!({"error": error, "error_description": status.canonical_reason().unwrap_or("error")})
        }
        Vendor::Salesforce => {
            let (error_code, message) = match code {
                400 => ("MALFORMED_QUERY", "The query could not be parsed"),
                401 => ("INVALID_SESSION_ID", "Session expired or invalid"),
                403 | 429 => ("REQUEST_LIMIT_EXCEEDED", "Request limit exceeded"),
                404 => ("NOT_FOUND", "The requested resource does not exist"),
                503 => ("SERVER_UNAVAILABLE", "Server temporarily unavailable"),
                _ => ("UNKNOWN_EXCEPTION", "An unexpected error occurred"),
            };
            json!([{"message": message, "errorCode": error_code}])
        }
        Vendor::HubSpot => {
            let category = match code {
                400 => "VALIDATION_ERROR",
                401 => "INVALID_AUTHENTICATION",
                403 => "MISSING_SCOPES",
                404 => "OBJECT_NOT_FOUND",
                429 => "RATE_LIMITS",
                _ => "INTERNAL_ERROR",
            };
            let message = match code {
                401 => "The access token is missing, invalid or expired",
                429 => "The secondly request limit was reached",
                _ => status.canonical_reason().unwrap_or("error"),
            };
            let mut body = json!({
                "status": "error",
                "message": message,
                "correlationId": format!("5e1f0000-sim0-4000-8000-{:012x}", state.next("hubspot-correlation")),
                "category": category,
            });
            if code == 429 {
                body["errorType"] = json!("RATE_LIMIT");
                body["policyName"] = json!("SECONDLY");
            }
            body
        }
        Vendor::ChiliPiper => {
            let error_code = match code {
                400 => "BadRequest",
                401 => "Unauthorized",
                403 => "Forbidden",
                404 => "NotFound",
                409 => "SlotUnavailable",
                429 => "TooManyRequests",
                _ => "InternalError",
            };
            json!({"errorCode": error_code, "errorMessage": status.canonical_reason().unwrap_or("error")})
        }
    };
    let mut response = json_response(status, body);
    if code == 401 && vendor != Vendor::Salesforce {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

fn rate_limited(
    state: &SimState,
    vendor: Vendor,
    endpoint: &str,
    seconds: u64,
    format: RetryAfterFormat,
) -> Response {
    let mut response = vendor_error(state, vendor, endpoint, StatusCode::TOO_MANY_REQUESTS);
    let headers = response.headers_mut();
    let retry_after = match format {
        RetryAfterFormat::Seconds => Some(seconds.to_string()),
        RetryAfterFormat::HttpDate => Some(httpdate::fmt_http_date(
            std::time::SystemTime::now() + Duration::from_secs(seconds),
        )),
        RetryAfterFormat::Omit => None,
    };
    if let Some(value) = retry_after.and_then(|v| HeaderValue::from_str(&v).ok()) {
        headers.insert(header::RETRY_AFTER, value);
    }
    if vendor == Vendor::HubSpot {
        headers.insert("x-hubspot-ratelimit-max", HeaderValue::from_static("190"));
        headers.insert(
            "x-hubspot-ratelimit-remaining",
            HeaderValue::from_static("0"),
        );
        headers.insert(
            "x-hubspot-ratelimit-interval-milliseconds",
            HeaderValue::from_static("10000"),
        );
        headers.insert(
            "x-hubspot-ratelimit-secondly",
            HeaderValue::from_static("19"),
        );
        headers.insert(
            "x-hubspot-ratelimit-secondly-remaining",
            HeaderValue::from_static("0"),
        );
    }
    response
}

/// Send the head and a few bytes, then break the connection.
fn reset_mid_response() -> Response {
    let chunks: Vec<Result<Bytes, io::Error>> = vec![
        Ok(Bytes::from_static(b"{\"results\":[")),
        Err(io::Error::new(
            io::ErrorKind::ConnectionReset,
            "simulated connection reset",
        )),
    ];
    let mut response = Response::new(Body::from_stream(futures_util::stream::iter(chunks)));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json;charset=UTF-8"),
    );
    response
}

/// The real answer with its body cut in half: valid head, undecodable JSON.
async fn truncate_body(response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, 1024 * 1024)
        .await
        .unwrap_or_default();
    let cut = if bytes.len() > 2 {
        bytes.slice(..bytes.len() / 2)
    } else {
        Bytes::from_static(b"{\"")
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(cut))
}

/// A well-formed JSON body of several MiB, streamed without a length.
fn oversized() -> Response {
    const CHUNK: usize = 64 * 1024;
    let filler = Bytes::from(format!("\"{}\",", "x".repeat(CHUNK - 3)));
    let chunks = std::iter::once(Bytes::from_static(b"{\"results\":["))
        .chain(std::iter::repeat_n(filler, OVERSIZED_BYTES / CHUNK))
        .chain(std::iter::once(Bytes::from_static(b"\"\"]}")))
        .map(Ok::<_, io::Error>);
    let mut response = Response::new(Body::from_stream(futures_util::stream::iter(chunks)));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json;charset=UTF-8"),
    );
    response
}
