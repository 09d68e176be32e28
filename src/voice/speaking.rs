//! The agent's lines on their way out: a queue of lines in the order the
//! session said them, each turned into outbox segments — a cached phrase as
//! one shared segment, anything else sentence by sentence from the voices —
//! and the bookkeeping that says, when the caller cuts in, how much of each
//! line they heard, and which captions to send as the audio plays.

use crate::recovery::{HeardLine, SpeechKind};
use std::collections::{BTreeMap, HashMap, VecDeque};

use super::captions::{Caption, fraction_played};
use super::outbox::{FRAME, OutboxEvent, Played, SegmentId};

/// A line the session said, not yet playing.
#[derive(Debug, Clone)]
pub struct Line {
    pub number: u64,
    pub text: String,
    pub kind: SpeechKind,
    pub interruptible: bool,
    /// Said by the session (in its transcript), not by the voice pipeline
    /// itself (a cached filler while a voice is slow, a voice-trouble line).
    pub from_session: bool,
}

impl Line {
    /// A line that only keeps the caller company (a filler, a "still on
    /// it"): it may play ahead of lines still waiting for their voice, and
    /// it is pointless once the wait it covers is over.
    pub fn is_filler(&self) -> bool {
        matches!(self.kind, SpeechKind::Filler | SpeechKind::StillWorking)
    }
}

/// A caption change for the room (LiveKit's `lk.transcription` streams).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaptionUpdate {
    /// A segment started playing.
    Open { segment: SegmentId },
    /// Words the caller has now heard.
    Text { segment: SegmentId, delta: String },
    /// The segment is over; `text` is what was heard of it in all.
    Close { segment: SegmentId, text: String },
}

#[derive(Debug)]
struct Segment {
    line: u64,
    caption: Caption,
    /// Packets queued so far, and whether that is all.
    queued: u32,
    complete: bool,
    played: u32,
    finished: bool,
    opened: bool,
}

#[derive(Debug)]
struct Playing {
    text: String,
    from_session: bool,
    sentences: Vec<String>,
    /// The latest segment of each sentence (a restarted sentence gets a new one).
    segments: Vec<Option<SegmentId>>,
}

/// Every line from the session that has not been fully heard.
#[derive(Debug, Default)]
pub struct Lines {
    waiting: VecDeque<Line>,
    playing: BTreeMap<u64, Playing>,
    segments: HashMap<SegmentId, Segment>,
    next_segment: SegmentId,
}

impl Lines {
    pub fn push(&mut self, line: Line) {
        self.waiting.push_back(line);
    }

    /// The next line to start, once the one before it is fully queued.
    pub fn next_waiting(&mut self) -> Option<Line> {
        self.waiting.pop_front()
    }

    pub fn has_waiting(&self) -> bool {
        !self.waiting.is_empty()
    }

    /// Whether the next line to start is a filler.
    pub fn filler_next(&self) -> bool {
        self.waiting.front().is_some_and(Line::is_filler)
    }

    /// The first waiting filler that `ready` says can play at once (a
    /// cached one), taken out of the queue to play ahead of the lines
    /// before it.
    pub fn take_filler(&mut self, ready: impl Fn(&Line) -> bool) -> Option<Line> {
        let at = self
            .waiting
            .iter()
            .position(|line| line.is_filler() && ready(line))?;
        self.waiting.remove(at)
    }

    /// Withdraw every filler still waiting: what it covered is over.
    pub fn withdraw_fillers(&mut self) -> Vec<Line> {
        if !self.waiting.iter().any(Line::is_filler) {
            return Vec::new();
        }
        let (fillers, rest): (Vec<Line>, Vec<Line>) = std::mem::take(&mut self.waiting)
            .into_iter()
            .partition(Line::is_filler);
        self.waiting = rest.into();
        fillers
    }

    /// Whether anything is still to be heard (waiting or playing).
    pub fn is_idle(&self) -> bool {
        self.waiting.is_empty() && self.playing.is_empty()
    }

    /// A line starts playing: `sentences` is how it will be cut into segments.
    pub fn start(&mut self, line: &Line, sentences: Vec<String>) {
        let count = sentences.len();
        self.playing.insert(
            line.number,
            Playing {
                text: line.text.clone(),
                from_session: line.from_session,
                sentences,
                segments: vec![None; count],
            },
        );
    }

    /// A new segment for `sentence` of `line`; `packets` is its length when
    /// known up front (a cached phrase).
    pub fn open_segment(&mut self, line: u64, sentence: usize, packets: Option<u32>) -> SegmentId {
        let id = self.next_segment;
        self.next_segment += 1;
        let text = self
            .playing
            .get(&line)
            .and_then(|p| p.sentences.get(sentence))
            .cloned()
            .unwrap_or_default();
        if let Some(playing) = self.playing.get_mut(&line)
            && let Some(slot) = playing.segments.get_mut(sentence)
        {
            *slot = Some(id);
        }
        self.segments.insert(
            id,
            Segment {
                line,
                caption: Caption::new(text),
                queued: packets.unwrap_or(0),
                complete: packets.is_some(),
                played: 0,
                finished: false,
                opened: false,
            },
        );
        id
    }

    /// A packet was queued for `segment`.
    pub fn queued(&mut self, segment: SegmentId) {
        if let Some(s) = self.segments.get_mut(&segment) {
            s.queued += 1;
        }
    }

    /// No more packets will come for `segment`.
    pub fn complete(&mut self, segment: SegmentId) {
        if let Some(s) = self.segments.get_mut(&segment) {
            s.complete = true;
        }
    }

