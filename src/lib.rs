//! voxguard: a realtime voice-agent backend for LiveKit whose recovery layer
//! keeps callers out of dead air when the services behind the agent fail.
//!
//! Layers, top calls down (tests/layering.rs holds the rules):
//! - `cli` — the `voxguard` command line (`src/main.rs` only calls it);
//! - `dev`, `simulate` — commands built on the agent and the testbed;
//! - `agent` — the composition root: configuration → guards → clients →
//!   brains, the worker's speech, the LiveKit job handler (job → room →
//!   voice → session), the tool bindings;
//! - `worker` — the LiveKit agent-worker protocol and health server;
//! - `room` — a LiveKit participant: signal client, WebRTC media (str0m),
//!   data packets and text streams;
//! - `voice` — the voice pipeline: turns, interruptions, paced speech;
//! - `session` — one conversation, text in and text out, with `brain` (what
//!   to say, which tool) and `recovery` (how risky calls are run);
//! - `speech` — speech recognizers and voices as guarded risky calls,
//!   their fallback chains and the phrase audio cache;
//! - `services` — CRM clients; `edge` — where HTTP and WebSocket failures
//!   become the engine's errors, once;
//! - `media` — audio frames and codecs, no network;
//! - `resilience` — the engine: deadlines, retries, breakers, guards;
//! - `fleet` — state shared between workers; `config` — the TOML file;
//!   `secret` — credentials that never print.
//!
//! `testbed` is the other side of every boundary (a LiveKit stand-in that
//! carries media, scripted callers, the CRM and speech simulators);
//! production layers never import it.

pub mod agent;
pub mod brain;
pub mod cli;
pub mod config;
pub mod dev;
pub mod edge;
pub mod fleet;
pub mod media;
pub mod recovery;
pub mod resilience;
pub mod room;
pub mod secret;
pub mod services;
pub mod session;
pub mod simulate;
pub mod speech;
pub mod testbed;
pub mod voice;
pub mod worker;
