//! The simulator's "recognizer": no model, only the utterances scripted
//! callers registered. Audio is reduced to 10 ms frames' level and
//! [`Shape`] (zero crossings and band balance; robust to Opus coding and
//! resampling, which keep timing, loudness and timbre); a heard segment's
//! words are those of the registered utterance that matches it best,
//! allowing for the frames a jitter buffer inserts and drops on the way
//! (dynamic time warping) and for pauses a stalled network adds. Like a
//! recognizer that uses what it heard before, a segment that only begins a
//! line is read again with the next one, so a line cut in two comes out
//! whole, once. [`Listener`] is the streaming state machine behind
//! `/v1/listen`, fed samples and returning Deepgram's events, with its own
//! energy-based end of speech honouring `endpointing`.

use std::sync::Arc;

use crate::media::level_dbfs;
use crate::media::resample::Resampler;

/// The rate a recognizer hears at; a line's [`Shape`]s are measured at it.
const LISTEN_RATE: u32 = 16_000;

/// Frames quieter than this are silence.
pub const SPEECH_DBFS: f32 = -42.0;
/// The envelope's floor (digital silence would be −∞).
const FLOOR_DBFS: f32 = -70.0;
/// Below this correlation a heard prefix matches nothing yet (no interim).
const MIN_SCORE: f32 = 0.35;
/// Below this warped match a whole segment is "unintelligible" (empty
/// transcript): unrelated lines score 0.4–0.7, a line through a lossy,
/// jittery network 0.76 and more (lines sharing most words, such as two
/// callers' emails, up to 0.86 against each other: the best match wins).
const MIN_WARPED_SCORE: f32 = 0.75;
/// A line that only starts a segment matches at least this well (an open
/// end finds some likeness in any speech: unrelated starts score to 0.8).
const MIN_SPLIT_SCORE: f32 = 0.88;
/// Speech shorter than this is no line (a click, a breath).
const MIN_LINE_FRAMES: usize = 10;

/// A registered utterance: its words and its envelope, trimmed to speech.
#[derive(Debug, Clone, PartialEq)]
pub struct Utterance {
    pub id: u64,
    pub text: String,
    pub words: Vec<String>,
    pub envelope: Vec<f32>,
    /// The [`Shape`] of each 10 ms frame (zeros in silence), as a 16 kHz
    /// recognizer hears it.
    pub shape: Vec<Shape>,
    /// The envelope and shapes standardized, as every match compares them.
    standard: Standard,
}

impl Utterance {
    pub fn new(id: u64, text: &str, samples: &[i16], sample_rate: u32) -> Utterance {
        let levels = envelope(samples, sample_rate);
        let mut shape = match Resampler::new(sample_rate, LISTEN_RATE) {
            Ok(mut resampler) if sample_rate != LISTEN_RATE => {
                let mut at_16k = Vec::new();
                resampler.process(samples, &mut at_16k);
                resampler.flush(&mut at_16k);
                shapes(&at_16k, LISTEN_RATE)
            }
            _ => shapes(samples, sample_rate),
        };
        shape.resize(levels.len(), [0.0; SHAPE]);
        let span = speech_span(&levels);
        let (envelope, shape) = without_long_pauses(
            &levels[span.clone()],
            &silenced(&shape[span.clone()], &levels[span]),
        );
        Utterance {
            id,
            text: text.trim().to_string(),
            words: text.split_whitespace().map(str::to_string).collect(),
            standard: Standard::of(&envelope, &shape),
            envelope,
            shape,
        }
    }

    pub fn duration_ms(&self) -> u64 {
        self.envelope.len() as u64 * 10
    }
}

/// 10 ms frame levels in dBFS, floored.
pub fn envelope(samples: &[i16], sample_rate: u32) -> Vec<f32> {
    let frame = (sample_rate as usize / 100).max(1);
    samples
        .chunks(frame)
        .filter(|c| c.len() == frame)
        .map(|c| level_dbfs(c).max(FLOOR_DBFS))
        .collect()
}

