//! Every client under every simulator fault, over real sockets: each failure
//! lands in the right place of the error taxonomy.

#[path = "services_support.rs"]
mod support;

use std::time::{Duration, Instant};

use support::{ALL_OPS, Op, World, ctx, run, world};
use voxguard::resilience::CallError;
use voxguard::secret::Secret;
use voxguard::services::{
    AmplitudeClient, ChiliPiperClient, HttpLayer, HubSpotClient, SalesforceClient,
};
use voxguard::testbed::crm::{FaultSpec, Latency, Outage, RetryAfterFormat};

const T: Duration = Duration::from_secs(2);

/// Run `op` once with `spec` on its service and return the error.
async fn failure(op: Op, spec: FaultSpec, timeout: Duration) -> CallError {
    let w = world().await;
    w.fault(op.service(), spec);
    let err = run(&w, op, &ctx(timeout))
        .await
        .expect_err("the fault must surface");
    assert!(
        !w.sim.requests_to(op.first_endpoint()).is_empty(),
        "{op:?} reached the simulator"
    );
    err
}

#[tokio::test]
async fn a_hung_service_is_a_timeout_after_the_attempt_timeout() {
    for op in ALL_OPS {
        let started = Instant::now();
        let err = failure(
            op,
            FaultSpec {
                hang_rate: 1.0,
                ..FaultSpec::default()
            },
            Duration::from_millis(300),
        )
        .await;
        assert!(matches!(err, CallError::Timeout { .. }), "{op:?}: {err:?}");
        assert!(err.is_transient() && err.is_ambiguous());
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{op:?} waited {:?}",
            started.elapsed()
        );
    }
}

#[tokio::test]
async fn latency_beyond_the_attempt_timeout_is_a_timeout() {
    for op in ALL_OPS {
        let slow = FaultSpec {
            latency: Latency::Uniform {
                base_ms: 800,
                jitter_ms: 0,
            },
            ..FaultSpec::default()
        };
        let err = failure(op, slow, Duration::from_millis(250)).await;
        assert!(matches!(err, CallError::Timeout { .. }), "{op:?}: {err:?}");
    }
}

#[tokio::test]
async fn a_connection_reset_mid_response_is_an_ambiguous_connect_error() {
    for op in ALL_OPS {
        let err = failure(
            op,
            FaultSpec {
                reset_rate: 1.0,
                ..FaultSpec::default()
            },
            T,
        )
        .await;
        assert!(
            matches!(err, CallError::Connect { sent: true, .. }),
            "{op:?}: {err:?}"
        );
        assert!(err.is_transient() && err.is_ambiguous());
    }
}

