//! The agent's outgoing speech as Opus packets, paced: one 20 ms packet per
//! 20 ms of wall time, due at `anchor + k × 20 ms` so the pace never drifts.
//! Speech is queued already encoded — a cached recovery phrase is a shared
//! slice of packets (no copy, no encoding per call), a streamed answer gets
//! packets appended as its voice produces them — so a call holds a few KiB
//! of audio however long the agent talks.
//!
//! Each queued segment (a sentence, a phrase) has an id the caller picks.
//! [`Outbox::cut`] stops at once and reports how much of each segment was
//! played; [`Outbox::pause`] / [`Outbox::resume`] hold the speech during a
//! possibly false interruption. A segment that runs dry while its voice is
//! still producing is an underrun.
//!
//! ```
//! use std::time::Duration;
//! use bytes::Bytes;
//! use tokio::time::Instant;
//! use voxguard::voice::outbox::{Outbox, OutboxEvent};
//! let mut out = Outbox::new();
//! out.push_shared(7, vec![Bytes::from_static(b"\x01"), Bytes::from_static(b"\x02")].into(), true);
//! let t0 = Instant::now();
//! assert_eq!(out.next_packet(t0).map(|p| p.segment), Some(7));
//! assert!(out.next_packet(t0 + Duration::from_millis(10)).is_none(), "not due yet");
//! assert!(out.next_packet(t0 + Duration::from_millis(20)).is_some());
//! assert_eq!(out.next_packet(t0 + Duration::from_millis(40)), None);
//! assert_eq!(out.pop_event(), Some(OutboxEvent::Started { id: 7 }));
//! assert_eq!(out.pop_event(), Some(OutboxEvent::Finished { id: 7, frames: 2 }));
//! ```

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

/// One packet's length.
pub const FRAME: Duration = Duration::from_millis(20);
/// A driver this many frames late resyncs its clock instead of bursting.
const MAX_LATE_FRAMES: u32 = 5;
/// Events kept for the owner to read.
const MAX_EVENTS: usize = 64;

/// The owner's name for a segment.
pub type SegmentId = u64;

/// A packet to send now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    pub segment: SegmentId,
    pub payload: Bytes,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboxEvent {
    /// The segment's first packet went out.
    Started { id: SegmentId },
    /// The segment was complete and its last packet went out.
    Finished { id: SegmentId, frames: u32 },
    /// The segment ran dry while its voice was still producing.
    Underrun { id: SegmentId },
}

/// How much of a segment was played when speech was cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Played {
    pub id: SegmentId,
    pub frames: u32,
    /// Frames queued in all, when the segment was complete.
    pub of: Option<u32>,
}

#[derive(Debug)]
enum Frames {
    /// A cached phrase, shared by every call.
    Shared(Arc<[Bytes]>),
    /// Appended while a voice speaks; played frames are dropped from the front.
    Streamed(VecDeque<Bytes>),
}

#[derive(Debug)]
struct Segment {
    id: SegmentId,
    frames: Frames,
    /// Frames sent so far.
    played: u32,
    /// Frames ever queued.
    queued: u32,
    /// More frames may come.
    open: bool,
    interruptible: bool,
    /// Already reported as running dry (once per dry spell).
    dry: bool,
}

impl Segment {
    fn next(&mut self) -> Option<Bytes> {
        let frame = match &mut self.frames {
            Frames::Shared(frames) => frames.get(self.played as usize).cloned(),
            Frames::Streamed(frames) => frames.pop_front(),
        }?;
        self.played += 1;
        Some(frame)
    }

    fn remaining(&self) -> bool {
        self.played < self.queued
    }
}

/// One call's outgoing speech.
#[derive(Debug, Default)]
pub struct Outbox {
    segments: VecDeque<Segment>,
    /// When packet number `sent` of the current run is due.
    anchor: Option<Instant>,
    sent: u32,
    paused: bool,
    events: VecDeque<OutboxEvent>,
    underruns: u64,
}

impl Outbox {
    pub fn new() -> Outbox {
        Outbox::default()
    }

    /// Queue a complete, shared segment (a cached phrase).
    pub fn push_shared(&mut self, id: SegmentId, frames: Arc<[Bytes]>, interruptible: bool) {
        let queued = frames.len() as u32;
        self.segments.push_back(Segment {
            id,
            frames: Frames::Shared(frames),
            played: 0,
            queued,
            open: false,
            interruptible,
            dry: false,
        });
    }

