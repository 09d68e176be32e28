//! The fleet's tests against a real Redis, with timeouts of tens of
//! milliseconds and a proxy that stalls or cuts Redis: a binary of their
//! own, so no media or browser test shares the cores with them.
//!
//! `cargo test --release --test fleet fleet_outage::`

#[path = "../fleet_health.rs"]
mod fleet_health;
#[path = "../fleet_outage.rs"]
mod fleet_outage;
#[path = "../fleet_redis_pause.rs"]
mod fleet_redis_pause;
#[path = "../fleet_session_resume.rs"]
mod fleet_session_resume;
#[path = "../fleet_shared.rs"]
mod fleet_shared;
#[path = "../simulate_redis.rs"]
mod simulate_redis;
