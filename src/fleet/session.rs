//! Resumable conversations: the compact state of a room's conversation,
//! saved on each committed turn and loaded by whichever worker picks the
//! room up next. Opaque JSON in, JSON out.
//!
//! Writes that cannot reach Redis wait in a small bounded queue (the latest
//! write per room wins; the oldest room is dropped when full) and are
//! flushed by the sync task once Redis is back.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use tokio::time::Instant;

use super::{Fleet, FleetBackend, FleetError, FleetInner};

/// Where a saved session went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionWrite {
    /// In the shared store now.
    Stored,
    /// The store was out of reach: queued, written when it is back.
    Queued,
}

#[derive(Debug, Clone)]
pub(super) struct PendingWrite {
    pub room: String,
    /// `None` is a pending delete.
    pub state: Option<String>,
    pub expires: Instant,
}

#[derive(Debug)]
pub(super) struct SessionQueue {
    pending: Mutex<VecDeque<PendingWrite>>,
    capacity: usize,
    pub dropped: AtomicU64,
}

impl SessionQueue {
    pub fn new(capacity: usize) -> Self {
        SessionQueue {
            pending: Mutex::new(VecDeque::new()),
            capacity: capacity.max(1),
            dropped: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<PendingWrite>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn push(&self, room: &str, state: Option<String>, ttl: Duration) {
        let mut pending = self.lock();
        pending.retain(|w| w.room != room);
        if pending.len() >= self.capacity {
            pending.pop_front();
            self.dropped.fetch_add(1, Relaxed);
        }
        pending.push_back(PendingWrite {
            room: room.to_string(),
            state,
            expires: Instant::now() + ttl,
        });
    }

    /// A newer write for `room` went through directly: the queued one is stale.
    pub fn forget(&self, room: &str) {
        self.lock().retain(|w| w.room != room);
    }

    /// The queued write for `room`, if any: `Some(None)` is a pending delete.
    pub fn latest(&self, room: &str) -> Option<Option<String>> {
        let now = Instant::now();
        self.lock()
            .iter()
            .find(|w| w.room == room)
            .map(|w| w.state.clone().filter(|_| w.expires > now))
    }

    pub fn pop(&self) -> Option<PendingWrite> {
        self.lock().pop_front()
    }

    /// Put back a write that still could not be flushed (unless a newer one
    /// for the same room arrived meanwhile).
    pub fn requeue(&self, write: PendingWrite) {
        let mut pending = self.lock();
        if !pending.iter().any(|w| w.room == write.room) && pending.len() < self.capacity {
            pending.push_front(write);
        }
    }
}

impl Fleet {
    /// Save a room's conversation state after a committed turn. Takes at most
    /// `redis_timeout`; when Redis is out of reach the write is queued.
    pub async fn save_session(
        &self,
        room: &str,
        state: &serde_json::Value,
        ttl: Duration,
    ) -> SessionWrite {
        self.save_session_json(room, state.to_string(), ttl).await
    }

    /// [`Fleet::save_session`] for a state already serialized to JSON text
    /// (what the store keeps; no `Value` tree is built on the way).
    pub async fn save_session_json(&self, room: &str, json: String, ttl: Duration) -> SessionWrite {
        match &self.inner.backend {
            FleetBackend::Memory(m) => {
                m.save_session(room, json, ttl);
                SessionWrite::Stored
            }
            FleetBackend::Redis(r) => match r.save_session(room, json.clone(), ttl).await {
                Ok(()) => {
                    self.inner.sessions.forget(room);
                    SessionWrite::Stored
                }
                Err(error) => {
                    self.inner.note_error(&error);
                    self.inner.sessions.push(room, Some(json), ttl);
                    SessionWrite::Queued
                }
            },
        }
    }

    /// The room's saved state, if any. Takes at most `redis_timeout`; `None`
    /// at once while Redis is out of reach (unless this worker queued it).
    pub async fn load_session(&self, room: &str) -> Option<serde_json::Value> {
        let json = self.load_session_json(room).await?;
        serde_json::from_str(&json)
            .inspect_err(|error| tracing::warn!(room, %error, "unreadable saved session"))
            .ok()
    }

    /// [`Fleet::load_session`] as the JSON text the store keeps.
    pub async fn load_session_json(&self, room: &str) -> Option<String> {
        match &self.inner.backend {
            FleetBackend::Memory(m) => m.load_session(room),
            FleetBackend::Redis(r) => match self.inner.sessions.latest(room) {
                Some(queued) => queued,
                None => r.load_session(room).await.unwrap_or_else(|error| {
                    self.inner.note_error(&error);
                    None
                }),
            },
        }
    }

    /// Forget the room's saved state (the conversation ended).
    pub async fn delete_session(&self, room: &str) {
        match &self.inner.backend {
            FleetBackend::Memory(m) => m.delete_session(room),
            FleetBackend::Redis(r) => match r.delete_session(room).await {
                Ok(()) => self.inner.sessions.forget(room),
                Err(error) => {
                    self.inner.note_error(&error);
                    self.inner
                        .sessions
                        .push(room, None, self.inner.config.state_ttl);
                }
            },
        }
    }
}

impl FleetInner {
    pub(super) async fn flush_sessions(&self) -> Result<(), FleetError> {
        let FleetBackend::Redis(redis) = &self.backend else {
            return Ok(());
        };
        while let Some(write) = self.sessions.pop() {
            let ttl = write.expires.saturating_duration_since(Instant::now());
            if ttl.is_zero() {
                continue;
            }
            let result = match &write.state {
                Some(json) => redis.save_session(&write.room, json.clone(), ttl).await,
                None => redis.delete_session(&write.room).await,
            };
            if let Err(error) = result {
                self.sessions.requeue(write);
                return Err(error);
            }
        }
        Ok(())
    }
}
