//! Timelines of one tool call under a profile: the attempts, backoff sleeps
//! and spoken fillers of a scenario (typical, one retry, worst case), and
//! their rendering as text aligned to a time axis.

use std::time::Duration;

use crate::config::Profile;
use crate::config::duration::format as fmt;

/// Width of the time axis in columns.
pub const AXIS_COLUMNS: usize = 60;
const LABEL_WIDTH: usize = 15;

/// One stretch of time in a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segment {
    Attempt {
        number: u32,
        start: Duration,
        end: Duration,
        succeeded: bool,
    },
    Backoff {
        number: u32,
        start: Duration,
        end: Duration,
    },
}

/// How a call goes under a profile in one scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeline {
    pub segments: Vec<Segment>,
    /// When the caller hears the outcome (answer or failure phrase).
    pub resolved_at: Duration,
    pub succeeded: bool,
    /// When fillers are spoken before the outcome.
    pub fillers: Vec<Duration>,
}

impl Timeline {
    /// Every attempt runs to its timeout and every backoff sleeps its cap.
    pub fn worst_case(profile: &Profile) -> Timeline {
        let attempts = vec![None; profile.max_attempts as usize];
        Timeline::build(profile, &attempts, profile.backoff.max_sleep())
    }

    /// The first attempt succeeds after `latency`.
    pub fn typical(profile: &Profile, latency: Duration) -> Timeline {
        Timeline::build(profile, &[Some(latency)], Duration::ZERO)
    }

    /// The first attempt times out, the backoff sleeps half its cap, the
    /// second attempt succeeds after `latency`. `None` if the profile has
    /// no retry.
    pub fn one_retry(profile: &Profile, latency: Duration) -> Option<Timeline> {
        (profile.max_attempts >= 2).then(|| {
            Timeline::build(
                profile,
                &[None, Some(latency)],
                profile.backoff.max_sleep() / 2,
            )
        })
    }

    /// `attempts[i]` is `Some(latency)` for a success, `None` for a timeout.
    fn build(profile: &Profile, attempts: &[Option<Duration>], sleep: Duration) -> Timeline {
        let mut segments = Vec::new();
        let mut now = Duration::ZERO;
        let mut succeeded = false;
        for (index, outcome) in attempts.iter().enumerate() {
            let number = index as u32 + 1;
            if index > 0 {
                segments.push(Segment::Backoff {
                    number: number - 1,
                    start: now,
                    end: now + sleep,
                });
                now += sleep;
            }
            let took = outcome.map_or(profile.attempt_timeout, |latency| {
                latency.min(profile.attempt_timeout)
            });
            succeeded = outcome.is_some_and(|latency| latency < profile.attempt_timeout);
            segments.push(Segment::Attempt {
                number,
                start: now,
                end: now + took,
                succeeded,
            });
            now += took;
            if succeeded {
                break;
            }
        }
        let fillers = profile.ladder().filler_times(now);
        Timeline {
            segments,
            resolved_at: now,
            succeeded,
            fillers,
        }
    }

    /// The timeline as rows of text over a time axis that ends at or after
    /// the budget, tick labels in milliseconds.
    pub fn render(&self, budget: Duration) -> String {
        let axis = Axis::new(budget.max(self.resolved_at));
        let mut out = String::new();
        out.push_str(&axis.header());
        for segment in &self.segments {
            let row = match *segment {
                Segment::Attempt {
                    number,
                    start,
                    end,
                    succeeded,
                } => {
                    let what = if succeeded { "answers" } else { "times out" };
                    axis.bar(
                        &format!("attempt {number}"),
                        start,
                        end,
                        "[=]",
                        &format!("{} → {}, {what}", fmt(start), fmt(end)),
                    )
                }
                Segment::Backoff { number, start, end } => axis.bar(
                    &format!("backoff {number}"),
                    start,
                    end,
                    "~~~",
                    &format!("sleeps {}", fmt(end - start)),
                ),
            };
            out.push_str(&axis.with_budget_line(row, budget));
        }
        for (index, &at) in self.fillers.iter().enumerate() {
            let (label, phrase) = if index == 0 {
                ("filler", "filler phrase")
            } else {
                ("still_working", "still-working phrase")
            };
            out.push_str(&axis.with_budget_line(
                axis.mark(label, at, '^', &format!("{} {phrase}", fmt(at))),
                budget,
            ));
        }
        let (mark, said) = if self.succeeded {
            ('*', "answer spoken")
        } else {
            ('X', "failure phrase spoken")
        };
        out.push_str(&axis.with_budget_line(
            axis.mark(
                "outcome",
                self.resolved_at,
                mark,
                &format!("{} {said}", fmt(self.resolved_at)),
            ),
            budget,
        ));
        let spare = budget.saturating_sub(self.resolved_at);
        out.push_str(&axis.mark(
            "budget end",
            budget,
            '|',
            &format!("{} ({} to spare)", fmt(budget), fmt(spare)),
        ));
        out
    }
}

