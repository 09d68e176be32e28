//! The receive side's jitter buffer, sans-IO: RTP payloads go in as they
//! arrive (sequence number, RTP timestamp, arrival time), and every 20 ms
//! the caller asks what to decode next: the packet, the packet recovered
//! from its successor's FEC data, a concealed frame, or nothing at all
//! (the sender went quiet).
//!
//! It reorders within its window, drops duplicates and packets that come
//! after their turn, starts over for a new sender (SSRC change, or a
//! sequence jump confirmed by a second packet), and adapts its delay
//! between `min_delay` and `max_delay`: an underrun adds a frame of delay
//! (a concealed frame is inserted), and a surplus that persists for half a
//! second is trimmed by one frame. Memory is fixed at construction.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use voxguard::media::jitter::{Decode, JitterBuffer, JitterConfig, RtpPacket};
//!
//! let mut buffer = JitterBuffer::new(JitterConfig::default());
//! let start = Instant::now();
//! buffer.push(RtpPacket { ssrc: 7, sequence: 65_535, timestamp: 0, payload: b"a" }, start);
//! buffer.push(RtpPacket { ssrc: 7, sequence: 1, timestamp: 1_920, payload: b"c" }, start);
//! let tick = start + Duration::from_millis(40);
//! assert!(matches!(buffer.pop(tick).decode, Decode::Packet { payload: b"a" }));
//! // Sequence 0 never came; 1 carries its FEC.
//! assert!(matches!(buffer.pop(tick).decode, Decode::Fec { next_payload: b"c" }));
//! ```

use std::time::{Duration, Instant};

/// The largest payload kept; an Opus packet is at most 1275 bytes.
pub const MAX_PAYLOAD: usize = 1500;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JitterConfig {
    /// Audio per packet (20 ms for WebRTC Opus).
    pub frame: Duration,
    /// RTP clock rate (48 000 for Opus).
    pub clock_rate: u32,
    pub min_delay: Duration,
    pub max_delay: Duration,
    /// Packets held at most (the reorder window), 2..=1024.
    pub capacity: usize,
    /// With nothing to play for this long, report `Idle` instead of
    /// concealing on and on.
    pub idle_after: Duration,
    /// A sequence jump this large (either way) is a restarted sender once
    /// a second packet confirms it.
    pub restart_jump: u16,
}

impl Default for JitterConfig {
    fn default() -> Self {
        JitterConfig {
            frame: Duration::from_millis(20),
            clock_rate: 48_000,
            min_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(80),
            capacity: 32,
            idle_after: Duration::from_millis(200),
            restart_jump: 200,
        }
    }
}

/// One RTP packet's fields the buffer needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    pub ssrc: u32,
    pub sequence: u16,
    pub timestamp: u32,
    pub payload: &'a [u8],
}

/// What became of a pushed packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    Accepted,
    /// Already held or already played.
    Duplicate,
    /// Its turn has passed (it was concealed or recovered instead).
    Late,
    /// Far from the stream: held back until a second packet confirms a
    /// restarted sender.
    Probation,
    /// A new sender: everything buffered was dropped for it.
    Restarted,
    /// Larger than [`MAX_PAYLOAD`], or empty.
    Refused,
}

/// What to decode for this 20 ms tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decode<'a> {
    Packet {
        payload: &'a [u8],
    },
    /// The packet is lost; its successor (decode it next tick as usual)
    /// may carry FEC for it.
    Fec {
        next_payload: &'a [u8],
    },
    /// Conceal a lost or not-yet-arrived packet.
    Conceal,
    /// Nothing to play: the stream has not started or the sender stopped.
    Idle,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tick<'a> {
    pub decode: Decode<'a>,
    /// The packet this tick stands for, its sequence number extended past
    /// wraparound (numbering restarts with each new stream); `None` for
    /// `Idle` and for a concealed frame inserted to add delay.
    pub sequence: Option<u64>,
    /// The first tick of a new sender: reset the decoder before this one.
    pub new_stream: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JitterStats {
    pub received: u64,
    pub lost: u64,
    pub late: u64,
    pub duplicate: u64,
    pub concealed: u64,
    pub recovered: u64,
    /// Played-out packets dropped to cut delay or make room.
    pub dropped: u64,
    pub restarts: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Empty,
    Buffering { since: Instant },
    Playing,
    Idle,
}

#[derive(Debug, Default)]
struct Slot {
    ext: Option<u64>,
    payload: Vec<u8>,
}

const TRIM_WINDOW_TICKS: u32 = 25;
/// Extended sequence numbers start high so a stream can reach back.
const EXT_BASE: u64 = 1 << 32;

