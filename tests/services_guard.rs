//! CRM clients driven by the Guard against a faulty simulator. The assertions
//! hold for any correct retry policy: every attempt is one request in the
//! simulator's log, permanent errors are never retried, retries respect
//! Retry-After, and a booking is made at most once whatever happens.

#[path = "services_support.rs"]
mod support;

use std::time::Duration;

use support::{ctx, guard, world};
use voxguard::resilience::{AttemptCtx, CallError, Deadline, ErrorKind, Retryability};
use voxguard::testbed::crm::{FaultSpec, FaultUpdate, Outage, RetryAfterFormat};

const ATTEMPT: Duration = Duration::from_millis(300);

fn deadline() -> Deadline {
    Deadline::after(Duration::from_millis(3500))
}

#[tokio::test]
async fn transient_read_failures_are_attempts_the_simulator_saw() {
    let w = world().await;
    w.fault(
        "hubspot",
        FaultSpec {
            error_rate: 1.0,
            error_status: 503,
            ..FaultSpec::default()
        },
    );
    let client = w.hubspot();
    let email = w.sim.fixtures().people[0].email.clone();
    let outcome = guard("hubspot", 3, ATTEMPT)
        .call(deadline(), Retryability::Transient, |ctx: AttemptCtx| {
            let (client, email) = (&client, &email);
            async move { client.find_contact(&ctx, email).await }
        })
        .await;
    assert!(
        matches!(outcome.result, Err(CallError::Status { code: 503, .. })),
        "{:?}",
        outcome.result
    );
    let requests = w.sim.requests_to("hubspot.contacts_search");
    assert_eq!(outcome.attempts.len(), requests.len());
    assert!((1..=3).contains(&requests.len()));
    assert!(
        outcome
            .attempts
            .iter()
            .all(|a| a.error == Some(ErrorKind::Status))
    );
}

#[tokio::test]
async fn permanent_failures_are_never_retried() {
    let w = world().await;
    w.fault(
        "amplitude",
        FaultSpec {
            error_rate: 1.0,
            error_status: 400,
            ..FaultSpec::default()
        },
    );
    let client = w.amplitude();
    let outcome = guard("amplitude", 4, ATTEMPT)
        .call(deadline(), Retryability::Transient, |ctx: AttemptCtx| {
            let client = &client;
            async move { client.user_activity(&ctx, "someone@example.com").await }
        })
        .await;
    assert!(matches!(
        outcome.result,
        Err(CallError::Status { code: 400, .. })
    ));
    assert_eq!(w.sim.requests_to("amplitude.usersearch").len(), 1);
    assert!(!outcome.retried());
}

#[tokio::test]
async fn an_auth_failure_is_not_retried() {
    let w = world().await;
    let client =
        voxguard::services::HubSpotClient::new(w.http.clone(), w.sim.base_url(), w.wrong());
    let outcome = guard("hubspot", 4, ATTEMPT)
        .call(deadline(), Retryability::Transient, |ctx: AttemptCtx| {
            let client = &client;
            async move { client.find_contact(&ctx, "someone@example.com").await }
        })
        .await;
    assert!(matches!(
        outcome.result,
        Err(CallError::Status { code: 401, .. })
    ));
    assert_eq!(w.sim.requests_to("hubspot.contacts_search").len(), 1);
}

#[tokio::test]
async fn retries_never_arrive_before_retry_after() {
    let w = world().await;
    let spec = FaultSpec {
        rate_limit_rate: 1.0,
        retry_after_secs: 1,
        ..FaultSpec::default()
    };
    w.fault("chilipiper", spec);
    let client = w.chilipiper();
    let query = w.slot_query();
    let outcome = guard("chilipiper", 3, ATTEMPT)
        .call(deadline(), Retryability::Transient, |ctx: AttemptCtx| {
            let (client, query) = (&client, &query);
            async move { client.available_slots(&ctx, query).await }
        })
        .await;
    assert_eq!(
        outcome.result,
        Err(CallError::RateLimited {
            retry_after: Some(Duration::from_secs(1))
        })
    );
    let requests = w.sim.requests_to("chilipiper.slots");
    assert_eq!(outcome.attempts.len(), requests.len());
    for pair in requests.windows(2) {
        let gap = pair[1].at_ms - pair[0].at_ms;
        assert!(
            gap >= 990,
            "a retry came {gap} ms after a 429 asking for 1 s"
        );
    }
}

