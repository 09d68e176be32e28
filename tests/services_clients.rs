//! Every CRM client against the simulator over real sockets, no faults:
//! typed domain answers, not-found as `None`, auth failures that say which
//! credential to check.

#[path = "services_support.rs"]
mod support;

use std::time::Duration;

use support::{ctx, world};
use voxguard::resilience::CallError;
use voxguard::secret::Secret;
use voxguard::services::{
    AmplitudeClient, ChiliPiperClient, CrmSource, HubSpotClient, SalesforceClient, SideEffect,
};
use voxguard::testbed::crm::fixtures::SalesforcePresence;

const T: Duration = Duration::from_secs(2);

#[tokio::test]
async fn amplitude_summarises_a_known_users_recent_activity() {
    let w = world().await;
    let email = w.email(|p| p.activity.is_some());
    let summary = w
        .amplitude()
        .user_activity(&ctx(T), &email)
        .await
        .unwrap()
        .expect("known user");
    let expected = w
        .sim
        .fixtures()
        .person_by_email(&email)
        .unwrap()
        .activity
        .clone()
        .unwrap();
    assert_eq!(summary.user_id, email);
    assert_eq!(summary.amplitude_id, expected.amplitude_id);
    assert_eq!(
        summary.last_seen.as_deref(),
        Some(expected.last_used.as_str())
    );
    assert_eq!(summary.recent_events.len(), expected.events.len().min(5));
    assert_eq!(summary.recent_events[0].event_type, expected.events[0].0);
}