/// Where a frame's sound is, whatever its loudness: its zero crossings per
/// sample (the hiss of an "s" or "f"), then how far each of [`BANDS`] is
/// above or below the frame's mean band level in dB (the vowel's formants,
/// which tell "third" from "second" where loudness alone cannot).
pub type Shape = [f32; SHAPE];
/// The measures in a [`Shape`].
pub const SHAPE: usize = 1 + BANDS.len();

/// The frequencies (Hz) whose power makes up each band of a [`Shape`]:
/// first formants, second formants low and high, and above.
const BANDS: [&[f32]; 5] = [
    &[250.0, 500.0],
    &[750.0, 1000.0],
    &[1250.0, 1500.0, 1750.0],
    &[2000.0, 2250.0, 2500.0, 2750.0],
    &[3000.0, 3500.0, 4000.0, 4500.0],
];

/// The [`Shape`] of each 10 ms frame.
pub fn shapes(samples: &[i16], sample_rate: u32) -> Vec<Shape> {
    let frame = (sample_rate as usize / 100).max(1);
    let mut window = Vec::new();
    samples
        .chunks(frame)
        .filter(|c| c.len() == frame)
        .map(|c| frame_shape(c, sample_rate, &mut window))
        .collect()
}

/// One frame's [`Shape`]; `window` is scratch for its Hann window.
fn frame_shape(frame: &[i16], sample_rate: u32, window: &mut Vec<f32>) -> Shape {
    let n = frame.len().max(2);
    if window.len() != n {
        window.clear();
        window.extend(
            (0..n).map(|i| 0.5 - 0.5 * (std::f32::consts::TAU * i as f32 / (n - 1) as f32).cos()),
        );
    }
    let mut shape = [0.0; SHAPE];
    let changes = frame
        .windows(2)
        .filter(|w| (w[0] >= 0) != (w[1] >= 0))
        .count();
    shape[0] = changes as f32 / n as f32;
    let nyquist = sample_rate as f32 / 2.0;
    for (band, frequencies) in BANDS.iter().enumerate() {
        let power: f32 = frequencies
            .iter()
            .filter(|&&f| f < nyquist)
            .map(|&f| goertzel(frame, window, f / sample_rate as f32))
            .sum();
        shape[1 + band] = 10.0 * (power + 1e-3).log10();
    }
    let mean = shape[1..].iter().sum::<f32>() / BANDS.len() as f32;
    for level in &mut shape[1..] {
        *level -= mean;
    }
    shape
}

