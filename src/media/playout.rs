//! Paced playout of outgoing speech, sans-IO with time passed in: a queue
//! of 48 kHz segments (one per sentence, say), each tagged with an id the
//! caller picks, turned into exactly one 20 ms frame per 20 ms of wall
//! time. Frame k is due at `start + k × 20 ms`, so the pace never drifts
//! however long the call.
//!
//! A segment may still be growing while it plays (TTS streams in); if it
//! runs dry first, that is an underrun and the frame is silence. `cut`
//! stops at once (barge-in) and says how much of each segment was heard;
//! `pause`/`resume` hold the speech for a possibly false interruption.
//! Segment buffers are recycled; nothing is allocated per frame.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use voxguard::media::playout::{Playout, PlayoutConfig, PlayoutEvent};
//!
//! let mut playout = Playout::new(PlayoutConfig::default());
//! playout.push_segment(1, &[1_000; 1_440])?; // 30 ms
//! let start = Instant::now();
//! assert_eq!(playout.next_frame(start).unwrap().segment, Some(1));
//! assert!(playout.next_frame(start).is_none()); // not due until +20 ms
//! playout.next_frame(start + Duration::from_millis(20)).unwrap();
//! assert_eq!(playout.pop_event(), Some(PlayoutEvent::Started { id: 1 }));
//! assert_eq!(playout.pop_event(), Some(PlayoutEvent::Finished { id: 1, samples: 1_440 }));
//! # Ok::<(), voxguard::media::playout::PlayoutError>(())
//! ```

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Events kept for the caller to read.
const MAX_EVENTS: usize = 64;

/// The caller's name for a segment (e.g. a sentence number).
pub type SegmentId = u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlayoutConfig {
    pub sample_rate: u32,
    pub frame: Duration,
    /// Audio held at most, over all queued segments.
    pub max_buffered: Duration,
    /// A caller this many frames behind the clock skips ahead instead of
    /// sending a burst.
    pub max_catch_up: u32,
}