/// Maps time to columns: 60 columns from 0 to a round end.
struct Axis {
    end: Duration,
    tick: Duration,
}

impl Axis {
    fn new(span: Duration) -> Axis {
        let span_ms = span.as_millis().max(1) as u64;
        let tick_ms = [
            50, 100, 200, 250, 500, 1000, 2000, 2500, 5000, 10_000, 20_000, 30_000, 60_000,
        ]
        .into_iter()
        .find(|tick| span_ms.div_ceil(*tick) <= 7)
        .unwrap_or(span_ms.div_ceil(7));
        let end_ms = span_ms.div_ceil(tick_ms) * tick_ms;
        Axis {
            end: Duration::from_millis(end_ms),
            tick: Duration::from_millis(tick_ms),
        }
    }

    fn column(&self, at: Duration) -> usize {
        let fraction = at.as_secs_f64() / self.end.as_secs_f64();
        ((fraction * AXIS_COLUMNS as f64).round() as usize).min(AXIS_COLUMNS)
    }

    fn header(&self) -> String {
        let mut labels = vec![' '; AXIS_COLUMNS + 8];
        let mut ruler = vec!['-'; AXIS_COLUMNS + 1];
        let mut at = Duration::ZERO;
        while at <= self.end {
            let column = self.column(at);
            ruler[column] = '+';
            for (offset, ch) in at.as_millis().to_string().chars().enumerate() {
                labels[column + offset] = ch;
            }
            at += self.tick;
        }
        let labels: String = labels.into_iter().collect();
        format!(
            "{:LABEL_WIDTH$}{} ms\n{:LABEL_WIDTH$}{}\n",
            "",
            labels.trim_end(),
            "",
            ruler.into_iter().collect::<String>()
        )
    }

    fn bar(&self, label: &str, start: Duration, end: Duration, style: &str, note: &str) -> String {
        // `style` is three characters: opening, fill, closing.
        let mut style = style.chars();
        let (open, fill, close) = (
            style.next().unwrap_or('['),
            style.next().unwrap_or('='),
            style.next().unwrap_or(']'),
        );
        let (from, to) = (
            self.column(start),
            self.column(end).max(self.column(start) + 1),
        );
        let mut cells = vec![' '; AXIS_COLUMNS + 1];
        for cell in &mut cells[from..=to.min(AXIS_COLUMNS)] {
            *cell = fill;
        }
        cells[from] = open;
        cells[to.min(AXIS_COLUMNS)] = close;
        self.row(label, cells, note)
    }

    fn mark(&self, label: &str, at: Duration, symbol: char, note: &str) -> String {
        let mut cells = vec![' '; AXIS_COLUMNS + 1];
        cells[self.column(at)] = symbol;
        self.row(label, cells, note)
    }

    fn row(&self, label: &str, cells: Vec<char>, note: &str) -> String {
        format!(
            "{label:LABEL_WIDTH$}{}  {note}\n",
            cells.into_iter().collect::<String>()
        )
    }

    /// Draws the budget as `:` in a row's empty cell at its column.
    fn with_budget_line(&self, row: String, budget: Duration) -> String {
        let index = LABEL_WIDTH + self.column(budget);
        let mut chars: Vec<char> = row.chars().collect();
        if chars.get(index) == Some(&' ') {
            chars[index] = ':';
        }
        chars.into_iter().collect()
    }
}
