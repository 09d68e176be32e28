//! Streaming sample-rate conversion for the rates voice audio moves between:
//! 48 kHz (WebRTC) to and from 16 and 24 kHz (speech recognizers and
//! voices), and 22 050 Hz (espeak-ng) to 48 kHz.
//!
//! A polyphase FIR: for a rational ratio `up/down`, one Kaiser-windowed sinc
//! low-pass is designed once per ratio and shared by every resampler of that
//! ratio; each resampler keeps only the last few input samples. Input comes
//! in chunks of any size (TTS chunks are irregular), output is appended to a
//! buffer the caller owns and reuses, and nothing is allocated per call.
//! Everything above the lower rate's Nyquist frequency is attenuated by
//! 70 dB; the passband reaches 87.5 % of it; the group delay is
//! [`Resampler::delay`] (about 2 ms for every supported ratio).
//!
//! ```
//! use voxguard::media::resample::Resampler;
//!
//! let mut to_stt = Resampler::new(48_000, 16_000)?;
//! let mut out = Vec::with_capacity(1024);
//! to_stt.process(&[0i16; 960], &mut out); // 20 ms in …
//! assert_eq!(out.len(), 320); //             … 20 ms out
//! # Ok::<(), voxguard::media::resample::ResampleError>(())
//! ```

use std::f64::consts::PI;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Stop-band attenuation of every filter.
const ATTENUATION_DB: f64 = 70.0;
/// Where the passband ends, as a fraction of the lower Nyquist frequency.
const PASSBAND: f64 = 0.875;
/// The largest interpolation factor (phases) once the ratio is reduced.
const MAX_PHASES: usize = 640;
/// Input is taken in pieces of at most this many samples, which bounds the
/// resampler's own buffer.
const BLOCK: usize = 512;
/// Lanes of the dot product; taps per phase are a multiple of it so that
/// the compiler can vectorise the inner loop.
const LANES: usize = 8;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResampleError {
    #[error("sample rate {0} Hz is outside 8000..=192000")]
    Rate(u32),
    #[error(
        "{from} Hz to {to} Hz reduces to {up}/{down}, too fine a ratio; use rates with a larger common divisor (e.g. 16000, 22050, 24000, 44100, 48000)"
    )]
    Ratio {
        from: u32,
        to: u32,
        up: usize,
        down: usize,
    },
}

/// The low-pass of one ratio, split into `up` phases of `taps` coefficients,
/// each phase stored oldest-input-first so a phase is a plain dot product
/// with the newest `taps` input samples.
#[derive(Debug)]
struct Filter {
    from: u32,
    to: u32,
    up: usize,
    down: usize,
    taps: usize,
    phases: Vec<f32>,
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// Zeroth-order modified Bessel function of the first kind (Kaiser window).
fn bessel_i0(x: f64) -> f64 {
    let mut sum = 1.0;
    let mut term = 1.0;
    let half = x / 2.0;
    for k in 1..64 {
        term *= half / k as f64;
        sum += term * term;
        if term * term < sum * 1e-17 {
            break;
        }
    }
    sum
}

impl Filter {
    fn design(from: u32, to: u32) -> Result<Filter, ResampleError> {
        for rate in [from, to] {
            if !(8_000..=192_000).contains(&rate) {
                return Err(ResampleError::Rate(rate));
            }
        }
        let common = gcd(from, to);
        let (up, down) = ((to / common) as usize, (from / common) as usize);
        if up > MAX_PHASES || down > 4 * MAX_PHASES {
            return Err(ResampleError::Ratio { from, to, up, down });
        }
        let nyquist = f64::from(from.min(to)) / 2.0;
        let transition = nyquist * (1.0 - PASSBAND);
        let cutoff = nyquist - transition / 2.0;
        // Kaiser's estimate of the length for this attenuation and width,
        // counted in input samples (the span of one phase).
        let width = 2.0 * PI * transition / f64::from(from);
        let span = ((ATTENUATION_DB - 7.95) / (2.285 * width)).ceil() as usize;
        let taps = span.div_ceil(LANES).max(1) * LANES;
        let beta = 0.1102 * (ATTENUATION_DB - 8.7);

        // The prototype runs at `up * from`; its tap n sits under input
        // sample n / up.
        let len = taps * up;
        let centre = (len - 1) as f64 / 2.0;
        let rate = f64::from(from) * up as f64;
        let norm_beta = bessel_i0(beta);
        let prototype: Vec<f64> = (0..len)
            .map(|n| {
                let t = (n as f64 - centre) / rate;
                let x = 2.0 * cutoff * t;
                let sinc = if x == 0.0 {
                    1.0
                } else {
                    (PI * x).sin() / (PI * x)
                };
                let r = (n as f64 - centre) / centre.max(1.0);
                let window = bessel_i0(beta * (1.0 - r * r).max(0.0).sqrt()) / norm_beta;
                sinc * window
            })
            .collect();
        // Unity gain at DC for every phase on average: the zeros stuffed in
        // by upsampling cost a factor `up`.
        let gain = up as f64 / prototype.iter().sum::<f64>();
        let mut phases = vec![0.0f32; len];
        for phase in 0..up {
            for k in 0..taps {
                // Oldest input first: slot k multiplies x[newest - (taps-1-k)].
                phases[phase * taps + k] = (prototype[phase + (taps - 1 - k) * up] * gain) as f32;
            }
        }
        Ok(Filter {
            from,
            to,
            up,
            down,
            taps,
            phases,
        })
    }

