//! Observed latencies, one sample per attempt, as `voxguard simulate
//! --latencies-out` writes them and `voxguard profile tune` reads them.
//!
//! Two formats, told apart by the first non-blank character (`{` → JSON):
//! - JSON lines: `{"service":"hubspot","latency_ms":123.4,"outcome":"ok"}`
//! - CSV with the header `service,latency_ms,outcome`
//!
//! `outcome` is `ok`, `error` or `timeout`. Blank lines are skipped.

use std::io::{self, Write};

use serde::{Deserialize, Serialize};

use crate::config::ConfigError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SampleOutcome {
    Ok,
    Error,
    Timeout,
}

impl SampleOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            SampleOutcome::Ok => "ok",
            SampleOutcome::Error => "error",
            SampleOutcome::Timeout => "timeout",
        }
    }
}

/// One observed attempt against one service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatencySample {
    pub service: String,
    pub latency_ms: f64,
    pub outcome: SampleOutcome,
}

/// Writes samples as JSON lines.
pub fn write_jsonl<W: Write>(mut out: W, samples: &[LatencySample]) -> io::Result<()> {
    for sample in samples {
        serde_json::to_writer(&mut out, sample)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// Writes samples as CSV with a header line.
pub fn write_csv<W: Write>(mut out: W, samples: &[LatencySample]) -> io::Result<()> {
    writeln!(out, "service,latency_ms,outcome")?;
    for sample in samples {
        writeln!(
            out,
            "{},{},{}",
            sample.service,
            sample.latency_ms,
            sample.outcome.as_str()
        )?;
    }
    Ok(())
}

/// Parses JSON lines or CSV (see the module docs). `origin` names the input
/// in errors, which carry the 1-based line.
pub fn parse_latencies(text: &str, origin: &str) -> Result<Vec<LatencySample>, ConfigError> {
    let error = |line: usize, message: String| ConfigError::Latencies {
        origin: origin.to_string(),
        line,
        message,
    };
    let is_json = text.trim_start().starts_with('{');
    let mut samples = Vec::new();
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty());
    if !is_json {
        match lines.next() {
            Some((_, "service,latency_ms,outcome")) => {}
            Some((number, other)) => {
                return Err(error(
                    number,
                    format!(
                        "expected the CSV header \"service,latency_ms,outcome\" or a JSON line, found {other:?}"
                    ),
                ));
            }
            None => return Ok(samples),
        }
    }
    for (number, line) in lines {
        let sample = if is_json {
            serde_json::from_str::<LatencySample>(line)
                .map_err(|e| error(number, format!("not a latency sample: {e}")))?
        } else {
            parse_csv_row(line).map_err(|message| error(number, message))?
        };
        if !(sample.latency_ms.is_finite() && sample.latency_ms >= 0.0) {
            return Err(error(
                number,
                format!(
                    "latency_ms {} must be a non-negative number",
                    sample.latency_ms
                ),
            ));
        }
        samples.push(sample);
    }
    Ok(samples)
}

fn parse_csv_row(line: &str) -> Result<LatencySample, String> {
    let fields: Vec<&str> = line.split(',').map(str::trim).collect();
    let [service, latency, outcome] = fields[..] else {
        return Err(format!(
            "expected 3 fields (service,latency_ms,outcome), found {}",
            fields.len()
        ));
    };
    let latency_ms = latency
        .parse()
        .map_err(|_| format!("latency_ms {latency:?} is not a number"))?;
    let outcome = match outcome {
        "ok" => SampleOutcome::Ok,
        "error" => SampleOutcome::Error,
        "timeout" => SampleOutcome::Timeout,
        other => return Err(format!("outcome {other:?} is not ok, error or timeout")),
    };
    Ok(LatencySample {
        service: service.to_string(),
        latency_ms,
        outcome,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<LatencySample> {
        vec![
            LatencySample {
                service: "hubspot".into(),
                latency_ms: 123.4,
                outcome: SampleOutcome::Ok,
            },
            LatencySample {
                service: "chilipiper".into(),
                latency_ms: 1200.0,
                outcome: SampleOutcome::Timeout,
            },
        ]
    }

    #[test]
    fn jsonl_and_csv_round_trip() {
        let mut jsonl = Vec::new();
        write_jsonl(&mut jsonl, &samples()).unwrap();
        let mut csv = Vec::new();
        write_csv(&mut csv, &samples()).unwrap();
        for written in [jsonl, csv] {
            let text = String::from_utf8(written).unwrap();
            assert_eq!(parse_latencies(&text, "lat").unwrap(), samples(), "{text}");
        }
    }

    #[test]
    fn a_bad_row_is_reported_with_its_line() {
        let text = "service,latency_ms,outcome\nhubspot,12,ok\nhubspot,fast,ok\n";
        assert_eq!(
            parse_latencies(text, "lat.csv").unwrap_err().to_string(),
            "lat.csv:3: latency_ms \"fast\" is not a number"
        );
    }
}
