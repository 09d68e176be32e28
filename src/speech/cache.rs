//! The phrase audio cache: every recovery line rendered once per voice at
//! worker start, in the background, and shared by all sessions (and, with a
//! [`PhraseStore`], kept on disk so the next start reads it back instead of
//! rendering it). A lookup by
//! exact text returns the audio at once (an `Arc`, never a copy), so a
//! recovery line never waits on a voice, and still plays when every voice
//! is down. Lines are kept as the 20 ms Opus packets a call sends (about
//! 4 KB per second of speech, a tenth of the raw samples), so playing one
//! costs a call no encoding.
//!
//! ```no_run
//! # async fn demo(chain: std::sync::Arc<voxguard::speech::tts::TtsChain>) {
//! use voxguard::speech::PhraseCache;
//! let phrases = vec!["One moment while I check that.".to_string()];
//! let (cache, rendering) = PhraseCache::render(chain, phrases, None);
//! rendering.await.ok();
//! if let Some(line) = cache.lookup("One moment while I check that.") {
//!     println!("{} packets ({:?}) from {}", line.packets.len(), line.duration, line.voice);
//! }
//! println!("{} bytes", cache.report().bytes);
//! # }
//! ```

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use tokio::task::JoinHandle;

use super::store::{PhraseStore, StoredVoice};
use super::text;
use super::tts::{TtsChain, TtsVoice, first_audio};
use crate::media::opus::EncoderConfig;
use crate::media::{level_dbfs, packetize};
use crate::resilience::{CallError, Deadline, Retryability};

/// How long one cached packet plays.
const PACKET: Duration = Duration::from_millis(20);

/// One phrase in one voice, as 20 ms Opus packets at 48 kHz.
#[derive(Debug, Clone, PartialEq)]
pub struct CachedPhrase {
    pub voice: &'static str,
    pub packets: Arc<[Bytes]>,
    /// How long it plays.
    pub duration: Duration,
    /// The loudness of the rendered speech (RMS, dBFS), for checks.
    pub level_dbfs: f32,
}

impl CachedPhrase {
    /// A line of 20 ms `packets` in `voice`.
    pub fn from_packets(voice: &'static str, packets: Vec<Bytes>, level_dbfs: f32) -> Self {
        CachedPhrase {
            voice,
            duration: PACKET * packets.len() as u32,
            packets: packets.into(),
            level_dbfs,
        }
    }

    /// Bytes held for it.
    pub fn bytes(&self) -> usize {
        self.packets.iter().map(Bytes::len).sum()
    }
}

/// What the cache holds, for `/worker` and `/metrics`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CacheReport {
    /// Distinct phrase texts asked for.
    pub phrases: usize,
    /// Phrases rendered, by voice, in chain order.
    pub rendered: Vec<(&'static str, usize)>,
    /// Audio bytes held.
    pub bytes: usize,
    /// Lines read back from the phrase store rather than rendered.
    pub stored: usize,
    /// Whether rendering has finished (every voice tried every phrase).
    pub complete: bool,
}

/// The shared cache.
#[derive(Debug)]
pub struct PhraseCache {
    phrases: Vec<String>,
    voices: Vec<&'static str>,
    /// text → one entry per voice, in chain order.
    entries: RwLock<HashMap<String, Vec<Arc<CachedPhrase>>>>,
    complete: std::sync::atomic::AtomicBool,
    stored: std::sync::atomic::AtomicUsize,
}

/// Rendering passes over phrases a voice could not render (it was down).
const PASSES: u32 = 5;
/// Lines one voice renders at once.
const RENDER_AT_ONCE: usize = 8;
const BETWEEN_PASSES: Duration = Duration::from_secs(20);
/// Each phrase's time budget per voice.
const RENDER_BUDGET: Duration = Duration::from_secs(10);

impl PhraseCache {
    /// An empty cache for `phrases` (duplicates removed) in `voices`.
    pub fn empty(phrases: Vec<String>, voices: Vec<&'static str>) -> Arc<PhraseCache> {
        let mut phrases = phrases;
        phrases.sort();
        phrases.dedup();
        Arc::new(PhraseCache {
            phrases,
            voices,
            entries: RwLock::new(HashMap::new()),
            complete: std::sync::atomic::AtomicBool::new(false),
            stored: std::sync::atomic::AtomicUsize::new(0),
        })
    }