/// The power of `frame` (windowed) at `cycles` per sample.
fn goertzel(frame: &[i16], window: &[f32], cycles: f32) -> f32 {
    let coeff = 2.0 * (std::f32::consts::TAU * cycles).cos();
    let (mut s1, mut s2) = (0.0f32, 0.0f32);
    for (&x, &w) in frame.iter().zip(window) {
        let s0 = f32::from(x) / 32_768.0 * w + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    (s1 * s1 + s2 * s2 - coeff * s1 * s2).max(0.0)
}

/// Shapes count only where there is speech (silence's are noise).
fn silenced(shape: &[Shape], levels: &[f32]) -> Vec<Shape> {
    shape
        .iter()
        .zip(levels)
        .map(|(&c, &l)| if l > SPEECH_DBFS { c } else { [0.0; SHAPE] })
        .collect()
}

/// The frames from the first to the last speech frame.
fn speech_span(env: &[f32]) -> std::ops::Range<usize> {
    let first = env.iter().position(|&e| e > SPEECH_DBFS);
    let last = env.iter().rposition(|&e| e > SPEECH_DBFS);
    match (first, last) {
        (Some(first), Some(last)) => first..last + 1,
        _ => 0..0,
    }
}

fn pearson(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    if n < 3 {
        return 0.0;
    }
    let (a, b) = (&a[..n], &b[..n]);
    let mean = |x: &[f32]| x.iter().sum::<f32>() / n as f32;
    let (ma, mb) = (mean(a), mean(b));
    let (mut cov, mut va, mut vb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        cov += (x - ma) * (y - mb);
        va += (x - ma) * (x - ma);
        vb += (y - mb) * (y - mb);
    }
    if va <= f32::EPSILON || vb <= f32::EPSILON {
        return 0.0;
    }
    cov / (va.sqrt() * vb.sqrt())
}

/// How well `heard`, the start of a line, matches `utterance` so far: the
/// best correlation over small time shifts, over as much as was heard.
fn prefix_score(heard: &[f32], utterance: &[f32]) -> f32 {
    let mut best = -1.0f32;
    for lag in 0..=6usize {
        let (h, u) = if lag <= 3 {
            (heard.get(lag..).unwrap_or(&[]), utterance)
        } else {
            (heard, utterance.get(lag - 3..).unwrap_or(&[]))
        };
        best = best.max(pearson(h, u));
    }
    best
}

/// Frames' levels and shapes, each measure standardized over the frames
/// (zero mean, unit deviation): what [`warped`] compares.
#[derive(Debug, Clone, PartialEq, Default)]
struct Standard {
    level: Vec<f32>,
    shape: Vec<Shape>,
}

impl Standard {
    fn of(levels: &[f32], shapes: &[Shape]) -> Standard {
        Standard {
            level: standardized(levels),
            shape: standardized_shapes(shapes),
        }
    }

    fn len(&self) -> usize {
        self.level.len()
    }
}

/// How well the start of `heard` matches the whole of `line` once time is
/// allowed to stretch, and how many frames of `heard` it took: a jitter
/// buffer that runs dry plays a concealed 20 ms frame and one that runs
/// full drops one, so a line reaches a recognizer a few frames longer or
/// shorter in places, and a segment may hold two lines said back to back.
/// Dynamic time warping of the standardized level and shape, the end of
/// `heard` left open; 1 for the same shape, about 0 for unrelated ones.
///
/// Only a score of at least `min` counts: a pair that cannot reach it
/// (too far apart in length, or already too far apart in shape part way
/// through) scores 0 without the rest of the work.
fn warped(heard: &Standard, line: &Standard, open_end: bool, min: f32) -> (f32, usize) {
    let (n, m) = (heard.len(), line.len());
    if n < 3 || m < 3 || heard.shape.len() != n || line.shape.len() != m {
        return (0.0, n);
    }
    // A whole segment is held to the line from its start to its end (the
    // path near the proportional diagonal); an open end follows the line
    // at its own pace, and a line stretched by a fifth drifts that far.
    let band = if open_end {
        m / 4 + 4
    } else {
        (n.max(m) / 10).max(4)
    };
    let rows = if open_end { n.min(m + band) } else { n };
    // The score is at most the length ratio over 0.75 (below).
    let closest = if open_end {
        rows.min(m) as f32 / m as f32
    } else {
        n.min(m) as f32 / n.max(m) as f32
    };
    if closest / 0.75 < min {
        return (0.0, n);
    }
    // A path's cost never falls as it goes on, and a score of `min` allows
    // at most this much in all (the longest path weighs rows + m).
    let allowed = 2.0 * (1.0 - min) * (rows + m) as f32;
    let (a, b, za, zb) = (&heard.level, &line.level, &heard.shape, &line.shape);
    // Symmetric steps: a diagonal step costs twice, so every path to
    // (i, m) weighs i + m in all and costs compare across lengths.
    let mut previous = vec![f32::INFINITY; m + 1];
    let mut current = vec![f32::INFINITY; m + 1];
    previous[0] = 0.0;
    let mut best = (0.0f32, n);
    for i in 1..=rows {
        current.fill(f32::INFINITY);
        let center = if open_end { i } else { i * m / n };
        let (lo, hi) = (center.saturating_sub(band).max(1), (center + band).min(m));
        let mut cheapest = f32::INFINITY;
        for j in lo..=hi {
            let d = distance(a[i - 1] - b[j - 1], &za[i - 1], &zb[j - 1]);
            current[j] = (previous[j - 1] + 2.0 * d)
                .min(previous[j] + d + WARP_PENALTY)
                .min(current[j - 1] + d + WARP_PENALTY);
            cheapest = cheapest.min(current[j]);
        }
        std::mem::swap(&mut previous, &mut current);
        if cheapest > allowed {
            break;
        }
        if previous[m].is_finite() && (open_end || i == n) {
            // For standardized shapes the mean squared distance is 2 (1 - r).
            let shape = 1.0 - previous[m] / (i + m) as f32 / 2.0;
            // Far longer or shorter than the line is another line.
            let ratio = i.min(m) as f32 / i.max(m) as f32;
            let score = shape * (ratio / 0.75).min(1.0);
            if score > best.0 {
                best = (score, i);
            }
        }
    }
    if best.0 < min { (0.0, n) } else { best }
}

/// What stretching by one frame costs (in squared standard deviations):
/// enough that warping cannot make unrelated shapes look alike.
const WARP_PENALTY: f32 = 0.5;

/// What the bands weigh together against the level's and the crossings'
/// one each: enough to tell lines that share their loudness contour apart
/// (the callers' emails), little enough that a vowel Opus coloured still
/// matches ("the third one" against "the first one").
const BANDS_WEIGHT: f32 = 0.5;

/// Two frames' squared distance over their standardized measures,
/// weighted to one overall.
fn distance(level: f32, a: &Shape, b: &Shape) -> f32 {
    let crossings = (a[0] - b[0]).powi(2);
    let bands: f32 = a[1..]
        .iter()
        .zip(&b[1..])
        .map(|(x, y)| (x - y).powi(2))
        .sum();
    (level * level + crossings + bands * BANDS_WEIGHT / BANDS.len() as f32) / (2.0 + BANDS_WEIGHT)
}

/// Each measure of `shapes` standardized over the frames.
fn standardized_shapes(shapes: &[Shape]) -> Vec<Shape> {
    let mut out = vec![[0.0; SHAPE]; shapes.len()];
    for k in 0..SHAPE {
        let column: Vec<f32> = shapes.iter().map(|s| s[k]).collect();
        for (row, value) in out.iter_mut().zip(standardized(&column)) {
            row[k] = value;
        }
    }
    out
}

fn standardized(x: &[f32]) -> Vec<f32> {
    let n = x.len() as f32;
    let mean = x.iter().sum::<f32>() / n;
    let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
    let sd = var.sqrt().max(1e-3);
    x.iter().map(|v| (v - mean) / sd).collect()
}

/// The line whose start `heard` (the start of a segment) sounds like so
/// far, if any matches well enough (for interim results).
pub fn prefix_match<'a>(
    heard: &[f32],
    utterances: &'a [Arc<Utterance>],
) -> Option<&'a Arc<Utterance>> {
    let heard = &heard[speech_span(heard)];
    utterances
        .iter()
        .map(|u| (u, prefix_score(heard, &u.envelope)))
        .filter(|(_, s)| *s >= MIN_SCORE)
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(u, _)| u)
}

