//! The fault-injecting CRM simulator: Amplitude, Salesforce, HubSpot and
//! ChiliPiper endpoints on one local HTTP server, served from seeded fixtures,
//! with faults switchable at runtime and every request recorded.
//!
//! Embed it in tests and `simulate` with [`CrmSimulator::start`], or run it
//! alone with [`run_standalone`] (`voxguard crm-sim --addr`). Clients point all
//! four base URLs at [`CrmSimulator::base_url`] (ChiliPiper at
//! [`CrmSimulator::chilipiper_base_url`]) and use [`SimCredentials::default`].
//!
//! Admin API (JSON):
//! - `GET /_sim/faults` → the active [`FaultConfig`];
//!   `PUT /_sim/faults` with a [`FaultUpdate`], e.g. `{"preset": "hang"}` or
//!   `{"preset": "healthy", "services": {"hubspot": {"rate_limit_rate": 1.0}}}`;
//!   outage windows count from this PUT.
//! - `GET /_sim/requests` → every request seen ([`RequestRecord`]), `DELETE` clears.
//! - `GET /_sim/bookings` → meetings booked ([`SimBooking`]).
//! - `POST /_sim/salesforce/expire-sessions` → every issued access token becomes invalid.
//! - `GET /_sim/fixtures` → the seeded people, accounts and hosts.
//!
//! ```no_run
//! # async fn demo() -> Result<(), voxguard::testbed::crm::SimError> {
//! use voxguard::testbed::crm::{CrmSimulator, FaultUpdate};
//! let sim = CrmSimulator::start("127.0.0.1:0".parse().unwrap(), 42).await?;
//! sim.set_faults(FaultUpdate::preset("flaky")).expect("known preset");
//! println!("CRM simulator at {}", sim.base_url());
//! sim.shutdown().await;
//! # Ok(()) }
//! ```

mod calendar;
pub mod faults;
pub mod fixtures;
mod presets;
mod respond;
mod state;
mod vendors;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use faults::{Fault, FaultConfig, FaultSpec, FaultUpdate, Latency, Outage, RetryAfterFormat};
pub use fixtures::Fixtures;
pub use respond::HANG_CAP;
pub use state::{RequestRecord, SimBooking, SimCredentials};

use state::{SimState, lock};

use crate::agent::{CalendarSettings, CrmAccess, CrmCredentials, CrmEndpoints};

/// The seed `voxguard crm-sim` uses.
pub const DEFAULT_SEED: u64 = 42;

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("invalid simulator address {0:?}: expected HOST:PORT")]
    Address(String),
    #[error("could not bind the CRM simulator to {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("the CRM simulator stopped: {0}")]
    Serve(std::io::Error),
}

/// A running simulator. Dropping it stops the server.
pub struct CrmSimulator {
    state: Arc<SimState>,
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    server: Option<JoinHandle<Result<(), std::io::Error>>>,
}

impl CrmSimulator {
    /// Bind `addr` (port 0 picks a free port) and serve a healthy world from `seed`.
    pub async fn start(addr: SocketAddr, seed: u64) -> Result<Self, SimError> {
        Self::start_with(addr, seed, SimCredentials::default()).await
    }

    /// Like [`CrmSimulator::start`] with chosen credentials.
    pub async fn start_with(
        addr: SocketAddr,
        seed: u64,
        credentials: SimCredentials,
    ) -> Result<Self, SimError> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| SimError::Bind {
                addr: addr.to_string(),
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| SimError::Bind {
            addr: addr.to_string(),
            source,
        })?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let healthy = FaultUpdate::preset("healthy").resolve().unwrap_or_default();
        let state = Arc::new(SimState::new(
            format!("http://{addr}"),
            seed,
            credentials,
            healthy,
            shutdown_rx.clone(),
        ));
        let app = vendors::routes()
            .merge(admin_routes())
            .with_state(state.clone());
        let mut stop = shutdown_rx;
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|down| *down).await;
                })
                .await
        });
        tracing::info!(addr = %addr, seed, "CRM simulator listening");
        Ok(CrmSimulator {
            state,
            addr,
            shutdown,
            server: Some(server),
        })
    }

    /// `http://127.0.0.1:PORT`: the base URL for Amplitude, Salesforce and HubSpot clients.
    pub fn base_url(&self) -> String {
        self.state.base_url.clone()
    }

    /// The ChiliPiper Edge API base (`…/api/fire-edge`).
    pub fn chilipiper_base_url(&self) -> String {
        format!("{}/api/fire-edge", self.state.base_url)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What the agent needs to call this simulator: every CRM pointed at it
    /// with its credentials, and the calendar's host and meeting type.
    pub fn crm_endpoints(&self) -> CrmEndpoints {
        let fixtures = self.fixtures();
        crm_endpoints(
            &self.base_url(),
            self.credentials(),
            CalendarSettings {
                host_user_id: fixtures.hosts[0].user_id.clone(),
                meeting_type_id: fixtures.meeting_type_id.clone(),
                window: Duration::from_secs(7 * 86_400),
            },
        )
    }

    pub fn credentials(&self) -> &SimCredentials {
        &self.state.credentials
    }

    pub fn fixtures(&self) -> &Fixtures {
        &self.state.fixtures
    }

    /// Replace the active faults (outage windows start now).
    pub fn set_faults(&self, update: FaultUpdate) -> Result<FaultConfig, String> {
        set_faults(&self.state, update)
    }

    pub fn faults(&self) -> FaultConfig {
        lock(&self.state.faults).config.clone()
    }

    pub fn requests(&self) -> Vec<RequestRecord> {
        self.state.requests()
    }

    /// The requests to one endpoint (`service.endpoint`).
    pub fn requests_to(&self, endpoint: &str) -> Vec<RequestRecord> {
        self.state
            .requests()
            .into_iter()
            .filter(|r| r.endpoint == endpoint)
            .collect()
    }

    pub fn clear_requests(&self) {
        self.state.clear_requests();
    }

    pub fn bookings(&self) -> Vec<SimBooking> {
        lock(&self.state.bookings).clone()
    }

    /// Invalidate every issued Salesforce access token (the next query answers 401 `INVALID_SESSION_ID`).
    pub fn expire_salesforce_sessions(&self) {
        lock(&self.state.sessions).clear();
    }

    /// Stop serving: release hung requests, close connections, wait (bounded) for the server.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(mut server) = self.server.take()
            && tokio::time::timeout(Duration::from_secs(5), &mut server)
                .await
                .is_err()
        {
            server.abort();
        }
    }
}

