//! Durations as people write them in the config ("700ms", "3.5s") and as
//! voxguard prints them back (the shortest exact form, never "1s 200ms").

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};

/// The longest duration a configuration may hold. Every configured duration
/// is added to the clock at run time; a cap far beyond any sensible timeout
/// keeps that arithmetic from overflowing.
pub const MAX: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// Parses a humantime duration that must be greater than zero and at most [`MAX`].
pub fn parse(text: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(text.trim()).map_err(|e| {
        format!("invalid duration {text:?}: {e}; write it like \"700ms\" or \"3.5s\"")
    })?;
    if duration.is_zero() {
        return Err(format!(
            "invalid duration {text:?}: must be greater than zero"
        ));
    }
    if duration > MAX {
        return Err(format!(
            "invalid duration {text:?}: must be at most 365 days"
        ));
    }
    Ok(duration)
}

/// Formats a duration compactly: `400ms`, `1.2s`, `30s`, `2.5ms`.
pub fn format(duration: Duration) -> String {
    if duration < Duration::from_secs(1) {
        let micros = duration.as_micros();
        if micros.is_multiple_of(1000) {
            format!("{}ms", micros / 1000)
        } else {
            format!("{}ms", trim_decimals(micros as f64 / 1000.0))
        }
    } else {
        format!("{}s", trim_decimals(duration.as_millis() as f64 / 1000.0))
    }
}

fn trim_decimals(value: f64) -> String {
    let text = format!("{value:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

struct DurationVisitor;

impl Visitor<'_> for DurationVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a duration string like \"700ms\" or \"3.5s\"")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Duration, E> {
        parse(text).map_err(E::custom)
    }
}

/// `#[serde(deserialize_with = "duration::required")]`
pub(crate) fn required<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    deserializer.deserialize_str(DurationVisitor)
}

/// `#[serde(default, deserialize_with = "duration::optional")]`
pub(crate) fn optional<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Duration>, D::Error> {
    required(deserializer).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_the_shortest_exact_form() {
        assert_eq!(format(Duration::from_millis(400)), "400ms");
        assert_eq!(format(Duration::from_millis(1200)), "1.2s");
        assert_eq!(format(Duration::from_secs(30)), "30s");
        assert_eq!(format(Duration::from_micros(2500)), "2.5ms");
        assert_eq!(format(Duration::from_millis(1250)), "1.25s");
    }

    #[test]
    fn printed_durations_parse_back_to_themselves() {
        for ms in [1, 50, 400, 999, 1000, 1200, 3500, 30_000] {
            let d = Duration::from_millis(ms);
            assert_eq!(parse(&format(d)), Ok(d));
        }
    }

    #[test]
    fn durations_beyond_a_year_are_rejected_so_clock_arithmetic_cannot_overflow() {
        assert_eq!(parse("365d"), Ok(MAX));
        assert_eq!(
            parse("100000000000 years"),
            Err("invalid duration \"100000000000 years\": must be at most 365 days".to_string())
        );
    }

    #[test]
    fn zero_is_rejected() {
        assert_eq!(
            parse("0ms"),
            Err("invalid duration \"0ms\": must be greater than zero".to_string())
        );
    }
}
