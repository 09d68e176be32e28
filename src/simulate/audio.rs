//! The audio checks of `simulate --media audio`, computed from what each
//! caller heard (its agent-audio spans, captions and the lines it said, in
//! Unix microseconds), the tool calls' start times seen on the agent's
//! side, the session's transcript and the call's voice report.

use crate::recovery::Entry;
use crate::session::SessionReport;
use crate::voice::call::VoiceReport;

use super::voice::VoiceCallRecord;

/// One finished spoken call, as the checks see it.
pub struct AudioCall<'a> {
    pub record: &'a VoiceCallRecord,
    /// When each tool call started (Unix µs), from the agent's side.
    pub tool_starts: &'a [u64],
    pub session: Option<&'a SessionReport>,
    pub voice: Option<&'a VoiceReport>,
}

/// What the audio checks found over a run.
#[derive(Debug, Default)]
pub struct AudioChecked {
    pub greeting_ms: Vec<f64>,
    pub mouth_to_ear_ms: Vec<f64>,
    pub first_audio_after_tool_ms: Vec<f64>,
    pub dead_air_ms: Vec<f64>,
    pub interruption_stop_ms: Vec<f64>,
    pub lost_caller_turns: u64,
    pub truncation_mismatches: u64,
    pub playout_underruns: u64,
    /// Lines the agent did not take by ear, which the caller then typed.
    pub typed_lines: u64,
    /// Calls whose voice report never came (the pipeline could not start).
    pub voice_reports_missing: u64,
    /// Seconds of call, dispatch to hang-up, summed.
    pub call_seconds: f64,
}

fn ms(from_us: u64, to_us: u64) -> f64 {
    to_us.saturating_sub(from_us) as f64 / 1000.0
}

/// Lower-case words without punctuation, for comparing what was said
/// with what the session heard.
pub fn words(text: &str) -> Vec<String> {
    text.split_whitespace()
        .map(|w| {
            w.chars()
                .filter(|c| c.is_alphanumeric() || *c == '@' || *c == '.')
                .collect::<String>()
                .trim_matches('.')
                .to_lowercase()
        })
        .filter(|w| !w.is_empty())
        .collect()
}