#[tokio::test]
async fn retry_after_as_an_http_date_is_also_respected() {
    let w = world().await;
    let spec = FaultSpec {
        rate_limit_rate: 1.0,
        retry_after_secs: 2,
        retry_after_format: RetryAfterFormat::HttpDate,
        ..FaultSpec::default()
    };
    w.fault("salesforce", spec);
    let client = w.salesforce();
    let email = w.sim.fixtures().people[0].email.clone();
    let outcome = guard("salesforce", 3, ATTEMPT)
        .call(deadline(), Retryability::Transient, |ctx: AttemptCtx| {
            let (client, email) = (&client, &email);
            async move { client.find_contact(&ctx, email).await }
        })
        .await;
    assert!(matches!(
        outcome.result,
        Err(CallError::RateLimited {
            retry_after: Some(_)
        })
    ));
    let requests = w.sim.requests_to("salesforce.token");
    for pair in requests.windows(2) {
        // HTTP-dates have whole-second resolution: the wait may be up to 1 s shorter.
        assert!(
            pair[1].at_ms - pair[0].at_ms >= 990,
            "retried too early: {requests:?}"
        );
    }
}

#[tokio::test]
async fn a_read_during_a_short_outage_succeeds_only_after_it() {
    let w = world().await;
    let outage = Outage {
        start_after_ms: 0,
        down_for_ms: 200,
        period_ms: None,
        status: 503,
    };
    w.fault(
        "hubspot",
        FaultSpec {
            outage: Some(outage),
            ..FaultSpec::default()
        },
    );
    let client = w.hubspot();
    let email = w.sim.fixtures().people[0].email.clone();
    let outcome = guard("hubspot", 5, ATTEMPT)
        .call(deadline(), Retryability::Transient, |ctx: AttemptCtx| {
            let (client, email) = (&client, &email);
            async move { client.find_contact(&ctx, email).await }
        })
        .await;
    let searches = w.sim.requests_to("hubspot.contacts_search");
    assert_eq!(outcome.attempts.len(), searches.len());
    let (last, earlier) = outcome.attempts.split_last().expect("at least one attempt");
    assert!(earlier.iter().all(|a| a.error == Some(ErrorKind::Status)));
    match &outcome.result {
        Ok(_) => assert_eq!(searches.last().map(|r| r.fault.as_str()), Some("none")),
        Err(e) => {
            assert!(matches!(e, CallError::Status { code: 503, .. }), "{e:?}");
            assert_eq!(last.error, Some(ErrorKind::Status));
        }
    }
}

#[tokio::test]
async fn a_booking_that_timed_out_is_not_retried_and_happened_once() {
    let w = world().await;
    w.sim
        .set_faults(FaultUpdate::endpoint(
            "chilipiper.book",
            FaultSpec {
                hang_rate: 1.0,
                ..FaultSpec::default()
            },
        ))
        .unwrap();
    let client = w.chilipiper();
    let booking = w.booking("2026-11-24T10:00:00Z");
    let outcome = guard("chilipiper", 3, ATTEMPT)
        .call(deadline(), Retryability::Unambiguous, |ctx: AttemptCtx| {
            let (client, booking) = (&client, &booking);
            async move { client.book_meeting(&ctx, booking).await }
        })
        .await;
    assert!(
        matches!(outcome.result, Err(CallError::Timeout { .. })),
        "{:?}",
        outcome.result
    );
    assert_eq!(
        w.sim.requests_to("chilipiper.book").len(),
        1,
        "an ambiguous timeout must not be retried"
    );
    assert_eq!(
        w.sim.bookings().len(),
        1,
        "the simulator booked before hanging"
    );
}