    /// The segment currently open for `sentence` of `line`.
    pub fn segment_of(&self, line: u64, sentence: usize) -> Option<SegmentId> {
        self.playing
            .get(&line)?
            .segments
            .get(sentence)
            .copied()
            .flatten()
    }

    /// A packet of `segment` was played: the caption words it reached.
    pub fn played(&mut self, segment: SegmentId, out: &mut Vec<CaptionUpdate>) {
        let Some(s) = self.segments.get_mut(&segment) else {
            return;
        };
        s.played += 1;
        if !s.opened {
            s.opened = true;
            out.push(CaptionUpdate::Open { segment });
        }
        let total = s.complete.then(|| FRAME * s.queued);
        let fraction = fraction_played(s.caption.text(), FRAME * s.played, total);
        if let Some(delta) = s.caption.advance(fraction) {
            out.push(CaptionUpdate::Text {
                segment,
                delta: delta.to_string(),
            });
        }
    }

    /// What an outbox event means for captions and for the lines.
    pub fn on_event(&mut self, event: OutboxEvent, out: &mut Vec<CaptionUpdate>) {
        let OutboxEvent::Finished { id, .. } = event else {
            return;
        };
        let Some(s) = self.segments.get_mut(&id) else {
            return;
        };
        s.finished = true;
        if let Some(delta) = s.caption.advance(1.0) {
            out.push(CaptionUpdate::Text {
                segment: id,
                delta: delta.to_string(),
            });
        }
        out.push(CaptionUpdate::Close {
            segment: id,
            text: s.caption.heard().to_string(),
        });
        let line = s.line;
        self.forget_if_heard(line);
    }

    /// The line's last sentence was queued: once its segments have all
    /// played it is done.
    pub fn all_queued(&mut self, line: u64) {
        self.forget_if_heard(line);
    }

    /// Sentences of `line` no voice could speak: their captions go out as
    /// text (the caller can read what they could not hear), and the line
    /// counts as heard from them on.
    pub fn unspoken(&mut self, line: u64, from_sentence: usize, out: &mut Vec<CaptionUpdate>) {
        let Some(playing) = self.playing.get(&line) else {
            return;
        };
        let texts: Vec<String> =
            playing.sentences[from_sentence.min(playing.sentences.len())..].to_vec();
        for text in texts {
            let segment = self.next_segment;
            self.next_segment += 1;
            out.push(CaptionUpdate::Open { segment });
            out.push(CaptionUpdate::Text {
                segment,
                delta: text.clone(),
            });
            out.push(CaptionUpdate::Close { segment, text });
        }
        if let Some(playing) = self.playing.get_mut(&line) {
            playing.sentences.truncate(from_sentence);
            playing.segments.truncate(from_sentence);
        }
        self.forget_if_heard(line);
    }

    /// The caller cut in: `played` is what the outbox says of the segments
    /// it held. Returns what the caller heard of every line not fully heard,
    /// the captions that close, and forgets them all. Only the session's
    /// lines are reported: the pipeline's own it never said.
    pub fn cut(&mut self, played: &[Played], out: &mut Vec<CaptionUpdate>) -> Vec<HeardLine> {
        for p in played {
            if let Some(s) = self.segments.get_mut(&p.id) {
                s.played = p.frames;
                if let Some(total) = p.of {
                    s.queued = total;
                    s.complete = true;
                }
            }
        }
        let mut heard = Vec::new();
        for (_, playing) in std::mem::take(&mut self.playing) {
            let mut words = String::new();
            for (sentence, segment) in playing.segments.iter().enumerate() {
                let Some(s) = segment.and_then(|id| self.segments.get(&id)) else {
                    break;
                };
                let part = if s.finished {
                    playing.sentences[sentence].as_str()
                } else {
                    let total = s.complete.then(|| FRAME * s.queued);
                    let fraction = fraction_played(s.caption.text(), FRAME * s.played, total);
                    super::captions::heard_words(s.caption.text(), fraction)
                };
                if !part.is_empty() {
                    if !words.is_empty() {
                        words.push(' ');
                    }
                    words.push_str(part);
                }
                if !s.finished {
                    break;
                }
            }
            if playing.from_session {
                heard.push(HeardLine {
                    spoken: playing.text,
                    heard: words,
                });
            }
        }
        for line in self.waiting.drain(..).filter(|line| line.from_session) {
            heard.push(HeardLine {
                spoken: line.text,
                heard: String::new(),
            });
        }
        for (id, s) in self.segments.drain() {
            if s.opened && !s.finished {
                let total = s.complete.then(|| FRAME * s.queued);
                let fraction = fraction_played(s.caption.text(), FRAME * s.played, total);
                out.push(CaptionUpdate::Close {
                    segment: id,
                    text: super::captions::heard_words(s.caption.text(), fraction).to_string(),
                });
            }
        }
        heard
    }

    /// A line whose every segment finished (and was fully queued) is heard.
    fn forget_if_heard(&mut self, line: u64) {
        let Some(playing) = self.playing.get(&line) else {
            return;
        };
        let done = playing.segments.iter().all(|segment| {
            segment
                .and_then(|id| self.segments.get(&id))
                .is_some_and(|s| s.finished)
        });
        if done && !self.waiting_on(line) {
            if let Some(playing) = self.playing.remove(&line) {
                for id in playing.segments.into_iter().flatten() {
                    self.segments.remove(&id);
                }
            }
            self.segments.retain(|_, s| s.line != line);
        }
    }

    /// Whether `line` still has sentences without a segment (its voice has
    /// not reached them).
    fn waiting_on(&self, line: u64) -> bool {
        self.playing
            .get(&line)
            .is_some_and(|p| p.segments.iter().any(Option::is_none))
    }
}
