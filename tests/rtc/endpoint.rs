//! A running transport for tests: its handle and every event it has
//! produced, searchable in order.

#![allow(dead_code)] // each test binary uses its own part of the helpers

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use tokio::sync::mpsc;
use voxguard::room::rtc::driver::{self, TransportHandle};
use voxguard::room::rtc::{Role, RtcEvent, TransportConfig};

/// A safety bound on waiting for an event on loopback, where everything
/// takes milliseconds; reaching it fails the test with what was seen.
pub const PATIENCE: Duration = Duration::from_secs(15);

pub struct Endpoint {
    pub handle: TransportHandle,
    events: mpsc::Receiver<RtcEvent>,
    pub seen: Vec<RtcEvent>,
    cursor: usize,
}

impl Endpoint {
    pub async fn start(role: Role) -> Endpoint {
        Endpoint::start_with(TransportConfig::new(role)).await
    }

    pub async fn start_with(config: TransportConfig) -> Endpoint {
        let running = driver::spawn(
            config,
            &[IpAddr::V4(Ipv4Addr::LOCALHOST)],
            Default::default(),
        )
        .await
        .expect("transport starts on 127.0.0.1");
        Endpoint {
            handle: running.handle,
            events: running.events,
            seen: Vec::new(),
            cursor: 0,
        }
    }

    /// The first event from the cursor on that matches; the cursor moves
    /// past it.
    pub async fn next_matching(
        &mut self,
        what: &str,
        matches: impl Fn(&RtcEvent) -> bool,
    ) -> RtcEvent {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            if let Some(offset) = self.seen[self.cursor..].iter().position(&matches) {
                self.cursor += offset + 1;
                return self.seen[self.cursor - 1].clone();
            }
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(event)) => self.seen.push(event),
                Ok(None) => panic!(
                    "transport stopped while waiting for {what}; seen: {:?}",
                    self.summary()
                ),
                Err(_) => panic!("no {what} within {PATIENCE:?}; seen: {:?}", self.summary()),
            }
        }
    }

    /// Waits until an event that matches has been seen at any point; the
    /// cursor does not move.
    pub async fn saw(&mut self, what: &str, matches: impl Fn(&RtcEvent) -> bool) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while !self.seen.iter().any(&matches) {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(event)) => self.seen.push(event),
                Ok(None) => panic!(
                    "transport stopped while waiting for {what}; seen: {:?}",
                    self.summary()
                ),
                Err(_) => panic!("no {what} within {PATIENCE:?}; seen: {:?}", self.summary()),
            }
        }
    }

    /// Takes the first `count` matching events seen or coming, in order,
    /// out of the record (events of other kinds stay).
    pub async fn collect(
        &mut self,
        what: &str,
        count: usize,
        matches: impl Fn(&RtcEvent) -> bool,
    ) -> Vec<RtcEvent> {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        let mut out = Vec::new();
        loop {
            let mut index = 0;
            while index < self.seen.len() && out.len() < count {
                if matches(&self.seen[index]) {
                    out.push(self.seen.remove(index));
                } else {
                    index += 1;
                }
            }
            self.cursor = self.cursor.min(self.seen.len());
            if out.len() == count {
                return out;
            }
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(event)) => self.seen.push(event),
                Ok(None) => panic!("transport stopped after {} of {count} {what}", out.len()),
                Err(_) => panic!(
                    "only {} of {count} {what} within {PATIENCE:?}; seen: {:?}",
                    out.len(),
                    self.summary()
                ),
            }
        }
    }

    /// Events that are not audio, for failure messages.
    fn summary(&self) -> Vec<String> {
        self.seen
            .iter()
            .filter(|e| !matches!(e, RtcEvent::Audio { .. }))
            .map(|e| format!("{e:?}"))
            .collect()
    }
}