    /// One filter per ratio for the whole process.
    fn shared(from: u32, to: u32) -> Result<Arc<Filter>, ResampleError> {
        static FILTERS: Mutex<Vec<Arc<Filter>>> = Mutex::new(Vec::new());
        let mut filters = FILTERS
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(found) = filters.iter().find(|f| f.from == from && f.to == to) {
            return Ok(Arc::clone(found));
        }
        let filter = Arc::new(Filter::design(from, to)?);
        filters.push(Arc::clone(&filter));
        Ok(filter)
    }
}

fn dot(coefficients: &[f32], samples: &[f32]) -> f32 {
    let mut lanes = [0.0f32; LANES];
    for (c, s) in coefficients
        .chunks_exact(LANES)
        .zip(samples.chunks_exact(LANES))
    {
        for lane in 0..LANES {
            lanes[lane] += c[lane] * s[lane];
        }
    }
    lanes.iter().sum()
}

/// A streaming converter from one rate to another, for one stream.
#[derive(Debug)]
pub struct Resampler {
    filter: Arc<Filter>,
    /// `taps - 1` samples of history, then up to [`BLOCK`] new ones.
    window: Vec<f32>,
    /// Where the next output sits, in prototype samples from `window[0]`.
    position: usize,
}

impl Resampler {
    pub fn new(from: u32, to: u32) -> Result<Resampler, ResampleError> {
        let filter = Filter::shared(from, to)?;
        let history = filter.taps - 1;
        let mut window = Vec::with_capacity(history + BLOCK);
        window.resize(history, 0.0);
        Ok(Resampler {
            position: history * filter.up,
            filter,
            window,
        })
    }

    pub fn from_rate(&self) -> u32 {
        self.filter.from
    }

    pub fn to_rate(&self) -> u32 {
        self.filter.to
    }

    /// How late the output is relative to the input.
    pub fn delay(&self) -> Duration {
        Duration::from_secs_f64(self.delay_input_samples() / f64::from(self.filter.from))
    }

    /// [`Resampler::delay`] in input samples (may be fractional).
    pub fn delay_input_samples(&self) -> f64 {
        let len = self.filter.taps * self.filter.up;
        (len - 1) as f64 / 2.0 / self.filter.up as f64
    }

    /// The most output `input_len` more samples can produce (to reserve).
    pub fn max_output(&self, input_len: usize) -> usize {
        (input_len * self.filter.up).div_ceil(self.filter.down) + 1
    }

    /// Convert `input` and append the result to `out`. Chunk boundaries do
    /// not matter: the output is the same however the input is split.
    pub fn process(&mut self, input: &[i16], out: &mut Vec<i16>) {
        for block in input.chunks(BLOCK) {
            self.window.extend(block.iter().map(|&s| f32::from(s)));
            self.run(out);
        }
    }