fn contains_words(haystack: &[String], needle: &[String]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

impl AudioChecked {
    pub fn add(&mut self, call: AudioCall<'_>) {
        let record = call.record;
        let spans = &record.audible;
        let call_end = record
            .said
            .last()
            .and_then(|l| l.answered_us)
            .into_iter()
            .chain(spans.last().map(|s| s[1]))
            .max()
            .unwrap_or(record.dispatched_us);
        if record.dispatched_us > 0 {
            self.call_seconds += ms(record.dispatched_us, call_end) / 1000.0;
        }
        if let Some(greeted) = record.greeted_us {
            self.greeting_ms.push(ms(record.dispatched_us, greeted));
        }
        for (index, line) in record.said.iter().enumerate() {
            self.typed_lines += u64::from(line.typed);
            if line.typed {
                continue;
            }
            let window_end = line
                .answered_us
                .or_else(|| record.said.get(index + 1).map(|next| next.start_us))
                .unwrap_or(call_end)
                .max(line.end_us);
            let first = spans.iter().find(|s| s[0] >= line.end_us);
            if let Some(first) = first.filter(|s| s[0] <= window_end) {
                self.mouth_to_ear_ms.push(ms(line.end_us, first[0]));
            }
            self.dead_air_ms
                .push(dead_air(spans, line.end_us, window_end));
        }
        for &started in call.tool_starts {
            let heard = match spans.iter().find(|s| s[1] > started) {
                Some(span) if span[0] <= started => 0.0,
                Some(span) => ms(started, span[0]),
                None => ms(started, call_end.max(started)),
            };
            self.first_audio_after_tool_ms.push(heard);
        }
        for barge in &record.barge_ins {
            let gap = 100_000;
            if let Some(span) = spans
                .iter()
                .find(|s| s[0] <= barge.start_us && barge.start_us <= s[1] + gap)
            {
                self.interruption_stop_ms
                    .push(ms(barge.start_us, span[1].max(barge.start_us)));
            }
        }
        if let Some(session) = call.session {
            let heard: Vec<Vec<String>> = session
                .state
                .transcript
                .iter()
                .filter_map(|entry| match entry {
                    Entry::User { text } => Some(words(text)),
                    _ => None,
                })
                .collect();
            for line in &record.said {
                let said = words(&line.text);
                if !heard.iter().any(|turn| contains_words(turn, &said)) {
                    self.lost_caller_turns += 1;
                    tracing::warn!(
                        line = %line.text,
                        heard = ?heard.iter().map(|t| t.join(" ")).collect::<Vec<_>>(),
                        "a caller's line never reached the session"
                    );
                }
            }
            self.truncation_mismatches += truncation_mismatches(session, &record.captions);
        }
        match call.voice {
            Some(voice) => self.playout_underruns += voice.underruns,
            None => self.voice_reports_missing += 1,
        }
    }
}

/// The longest silence between `from` and the start of the agent's last
/// stretch of audio before `to` (all of it when the agent said nothing).
fn dead_air(spans: &[[u64; 2]], from: u64, to: u64) -> f64 {
    let mut longest = 0.0f64;
    let mut silent_since = from;
    let mut spoke = false;
    for span in spans.iter().filter(|s| s[1] > from && s[0] < to) {
        if span[0] > silent_since {
            longest = longest.max(ms(silent_since, span[0]));
        }
        silent_since = silent_since.max(span[1]);
        spoke = true;
    }
    if spoke { longest } else { ms(from, to) }
}

/// Interrupted lines whose transcript says the caller heard more words
/// than the captions the caller received for that line.
fn truncation_mismatches(session: &SessionReport, captions: &[String]) -> u64 {
    let mut mismatches = 0;
    for entry in session.state.transcript.iter() {
        let Entry::Interrupted { heard } = entry else {
            continue;
        };
        for line in heard {
            let spoken = words(&line.spoken);
            let kept = words(&line.heard).len();
            if kept == 0 {
                continue;
            }
            let captioned: usize = captions
                .iter()
                .map(|c| words(c))
                .filter(|c| contains_words(&spoken, c))
                .map(|c| c.len())
                .sum();
            if kept > captioned {
                mismatches += 1;
            }
        }
    }
    mismatches
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulate::voice::{BargeInRecord, SaidLine};

    const MS: u64 = 1000;

    fn said(text: &str, start: u64, end: u64, answered: u64) -> SaidLine {
        SaidLine {
            text: text.into(),
            start_us: start * MS,
            end_us: end * MS,
            answered_us: Some(answered * MS),
            ..SaidLine::default()
        }
    }

    fn record() -> VoiceCallRecord {
        VoiceCallRecord {
            dispatched_us: MS,
            greeted_us: Some(501 * MS),
            said: vec![said("Hi there", 3_000, 4_000, 9_000)],
            // Greeting, then the answer: audio 4 300-5 000, silence to
            // 6 200, then 6 200-8 900.
            audible: vec![
                [501 * MS, 2_500 * MS],
                [4_300 * MS, 5_000 * MS],
                [6_200 * MS, 8_900 * MS],
            ],
            ..VoiceCallRecord::default()
        }
    }

    #[test]
    fn mouth_to_ear_dead_air_and_tool_audio_come_from_the_spans() {
        let record = record();
        let mut checked = AudioChecked::default();
        checked.add(AudioCall {
            record: &record,
            tool_starts: &[4_500 * MS, 5_100 * MS],
            session: None,
            voice: Some(&VoiceReport::default()),
        });
        assert_eq!(checked.greeting_ms, vec![500.0]);
        assert_eq!(checked.mouth_to_ear_ms, vec![300.0]);
        assert_eq!(checked.dead_air_ms, vec![1200.0], "5 000 → 6 200");
        assert_eq!(
            checked.first_audio_after_tool_ms,
            vec![0.0, 1100.0],
            "mid-sentence: heard at once; in the silence: at 6 200"
        );
        assert!((checked.call_seconds - 8.999).abs() < 1e-6);
    }

    #[test]
    fn a_turn_the_agent_never_answered_is_all_dead_air() {
        let mut record = record();
        record.audible.truncate(1);
        let mut checked = AudioChecked::default();
        checked.add(AudioCall {
            record: &record,
            tool_starts: &[],
            session: None,
            voice: None,
        });
        assert!(checked.mouth_to_ear_ms.is_empty());
        assert_eq!(checked.dead_air_ms, vec![5000.0]);
        assert_eq!(checked.voice_reports_missing, 1);
    }

    #[test]
    fn interruption_stop_is_measured_to_the_end_of_the_agents_stretch() {
        let mut record = record();
        record.barge_ins.push(BargeInRecord {
            real: true,
            start_us: 7_000 * MS,
        });
        // A barge-in while the agent was silent is not an interruption.
        record.barge_ins.push(BargeInRecord {
            real: true,
            start_us: 5_500 * MS,
        });
        let mut checked = AudioChecked::default();
        checked.add(AudioCall {
            record: &record,
            tool_starts: &[],
            session: None,
            voice: None,
        });
        assert_eq!(checked.interruption_stop_ms, vec![1900.0]);
    }

    #[test]
    fn words_ignore_case_and_punctuation_but_keep_emails() {
        assert_eq!(
            words("Sure, it's Ana.Lima@acme.io."),
            vec!["sure", "its", "ana.lima@acme.io"]
        );
        assert!(contains_words(
            &words("well sure, it's ana@x.io I think"),
            &words("Sure, it's ana@x.io")
        ));
        assert!(!contains_words(&words("sure"), &words("")));
    }
}