#[tokio::test]
async fn a_refused_connection_is_an_unambiguous_connect_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dead = format!("http://127.0.0.1:{port}");
    let http = HttpLayer::new().unwrap();
    let key = || Secret::new("k");
    let ctx = ctx(T);
    let results = [
        AmplitudeClient::new(http.clone(), &dead, key(), key())
            .user_activity(&ctx, "a@b.example")
            .await
            .map(drop),
        SalesforceClient::new(http.clone(), &dead, key(), key())
            .find_contact(&ctx, "a@b.example")
            .await
            .map(drop),
        HubSpotClient::new(http.clone(), &dead, key())
            .find_contact(&ctx, "a@b.example")
            .await
            .map(drop),
    ];
    for result in results {
        let err = result.unwrap_err();
        assert!(
            matches!(err, CallError::Connect { sent: false, .. }),
            "{err:?}"
        );
        assert!(err.is_transient() && !err.is_ambiguous());
    }
    let w = world().await;
    let chilipiper = ChiliPiperClient::new(http, &dead, key());
    let err = chilipiper
        .book_meeting(&ctx, &w.booking("2026-11-24T10:00:00Z"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, CallError::Connect { sent: false, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn server_errors_are_transient_statuses() {
    for op in ALL_OPS {
        for status in [500u16, 502, 503, 504] {
            let err = failure(
                op,
                FaultSpec {
                    error_rate: 1.0,
                    error_status: status,
                    ..FaultSpec::default()
                },
                T,
            )
            .await;
            assert!(
                matches!(err, CallError::Status { code, .. } if code == status),
                "{op:?} {status}: {err:?}"
            );
            assert!(err.is_transient());
        }
    }
}

#[tokio::test]
async fn client_errors_are_permanent_statuses() {
    for op in ALL_OPS {
        for status in [400u16, 404, 422] {
            let err = failure(
                op,
                FaultSpec {
                    error_rate: 1.0,
                    error_status: status,
                    ..FaultSpec::default()
                },
                T,
            )
            .await;
            assert!(
                matches!(err, CallError::Status { code, .. } if code == status),
                "{op:?} {status}: {err:?}"
            );
            assert!(!err.is_transient());
        }
    }
}

#[tokio::test]
async fn a_429_carries_retry_after_in_delta_seconds() {
    for op in ALL_OPS {
        let spec = FaultSpec {
            rate_limit_rate: 1.0,
            retry_after_secs: 2,
            ..FaultSpec::default()
        };
        let err = failure(op, spec, T).await;
        assert_eq!(
            err,
            CallError::RateLimited {
                retry_after: Some(Duration::from_secs(2))
            },
            "{op:?}"
        );
    }
}

#[tokio::test]
async fn a_429_carries_retry_after_as_an_http_date() {
    for op in ALL_OPS {
        let spec = FaultSpec {
            rate_limit_rate: 1.0,
            retry_after_secs: 3,
            retry_after_format: RetryAfterFormat::HttpDate,
            ..FaultSpec::default()
        };
        let err = failure(op, spec, T).await;
        let wait = err
            .retry_after()
            .unwrap_or_else(|| panic!("{op:?}: {err:?} has no wait"));
        assert!(
            wait >= Duration::from_secs(1) && wait <= Duration::from_secs(3),
            "{op:?}: {wait:?}"
        );
    }
}

#[tokio::test]
async fn a_hubspot_429_without_retry_after_waits_for_the_exhausted_interval() {
    let spec = FaultSpec {
        rate_limit_rate: 1.0,
        retry_after_format: RetryAfterFormat::Omit,
        ..FaultSpec::default()
    };
    let err = failure(Op::HubSpotContact, spec, T).await;
    assert_eq!(
        err,
        CallError::RateLimited {
            retry_after: Some(Duration::from_secs(10))
        }
    );
}

#[tokio::test]
async fn a_malformed_body_is_a_decode_error() {
    for op in ALL_OPS {
        let err = failure(
            op,
            FaultSpec {
                malformed_rate: 1.0,
                ..FaultSpec::default()
            },
            T,
        )
        .await;
        assert!(
            matches!(&err, CallError::Decode { detail } if detail.contains("JSON")),
            "{op:?}: {err:?}"
        );
        assert!(!err.is_transient());
    }
}

#[tokio::test]
async fn an_oversized_body_is_cut_off_as_a_decode_error() {
    for op in ALL_OPS {
        let err = failure(
            op,
            FaultSpec {
                oversized_rate: 1.0,
                ..FaultSpec::default()
            },
            T,
        )
        .await;
        assert!(
            matches!(&err, CallError::Decode { detail } if detail.contains("larger than")),
            "{op:?}: {err:?}"
        );
    }
}

#[tokio::test]
async fn an_outage_window_fails_then_recovers() {
    for op in [Op::HubSpotContact, Op::ChiliPiperSlots] {
        let w: World = world().await;
        let outage = Outage {
            start_after_ms: 0,
            down_for_ms: 300,
            period_ms: None,
            status: 503,
        };
        w.fault(
            op.service(),
            FaultSpec {
                outage: Some(outage),
                ..FaultSpec::default()
            },
        );
        let err = run(&w, op, &ctx(T)).await.unwrap_err();
        assert!(
            matches!(err, CallError::Status { code: 503, .. }),
            "{op:?}: {err:?}"
        );
        tokio::time::sleep(Duration::from_millis(350)).await;
        run(&w, op, &ctx(T))
            .await
            .unwrap_or_else(|e| panic!("{op:?} after the outage: {e:?}"));
    }
}
