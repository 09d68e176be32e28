//! The simulator's "recognizer": no model, only the utterances scripted
//! callers registered. Audio is reduced to an energy envelope at 10 ms
//! resolution (robust to Opus coding and resampling, which keep timing and
//! loudness); a heard segment's words are those of the registered utterance
//! whose envelope correlates best with it. [`Listener`] is the streaming
//! state machine behind `/v1/listen`, fed samples and returning Deepgram's
//! events, with its own energy-based end of speech honouring `endpointing`.

use std::sync::Arc;

use crate::media::level_dbfs;

/// Frames quieter than this are silence.
pub const SPEECH_DBFS: f32 = -42.0;
/// The envelope's floor (digital silence would be −∞).
const FLOOR_DBFS: f32 = -70.0;
/// Below this correlation a segment is "unintelligible" (empty transcript).
const MIN_SCORE: f32 = 0.35;

/// A registered utterance: its words and its envelope, trimmed to speech.
#[derive(Debug, Clone, PartialEq)]
pub struct Utterance {
    pub id: u64,
    pub text: String,
    pub words: Vec<String>,
    pub envelope: Vec<f32>,
}

impl Utterance {
    pub fn new(id: u64, text: &str, samples: &[i16], sample_rate: u32) -> Utterance {
        let envelope = trim(&envelope(samples, sample_rate)).to_vec();
        Utterance {
            id,
            text: text.trim().to_string(),
            words: text.split_whitespace().map(str::to_string).collect(),
            envelope,
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

/// The envelope from its first to its last speech frame.
fn trim(env: &[f32]) -> &[f32] {
    let first = env.iter().position(|&e| e > SPEECH_DBFS);
    let last = env.iter().rposition(|&e| e > SPEECH_DBFS);
    match (first, last) {
        (Some(first), Some(last)) => &env[first..=last],
        _ => &[],
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

/// How well `heard` matches `utterance`: the best correlation over small
/// time shifts; a `prefix` match compares only as much as was heard, a
/// whole match also weighs how close the lengths are.
fn score(heard: &[f32], utterance: &[f32], prefix: bool) -> f32 {
    let mut best = -1.0f32;
    for lag in 0..=6usize {
        let (h, u) = if lag <= 3 {
            (heard.get(lag..).unwrap_or(&[]), utterance)
        } else {
            (heard, utterance.get(lag - 3..).unwrap_or(&[]))
        };
        best = best.max(pearson(h, u));
    }
    if prefix {
        best
    } else {
        let (h, u) = (heard.len() as f32, utterance.len() as f32);
        best * (h.min(u) / h.max(u).max(1.0)).sqrt()
    }
}

/// The utterance a heard envelope is, if any matches well enough.
pub fn best_match<'a>(
    heard: &[f32],
    utterances: &'a [Arc<Utterance>],
    prefix: bool,
) -> Option<&'a Arc<Utterance>> {
    let heard = trim(heard);
    utterances
        .iter()
        .map(|u| (u, score(heard, &u.envelope, prefix)))
        .filter(|(_, s)| *s >= MIN_SCORE)
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(u, _)| u)
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
    let gap = (gap_ms / 10).max(1) as usize;
    let mut words = Vec::new();
    let mut start = None;
    let mut silent = 0;
    for (i, &level) in env.iter().enumerate() {
        if level > SPEECH_DBFS {
            start.get_or_insert(i);
            silent = 0;
        } else if let Some(s) = start {
            silent += 1;
            if silent >= gap {
                if let Some(u) = best_match(&env[s..i], utterances, false) {
                    words.push(u.text.clone());
                }
                start = None;
            }
        }
    }
    if let Some(s) = start
        && let Some(u) = best_match(&env[s..], utterances, false)
    {
        words.push(u.text.clone());
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
    frame_len: usize,
    partial: Vec<i16>,
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
}

#[derive(Debug)]
struct Segment {
    envelope: Vec<f32>,
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
            frame_len: (sample_rate as usize / 100).max(1),
            partial: Vec::with_capacity(sample_rate as usize / 100),
            frame: 0,
            endpointing_frames: endpointing_ms.map_or(u64::MAX, |ms| (ms / 10).max(1)),
            utterance_end_frames: utterance_end_ms.map(|ms| (ms / 10).max(1)),
            vad_events,
            interim_results,
            deaf,
            segment: None,
            last_final_end: 0,
            pending_utterance_end: None,
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
                self.partial.clear();
                self.on_frame(level, out);
            }
        }
    }

    fn on_frame(&mut self, level: f32, out: &mut Vec<Heard>) {
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
                    envelope: vec![level],
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
                if speech {
                    segment.last_speech = now;
                }
                let spoken =
                    (segment.last_speech + 1 - (now + 1 - segment.envelope.len() as u64)) as usize;
                if now - segment.last_speech >= self.endpointing_frames {
                    let segment = self.segment.take().unwrap_or_else(|| unreachable!());
                    let text = self.words_of(&segment.envelope[..spoken], false);
                    self.pending_utterance_end = Some(segment.last_speech);
                    out.push(self.final_result(text, true, false));
                } else if self.interim_results
                    && (segment.envelope.len() as u64).is_multiple_of(INTERIM_EVERY)
                {
                    let heard = segment.envelope[..spoken].to_vec();
                    if let Some(u) = best_match(&heard, &self.utterances, true) {
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

    fn words_of(&self, heard: &[f32], prefix: bool) -> String {
        best_match(heard, &self.utterances, prefix)
            .map(|u| u.text.clone())
            .unwrap_or_default()
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
                self.words_of(&segment.envelope, false)
            }
            None => String::new(),
        };
        out.push(self.final_result(text, false, true));
    }

    /// `CloseStream`: like finalize, but only when speech is pending.
    pub fn close(&mut self, out: &mut Vec<Heard>) {
        if let Some(segment) = self.segment.take() {
            let text = self.words_of(&segment.envelope, false);
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