    /// Push the last [`Resampler::delay`] of audio out by feeding silence,
    /// then start afresh for a new stream.
    pub fn flush(&mut self, out: &mut Vec<i16>) {
        let tail = self.delay_input_samples().ceil() as usize + 1;
        let zeros = [0i16; 64];
        let mut left = tail;
        while left > 0 {
            let n = left.min(zeros.len());
            self.process(&zeros[..n], out);
            left -= n;
        }
        self.reset();
    }

    /// Forget the input seen so far.
    pub fn reset(&mut self) {
        let history = self.filter.taps - 1;
        self.window.clear();
        self.window.resize(history, 0.0);
        self.position = history * self.filter.up;
    }

    fn run(&mut self, out: &mut Vec<i16>) {
        let Filter { up, down, taps, .. } = *self.filter;
        let available = self.window.len();
        // Step the position without dividing per output sample.
        let (whole, fraction) = (down / up, down % up);
        let (mut newest, mut phase) = (self.position / up, self.position % up);
        while newest < available {
            let coefficients = &self.filter.phases[phase * taps..(phase + 1) * taps];
            let samples = &self.window[newest + 1 - taps..=newest];
            let y = dot(coefficients, samples).round();
            out.push(y.clamp(f32::from(i16::MIN), f32::from(i16::MAX)) as i16);
            newest += whole;
            phase += fraction;
            if phase >= up {
                phase -= up;
                newest += 1;
            }
        }
        self.position = newest * up + phase;
        // Keep the `taps - 1` samples before the next output's newest input.
        let consumed = (self.position / up).min(available) + 1 - taps;
        self.window.drain(..consumed);
        self.position -= consumed * up;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATIOS: [(u32, u32); 6] = [
        (48_000, 16_000),
        (48_000, 24_000),
        (16_000, 48_000),
        (24_000, 48_000),
        (22_050, 48_000),
        (44_100, 48_000),
    ];

    fn sine(rate: u32, hz: f64, amplitude: f64, seconds: f64) -> Vec<i16> {
        let n = (f64::from(rate) * seconds) as usize;
        (0..n)
            .map(|i| {
                (amplitude * (2.0 * PI * hz * i as f64 / f64::from(rate)).sin()).round() as i16
            })
            .collect()
    }

    /// Amplitude of the `hz` component (Goertzel-like projection).
    fn amplitude_at(samples: &[i16], rate: u32, hz: f64) -> f64 {
        let (mut re, mut im) = (0.0, 0.0);
        for (i, &s) in samples.iter().enumerate() {
            let phase = 2.0 * PI * hz * i as f64 / f64::from(rate);
            re += f64::from(s) * phase.cos();
            im += f64::from(s) * phase.sin();
        }
        2.0 * (re * re + im * im).sqrt() / samples.len() as f64
    }

    fn rms(samples: &[i16]) -> f64 {
        let energy: f64 = samples.iter().map(|&s| f64::from(s).powi(2)).sum();
        (energy / samples.len() as f64).sqrt()
    }

    /// The output after the filter has filled, whole seconds only.
    fn settled(out: &[i16], rate: u32) -> &[i16] {
        let skip = rate as usize / 10;
        &out[skip..skip + rate as usize / 2]
    }

    fn convert(from: u32, to: u32, input: &[i16]) -> Vec<i16> {
        let mut resampler = Resampler::new(from, to).unwrap();
        let mut out = Vec::new();
        resampler.process(input, &mut out);
        out
    }

    #[test]
    fn a_sine_keeps_its_frequency_and_amplitude_at_every_supported_ratio() {
        for (from, to) in RATIOS {
            let out = convert(from, to, &sine(from, 1_000.0, 10_000.0, 1.0));
            let steady = settled(&out, to);
            let at_tone = amplitude_at(steady, to, 1_000.0);
            assert!(
                (at_tone - 10_000.0).abs() < 100.0,
                "{from}->{to}: {at_tone}"
            );
            // Nearly all the energy is the tone: nothing else was added.
            let rest = rms(steady).powi(2) - (at_tone * at_tone / 2.0);
            assert!(rest.max(0.0).sqrt() < 30.0, "{from}->{to}: residue {rest}");
        }
    }

    #[test]
    fn a_tone_above_the_new_nyquist_frequency_is_removed_not_folded_down() {
        for (to, tone) in [(16_000, 10_000.0), (16_000, 8_500.0), (24_000, 15_000.0)] {
            let out = convert(48_000, to, &sine(48_000, tone, 20_000.0, 1.0));
            let left = rms(settled(&out, to));
            let db = 20.0 * (left / (20_000.0 / 2f64.sqrt())).log10();
            assert!(db < -60.0, "48k->{to}: {tone} Hz only {db:.1} dB down");
        }
    }

    #[test]
    fn upsampling_adds_no_images_of_the_tone() {
        let out = convert(16_000, 48_000, &sine(16_000, 3_000.0, 20_000.0, 1.0));
        let steady = settled(&out, 48_000);
        for image in [13_000.0, 19_000.0] {
            let db = 20.0 * (amplitude_at(steady, 48_000, image) / 20_000.0).log10();
            assert!(db < -60.0, "image at {image} Hz: {db:.1} dB");
        }
    }

    #[test]
    fn irregular_chunks_give_the_same_samples_as_one_call_and_lengths_add_up() {
        for (from, to) in RATIOS {
            let input = sine(from, 440.0, 8_000.0, 2.0);
            let whole = convert(from, to, &input);
            let mut resampler = Resampler::new(from, to).unwrap();
            let mut chunked = Vec::new();
            let mut seed = 0x2545_f491u32;
            let mut rest = &input[..];
            while !rest.is_empty() {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let n = (seed >> 16) as usize % 1_500;
                let (chunk, tail) = rest.split_at(n.min(rest.len()));
                resampler.process(chunk, &mut chunked);
                rest = tail;
            }
            assert_eq!(chunked, whole, "{from}->{to}");
            let (up, down) = (to / gcd(from, to), from / gcd(from, to));
            let expected = (input.len() * up as usize).div_ceil(down as usize);
            assert_eq!(whole.len(), expected, "{from}->{to}");
        }
    }

    #[test]
    fn the_group_delay_is_under_ten_milliseconds_and_is_where_the_output_lags() {
        for (from, to) in RATIOS {
            let resampler = Resampler::new(from, to).unwrap();
            assert!(
                resampler.delay() < Duration::from_millis(10),
                "{from}->{to}"
            );
        }
        // An impulse comes out at the stated delay.
        let mut impulse = vec![0i16; 4_800];
        impulse[1_000] = 30_000;
        let out = convert(48_000, 16_000, &impulse);
        let peak = (0..out.len())
            .max_by_key(|&i| out[i].unsigned_abs())
            .unwrap();
        let resampler = Resampler::new(48_000, 16_000).unwrap();
        let expected = (1_000.0 + resampler.delay_input_samples()) / 3.0;
        assert!(
            (peak as f64 - expected).abs() <= 1.0,
            "{peak} vs {expected}"
        );
    }

    #[test]
    fn flush_lets_the_tail_out_and_starts_afresh() {
        let mut resampler = Resampler::new(22_050, 48_000).unwrap();
        let mut out = Vec::new();
        let input = sine(22_050, 440.0, 8_000.0, 0.1);
        resampler.process(&input, &mut out);
        resampler.flush(&mut out);
        let min_len = (input.len() as f64 * 48_000.0 / 22_050.0) as usize;
        assert!(out.len() >= min_len, "{} < {min_len}", out.len());
        let mut again = Vec::new();
        resampler.process(&input, &mut again);
        assert_eq!(again[..], out[..again.len()]);
    }

    #[test]
    fn unusable_rates_are_refused_with_a_reason() {
        assert_eq!(
            Resampler::new(4_000, 48_000).unwrap_err(),
            ResampleError::Rate(4_000)
        );
        assert!(matches!(
            Resampler::new(47_999, 48_000).unwrap_err(),
            ResampleError::Ratio { .. }
        ));
    }

    #[test]
    fn steady_state_processing_does_not_grow_any_buffer() {
        let mut resampler = Resampler::new(48_000, 16_000).unwrap();
        let mut out = Vec::with_capacity(resampler.max_output(960));
        let frame = sine(48_000, 300.0, 5_000.0, 0.02);
        let (window, output) = (resampler.window.capacity(), out.capacity());
        for _ in 0..500 {
            out.clear();
            resampler.process(&frame, &mut out);
        }
        assert_eq!(resampler.window.capacity(), window);
        assert_eq!(out.capacity(), output);
    }
}