    /// Queue a segment whose packets will be appended with [`Outbox::append`].
    pub fn open(&mut self, id: SegmentId, interruptible: bool) {
        self.segments.push_back(Segment {
            id,
            frames: Frames::Streamed(VecDeque::new()),
            played: 0,
            queued: 0,
            open: true,
            interruptible,
            dry: false,
        });
    }

    /// Add a packet to open segment `id`; `false` when it is not queued
    /// (cut, finished) — the producer should stop.
    pub fn append(&mut self, id: SegmentId, payload: Bytes) -> bool {
        let Some(segment) = self.segments.iter_mut().find(|s| s.id == id && s.open) else {
            return false;
        };
        if let Frames::Streamed(frames) = &mut segment.frames {
            frames.push_back(payload);
            segment.queued += 1;
            segment.dry = false;
            true
        } else {
            false
        }
    }

    /// No more packets will come for `id`.
    pub fn close(&mut self, id: SegmentId) {
        if let Some(segment) = self.segments.iter_mut().find(|s| s.id == id) {
            segment.open = false;
        }
    }

    /// Packets queued but not yet played, over every segment.
    pub fn queued_frames(&self) -> u32 {
        self.segments.iter().map(|s| s.queued - s.played).sum()
    }

    /// Whether anything is queued or playing.
    pub fn is_speaking(&self) -> bool {
        !self.segments.is_empty()
    }

    /// Whether what plays now may be talked over.
    pub fn interruptible(&self) -> bool {
        self.segments.front().is_none_or(|s| s.interruptible)
    }

    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// Underruns since the outbox was made.
    pub fn underruns(&self) -> u64 {
        self.underruns
    }

    /// Hold the speech where it is (a possible interruption).
    pub fn pause(&mut self) {
        self.paused = true;
        self.anchor = None;
    }

    /// Carry on from where [`Outbox::pause`] held it.
    pub fn resume(&mut self) {
        self.paused = false;
    }

    /// Stop at once: every queued segment is dropped; says how much of each
    /// one that had started was played.
    pub fn cut(&mut self) -> Vec<Played> {
        self.paused = false;
        self.anchor = None;
        self.segments
            .drain(..)
            .filter(|s| s.played > 0)
            .map(|s| Played {
                id: s.id,
                frames: s.played,
                of: (!s.open).then_some(s.queued),
            })
            .collect()
    }

    /// When the next packet is due, if one can go out.
    pub fn next_deadline(&self, now: Instant) -> Option<Instant> {
        if self.paused || self.segments.is_empty() {
            return None;
        }
        Some(self.anchor.map_or(now, |anchor| anchor + FRAME * self.sent))
    }

    /// The packet due at `now`, if any: at most one per call (call again at
    /// [`Outbox::next_deadline`]).
    pub fn next_packet(&mut self, now: Instant) -> Option<Packet> {
        if self.paused {
            return None;
        }
        let due = match self.anchor {
            Some(anchor) => anchor + FRAME * self.sent,
            None => now,
        };
        if now < due {
            return None;
        }
        loop {
            let segment = self.segments.front_mut()?;
            if let Some(payload) = segment.next() {
                let id = segment.id;
                let first = segment.played == 1;
                let finished = (!segment.open && !segment.remaining()).then_some(segment.played);
                if first {
                    self.push_event(OutboxEvent::Started { id });
                }
                if let Some(frames) = finished {
                    self.segments.pop_front();
                    self.push_event(OutboxEvent::Finished { id, frames });
                }
                self.advance(now, due);
                return Some(Packet {
                    segment: id,
                    payload,
                });
            }
            if segment.open {
                // Its voice is behind: a gap in the speech.
                if !segment.dry && segment.played > 0 {
                    segment.dry = true;
                    self.underruns += 1;
                    let id = segment.id;
                    tracing::debug!(
                        segment = id,
                        played = segment.played,
                        "the agent's speech ran dry while its voice was still speaking"
                    );
                    self.push_event(OutboxEvent::Underrun { id });
                }
                // The clock restarts when audio comes again.
                self.anchor = None;
                return None;
            }
            let id = segment.id;
            let frames = segment.played;
            self.segments.pop_front();
            if frames > 0 {
                self.push_event(OutboxEvent::Finished { id, frames });
            }
        }
    }

    pub fn pop_event(&mut self) -> Option<OutboxEvent> {
        self.events.pop_front()
    }