/// The registered line the start of `heard` is (by the warped match of
/// level and shape, so that lines one word apart stay apart when the
/// network stretched them), its score and the frames it took.
fn line_at<'a>(
    heard: &Standard,
    utterances: &'a [Arc<Utterance>],
) -> Option<(&'a Arc<Utterance>, f32, usize)> {
    // Lines of about its length first: the likeliest set the bar early.
    let mut by_length: Vec<&Arc<Utterance>> = utterances.iter().collect();
    by_length.sort_by_key(|u| u.envelope.len().abs_diff(heard.len()));
    let best = |open_end: bool, min: f32| {
        let mut best: Option<(&'a Arc<Utterance>, f32, usize)> = None;
        for &u in &by_length {
            // Only a line that beats the best so far counts, so the
            // others are dropped part way through.
            let bar = best.map_or(min, |(_, score, _)| score.max(min));
            let (score, frames) = warped(heard, &u.standard, open_end, bar);
            if score >= bar {
                best = Some((u, score, frames));
            }
        }
        best
    };
    // The segment is one line; failing that, it starts with one (said
    // back to back with the next), which must match more closely.
    best(false, MIN_WARPED_SCORE).or_else(|| best(true, MIN_SPLIT_SCORE))
}

/// How long a pause inside a line is kept when lines are compared
/// (frames): a network that stalled mid-line, or a caller who paused
/// longer than when the line was registered, says the same words.
const PAUSE_FRAMES: usize = 5;

/// `levels` and their `shape` with every pause longer than
/// [`PAUSE_FRAMES`] shortened to it.
fn without_long_pauses(levels: &[f32], shape: &[Shape]) -> (Vec<f32>, Vec<Shape>) {
    let (mut kept_levels, mut kept_shape) = (Vec::new(), Vec::new());
    let mut quiet = 0;
    for (&level, frame) in levels.iter().zip(shape) {
        quiet = if level > SPEECH_DBFS { 0 } else { quiet + 1 };
        if quiet <= PAUSE_FRAMES {
            kept_levels.push(level);
            kept_shape.push(*frame);
        }
    }
    (kept_levels, kept_shape)
}

/// Whether all of `heard` is only the start of a registered line (the
/// rest of it still to come: a caller cut off by a stalled network), given
/// the score of the whole line it was best `taken` for: the start of some
/// line fits it clearly better than any whole line does.
fn only_begins_a_line(heard: &Standard, utterances: &[Arc<Utterance>], taken: Option<f32>) -> bool {
    if heard.len() < MIN_LINE_FRAMES {
        return false;
    }
    // Beating the whole line taken is all that counts: a start that
    // cannot is dropped part way through.
    let beats_whole = |score: f32| taken.is_none_or(|taken| score > taken + CUT_SHORT_MARGIN);
    let bar = taken.map_or(MIN_SPLIT_SCORE, |taken| {
        (taken + CUT_SHORT_MARGIN).max(MIN_SPLIT_SCORE)
    });
    utterances.iter().filter(|u| !u.words.is_empty()).any(|u| {
        let (score, frames) = warped(&u.standard, heard, true, bar);
        score >= bar && beats_whole(score) && frames < u.envelope.len() * 9 / 10
    })
}

/// How much better the start of a line must fit a segment than the best
/// whole line for the segment to be read as a line cut short.
const CUT_SHORT_MARGIN: f32 = 0.03;

/// What a segment says: every registered line in it, one after the other
/// (a caller may say two lines with no pause between), and what is left
/// after them when that only begins a line.
struct Reading {
    words: Vec<String>,
    unfinished: Option<(Vec<f32>, Vec<Shape>)>,
}

fn read(heard: &[f32], shape: &[Shape], utterances: &[Arc<Utterance>]) -> Reading {
    let (heard, shape) = without_long_pauses(heard, &silenced(shape, heard));
    let mut reading = Reading {
        words: Vec::new(),
        unfinished: None,
    };
    let mut rest = speech_span(&heard);
    while rest.len() >= MIN_LINE_FRAMES {
        let (levels, shape) = (&heard[rest.clone()], &shape[rest.clone()]);
        let standard = Standard::of(levels, shape);
        let whole = line_at(&standard, utterances);
        if only_begins_a_line(&standard, utterances, whole.map(|(_, score, _)| score)) {
            reading.unfinished = Some((levels.to_vec(), shape.to_vec()));
            break;
        }
        let Some((line, _, frames)) = whole else {
            break;
        };
        reading.words.extend(line.words.iter().cloned());
        let after = rest.start + frames;
        let next = speech_span(&heard[after..rest.end]);
        rest = after + next.start..after + next.end;
    }
    reading
}

/// Silence after which a line begun is no longer expected to go on
/// (frames).
const UNFINISHED_FRAMES: u64 = 150;

/// Reads segments one after the other. It knows whole lines only, so a
/// segment that only begins one (or matches nothing) gives no words yet
/// and is heard again with the next segment, as a recognizer uses what it
/// heard before: a line a stall cut in two comes out whole, once.
#[derive(Debug, Default)]
struct Reader {
    unfinished: Option<(Vec<f32>, Vec<Shape>)>,
}

impl Reader {
    /// The words of the segment `heard`, which began `since_last` frames
    /// after the last one ended.
    fn words(
        &mut self,
        heard: &[f32],
        shape: &[Shape],
        utterances: &[Arc<Utterance>],
        since_last: u64,
    ) -> String {
        let unfinished = self
            .unfinished
            .take()
            .filter(|_| since_last <= UNFINISHED_FRAMES);
        if let Some((mut levels, mut shapes)) = unfinished {
            levels.extend_from_slice(heard);
            shapes.extend_from_slice(shape);
            let joined = read(&levels, &shapes, utterances);
            if !joined.words.is_empty() {
                self.unfinished = joined.unfinished;
                return joined.words.join(" ");
            }
        }
        let reading = read(heard, shape, utterances);
        self.unfinished = reading.unfinished;
        if self.unfinished.is_none() && reading.words.is_empty() {
            // Speech that matched nothing may begin a line too briefly to
            // tell which.
            let span = speech_span(heard);
            if span.len() >= MIN_LINE_FRAMES {
                self.unfinished = Some((heard[span.clone()].to_vec(), shape[span].to_vec()));
            }
        }
        reading.words.join(" ")
    }
}

/// The words of every speech segment in a whole recording (split at
/// `gap_ms` of silence), joined: what `/v1/audio/transcriptions` answers.
pub fn transcribe(
    samples: &[i16],
    sample_rate: u32,
    utterances: &[Arc<Utterance>],
    gap_ms: u64,
) -> String {
    let env = envelope(samples, sample_rate);
    let shape = shapes(samples, sample_rate);
    let gap = (gap_ms / 10).max(1) as usize;
    let mut reader = Reader::default();
    let mut words = Vec::new();
    let mut start = None;
    let mut silent = 0;
    let mut last_end = 0;
    let mut segment = |range: std::ops::Range<usize>, last_end: &mut usize| {
        let since = range.start.saturating_sub(*last_end) as u64;
        *last_end = range.end;
        let heard = reader.words(&env[range.clone()], &shape[range], utterances, since);
        if !heard.is_empty() {
            words.push(heard);
        }
    };
    for (i, &level) in env.iter().enumerate() {
        if level > SPEECH_DBFS {
            start.get_or_insert(i);
            silent = 0;
        } else if let Some(s) = start {
            silent += 1;
            if silent >= gap {
                segment(s..i + 1 - silent, &mut last_end);
                start = None;
            }
        }
    }
    if let Some(s) = start {
        segment(s..env.len(), &mut last_end);
    }
    words.join(" ")
}

/// What the streaming recognizer says.
#[derive(Debug, Clone, PartialEq)]
pub enum Heard {
    SpeechStarted {
        at: f64,
    },
    Result {
        transcript: String,
        is_final: bool,
        speech_final: bool,
        from_finalize: bool,
        start: f64,
        duration: f64,
    },
    UtteranceEnd {
        last_word_end: f64,
    },
}

/// Streaming recognition with energy-based endpointing, fed samples.
#[derive(Debug)]
pub struct Listener {
    utterances: Vec<Arc<Utterance>>,
    sample_rate: u32,
    frame_len: usize,
    partial: Vec<i16>,
    /// Scratch for the frames' Hann window.
    window: Vec<f32>,
    frame: u64,
    endpointing_frames: u64,
    utterance_end_frames: Option<u64>,
    vad_events: bool,
    interim_results: bool,
    /// Whether the recognizer hears nothing at all (a fault).
    deaf: bool,
    segment: Option<Segment>,
    last_final_end: u64,
    pending_utterance_end: Option<u64>,
    /// What earlier segments leave open for the next.
    reader: Reader,
    /// The last speech frame of the segment read last.
    last_speech_end: u64,
}

#[derive(Debug)]
struct Segment {
    /// The frame it began at.
    started: u64,
    envelope: Vec<f32>,
    shape: Vec<Shape>,
    last_speech: u64,
    revealed: usize,
}

/// How often interim results are considered while speech goes on (frames).
const INTERIM_EVERY: u64 = 25;
/// Empty finals during long silence, as Deepgram sends them (frames).
const SILENT_FINAL_EVERY: u64 = 300;

impl Listener {
    pub fn new(
        utterances: Vec<Arc<Utterance>>,
        sample_rate: u32,
        endpointing_ms: Option<u64>,
        utterance_end_ms: Option<u64>,
        vad_events: bool,
        interim_results: bool,
        deaf: bool,
    ) -> Listener {
        Listener {
            utterances,
            sample_rate,
            frame_len: (sample_rate as usize / 100).max(1),
            partial: Vec::with_capacity(sample_rate as usize / 100),
            window: Vec::new(),
            frame: 0,
            endpointing_frames: endpointing_ms.map_or(u64::MAX, |ms| (ms / 10).max(1)),
            utterance_end_frames: utterance_end_ms.map(|ms| (ms / 10).max(1)),
            vad_events,
            interim_results,
            deaf,
            segment: None,
            last_final_end: 0,
            pending_utterance_end: None,
            reader: Reader::default(),
            last_speech_end: 0,
        }
    }

    /// Seconds of audio heard.
    pub fn heard_seconds(&self) -> f64 {
        self.frame as f64 / 100.0
    }

    /// Recognize against `utterances` from now on (registered later).
    pub fn set_utterances(&mut self, utterances: Vec<Arc<Utterance>>) {
        self.utterances = utterances;
    }

    /// Feed samples; events come out in order.
    pub fn feed(&mut self, samples: &[i16], out: &mut Vec<Heard>) {
        for &sample in samples {
            self.partial.push(sample);
            if self.partial.len() == self.frame_len {
                let level = if self.deaf {
                    FLOOR_DBFS
                } else {
                    level_dbfs(&self.partial).max(FLOOR_DBFS)
                };
                // A quiet frame's shape is never compared (see `silenced`).
                let shape = if level > SPEECH_DBFS {
                    frame_shape(&self.partial, self.sample_rate, &mut self.window)
                } else {
                    [0.0; SHAPE]
                };
                self.partial.clear();
                self.on_frame(level, shape, out);
            }
        }
    }

    fn on_frame(&mut self, level: f32, shape: Shape, out: &mut Vec<Heard>) {
        let now = self.frame;
        self.frame += 1;
        let speech = level > SPEECH_DBFS;
        match self.segment.as_mut() {
            None if speech => {
                if self.vad_events {
                    out.push(Heard::SpeechStarted {
                        at: now as f64 / 100.0,
                    });
                }
                self.pending_utterance_end = None;
                self.segment = Some(Segment {
                    started: now,
                    envelope: vec![level],
                    shape: vec![shape],
                    last_speech: now,
                    revealed: 0,
                });
            }
            None => {
                if let Some(last_word) = self.pending_utterance_end
                    && self
                        .utterance_end_frames
                        .is_some_and(|gap| now - last_word >= gap)
                {
                    self.pending_utterance_end = None;
                    out.push(Heard::UtteranceEnd {
                        last_word_end: (last_word + 1) as f64 / 100.0,
                    });
                }
                if now + 1 - self.last_final_end >= SILENT_FINAL_EVERY {
                    out.push(self.final_result(String::new(), false, false));
                }
            }
            Some(segment) => {
                segment.envelope.push(level);
                segment.shape.push(shape);
                if speech {
                    segment.last_speech = now;
                }
                let spoken =
                    (segment.last_speech + 1 - (now + 1 - segment.envelope.len() as u64)) as usize;
                if now - segment.last_speech >= self.endpointing_frames {
                    let segment = self.segment.take().unwrap_or_else(|| unreachable!());
                    let text = self.words_of(&segment, spoken);
                    self.pending_utterance_end = Some(segment.last_speech);
                    out.push(self.final_result(text, true, false));
                } else if self.interim_results
                    && (segment.envelope.len() as u64).is_multiple_of(INTERIM_EVERY)
                {
                    let heard = segment.envelope[..spoken].to_vec();
                    if let Some(u) = prefix_match(&heard, &self.utterances) {
                        let fraction = heard.len() as f32 / u.envelope.len().max(1) as f32;
                        let reveal =
                            ((u.words.len() as f32 * fraction) as usize).min(u.words.len());
                        if let Some(segment) = self.segment.as_mut()
                            && reveal > segment.revealed
                        {
                            segment.revealed = reveal;
                            out.push(Heard::Result {
                                transcript: u.words[..reveal].join(" "),
                                is_final: false,
                                speech_final: false,
                                from_finalize: false,
                                start: self.last_final_end as f64 / 100.0,
                                duration: (self.frame - self.last_final_end) as f64 / 100.0,
                            });
                        }
                    }
                }
            }
        }
    }

    /// The words of `segment`'s first `frames` frames.
    fn words_of(&mut self, segment: &Segment, frames: usize) -> String {
        let frames = frames.min(segment.envelope.len()).min(segment.shape.len());
        let since = segment.started.saturating_sub(self.last_speech_end);
        self.last_speech_end = segment.last_speech;
        self.reader.words(
            &segment.envelope[..frames],
            &segment.shape[..frames],
            &self.utterances,
            since,
        )
    }

    /// A final covering everything since the last final.
    fn final_result(
        &mut self,
        transcript: String,
        speech_final: bool,
        from_finalize: bool,
    ) -> Heard {
        let start = self.last_final_end as f64 / 100.0;
        let duration = (self.frame - self.last_final_end) as f64 / 100.0;
        self.last_final_end = self.frame;
        Heard::Result {
            transcript,
            is_final: true,
            speech_final,
            from_finalize,
            start,
            duration,
        }
    }

    /// `Finalize`: the final result of everything heard so far.
    pub fn finalize(&mut self, out: &mut Vec<Heard>) {
        let text = match self.segment.take() {
            Some(segment) => {
                self.pending_utterance_end = Some(segment.last_speech);
                self.words_of(&segment, usize::MAX)
            }
            None => String::new(),
        };
        out.push(self.final_result(text, false, true));
    }

    /// `CloseStream`: like finalize, but only when speech is pending.
    pub fn close(&mut self, out: &mut Vec<Heard>) {
        if let Some(segment) = self.segment.take() {
            let text = self.words_of(&segment, usize::MAX);
            out.push(self.final_result(text, true, false));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testbed::speech::voice;

    fn registered() -> Vec<Arc<Utterance>> {
        [
            "I would like to book a demo",
            "my email is ada at example dot com",
            "yes",
        ]
        .iter()
        .enumerate()
        .map(|(i, text)| {
            Arc::new(Utterance::new(
                i as u64,
                text,
                &voice::synthesize(text, 16_000),
                16_000,
            ))
        })
        .collect()
    }

    #[test]
    fn a_registered_utterance_is_recognized_from_its_audio() {
        let utterances = registered();
        let audio = voice::synthesize("my email is ada at example dot com", 16_000);
        assert_eq!(
            transcribe(&audio, 16_000, &utterances, 300),
            "my email is ada at example dot com"
        );
    }

    #[test]
    fn recognition_survives_resampling_and_a_change_of_level() {
        let utterances = registered();
        let audio: Vec<i16> = voice::synthesize("I would like to book a demo", 48_000)
            .iter()
            .map(|s| s / 3)
            .collect();
        assert_eq!(
            transcribe(&audio, 48_000, &utterances, 300),
            "I would like to book a demo"
        );
    }

    #[test]
    fn the_stream_reveals_words_then_ends_the_utterance_after_the_endpointing_silence() {
        let utterances = registered();
        let mut listener =
            Listener::new(utterances, 16_000, Some(300), Some(1000), true, true, false);
        let mut out = Vec::new();
        listener.feed(
            &voice::synthesize("I would like to book a demo", 16_000),
            &mut out,
        );
        listener.feed(&vec![0; 16_000 * 2], &mut out);
        assert!(matches!(out[0], Heard::SpeechStarted { .. }));
        let interims: Vec<&Heard> = out
            .iter()
            .filter(|h| {
                matches!(
                    h,
                    Heard::Result {
                        is_final: false,
                        ..
                    }
                )
            })
            .collect();
        assert!(interims.len() >= 2, "{out:?}");
        let finals: Vec<&Heard> = out
            .iter()
            .filter(|h| {
                matches!(
                    h,
                    Heard::Result {
                        speech_final: true,
                        ..
                    }
                )
            })
            .collect();
        assert!(
            matches!(finals[..], [Heard::Result { transcript, .. }] if transcript == "I would like to book a demo"),
            "{out:?}"
        );
        assert!(out.iter().any(|h| matches!(h, Heard::UtteranceEnd { .. })));
    }

    #[test]
    fn silence_and_noise_are_not_words() {
        let utterances = registered();
        assert_eq!(transcribe(&vec![0; 32_000], 16_000, &utterances, 300), "");
    }
}