impl Default for PlayoutConfig {
    fn default() -> Self {
        PlayoutConfig {
            sample_rate: 48_000,
            frame: Duration::from_millis(20),
            max_buffered: Duration::from_secs(120),
            max_catch_up: 5,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlayoutError {
    #[error("segment {0} is already queued; pick a new id for new speech")]
    DuplicateId(SegmentId),
    #[error("segment {0} is not queued (it was cut, finished or never started)")]
    UnknownSegment(SegmentId),
    #[error("segment {0} was finished; no audio can be added to it")]
    SegmentClosed(SegmentId),
    #[error("playout holds {held_ms} ms of audio, its limit; wait for it to play")]
    Full { held_ms: u64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlayoutEvent {
    /// The segment's first sample went out.
    Started { id: SegmentId },
    /// The segment was complete and its last sample went out.
    Finished { id: SegmentId, samples: u64 },
    /// The segment ran dry while still being produced.
    Underrun { id: SegmentId },
}

/// How much of a segment the listener heard before a cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heard {
    pub id: SegmentId,
    pub played_samples: u64,
    /// Samples it held or was still to receive that were never played.
    pub unplayed_samples: u64,
}

/// One frame, due at `due`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    pub samples: &'a [i16],
    pub due: Instant,
    /// The segment that supplied the frame's first sample; `None` for
    /// silence.
    pub segment: Option<SegmentId>,
}

#[derive(Debug)]
struct Segment {
    id: SegmentId,
    audio: VecDeque<i16>,
    played: u64,
    complete: bool,
    starved: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlayoutStats {
    pub frames: u64,
    pub silent_frames: u64,
    /// Times a segment ran dry while still being produced.
    pub underruns: u64,
    /// Frames of silence those dry spells cost.
    pub underrun_frames: u64,
    /// Times the caller fell so far behind that the clock skipped ahead.
    pub clock_skips: u64,
}

#[derive(Debug)]
pub struct Playout {
    config: PlayoutConfig,
    frame_samples: usize,
    start: Option<Instant>,
    next_index: u64,
    queue: VecDeque<Segment>,
    spare: Vec<VecDeque<i16>>,
    held: usize,
    paused: bool,
    out: Vec<i16>,
    events: VecDeque<PlayoutEvent>,
    heard: Vec<Heard>,
    stats: PlayoutStats,
}

impl Playout {
    pub fn new(config: PlayoutConfig) -> Playout {
        let frame_samples = (u128::from(config.sample_rate) * config.frame.as_nanos()
            / 1_000_000_000)
            .max(1) as usize;
        Playout {
            config,
            frame_samples,
            start: None,
            next_index: 0,
            queue: VecDeque::with_capacity(8),
            spare: Vec::with_capacity(8),
            held: 0,
            paused: false,
            out: vec![0; frame_samples],
            events: VecDeque::with_capacity(16),
            heard: Vec::with_capacity(8),
            stats: PlayoutStats::default(),
        }
    }

    pub fn stats(&self) -> PlayoutStats {
        self.stats
    }

    /// Open a segment that audio will be appended to.
    pub fn start_segment(&mut self, id: SegmentId) -> Result<(), PlayoutError> {
        if self.queue.iter().any(|s| s.id == id) {
            return Err(PlayoutError::DuplicateId(id));
        }
        let audio = self.spare.pop().unwrap_or_default();
        self.queue.push_back(Segment {
            id,
            audio,
            played: 0,
            complete: false,
            starved: false,
        });
        Ok(())
    }

    /// Add audio to an open segment.
    pub fn append(&mut self, id: SegmentId, samples: &[i16]) -> Result<(), PlayoutError> {
        let limit = self.samples_in(self.config.max_buffered);
        if self.held + samples.len() > limit {
            return Err(PlayoutError::Full {
                held_ms: self.held as u64 * 1_000 / u64::from(self.config.sample_rate),
            });
        }
        let segment = self.segment_mut(id)?;
        if segment.complete {
            return Err(PlayoutError::SegmentClosed(id));
        }
        segment.audio.extend(samples);
        self.held += samples.len();
        Ok(())
    }

    /// No more audio will come for the segment.
    pub fn finish_segment(&mut self, id: SegmentId) -> Result<(), PlayoutError> {
        self.segment_mut(id)?.complete = true;
        Ok(())
    }

    /// Queue a whole segment at once.
    pub fn push_segment(&mut self, id: SegmentId, samples: &[i16]) -> Result<(), PlayoutError> {
        self.start_segment(id)?;
        self.append(id, samples)
            .and_then(|()| self.finish_segment(id))
            .inspect_err(|_| {
                if let Some(segment) = self.queue.pop_back() {
                    self.recycle(segment);
                }
            })
    }

    fn segment_mut(&mut self, id: SegmentId) -> Result<&mut Segment, PlayoutError> {
        self.queue
            .iter_mut()
            .find(|s| s.id == id)
            .ok_or(PlayoutError::UnknownSegment(id))
    }

    fn samples_in(&self, duration: Duration) -> usize {
        (u128::from(self.config.sample_rate) * duration.as_nanos() / 1_000_000_000) as usize
    }

    /// Speech is queued or playing.
    pub fn is_speaking(&self) -> bool {
        !self.queue.is_empty()
    }

    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// When the next frame is due (the driver sleeps until then).
    pub fn next_due(&self) -> Option<Instant> {
        self.start.map(|start| self.due(start, self.next_index))
    }

    fn due(&self, start: Instant, index: u64) -> Instant {
        // Whole-nanosecond arithmetic from the start: no accumulated drift.
        let nanos = self.config.frame.as_nanos() * u128::from(index);
        start + Duration::from_nanos(nanos.min(u128::from(u64::MAX)) as u64)
    }

    /// The frame due at or before `now`, or `None` if the next one is not
    /// due yet. The clock starts at the first call. Call until `None`.
    pub fn next_frame(&mut self, now: Instant) -> Option<Frame<'_>> {
        let start = *self.start.get_or_insert(now);
        let due = self.due(start, self.next_index);
        if now < due {
            return None;
        }
        let behind = now.duration_since(due).as_nanos() / self.config.frame.as_nanos().max(1);
        let mut due = due;
        if behind > u128::from(self.config.max_catch_up) {
            self.next_index += behind as u64;
            self.stats.clock_skips += 1;
            due = self.due(start, self.next_index);
        }
        self.next_index += 1;
        self.stats.frames += 1;
        let segment = if self.paused { None } else { self.fill() };
        if segment.is_none() {
            self.out.fill(0);
            self.stats.silent_frames += 1;
        }
        Some(Frame {
            samples: &self.out,
            due,
            segment,
        })
    }

    /// Fill `out` from the queue; the id of the segment it starts with.
    fn fill(&mut self) -> Option<SegmentId> {
        let mut written = 0;
        let mut first = None;
        while written < self.frame_samples {
            let Some(segment) = self.queue.front_mut() else {
                break;
            };
            let wanted = self.frame_samples - written;
            if !segment.complete && segment.audio.len() < wanted && written == 0 {
                // Still being produced and not a frame's worth yet.
                if !segment.starved {
                    segment.starved = true;
                    self.stats.underruns += 1;
                    emit(&mut self.events, PlayoutEvent::Underrun { id: segment.id });
                }
                self.stats.underrun_frames += 1;
                break;
            }
            segment.starved = false;
            let take = wanted.min(segment.audio.len());
            if take > 0 && segment.played == 0 {
                emit(&mut self.events, PlayoutEvent::Started { id: segment.id });
            }
            for (slot, sample) in self.out[written..written + take]
                .iter_mut()
                .zip(segment.audio.drain(..take))
            {
                *slot = sample;
            }
            if take > 0 {
                first.get_or_insert(segment.id);
            }
            segment.played += take as u64;
            written += take;
            self.held -= take;
            if segment.complete && segment.audio.is_empty() {
                let done = self.queue.pop_front().expect("front exists");
                emit(
                    &mut self.events,
                    PlayoutEvent::Finished {
                        id: done.id,
                        samples: done.played,
                    },
                );
                self.recycle(done);
            } else if segment.audio.is_empty() {
                break; // the rest of this frame waits for TTS
            }
        }
        self.out[written..].fill(0);
        first
    }

    fn recycle(&mut self, mut segment: Segment) {
        segment.audio.clear();
        if self.spare.len() < 8 {
            self.spare.push(segment.audio);
        }
    }

    /// The next event (started, finished, underrun), oldest first.
    pub fn pop_event(&mut self) -> Option<PlayoutEvent> {
        self.events.pop_front()
    }

    /// Stop at once: every queued segment is dropped, and the report says
    /// how much of each the listener heard (in queue order).
    pub fn cut(&mut self) -> &[Heard] {
        self.heard.clear();
        self.paused = false;
        self.held = 0;
        while let Some(segment) = self.queue.pop_front() {
            self.heard.push(Heard {
                id: segment.id,
                played_samples: segment.played,
                unplayed_samples: segment.audio.len() as u64,
            });
            self.recycle(segment);
        }
        &self.heard
    }

    /// Hold the speech where it is; frames are silence until `resume`.
    pub fn pause(&mut self) {
        self.paused = true;
    }

    /// Carry on from the sample where `pause` stopped.
    pub fn resume(&mut self) {
        self.paused = false;
    }
}

fn emit(events: &mut VecDeque<PlayoutEvent>, event: PlayoutEvent) {
    // Bounded even if nobody reads them: the oldest go first.
    if events.len() == MAX_EVENTS {
        events.pop_front();
    }
    events.push_back(event);
}