pub struct JitterBuffer {
    config: JitterConfig,
    slots: Box<[Slot]>,
    state: State,
    ssrc: Option<u32>,
    highest: u64,
    next: u64,
    /// Bit i: packet `next - 1 - i` was played from a real packet.
    played: u64,
    probation: Option<(u32, u16)>,
    last_arrival: Option<Instant>,
    /// The first arrival; transit times are measured from it.
    epoch: Option<Instant>,
    last_transit: Option<f64>,
    /// RFC 3550 interarrival jitter, seconds.
    jitter: f64,
    min_depth: u64,
    window_ticks: u32,
    new_stream: bool,
    stats: JitterStats,
}

impl JitterBuffer {
    pub fn new(mut config: JitterConfig) -> JitterBuffer {
        config.capacity = config.capacity.clamp(2, 1024);
        config.frame = config.frame.max(Duration::from_millis(1));
        config.max_delay = config.max_delay.max(config.min_delay);
        JitterBuffer {
            slots: (0..config.capacity).map(|_| Slot::default()).collect(),
            config,
            state: State::Empty,
            ssrc: None,
            highest: 0,
            next: 0,
            played: 0,
            probation: None,
            last_arrival: None,
            epoch: None,
            last_transit: None,
            jitter: 0.0,
            min_depth: u64::MAX,
            window_ticks: 0,
            new_stream: false,
            stats: JitterStats::default(),
        }
    }

    pub fn stats(&self) -> JitterStats {
        self.stats
    }

    /// The delay the buffer aims for now, a whole number of frames.
    pub fn target_delay(&self) -> Duration {
        let wanted = Duration::from_secs_f64(3.0 * self.jitter).max(self.config.min_delay);
        let frames = wanted
            .as_nanos()
            .div_ceil(self.config.frame.as_nanos())
            .max(1) as u32;
        (self.config.frame * frames).clamp(self.config.min_delay, self.config.max_delay)
    }

    /// Frames from the next one to play to the newest held, inclusive (0
    /// when nothing is ahead).
    pub fn depth(&self) -> u64 {
        (self.highest + 1).saturating_sub(self.next)
    }

