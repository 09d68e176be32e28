//! The RTP clock of a local audio track: each packet's timestamp advances
//! by its samples at 48 kHz (960 for 20 ms) and stays continuous with the
//! real timeline — after a pause in sending the clock moves on by the pause
//! and the next packet starts a talk spurt, while ordinary pacing jitter is
//! absorbed by the packets behind it.

use std::time::{Duration, Instant};

/// Opus runs at 48 kHz whatever the sample rate of the audio inside.
const OPUS_CLOCK: u64 = 48_000;
/// A gap in sending at least this long is a pause in speech, not jitter.
pub const PAUSE: Duration = Duration::from_millis(200);

/// The stamp of one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// RTP timestamp, extended to 64 bits.
    pub timestamp: u64,
    /// The first packet, or the first after a pause (RTP marker bit).
    pub talk_spurt: bool,
}

#[derive(Debug, Clone)]
pub struct RtpClock {
    next: u64,
    /// When the previous packet was sent, and how long it lasted.
    last: Option<(Instant, Duration)>,
}

/// Samples of `duration` at 48 kHz.
pub fn samples(duration: Duration) -> u64 {
    duration.as_micros() as u64 * OPUS_CLOCK / 1_000_000
}

impl RtpClock {
    pub fn new(start: u64) -> RtpClock {
        RtpClock {
            next: start,
            last: None,
        }
    }

    /// The stamp for a packet of `duration` sent at `now`.
    pub fn stamp(&self, now: Instant, duration: Duration) -> Stamp {
        let Some((at, last_duration)) = self.last else {
            return Stamp {
                timestamp: self.next,
                talk_spurt: true,
            };
        };
        let late = now.saturating_duration_since(at + last_duration);
        if late < PAUSE {
            return Stamp {
                timestamp: self.next,
                talk_spurt: false,
            };
        }
        let frames = late.as_micros() as u64 / duration.as_micros().max(1) as u64;
        Stamp {
            timestamp: self.next + frames * samples(duration),
            talk_spurt: true,
        }
    }

    /// Records that the packet stamped `stamp` went out.
    pub fn commit(&mut self, stamp: Stamp, now: Instant, duration: Duration) {
        self.next = stamp.timestamp + samples(duration);
        self.last = Some((now, duration));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME: Duration = Duration::from_millis(20);

    fn send(clock: &mut RtpClock, at: Instant) -> Stamp {
        let stamp = clock.stamp(at, FRAME);
        clock.commit(stamp, at, FRAME);
        stamp
    }

    #[test]
    fn paced_frames_advance_by_960_and_only_the_first_starts_a_spurt() {
        let start = Instant::now();
        let mut clock = RtpClock::new(1000);
        let stamps: Vec<Stamp> = (0..3)
            .map(|n| send(&mut clock, start + FRAME * n))
            .collect();
        assert_eq!(
            stamps,
            vec![
                Stamp {
                    timestamp: 1000,
                    talk_spurt: true
                },
                Stamp {
                    timestamp: 1960,
                    talk_spurt: false
                },
                Stamp {
                    timestamp: 2920,
                    talk_spurt: false
                },
            ]
        );
    }

    #[test]
    fn jitter_below_a_pause_keeps_the_clock_continuous() {
        let start = Instant::now();
        let mut clock = RtpClock::new(0);
        send(&mut clock, start);
        // 150 ms late, then a burst catching up: no jump.
        let late = send(&mut clock, start + Duration::from_millis(170));
        let burst = send(&mut clock, start + Duration::from_millis(171));
        assert_eq!((late.timestamp, burst.timestamp), (960, 1920));
        assert!(!late.talk_spurt && !burst.talk_spurt);
    }

    #[test]
    fn a_pause_moves_the_clock_on_by_whole_frames_and_starts_a_spurt() {
        let start = Instant::now();
        let mut clock = RtpClock::new(0);
        send(&mut clock, start);
        // Due at 20 ms, sent at 1020 ms: a second of silence, 50 frames.
        let after = send(&mut clock, start + Duration::from_millis(1020));
        assert_eq!(
            after,
            Stamp {
                timestamp: 960 + 50 * 960,
                talk_spurt: true
            }
        );
    }

    #[test]
    fn other_frame_lengths_use_their_own_sample_count() {
        assert_eq!(samples(Duration::from_millis(10)), 480);
        assert_eq!(samples(Duration::from_micros(2_500)), 120);
        assert_eq!(samples(Duration::from_millis(60)), 2880);
    }
}