#[tokio::test]
async fn a_booking_reset_mid_response_is_not_retried() {
    let w = world().await;
    w.sim
        .set_faults(FaultUpdate::endpoint(
            "chilipiper.book",
            FaultSpec {
                reset_rate: 1.0,
                ..FaultSpec::default()
            },
        ))
        .unwrap();
    let client = w.chilipiper();
    let booking = w.booking("2026-11-24T10:00:00Z");
    let outcome = guard("chilipiper", 3, ATTEMPT)
        .call(deadline(), Retryability::Unambiguous, |ctx: AttemptCtx| {
            let (client, booking) = (&client, &booking);
            async move { client.book_meeting(&ctx, booking).await }
        })
        .await;
    assert!(
        matches!(outcome.result, Err(CallError::Connect { sent: true, .. })),
        "{:?}",
        outcome.result
    );
    assert_eq!(w.sim.requests_to("chilipiper.book").len(), 1);
    assert_eq!(w.sim.bookings().len(), 1);
}

#[tokio::test]
async fn every_booking_attempt_carries_the_same_idempotency_key_and_books_at_most_once() {
    let w = world().await;
    let outage = Outage {
        start_after_ms: 0,
        down_for_ms: 200,
        period_ms: None,
        status: 503,
    };
    w.sim
        .set_faults(FaultUpdate::endpoint(
            "chilipiper.book",
            FaultSpec {
                outage: Some(outage),
                ..FaultSpec::default()
            },
        ))
        .unwrap();
    let client = w.chilipiper();
    let booking = w.booking("2026-11-24T10:00:00Z");
    let outcome = guard("chilipiper", 5, ATTEMPT)
        .call(deadline(), Retryability::Unambiguous, |ctx: AttemptCtx| {
            let (client, booking) = (&client, &booking);
            async move { client.book_meeting(&ctx, booking).await }
        })
        .await;
    let requests = w.sim.requests_to("chilipiper.book");
    assert_eq!(outcome.attempts.len(), requests.len());
    assert!(
        requests
            .iter()
            .all(|r| r.idempotency_key.as_deref() == Some(booking.idempotency_key.as_str()))
    );
    let bookings = w.sim.bookings();
    match outcome.result {
        Ok(confirmation) => {
            assert_eq!(bookings.len(), 1);
            assert_eq!(confirmation.meeting_id, bookings[0].meeting_id);
        }
        Err(e) => {
            assert!(matches!(e, CallError::Status { code: 503, .. }), "{e:?}");
            assert!(bookings.is_empty(), "a 503 before processing books nothing");
        }
    }
}

#[tokio::test]
async fn reissuing_a_booking_after_timeouts_never_double_books() {
    let w = world().await;
    w.sim
        .set_faults(FaultUpdate::endpoint(
            "chilipiper.book",
            FaultSpec {
                hang_rate: 1.0,
                ..FaultSpec::default()
            },
        ))
        .unwrap();
    let client = w.chilipiper();
    let booking = w.booking("2026-11-24T10:00:00Z");
    for _ in 0..3 {
        let err = client
            .book_meeting(&ctx(Duration::from_millis(200)), &booking)
            .await
            .unwrap_err();
        assert!(matches!(err, CallError::Timeout { .. }), "{err:?}");
    }
    // A caller that chose to retry ambiguous failures (it holds an idempotency key).
    let outcome = guard("chilipiper", 3, Duration::from_millis(200))
        .call(deadline(), Retryability::Transient, |ctx: AttemptCtx| {
            let (client, booking) = (&client, &booking);
            async move { client.book_meeting(&ctx, booking).await }
        })
        .await;
    assert!(outcome.result.is_err());
    w.sim.set_faults(FaultUpdate::preset("healthy")).unwrap();
    let confirmation = client
        .book_meeting(&ctx(Duration::from_secs(2)), &booking)
        .await
        .unwrap();

    let bookings = w.sim.bookings();
    assert_eq!(
        bookings.len(),
        1,
        "one meeting whatever the number of requests"
    );
    assert_eq!(
        confirmation.meeting_id, bookings[0].meeting_id,
        "the original booking is returned"
    );
    let requests = w.sim.requests_to("chilipiper.book");
    assert_eq!(requests.len(), 3 + outcome.attempts.len() + 1);
    assert!(
        requests
            .iter()
            .all(|r| r.idempotency_key.as_deref() == Some(booking.idempotency_key.as_str()))
    );
}