    /// Packets held now.
    pub fn len(&self) -> usize {
        self.slots.iter().filter(|s| s.ext.is_some()).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn index(&self, ext: u64) -> usize {
        (ext % self.slots.len() as u64) as usize
    }

    fn held(&self, ext: u64) -> Option<&[u8]> {
        let slot = &self.slots[self.index(ext)];
        (slot.ext == Some(ext)).then_some(&slot.payload[..])
    }

    /// Take in a packet that arrived at `now`.
    pub fn push(&mut self, packet: RtpPacket<'_>, now: Instant) -> Pushed {
        self.stats.received += 1;
        if packet.payload.is_empty() || packet.payload.len() > MAX_PAYLOAD {
            return Pushed::Refused;
        }
        let restarted = match self.ssrc {
            Some(ssrc) if ssrc == packet.ssrc => {
                let delta = packet.sequence.wrapping_sub(self.highest as u16) as i16;
                if delta.unsigned_abs() >= self.config.restart_jump {
                    let confirmed =
                        self.probation == Some((packet.ssrc, packet.sequence.wrapping_sub(1)));
                    if !confirmed {
                        self.probation = Some((packet.ssrc, packet.sequence));
                        return Pushed::Probation;
                    }
                    self.start_stream(packet, now);
                    true
                } else {
                    false
                }
            }
            _ => {
                self.start_stream(packet, now);
                self.ssrc.is_some()
            }
        };
        self.ssrc = Some(packet.ssrc);
        self.probation = None;
        if self.state == State::Idle {
            // A pause is not jitter.
            self.last_transit = None;
        }
        self.observe_jitter(packet.timestamp, now);
        self.last_arrival = Some(now);

        let delta = packet.sequence.wrapping_sub(self.highest as u16) as i16;
        let ext = self.highest.wrapping_add_signed(i64::from(delta));
        if ext < self.next {
            if matches!(self.state, State::Buffering { .. })
                && self.highest - ext < self.slots.len() as u64
            {
                self.next = ext; // reordered before the first: nothing played yet
            } else {
                let behind = self.next - ext - 1;
                return if behind < 64 && self.played & (1 << behind) != 0 {
                    self.stats.duplicate += 1;
                    Pushed::Duplicate
                } else {
                    self.stats.late += 1;
                    Pushed::Late
                };
            }
        }
        if self.held(ext).is_some() {
            self.stats.duplicate += 1;
            return Pushed::Duplicate;
        }
        if self.state == State::Idle {
            // The sender is back: skip what it never sent and buffer again.
            self.advance_to(ext);
            self.state = State::Buffering { since: now };
        }
        let capacity = self.slots.len() as u64;
        if ext >= self.next + capacity {
            self.advance_to(ext + 1 - capacity);
        }
        self.highest = self.highest.max(ext);
        let index = self.index(ext);
        let slot = &mut self.slots[index];
        slot.ext = Some(ext);
        slot.payload.clear();
        slot.payload.extend_from_slice(packet.payload);
        if restarted {
            Pushed::Restarted
        } else {
            Pushed::Accepted
        }
    }

    fn start_stream(&mut self, packet: RtpPacket<'_>, now: Instant) {
        if self.ssrc.is_some() {
            self.stats.restarts += 1;
            self.new_stream = true;
        }
        for slot in self.slots.iter_mut() {
            slot.ext = None;
        }
        self.highest = EXT_BASE + u64::from(packet.sequence);
        self.next = self.highest;
        self.played = 0;
        self.last_transit = None;
        self.state = State::Buffering { since: now };
    }

    fn observe_jitter(&mut self, timestamp: u32, now: Instant) {
        // Transit time up to a constant: arrival minus media time, both
        // wrapped into one RTP-timestamp period.
        let period = f64::from(u32::MAX) + 1.0;
        let rate = f64::from(self.config.clock_rate);
        let epoch = *self.epoch.get_or_insert(now);
        let arrival = now.saturating_duration_since(epoch).as_secs_f64();
        let transit = (arrival * rate - f64::from(timestamp)).rem_euclid(period);
        if let Some(last) = self.last_transit {
            let mut d = (transit - last).abs();
            if d > period / 2.0 {
                d = period - d;
            }
            let d = (d / rate).min(1.0);
            self.jitter += (d - self.jitter) / 16.0;
        }
        self.last_transit = Some(transit);
    }

    /// Move the playhead to `ext`, counting what it skips.
    fn advance_to(&mut self, ext: u64) {
        while self.next < ext {
            let index = self.index(self.next);
            if self.slots[index].ext.take() == Some(self.next) {
                self.stats.dropped += 1;
            } else {
                self.stats.lost += 1;
            }
            self.next += 1;
            self.played <<= 1;
        }
    }

    /// What to decode for the tick at `now` (call once per frame).
    pub fn pop(&mut self, now: Instant) -> Tick<'_> {
        match self.state {
            State::Empty | State::Idle => return idle(),
            State::Buffering { since } => {
                if now.saturating_duration_since(since) < self.target_delay() {
                    return idle();
                }
                self.state = State::Playing;
                self.min_depth = u64::MAX;
                self.window_ticks = 0;
            }
            State::Playing => {}
        }
        let depth = (self.highest + 1).saturating_sub(self.next);
        self.trim(depth);
        let ext = self.next;
        let new_stream = std::mem::take(&mut self.new_stream);
        let tick = |decode, sequence| Tick {
            decode,
            sequence,
            new_stream,
        };
        if self.held(ext).is_some() {
            self.consume(true);
            let payload = self.held_after_take(ext);
            return tick(Decode::Packet { payload }, Some(ext));
        }
        if self.held(ext + 1).is_some() {
            self.consume(false);
            self.stats.lost += 1;
            self.stats.recovered += 1;
            let next_payload = self.held(ext + 1).unwrap_or_default();
            return tick(Decode::Fec { next_payload }, Some(ext));
        }
        if self.highest > ext {
            self.consume(false);
            self.stats.lost += 1;
            self.stats.concealed += 1;
            return tick(Decode::Conceal, Some(ext));
        }
        // Nothing ahead: the packet is late, or the sender stopped.
        let quiet = self
            .last_arrival
            .map_or(Duration::MAX, |at| now.saturating_duration_since(at));
        if quiet >= self.config.idle_after {
            self.state = State::Idle;
            self.new_stream = new_stream;
            return idle();
        }
        self.stats.concealed += 1;
        tick(Decode::Conceal, None)
    }

    /// Trim one frame when the buffer held more than the target for a
    /// whole window.
    fn trim(&mut self, depth: u64) {
        self.min_depth = self.min_depth.min(depth);
        self.window_ticks += 1;
        if self.window_ticks < TRIM_WINDOW_TICKS {
            return;
        }
        let target = (self.target_delay().as_nanos() / self.config.frame.as_nanos()) as u64;
        if self.min_depth > target + 1 && self.held(self.next + 1).is_some() {
            self.advance_to(self.next + 1);
        }
        self.min_depth = u64::MAX;
        self.window_ticks = 0;
    }

    fn consume(&mut self, from_packet: bool) {
        self.next += 1;
        self.played = (self.played << 1) | u64::from(from_packet);
    }

    /// The payload of `ext`, which stays in its slot (marked free) until
    /// the slot is reused, so the tick can borrow it.
    fn held_after_take(&mut self, ext: u64) -> &[u8] {
        let index = self.index(ext);
        self.slots[index].ext = None;
        &self.slots[index].payload
    }
}

fn idle<'a>() -> Tick<'a> {
    Tick {
        decode: Decode::Idle,
        sequence: None,
        new_stream: false,
    }
}
