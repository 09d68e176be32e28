//! Most of voxguard's integration tests, one module per file of `tests/`,
//! built as one test binary: each binary links the whole crate and its
//! dependencies again, and sixty of them cost most of a release build.
//! Three kinds run in processes of their own (see `Cargo.toml`): tests
//! against real clients that load the machine (`tests/interop`), tests
//! whose Redis timeouts are tens of milliseconds (`tests/fleet`), and tests
//! that measure the process itself or change its environment.
//!
//! Run one file's tests with a filter: `cargo test --release --test suite voice_call::`.

#[path = "../brain_llm.rs"]
mod brain_llm;
#[path = "../brain_properties.rs"]
mod brain_properties;
#[path = "../brain_scripted.rs"]
mod brain_scripted;
#[path = "../brain_understanding.rs"]
mod brain_understanding;
#[path = "../config_profile_cli.rs"]
mod config_profile_cli;
#[path = "../config_validation.rs"]
mod config_validation;
#[path = "../container_build_context.rs"]
mod container_build_context;
#[path = "../dev_call.rs"]
mod dev_call;
#[path = "../layering.rs"]
mod layering;
#[path = "../media_jitter.rs"]
mod media_jitter;
#[path = "../media_layering.rs"]
mod media_layering;
#[path = "../media_opus.rs"]
mod media_opus;
#[path = "../media_playout.rs"]
mod media_playout;
#[path = "../media_vad.rs"]
mod media_vad;
#[path = "../readme_defaults.rs"]
mod readme_defaults;
#[path = "../recovery_phrases.rs"]
mod recovery_phrases;
#[path = "../recovery_props.rs"]
mod recovery_props;
#[path = "../recovery_runner.rs"]
mod recovery_runner;
#[path = "../recovery_walkthrough.rs"]
mod recovery_walkthrough;
#[path = "../resilience_breaker.rs"]
mod resilience_breaker;
#[path = "../resilience_guard.rs"]
mod resilience_guard;
#[path = "../resilience_metrics.rs"]
mod resilience_metrics;
#[path = "../resilience_props.rs"]
mod resilience_props;
#[path = "../room_media.rs"]
mod room_media;
#[path = "../rtc_core.rs"]
mod rtc_core;
#[path = "../rtc_data.rs"]
mod rtc_data;
#[path = "../rtc_loopback.rs"]
mod rtc_loopback;
#[path = "../services_clients.rs"]
mod services_clients;
#[path = "../services_faults.rs"]
mod services_faults;
#[path = "../services_guard.rs"]
mod services_guard;
#[path = "../services_secrets.rs"]
mod services_secrets;
#[path = "../services_sim_admin.rs"]
mod services_sim_admin;
#[path = "../session_flow.rs"]
mod session_flow;
#[path = "../session_llm.rs"]
mod session_llm;
#[path = "../simulate_peer.rs"]
mod simulate_peer;
#[path = "../speech_config.rs"]
mod speech_config;
#[path = "../speech_layering.rs"]
mod speech_layering;
#[path = "../speech_local.rs"]
mod speech_local;
#[path = "../speech_recognizer.rs"]
mod speech_recognizer;
#[path = "../speech_sim.rs"]
mod speech_sim;
#[path = "../speech_stt.rs"]
mod speech_stt;
#[path = "../speech_tts.rs"]
mod speech_tts;
#[path = "../start_command.rs"]
mod start_command;
#[path = "../voice_call.rs"]
mod voice_call;
#[path = "../voice_room.rs"]
mod voice_room;
#[path = "../worker_drain.rs"]
mod worker_drain;
#[path = "../worker_jobs.rs"]
mod worker_jobs;
#[path = "../worker_reconnect.rs"]
mod worker_reconnect;