    /// Start rendering every phrase in every voice of `chain` in the
    /// background; the cache fills as lines are rendered. With a `store`,
    /// lines saved there by an earlier start are read back first, and each
    /// line rendered is saved.
    pub fn render(
        chain: Arc<TtsChain>,
        phrases: Vec<String>,
        store: Option<PhraseStore>,
    ) -> (Arc<PhraseCache>, JoinHandle<()>) {
        let voices = chain.voices().iter().map(|v| v.provider.name()).collect();
        let cache = PhraseCache::empty(phrases, voices);
        let filling = cache.clone();
        let task = tokio::spawn(async move {
            let saving = match store {
                Some(store) => filling.clone().read_store(chain.clone(), store).await,
                None => None,
            };
            filling.fill(&chain, saving.as_ref()).await
        });
        (cache, task)
    }

    /// Read every saved line of every voice of `chain`; returns the store
    /// and where each voice's new lines go, in chain order.
    async fn read_store(
        self: Arc<Self>,
        chain: Arc<TtsChain>,
        store: PhraseStore,
    ) -> Option<(PhraseStore, Vec<StoredVoice>)> {
        // Off the runtime: a voice's identity may ask its program for its
        // version, and the store is files.
        let reading = tokio::task::spawn_blocking(move || {
            let voices: Vec<_> = chain
                .voices()
                .iter()
                .map(|v| {
                    let identity =
                        format!("{} {:?}", v.provider.identity(), EncoderConfig::default());
                    (v.provider.name(), store.voice(&identity))
                })
                .collect();
            let mut refused = 0usize;
            for (name, voice) in &voices {
                for phrase in &self.phrases {
                    match store.load(voice, name, phrase) {
                        Ok(Some(line)) => {
                            self.insert(phrase, line);
                            self.stored
                                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                        Ok(None) => {}
                        Err(error) => {
                            refused += 1;
                            tracing::debug!(%error, "saved phrase not used");
                        }
                    }
                }
            }
            let stored = self.stored.load(std::sync::atomic::Ordering::Relaxed);
            tracing::info!(
                stored,
                refused,
                dir = %store.dir().display(),
                "phrase lines read from the phrase store"
            );
            let voices = voices.into_iter().map(|(_, voice)| voice).collect();
            (store, voices)
        });
        reading.await.ok()
    }

    async fn fill(&self, chain: &TtsChain, saving: Option<&(PhraseStore, Vec<StoredVoice>)>) {
        use futures_util::StreamExt as _;
        let mut save_failed = false;
        for pass in 0..PASSES {
            let mut missing = 0;
            for (index, voice) in chain.voices().iter().enumerate() {
                let mut todo = Vec::new();
                for phrase in &self.phrases {
                    if !self.has(phrase, voice.provider.name()) {
                        todo.push(render_named(voice, phrase, chain.limits()));
                    }
                }
                // A few lines at once: a networked voice spends most of a
                // line waiting for its first audio.
                let mut rendered =
                    futures_util::stream::iter(todo).buffer_unordered(RENDER_AT_ONCE);
                while let Some((phrase, outcome)) = rendered.next().await {
                    match outcome {
                        Ok(rendered) => {
                            if let Some((store, voices)) = saving
                                && let Some(saved) = voices.get(index)
                            {
                                save(store, saved, phrase, &rendered, &mut save_failed).await;
                            }
                            self.insert(phrase, rendered)
                        }
                        Err(error) => {
                            missing += 1;
                            tracing::debug!(voice = voice.provider.name(), %error, "phrase not rendered");
                        }
                    }
                }
            }
            self.publish_metrics();
            if missing == 0 {
                break;
            }
            tracing::info!(
                missing,
                pass,
                "phrase cache incomplete; will retry the missing lines"
            );
            if pass + 1 < PASSES {
                tokio::time::sleep(BETWEEN_PASSES).await;
            }
        }
        self.complete
            .store(true, std::sync::atomic::Ordering::Release);
        let report = self.report();
        tracing::info!(
            bytes = report.bytes,
            phrases = report.phrases,
            "phrase cache rendered"
        );
    }

    fn has(&self, text: &str, voice: &str) -> bool {
        self.entries
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(text)
            .is_some_and(|list| list.iter().any(|p| p.voice == voice))
    }

    /// Add a rendered line (kept in chain order of voices).
    pub fn insert(&self, text: &str, phrase: CachedPhrase) {
        let order = |voice: &str| {
            self.voices
                .iter()
                .position(|v| *v == voice)
                .unwrap_or(usize::MAX)
        };
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        let list = entries.entry(text.to_string()).or_default();
        list.retain(|p| p.voice != phrase.voice);
        list.push(Arc::new(phrase));
        list.sort_by_key(|p| order(p.voice));
    }

    /// The line in the first voice that has it.
    pub fn lookup(&self, text: &str) -> Option<Arc<CachedPhrase>> {
        self.entries
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(text)
            .and_then(|list| list.first().cloned())
    }

    /// The line in `voice` (to keep one voice through an answer), else in the first voice that has it.
    pub fn lookup_in(&self, text: &str, voice: &str) -> Option<Arc<CachedPhrase>> {
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        let list = entries.get(text)?;
        list.iter()
            .find(|p| p.voice == voice)
            .or_else(|| list.first())
            .cloned()
    }

    pub fn report(&self) -> CacheReport {
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        let rendered = self
            .voices
            .iter()
            .map(|voice| {
                let count = entries
                    .values()
                    .filter(|list| list.iter().any(|p| p.voice == *voice))
                    .count();
                (*voice, count)
            })
            .collect();
        let bytes = entries.values().flatten().map(|p| p.bytes()).sum();
        CacheReport {
            phrases: self.phrases.len(),
            rendered,
            bytes,
            stored: self.stored.load(std::sync::atomic::Ordering::Relaxed),
            complete: self.complete.load(std::sync::atomic::Ordering::Acquire),
        }
    }

    fn publish_metrics(&self) {
        let report = self.report();
        metrics::gauge!("voxguard_phrase_cache_bytes").set(report.bytes as f64);
        for (voice, count) in report.rendered {
            metrics::gauge!("voxguard_phrase_cache_entries", "voice" => voice).set(count as f64);
        }
    }
}

/// Keep a rendered line in the store; the first failure is a warning (the
/// directory is not writable, say), later ones are not repeated.
async fn save(
    store: &PhraseStore,
    voice: &StoredVoice,
    text: &str,
    phrase: &CachedPhrase,
    failed_before: &mut bool,
) {
    let (store, voice, text, phrase) = (
        store.clone(),
        voice.clone(),
        text.to_string(),
        phrase.clone(),
    );
    let dir = store.dir().to_path_buf();
    let outcome = tokio::task::spawn_blocking(move || store.save(&voice, &text, &phrase)).await;
    let error = match outcome {
        Ok(Ok(())) => return,
        Ok(Err(error)) => error.to_string(),
        Err(error) => error.to_string(),
    };
    if !std::mem::replace(failed_before, true) {
        tracing::warn!(dir = %dir.display(), %error, "phrase lines cannot be kept on disk; every start renders them again");
    }
}

/// Render `text` with one voice (under its guard), every sentence, whole.
async fn render_named<'a>(
    voice: &TtsVoice,
    text: &'a str,
    limits: super::tts::TtsLimits,
) -> (&'a str, Result<CachedPhrase, CallError>) {
    (text, render_one(voice, text, limits).await)
}

