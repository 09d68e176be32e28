//! Measuring what a listener heard: when audio became audible and silent
//! (10 ms energy windows against a dBFS threshold), and how closely the
//! energy envelope of received audio follows what was sent. Tests and
//! `voxguard simulate` use these to time dead air, barge-in and speech.
//!
//! ```
//! use std::time::Duration;
//! use voxguard::media::level::{Audibility, AudibilityTracker, Transition};
//!
//! let mut tracker = AudibilityTracker::new(48_000, -45.0);
//! let mut changes = Vec::new();
//! tracker.push(Duration::ZERO, &[0; 960], &mut changes);
//! tracker.push(Duration::from_millis(20), &[8_000; 960], &mut changes);
//! assert_eq!(changes, [Transition { at: Duration::from_millis(20), now: Audibility::Audible }]);
//! ```

use std::time::Duration;

use super::frame::level_dbfs;

/// Energy windows are this long.
pub const WINDOW: Duration = Duration::from_millis(10);
/// Envelope levels below this are the same silence.
const FLOOR_DBFS: f32 = -70.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audibility {
    Silent,
    Audible,
}

/// The moment the audio changed between silent and audible: the start of
/// the first 10 ms window on the new side of the threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    pub at: Duration,
    pub now: Audibility,
}

/// Follows a stream of timestamped samples and reports each change between
/// silent and audible. Starts silent.
#[derive(Debug)]
pub struct AudibilityTracker {
    sample_rate: u32,
    threshold_dbfs: f32,
    window: Vec<i16>,
    window_len: usize,
    window_start: Duration,
    state: Audibility,
}

impl AudibilityTracker {
    /// Audible is a 10 ms window whose RMS level reaches `threshold_dbfs`.
    pub fn new(sample_rate: u32, threshold_dbfs: f32) -> AudibilityTracker {
        let window_len = (sample_rate as usize / 100).max(1);
        AudibilityTracker {
            sample_rate,
            threshold_dbfs,
            window: Vec::with_capacity(window_len),
            window_len,
            window_start: Duration::ZERO,
            state: Audibility::Silent,
        }
    }

    pub fn state(&self) -> Audibility {
        self.state
    }

    /// Feed samples that began playing at `start`; changes are appended to
    /// `changes`. A window split across calls is timed by its first sample.
    pub fn push(&mut self, start: Duration, samples: &[i16], changes: &mut Vec<Transition>) {
        let mut offset = 0;
        while offset < samples.len() {
            if self.window.is_empty() {
                self.window_start = start + self.samples_to_time(offset);
            }
            let take = (self.window_len - self.window.len()).min(samples.len() - offset);
            self.window
                .extend_from_slice(&samples[offset..offset + take]);
            offset += take;
            if self.window.len() == self.window_len {
                let now = if level_dbfs(&self.window) >= self.threshold_dbfs {
                    Audibility::Audible
                } else {
                    Audibility::Silent
                };
                if now != self.state {
                    self.state = now;
                    changes.push(Transition {
                        at: self.window_start,
                        now,
                    });
                }
                self.window.clear();
            }
        }
    }

    fn samples_to_time(&self, samples: usize) -> Duration {
        Duration::from_nanos(samples as u64 * 1_000_000_000 / u64::from(self.sample_rate))
    }
}

/// The level of each 10 ms window of `samples`, in dBFS, floored at −70.
pub fn envelope(samples: &[i16], sample_rate: u32) -> Vec<f32> {
    let window = (sample_rate as usize / 100).max(1);
    samples
        .chunks_exact(window)
        .map(|w| level_dbfs(w).max(FLOOR_DBFS))
        .collect()
}

/// Pearson correlation of the two signals' energy envelopes over the
/// windows both have (1.0: the same shape; 0: unrelated). Two flat
/// envelopes correlate 1.0 when they are equal and 0.0 otherwise.
pub fn envelope_correlation(sent: &[i16], received: &[i16], sample_rate: u32) -> f64 {
    correlate(
        &envelope(sent, sample_rate),
        &envelope(received, sample_rate),
    )
}

