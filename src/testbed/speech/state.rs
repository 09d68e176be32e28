//! The speech simulator's shared state: active faults with per-provider
//! request counts, the seeded RNG, registered utterances and the request log.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::SmallRng;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::time::Instant;

use super::faults::{FaultConfig, SpeechFault};
use super::recognize::Utterance;
use crate::secret::Secret;

/// The keys the simulator accepts; anything else gets each provider's 401.
#[derive(Debug, Clone)]
pub struct SpeechSimCredentials {
    pub deepgram: Secret,
    pub openai: Secret,
    pub cartesia: Secret,
}

impl Default for SpeechSimCredentials {
    fn default() -> Self {
        SpeechSimCredentials {
            deepgram: Secret::new("sim-deepgram-key-3f9a"),
            openai: Secret::new("sk-sim-openai-key-0c41"),
            cartesia: Secret::new("sk_car_sim-cartesia-key-77d2"),
        }
    }
}

/// One request or stream as the simulator saw it (never its audio or text).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestRecord {
    pub seq: u64,
    /// Milliseconds since the simulator started.
    pub at_ms: u64,
    /// `deepgram`, `openai_stt`, `openai_tts`, `cartesia`.
    pub provider: String,
    pub fault: String,
    pub latency_ms: u64,
}

pub(crate) struct Faults {
    pub config: FaultConfig,
    pub set_at: Instant,
    /// Requests per provider since the faults were set.
    pub counts: HashMap<String, u64>,
}

/// The request log keeps at most this many records.
const MAX_RECORDS: usize = 10_000;

pub(crate) struct SimState {
    pub credentials: SpeechSimCredentials,
    pub started: Instant,
    pub faults: Mutex<Faults>,
    rng: Mutex<SmallRng>,
    pub utterances: RwLock<Vec<Arc<Utterance>>>,
    /// Bumped whenever the registered utterances change, so open streams
    /// recognize what was registered after they connected.
    pub utterances_version: std::sync::atomic::AtomicU64,
    next_utterance: Mutex<u64>,
    requests: Mutex<Vec<RequestRecord>>,
    next_seq: Mutex<u64>,
    /// How long a listen stream may stay without audio or KeepAlive.
    pub idle_close: Mutex<Duration>,
    /// How the voices sound.
    pub voice: Mutex<super::voice::SimVoice>,
    pub shutdown: watch::Receiver<bool>,
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl SimState {
    pub fn new(
        seed: u64,
        credentials: SpeechSimCredentials,
        faults: FaultConfig,
        shutdown: watch::Receiver<bool>,
    ) -> SimState {
        SimState {
            credentials,
            started: Instant::now(),
            faults: Mutex::new(Faults {
                config: faults,
                set_at: Instant::now(),
                counts: HashMap::new(),
            }),
            rng: Mutex::new(SmallRng::seed_from_u64(seed)),
            utterances: RwLock::new(Vec::new()),
            utterances_version: std::sync::atomic::AtomicU64::new(0),
            next_utterance: Mutex::new(1),
            requests: Mutex::new(Vec::new()),
            next_seq: Mutex::new(0),
            idle_close: Mutex::new(super::listen::IDLE_CLOSE),
            voice: Mutex::new(super::voice::SimVoice::default()),
            shutdown,
        }
    }

    /// Draw a request's latency and fault, and log it.
    pub fn draw(&self, provider: &str) -> (Duration, SpeechFault) {
        let (latency, fault) = {
            let mut faults = lock(&self.faults);
            let since = faults.set_at.elapsed();
            let count = faults.counts.entry(provider.to_string()).or_default();
            let seq = *count;
            *count += 1;
            let spec = faults.config.spec_for(provider).clone();
            spec.draw(&mut lock(&self.rng), since, seq)
        };
        let seq = {
            let mut next = lock(&self.next_seq);
            *next += 1;
            *next
        };
        let mut requests = lock(&self.requests);
        if requests.len() >= MAX_RECORDS {
            requests.remove(0);
        }
        requests.push(RequestRecord {
            seq,
            at_ms: self.started.elapsed().as_millis() as u64,
            provider: provider.to_string(),
            fault: fault.name().to_string(),
            latency_ms: latency.as_millis() as u64,
        });
        (latency, fault)
    }

    pub fn requests(&self) -> Vec<RequestRecord> {
        lock(&self.requests).clone()
    }

    pub fn clear_requests(&self) {
        lock(&self.requests).clear();
    }

    pub fn utterances(&self) -> Vec<Arc<Utterance>> {
        self.utterances
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn register(&self, text: &str, samples: &[i16], sample_rate: u32) -> Arc<Utterance> {
        let id = {
            let mut next = lock(&self.next_utterance);
            *next += 1;
            *next - 1
        };
        let utterance = Arc::new(Utterance::new(id, text, samples, sample_rate));
        self.utterances
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(utterance.clone());
        self.utterances_version
            .fetch_add(1, std::sync::atomic::Ordering::Release);
        utterance
    }

    /// Wait until the simulator shuts down (a hung request).
    pub async fn hang(&self) {
        let mut shutdown = self.shutdown.clone();
        let _ = shutdown.wait_for(|down| *down).await;
    }
}