pub async fn render_one(
    voice: &TtsVoice,
    text: &str,
    limits: super::tts::TtsLimits,
) -> Result<CachedPhrase, CallError> {
    let name = voice.provider.name();
    let sentences = text::sentences(text).map_err(|e| CallError::Decode {
        detail: format!("phrase cannot be spoken: {e}"),
    })?;
    let mut samples = Vec::new();
    let mut rate = None;
    for sentence in &sentences {
        let outcome = voice
            .guard
            .call(
                Deadline::after(RENDER_BUDGET),
                Retryability::Transient,
                |ctx| async move { first_audio(&voice.provider, &ctx, sentence, limits).await },
            )
            .await;
        let (chunk, mut stream) = outcome.result?;
        let mut next = Some(chunk);
        while let Some(chunk) = next.take() {
            if *rate.get_or_insert(chunk.sample_rate) != chunk.sample_rate {
                return Err(CallError::Decode {
                    detail: format!("{name}: sample rate changed within a phrase"),
                });
            }
            samples.extend_from_slice(&chunk.samples);
            next = stream.next().await?;
        }
    }
    let rate = rate.unwrap_or(0);
    let packets =
        packetize(EncoderConfig::default(), rate, &samples).map_err(|e| CallError::Decode {
            detail: format!("{name}: phrase audio could not be encoded: {e}"),
        })?;
    Ok(CachedPhrase::from_packets(
        name,
        packets,
        level_dbfs(&samples),
    ))
}