impl Drop for CrmSimulator {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

fn set_faults(state: &SimState, update: FaultUpdate) -> Result<FaultConfig, String> {
    let config = update.resolve()?;
    let mut faults = lock(&state.faults);
    faults.config = config.clone();
    faults.set_at = tokio::time::Instant::now();
    tracing::info!(
        preset = config.preset.as_deref().unwrap_or("custom"),
        "CRM simulator faults set"
    );
    Ok(config)
}

fn admin_routes() -> Router<Arc<SimState>> {
    Router::new()
        .route("/_sim/faults", get(get_faults).put(put_faults))
        .route("/_sim/requests", get(get_requests).delete(delete_requests))
        .route("/_sim/bookings", get(get_bookings))
        .route("/_sim/salesforce/expire-sessions", post(expire_sessions))
        .route("/_sim/fixtures", get(get_fixtures))
}

type Sim = State<Arc<SimState>>;

async fn get_faults(State(sim): Sim) -> Response {
    axum::Json(lock(&sim.faults).config.clone()).into_response()
}

async fn put_faults(State(sim): Sim, body: Bytes) -> Response {
    let update: FaultUpdate = match serde_json::from_slice(&body) {
        Ok(update) => update,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({"error": format!("invalid fault update: {e}")})),
            )
                .into_response();
        }
    };
    match set_faults(&sim, update) {
        Ok(config) => axum::Json(config).into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, axum::Json(json!({"error": e}))).into_response(),
    }
}

async fn get_requests(State(sim): Sim) -> Response {
    axum::Json(sim.requests()).into_response()
}

async fn delete_requests(State(sim): Sim) -> StatusCode {
    sim.clear_requests();
    StatusCode::NO_CONTENT
}

async fn get_bookings(State(sim): Sim) -> Response {
    axum::Json(lock(&sim.bookings).clone()).into_response()
}

async fn expire_sessions(State(sim): Sim) -> StatusCode {
    lock(&sim.sessions).clear();
    StatusCode::NO_CONTENT
}

async fn get_fixtures(State(sim): Sim) -> Response {
    axum::Json(&sim.fixtures).into_response()
}

/// The agent's endpoints for a simulator serving at `base_url` (its
/// ChiliPiper API under `/api/fire-edge`) with `credentials`.
pub fn crm_endpoints(
    base_url: &str,
    credentials: &SimCredentials,
    calendar: CalendarSettings,
) -> CrmEndpoints {
    let creds = credentials.clone();
    let at = |base_url: String, credentials| CrmAccess {
        base_url,
        credentials,
    };
    let access = [
        (
            "amplitude",
            at(
                base_url.to_string(),
                CrmCredentials::Pair(creds.amplitude_api_key, creds.amplitude_secret_key),
            ),
        ),
        (
            "salesforce",
            at(
                base_url.to_string(),
                CrmCredentials::Pair(creds.salesforce_client_id, creds.salesforce_client_secret),
            ),
        ),
        (
            "hubspot",
            at(
                base_url.to_string(),
                CrmCredentials::Token(creds.hubspot_token),
            ),
        ),
        (
            "chilipiper",
            at(
                format!("{base_url}/api/fire-edge"),
                CrmCredentials::Token(creds.chilipiper_api_key),
            ),
        ),
    ];
    CrmEndpoints {
        access: access.into_iter().collect(),
        unconfigured: Vec::new(),
        calendar,
    }
}

/// Run the simulator on `addr` until Ctrl-C (the `voxguard crm-sim` command).
pub async fn run_standalone(addr: &str) -> Result<(), SimError> {
    run_standalone_seeded(addr, DEFAULT_SEED).await
}

/// [`run_standalone`] with a chosen fixture seed.
pub async fn run_standalone_seeded(addr: &str, seed: u64) -> Result<(), SimError> {
    let socket = tokio::net::lookup_host(addr)
        .await
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| SimError::Address(addr.to_string()))?;
    let sim = CrmSimulator::start(socket, seed).await?;
    tracing::info!(base_url = %sim.base_url(), "CRM simulator ready; admin API at /_sim/faults, /_sim/requests");
    let stopped = tokio::signal::ctrl_c().await;
    sim.shutdown().await;
    stopped.map_err(SimError::Serve)
}
