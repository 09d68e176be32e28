//! CRM service clients (Amplitude, Salesforce, HubSpot, ChiliPiper) over one
//! shared HTTP layer that classifies every failure into the resilience
//! taxonomy. Their simulator is the other side of the boundary, in
//! `testbed::crm`.
//!
//! Every client method takes the Guard's [`AttemptCtx`](crate::resilience::AttemptCtx)
//! so the Guard drives attempts; not-found is `Ok(None)`, never an error.
//!
//! ```no_run
//! # use std::{sync::Arc, time::Duration};
//! # async fn demo(guard: Arc<voxguard::resilience::Guard>) -> Result<(), Box<dyn std::error::Error>> {
//! use voxguard::resilience::{AttemptCtx, Deadline, Retryability};
//! use voxguard::secret::Secret;
//! use voxguard::services::{HttpLayer, HubSpotClient};
//!
//! let http = HttpLayer::new()?; // once per process; clones share the pool
//! let hubspot = HubSpotClient::new(http.clone(), "https://api.hubapi.com", Secret::new("pat-..."));
//! let deadline = Deadline::after(Duration::from_millis(3500));
//! let outcome = guard
//!     .call(deadline, Retryability::Transient, |ctx: AttemptCtx| {
//!         let hubspot = &hubspot;
//!         async move { hubspot.find_contact(&ctx, "ada@example.com").await }
//!     })
//!     .await;
//! if let Ok(Some(record)) = outcome.result {
//!     println!("owner: {:?}", record.owner);
//! }
//! # Ok(()) }
//! ```

pub mod amplitude;
pub mod chilipiper;
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod hubspot;
pub mod model;
pub mod ratelimit;
pub mod salesforce;

pub use crate::resilience::SideEffect;
pub use amplitude::AmplitudeClient;
pub use chilipiper::ChiliPiperClient;
pub use http::{AttemptBudget, Endpoint, HttpLayer, HttpSetupError};
pub use hubspot::HubSpotClient;
pub use model::{
    ActivitySummary, BookingConfirmation, BookingRequest, CrmRecord, CrmSource, OpenOpportunity,
    RecentEvent, Slot, SlotQuery, Slots,
};
pub use ratelimit::Vendor;
pub use salesforce::SalesforceClient;
