//! Shared setup for the services integration tests: a simulator on
//! 127.0.0.1:0, clients pointed at it, attempt contexts and guards.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use voxguard::resilience::{
    AttemptCtx, BackoffConfig, BackoffKind, BreakerConfig, BudgetConfig, CallError, Deadline,
    Guard, GuardConfig, RetryConfig,
};
use voxguard::secret::Secret;
use voxguard::services::{
    AmplitudeClient, BookingRequest, ChiliPiperClient, HttpLayer, HubSpotClient, SalesforceClient,
    SlotQuery,
};
use voxguard::testbed::crm::{CrmSimulator, FaultSpec, FaultUpdate, SimCredentials};

pub const SEED: u64 = 42;

pub struct World {
    pub sim: CrmSimulator,
    pub http: HttpLayer,
}

pub async fn world() -> World {
    let sim = CrmSimulator::start("127.0.0.1:0".parse().unwrap(), SEED)
        .await
        .expect("simulator starts");
    World {
        sim,
        http: HttpLayer::new().expect("http client builds"),
    }
}

impl World {
    pub fn creds(&self) -> &SimCredentials {
        self.sim.credentials()
    }

    pub fn amplitude(&self) -> AmplitudeClient {
        let c = self.creds();
        AmplitudeClient::new(
            self.http.clone(),
            self.sim.base_url(),
            c.amplitude_api_key.clone(),
            c.amplitude_secret_key.clone(),
        )
    }

    pub fn salesforce(&self) -> SalesforceClient {
        let c = self.creds();
        SalesforceClient::new(
            self.http.clone(),
            self.sim.base_url(),
            c.salesforce_client_id.clone(),
            c.salesforce_client_secret.clone(),
        )
    }

    pub fn hubspot(&self) -> HubSpotClient {
        HubSpotClient::new(
            self.http.clone(),
            self.sim.base_url(),
            self.creds().hubspot_token.clone(),
        )
    }

    pub fn chilipiper(&self) -> ChiliPiperClient {
        ChiliPiperClient::new(
            self.http.clone(),
            self.sim.chilipiper_base_url(),
            self.creds().chilipiper_api_key.clone(),
        )
    }

    pub fn wrong(&self) -> Secret {
        Secret::new("definitely-not-the-right-credential")
    }

    pub fn fault(&self, service: &str, spec: FaultSpec) {
        self.sim
            .set_faults(FaultUpdate::service(service, spec))
            .expect("valid faults");
    }

    pub fn slot_query(&self) -> SlotQuery {
        SlotQuery {
            host_user_id: self.sim.fixtures().hosts[0].user_id.clone(),
            meeting_type_id: self.sim.fixtures().meeting_type_id.clone(),
            starts_at: "2026-11-23T00:00:00Z".into(),
            window: Duration::from_secs(7 * 86_400),
        }
    }

    pub fn booking(&self, start_time: &str) -> BookingRequest {
        let f = self.sim.fixtures();
        BookingRequest::new(
            &f.meeting_type_id,
            &f.hosts[0].user_id,
            start_time,
            &f.people[0].email,
            f.people[0].name(),
        )
    }

    /// The email of a fixture person matching `pick`.
    pub fn email(
        &self,
        pick: impl Fn(&voxguard::testbed::crm::fixtures::Person) -> bool,
    ) -> String {
        self.sim
            .fixtures()
            .people
            .iter()
            .find(|p| pick(p))
            .expect("fixtures hold such a person")
            .email
            .clone()
    }
}

/// One attempt with `timeout` and a deadline comfortably after it.
pub fn ctx(timeout: Duration) -> AttemptCtx {
    AttemptCtx {
        attempt: 1,
        timeout,
        deadline: Deadline::after(timeout * 4),
    }
}

pub fn guard(service: &str, max_attempts: u32, attempt_timeout: Duration) -> Arc<Guard> {
    Guard::new(GuardConfig {
        service: service.into(),
        retry: RetryConfig {
            max_attempts,
            attempt_timeout,
            backoff: BackoffConfig {
                kind: BackoffKind::Full,
                base: Duration::from_millis(50),
                cap: Duration::from_millis(200),
            },
        },
        breaker: BreakerConfig {
            consecutive_failures: 50,
            window_size: 100,
            min_calls: 100,
            failure_rate: 1.0,
            slow_call_threshold: Duration::from_secs(10),
            slow_call_rate: 1.0,
            open_base: Duration::from_secs(1),
            open_cap: Duration::from_secs(5),
            half_open_probes: 1,
        },
        bulkhead_size: 16,
        budget: BudgetConfig {
            retry_ratio: 1.0,
            min_retries_per_sec: 100,
            window: Duration::from_secs(10),
        },
    })
}

/// The operations under test, one per client method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    AmplitudeActivity,
    SalesforceContact,
    HubSpotContact,
    ChiliPiperSlots,
    ChiliPiperBook,
}

pub const ALL_OPS: [Op; 5] = [
    Op::AmplitudeActivity,
    Op::SalesforceContact,
    Op::HubSpotContact,
    Op::ChiliPiperSlots,
    Op::ChiliPiperBook,
];

impl Op {
    pub fn service(self) -> &'static str {
        match self {
            Op::AmplitudeActivity => "amplitude",
            Op::SalesforceContact => "salesforce",
            Op::HubSpotContact => "hubspot",
            Op::ChiliPiperSlots | Op::ChiliPiperBook => "chilipiper",
        }
    }

    /// The endpoint this operation calls first.
    pub fn first_endpoint(self) -> &'static str {
        match self {
            Op::AmplitudeActivity => "amplitude.usersearch",
            Op::SalesforceContact => "salesforce.token",
            Op::HubSpotContact => "hubspot.contacts_search",
            Op::ChiliPiperSlots => "chilipiper.slots",
            Op::ChiliPiperBook => "chilipiper.book",
        }
    }
}

/// Run `op` once against the world (a known person, a bookable slot), discarding the value.
pub async fn run(world: &World, op: Op, ctx: &AttemptCtx) -> Result<(), CallError> {
    let email = world.sim.fixtures().people[0].email.clone();
    match op {
        Op::AmplitudeActivity => world.amplitude().user_activity(ctx, &email).await.map(drop),
        Op::SalesforceContact => world.salesforce().find_contact(ctx, &email).await.map(drop),
        Op::HubSpotContact => world.hubspot().find_contact(ctx, &email).await.map(drop),
        Op::ChiliPiperSlots => world
            .chilipiper()
            .available_slots(ctx, &world.slot_query())
            .await
            .map(drop),
        Op::ChiliPiperBook => world
            .chilipiper()
            .book_meeting(ctx, &world.booking("2026-11-24T10:00:00Z"))
            .await
            .map(drop),
    }
}