    fn advance(&mut self, now: Instant, due: Instant) {
        match self.anchor {
            Some(_) if now.saturating_duration_since(due) <= FRAME * MAX_LATE_FRAMES => {
                self.sent += 1;
            }
            _ => {
                // First packet of a run, or far behind: this one defines the clock.
                self.anchor = Some(now);
                self.sent = 1;
            }
        }
        if self.segments.is_empty() {
            self.anchor = None;
        }
    }

    fn push_event(&mut self, event: OutboxEvent) {
        if self.events.len() == MAX_EVENTS {
            self.events.pop_front();
        }
        self.events.push_back(event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn frames(n: usize) -> Arc<[Bytes]> {
        (0..n).map(|i| Bytes::from(vec![i as u8])).collect()
    }

    #[test]
    fn an_hour_of_packets_keeps_the_20_ms_grid() {
        let mut out = Outbox::new();
        let n = 180_000; // one hour
        out.push_shared(1, frames(n), true);
        let t0 = Instant::now();
        for k in 0..n as u32 {
            let at = t0 + FRAME * k;
            assert!(
                out.next_packet(at).is_some(),
                "packet {k} due at +{k}×20 ms"
            );
            assert!(out.next_packet(at).is_none(), "only one per slot");
        }
        assert_eq!(out.next_deadline(t0), None, "done");
    }

    #[test]
    fn cut_reports_what_was_played_and_drops_the_rest() {
        let mut out = Outbox::new();
        out.push_shared(1, frames(3), true);
        out.open(2, true);
        for _ in 0..5 {
            out.append(2, Bytes::from_static(b"x"));
        }
        let t0 = Instant::now();
        for k in 0..5 {
            out.next_packet(t0 + FRAME * k).unwrap();
        }
        let played = out.cut();
        assert_eq!(
            played,
            vec![Played {
                id: 2,
                frames: 2,
                of: None
            },],
            "segment 1 had finished; segment 2 was 2 frames in"
        );
        assert!(!out.is_speaking());
        assert!(
            !out.append(2, Bytes::from_static(b"x")),
            "the producer learns to stop"
        );
    }

    #[test]
    fn pause_holds_and_resume_continues_from_the_same_frame() {
        let mut out = Outbox::new();
        out.push_shared(1, frames(4), true);
        let t0 = Instant::now();
        assert_eq!(out.next_packet(t0).unwrap().payload, Bytes::from(vec![0u8]));
        out.pause();
        assert!(out.next_packet(t0 + ms(500)).is_none());
        out.resume();
        assert_eq!(
            out.next_packet(t0 + ms(1000)).unwrap().payload,
            Bytes::from(vec![1u8])
        );
        assert!(
            out.next_packet(t0 + ms(1010)).is_none(),
            "paced again from the resume"
        );
        assert!(out.next_packet(t0 + ms(1020)).is_some());
    }

    #[test]
    fn a_voice_falling_behind_is_an_underrun_once_per_gap() {
        let mut out = Outbox::new();
        out.open(9, true);
        out.append(9, Bytes::from_static(b"a"));
        let t0 = Instant::now();
        out.next_packet(t0).unwrap();
        assert!(out.next_packet(t0 + ms(20)).is_none());
        assert!(out.next_packet(t0 + ms(40)).is_none());
        out.append(9, Bytes::from_static(b"b"));
        out.close(9);
        assert!(out.next_packet(t0 + ms(60)).is_some());
        let events: Vec<_> = std::iter::from_fn(|| out.pop_event()).collect();
        assert_eq!(
            events,
            vec![
                OutboxEvent::Started { id: 9 },
                OutboxEvent::Underrun { id: 9 },
                OutboxEvent::Finished { id: 9, frames: 2 },
            ]
        );
        assert_eq!(out.underruns(), 1);
    }

    #[test]
    fn a_late_driver_resyncs_instead_of_bursting() {
        let mut out = Outbox::new();
        out.push_shared(1, frames(10), true);
        let t0 = Instant::now();
        out.next_packet(t0).unwrap();
        // The driver stalled for 300 ms: one packet now, then the grid from here.
        let late = t0 + ms(320);
        assert!(out.next_packet(late).is_some());
        assert!(
            out.next_packet(late).is_none(),
            "no burst of the missed slots"
        );
        assert_eq!(out.next_deadline(late), Some(late + FRAME));
    }
}
