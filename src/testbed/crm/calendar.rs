//! Just enough calendar arithmetic for simulated meeting slots: civil dates
//! to day numbers and back, RFC 3339 formatting, ISO 8601 window durations.

/// Days since 1970-01-01 for a proleptic Gregorian date.
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (
        if month <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        month,
        day,
    )
}

/// The day number of an RFC 3339 timestamp's date part.
pub fn parse_date(rfc3339: &str) -> Option<i64> {
    let date = rfc3339.get(..10)?;
    let mut parts = date.split('-');
    let year = parts.next()?.parse().ok()?;
    let month = parts
        .next()?
        .parse()
        .ok()
        .filter(|m| (1..=12).contains(m))?;
    let day = parts
        .next()?
        .parse()
        .ok()
        .filter(|d| (1..=31).contains(d))?;
    Some(days_from_civil(year, month, day))
}

/// `YYYY-MM-DDTHH:MM:00Z`.
pub fn format_slot(day: i64, minute_of_day: u32) -> String {
    let (y, m, d) = civil_from_days(day);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:00Z",
        minute_of_day / 60,
        minute_of_day % 60
    )
}

/// Monday to Friday.
pub fn is_weekday(day: i64) -> bool {
    // 1970-01-01 was a Thursday.
    !matches!((day + 3).rem_euclid(7), 5 | 6)
}

/// Whole days in an ISO 8601 (`P7D`, `PT604800S`, `PT168H`) or `N days` duration; at least 1.
pub fn window_days(duration: &str) -> i64 {
    let d = duration.trim();
    let parsed = if let Some(days) = d.strip_prefix('P').and_then(|r| r.strip_suffix('D')) {
        days.parse::<i64>().ok()
    } else if let Some(secs) = d.strip_prefix("PT").and_then(|r| r.strip_suffix('S')) {
        secs.parse::<i64>().ok().map(|s| s / 86_400)
    } else if let Some(hours) = d.strip_prefix("PT").and_then(|r| r.strip_suffix('H')) {
        hours.parse::<i64>().ok().map(|h| h / 24)
    } else {
        d.strip_suffix("days").and_then(|n| n.trim().parse().ok())
    };
    parsed.unwrap_or(7).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_numbers_round_trip_and_know_weekdays() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        let day = days_from_civil(2026, 11, 23);
        assert_eq!(civil_from_days(day), (2026, 11, 23));
        assert!(is_weekday(day), "2026-11-23 is a Monday");
        assert!(!is_weekday(days_from_civil(2026, 11, 22)));
        assert_eq!(format_slot(day, 9 * 60 + 30), "2026-11-23T09:30:00Z");
        assert_eq!(parse_date("2026-11-23T00:00:00Z"), Some(day));
    }

    #[test]
    fn windows_parse_in_the_accepted_forms() {
        assert_eq!(window_days("P7D"), 7);
        assert_eq!(window_days("PT259200S"), 3);
        assert_eq!(window_days("PT48H"), 2);
        assert_eq!(window_days("5 days"), 5);
        assert_eq!(window_days("garbage"), 7);
    }
}