#[tokio::test]
async fn amplitude_answers_none_for_unknown_users() {
    let w = world().await;
    let without_activity = w.email(|p| p.activity.is_none());
    assert_eq!(
        w.amplitude()
            .user_activity(&ctx(T), &without_activity)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        w.amplitude()
            .user_activity(&ctx(T), "nobody@unknown.example")
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn salesforce_finds_a_contact_with_account_owner_and_open_opportunity() {
    let w = world().await;
    let f = w.sim.fixtures();
    let person = f
        .people
        .iter()
        .find(|p| {
            p.salesforce == SalesforcePresence::Contact && f.open_opportunity(p.account).is_some()
        })
        .unwrap();
    let record = w
        .salesforce()
        .find_contact(&ctx(T), &person.email)
        .await
        .unwrap()
        .expect("contact");
    let account = &f.accounts[person.account];
    assert_eq!(record.source, CrmSource::SalesforceContact);
    assert_eq!(record.company.as_deref(), Some(account.name.as_str()));
    assert_eq!(record.owner, Some(f.owners[account.owner].name()));
    let opportunity = record.open_opportunity.expect("open opportunity");
    assert_eq!(
        opportunity.name,
        f.open_opportunity(person.account).unwrap().name
    );
}

#[tokio::test]
async fn salesforce_falls_back_to_leads_and_answers_none_for_strangers() {
    let w = world().await;
    let lead = w.email(|p| p.salesforce == SalesforcePresence::Lead);
    let record = w
        .salesforce()
        .find_contact(&ctx(T), &lead)
        .await
        .unwrap()
        .expect("lead");
    assert_eq!(record.source, CrmSource::SalesforceLead);
    assert!(record.lifecycle_stage.is_some());
    let absent = w.email(|p| p.salesforce == SalesforcePresence::Absent);
    assert_eq!(
        w.salesforce().find_contact(&ctx(T), &absent).await.unwrap(),
        None
    );
}

#[tokio::test]
async fn salesforce_escapes_quotes_so_an_apostrophe_email_is_found() {
    let w = world().await;
    let email = w.email(|p| p.email.contains('\'') && p.salesforce != SalesforcePresence::Absent);
    assert!(
        w.salesforce()
            .find_contact(&ctx(T), &email)
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn salesforce_caches_its_token_and_refreshes_it_once_after_invalid_session() {
    let w = world().await;
    let client = w.salesforce();
    let email = w.email(|p| p.salesforce == SalesforcePresence::Contact);
    client.find_contact(&ctx(T), &email).await.unwrap();
    client.find_contact(&ctx(T), &email).await.unwrap();
    assert_eq!(
        w.sim.requests_to("salesforce.token").len(),
        1,
        "token cached across calls"
    );
    w.sim.expire_salesforce_sessions();
    let queries_before = w.sim.requests_to("salesforce.query").len();
    assert!(
        client
            .find_contact(&ctx(T), &email)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        w.sim.requests_to("salesforce.token").len(),
        2,
        "one refresh"
    );
    // The rejected query, its replay, and the opportunity query.
    assert_eq!(
        w.sim.requests_to("salesforce.query").len(),
        queries_before + 3
    );
}

#[tokio::test]
async fn hubspot_finds_a_contact_with_owner_name_stage_and_company() {
    let w = world().await;
    let f = w.sim.fixtures();
    let person = f
        .people
        .iter()
        .find(|p| p.hubspot_id.is_some() && p.hubspot_owner.is_some())
        .unwrap();
    let record = w
        .hubspot()
        .find_contact(&ctx(T), &person.email)
        .await
        .unwrap()
        .expect("contact");
    assert_eq!(record.source, CrmSource::HubSpot);
    assert_eq!(
        record.owner,
        Some(f.owners[person.hubspot_owner.unwrap()].name())
    );
    assert_eq!(
        record.lifecycle_stage.as_deref(),
        Some(person.lifecycle_stage.as_str())
    );
    assert_eq!(
        record.company.as_deref(),
        Some(f.accounts[person.account].name.as_str())
    );
    assert_eq!(
        record.open_opportunity.is_some(),
        f.open_opportunity(person.account).is_some()
    );
}

#[tokio::test]
async fn hubspot_answers_none_for_people_it_does_not_know() {
    let w = world().await;
    let absent = w.email(|p| p.hubspot_id.is_none());
    assert_eq!(
        w.hubspot().find_contact(&ctx(T), &absent).await.unwrap(),
        None
    );
}

#[tokio::test]
async fn chilipiper_lists_weekday_slots_and_a_booked_slot_disappears() {
    let w = world().await;
    let client = w.chilipiper();
    let slots = client
        .available_slots(&ctx(T), &w.slot_query())
        .await
        .unwrap();
    assert!(!slots.slots.is_empty());
    let first = slots.slots[0].start_time.clone();
    let booked = client
        .book_meeting(&ctx(T), &w.booking(&first))
        .await
        .unwrap();
    assert_eq!(booked.start_time, first);
    assert_eq!(
        booked.host_name.as_deref(),
        Some(w.sim.fixtures().hosts[0].name.as_str())
    );
    let after = client
        .available_slots(&ctx(T), &w.slot_query())
        .await
        .unwrap();
    assert!(after.slots.iter().all(|s| s.start_time != first));
}

#[tokio::test]
async fn a_repeated_booking_with_the_same_key_returns_the_original_meeting() {
    let w = world().await;
    let client = w.chilipiper();
    let request = w.booking("2026-11-24T10:00:00Z");
    let first = client.book_meeting(&ctx(T), &request).await.unwrap();
    let again = client.book_meeting(&ctx(T), &request).await.unwrap();
    assert_eq!(first, again);
    assert_eq!(w.sim.bookings().len(), 1);
    assert_eq!(w.sim.requests_to("chilipiper.book").len(), 2);
}

#[tokio::test]
async fn booking_a_taken_slot_under_another_key_is_a_permanent_conflict() {
    let w = world().await;
    let client = w.chilipiper();
    client
        .book_meeting(&ctx(T), &w.booking("2026-11-24T10:00:00Z"))
        .await
        .unwrap();
    let mut other = w.booking("2026-11-24T10:00:00Z");
    other.idempotency_key = "another-caller".into();
    other.guest_email = "someone.else@example.com".into();
    let err = client.book_meeting(&ctx(T), &other).await.unwrap_err();
    assert!(
        matches!(err, CallError::Status { code: 409, .. }),
        "{err:?}"
    );
    assert!(!err.is_transient());
    assert_eq!(w.sim.bookings().len(), 1);
}

fn assert_auth_failure(err: CallError, credential: &str) {
    match &err {
        CallError::Status {
            code: 401,
            detail: Some(detail),
        } => {
            assert!(
                detail.contains(credential),
                "detail {detail:?} should name {credential:?}"
            )
        }
        other => panic!("expected Status 401, got {other:?}"),
    }
    assert!(!err.is_transient(), "auth failures are permanent");
}

#[tokio::test]
async fn wrong_credentials_are_permanent_401s_naming_the_credential_to_check() {
    let w = world().await;
    let c = w.creds().clone();
    let email = w.sim.fixtures().people[0].email.clone();

    let amplitude = AmplitudeClient::new(
        w.http.clone(),
        w.sim.base_url(),
        c.amplitude_api_key.clone(),
        w.wrong(),
    );
    assert_auth_failure(
        amplitude.user_activity(&ctx(T), &email).await.unwrap_err(),
        "secret key",
    );

    let salesforce = SalesforceClient::new(
        w.http.clone(),
        w.sim.base_url(),
        c.salesforce_client_id.clone(),
        w.wrong(),
    );
    assert_auth_failure(
        salesforce.find_contact(&ctx(T), &email).await.unwrap_err(),
        "client secret",
    );

    let hubspot = HubSpotClient::new(
        w.http.clone(),
        w.sim.base_url(),
        Secret::new("pat-na1-revoked"),
    );
    assert_auth_failure(
        hubspot.find_contact(&ctx(T), &email).await.unwrap_err(),
        "access token",
    );

    let chilipiper = ChiliPiperClient::new(w.http.clone(), w.sim.chilipiper_base_url(), w.wrong());
    assert_auth_failure(
        chilipiper
            .available_slots(&ctx(T), &w.slot_query())
            .await
            .unwrap_err(),
        "API key",
    );
}

#[test]
fn clients_declare_their_side_effects() {
    assert_eq!(AmplitudeClient::SIDE_EFFECT, SideEffect::None);
    assert_eq!(SalesforceClient::SIDE_EFFECT, SideEffect::None);
    assert_eq!(HubSpotClient::SIDE_EFFECT, SideEffect::None);
    assert_eq!(ChiliPiperClient::SLOTS_SIDE_EFFECT, SideEffect::None);
    assert_eq!(
        ChiliPiperClient::BOOKING_SIDE_EFFECT,
        SideEffect::NonIdempotent
    );
}
