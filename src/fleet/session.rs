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