/// The delay (a multiple of 10 ms, up to `max_delay`) at which `received`
/// best follows `sent`, with the envelope correlation there.
pub fn best_alignment(
    sent: &[i16],
    received: &[i16],
    sample_rate: u32,
    max_delay: Duration,
) -> (Duration, f64) {
    let (a, b) = (envelope(sent, sample_rate), envelope(received, sample_rate));
    let max_lag = (max_delay.as_millis() / 10) as usize;
    (0..=max_lag.min(b.len()))
        .map(|lag| (WINDOW * lag as u32, correlate(&a, &b[lag..])))
        .fold((Duration::ZERO, f64::NEG_INFINITY), |best, this| {
            if this.1 > best.1 { this } else { best }
        })
}

fn correlate(a: &[f32], b: &[f32]) -> f64 {
    let n = a.len().min(b.len());
    if n == 0 {
        return 0.0;
    }
    let (a, b) = (&a[..n], &b[..n]);
    let mean = |x: &[f32]| x.iter().map(|&v| f64::from(v)).sum::<f64>() / n as f64;
    let (ma, mb) = (mean(a), mean(b));
    let (mut cov, mut va, mut vb) = (0.0, 0.0, 0.0);
    for (&x, &y) in a.iter().zip(b) {
        let (dx, dy) = (f64::from(x) - ma, f64::from(y) - mb);
        cov += dx * dy;
        va += dx * dx;
        vb += dy * dy;
    }
    if va == 0.0 || vb == 0.0 {
        return if a == b { 1.0 } else { 0.0 };
    }
    cov / (va * vb).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(len: usize, amplitude: f64) -> Vec<i16> {
        (0..len)
            .map(|i| (amplitude * (i as f64 * 0.05).sin()) as i16)
            .collect()
    }

    #[test]
    fn audible_and_silent_are_timed_to_the_ten_millisecond_window() {
        let mut tracker = AudibilityTracker::new(16_000, -40.0);
        let mut changes = Vec::new();
        let mut audio = vec![0i16; 1_600];
        audio.extend(tone(3_200, 10_000.0));
        audio.extend(vec![0i16; 1_600]);
        // Irregular pieces, timestamped by where they start.
        let mut at = 0;
        for piece in audio.chunks(333) {
            tracker.push(
                Duration::from_micros(at as u64 * 1_000_000 / 16_000),
                piece,
                &mut changes,
            );
            at += piece.len();
        }
        assert_eq!(
            changes,
            [
                Transition {
                    at: Duration::from_millis(100),
                    now: Audibility::Audible
                },
                Transition {
                    at: Duration::from_millis(300),
                    now: Audibility::Silent
                },
            ]
        );
    }

    #[test]
    fn quiet_noise_below_the_threshold_stays_silent() {
        let mut tracker = AudibilityTracker::new(48_000, -45.0);
        let mut changes = Vec::new();
        tracker.push(Duration::ZERO, &tone(48_000, 100.0), &mut changes);
        assert!(changes.is_empty());
        assert_eq!(tracker.state(), Audibility::Silent);
    }

    #[test]
    fn the_same_shape_at_another_volume_correlates_and_a_different_one_does_not() {
        let mut sent = Vec::new();
        for (len, amp) in [
            (4_800, 9_000.0),
            (2_400, 0.0),
            (9_600, 3_000.0),
            (4_800, 12_000.0),
        ] {
            sent.extend(tone(len, amp));
        }
        let quieter: Vec<i16> = sent.iter().map(|&s| s / 2).collect();
        assert!(envelope_correlation(&sent, &quieter, 48_000) > 0.99);
        let mut reversed = sent.clone();
        reversed.reverse();
        assert!(envelope_correlation(&sent, &reversed, 48_000) < 0.5);
    }

    #[test]
    fn best_alignment_finds_the_delay_of_the_received_copy() {
        let mut sent = tone(4_800, 8_000.0);
        sent.extend(vec![0; 9_600]);
        sent.extend(tone(4_800, 8_000.0));
        let mut received = vec![0i16; 3_360]; // 70 ms late
        received.extend(&sent);
        let (delay, correlation) =
            best_alignment(&sent, &received, 48_000, Duration::from_millis(200));
        assert_eq!(delay, Duration::from_millis(70));
        assert!(correlation > 0.99, "{correlation}");
    }
}
