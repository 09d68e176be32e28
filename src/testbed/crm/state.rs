//! The simulator's shared state: active faults, the seeded RNG, the request
//! log, bookings by idempotency key and issued Salesforce sessions.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::SmallRng;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::time::Instant;

use super::faults::{Fault, FaultConfig};
use super::fixtures::Fixtures;
use crate::secret::Secret;

/// The credentials the simulator accepts. Clients built with anything else get
/// each vendor's 401.
#[derive(Debug, Clone)]
pub struct SimCredentials {
    pub amplitude_api_key: Secret,
    pub amplitude_secret_key: Secret,
    pub salesforce_client_id: Secret,
    pub salesforce_client_secret: Secret,
    pub hubspot_token: Secret,
    pub chilipiper_api_key: Secret,
}

impl Default for SimCredentials {
    fn default() -> Self {
        SimCredentials {
            amplitude_api_key: Secret::new("sim-amplitude-api-key-4b1d"),
            amplitude_secret_key: Secret::new("sim-amplitude-secret-key-77c2"),
            salesforce_client_id: Secret::new("3MVG9sim.connected.app.client.id"),
            salesforce_client_secret: Secret::new("sim-sf-client-secret-9e0a"),
            hubspot_token: Secret::new("pat-na1-sim-00000000-hubspot-token"),
            chilipiper_api_key: Secret::new("sim-chilipiper-api-key-51f3"),
        }
    }
}

/// One request as the simulator saw it (no headers, no query strings).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestRecord {
    pub seq: u64,
    /// Milliseconds since the simulator started.
    pub at_ms: u64,
    /// `service.endpoint`, e.g. `chilipiper.book`.
    pub endpoint: String,
    pub method: String,
    pub path: String,
    pub idempotency_key: Option<String>,
    /// The fault drawn for this request (`none`, `hang`, `reset`, ...).
    pub fault: String,
    pub latency_ms: u64,
}

/// A meeting the simulator booked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimBooking {
    pub meeting_id: String,
    pub idempotency_key: Option<String>,
    pub host_user_id: String,
    pub start_time: String,
    pub guest_email: String,
}

pub(crate) struct Faults {
    pub config: FaultConfig,
    pub set_at: Instant,
}

pub(crate) struct SimState {
    pub base_url: String,
    pub fixtures: Fixtures,
    pub credentials: SimCredentials,
    pub started: Instant,
    pub faults: Mutex<Faults>,
    rng: Mutex<SmallRng>,
    log: Mutex<Vec<RequestRecord>>,
    pub bookings: Mutex<Vec<SimBooking>>,
    pub sessions: Mutex<HashSet<String>>,
    pub counters: Mutex<HashMap<&'static str, u64>>,
    pub shutdown: watch::Receiver<bool>,
}

/// Poisoning only follows a panic elsewhere; the data is still usable.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl SimState {
    pub fn new(
        base_url: String,
        seed: u64,
        credentials: SimCredentials,
        config: FaultConfig,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        let now = Instant::now();
        SimState {
            base_url,
            fixtures: Fixtures::generate(seed),
            credentials,
            started: now,
            faults: Mutex::new(Faults {
                config,
                set_at: now,
            }),
            rng: Mutex::new(SmallRng::seed_from_u64(seed ^ 0x5eed_fa17)),
            log: Mutex::new(Vec::new()),
            bookings: Mutex::new(Vec::new()),
            sessions: Mutex::new(HashSet::new()),
            counters: Mutex::new(HashMap::new()),
            shutdown,
        }
    }

    /// Draw the fault for a request to `endpoint` and record the request.
    pub fn admit(
        &self,
        endpoint: &'static str,
        method: &str,
        path: &str,
        idempotency_key: Option<String>,
    ) -> (Duration, Fault) {
        let (latency, fault) = {
            let faults = lock(&self.faults);
            let spec = faults.config.spec_for(endpoint);
            spec.draw(&mut lock(&self.rng), faults.set_at.elapsed())
        };
        let mut log = lock(&self.log);
        let seq = log.len() as u64 + 1;
        log.push(RequestRecord {
            seq,
            at_ms: self.started.elapsed().as_millis() as u64,
            endpoint: endpoint.to_string(),
            method: method.to_string(),
            path: path.to_string(),
            idempotency_key,
            fault: fault.name().to_string(),
            latency_ms: latency.as_millis() as u64,
        });
        (latency, fault)
    }

    pub fn requests(&self) -> Vec<RequestRecord> {
        lock(&self.log).clone()
    }

    pub fn clear_requests(&self) {
        lock(&self.log).clear();
    }

    /// A per-name counter, for ids and rate-limit headers.
    pub fn next(&self, name: &'static str) -> u64 {
        let mut counters = lock(&self.counters);
        let counter = counters.entry(name).or_insert(0);
        *counter += 1;
        *counter
    }
}
