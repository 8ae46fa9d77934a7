//! Calendar arithmetic for the few timestamps the relay prints and parses
//! (log lines, archive listings, `Retry-After` dates), so no date-time crate
//! is needed. Proleptic Gregorian, UTC.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Days since 1970-01-01 of a date (negative before it).
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The (year, month, day) of a day number since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// How many fraction digits [`format_rfc3339`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    Seconds,
    Millis,
    Nanos,
}

/// Nanoseconds since the Unix epoch (negative before it).
pub fn unix_nanos(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_nanos()).unwrap_or(i64::MAX),
    }
}

pub fn from_unix_nanos(n: i64) -> SystemTime {
    if n >= 0 {
        UNIX_EPOCH + Duration::from_nanos(n as u64)
    } else {
        UNIX_EPOCH - Duration::from_nanos(n.unsigned_abs())
    }
}

/// `2025-01-02T03:04:05Z`, with `.123` or `.123456789` as asked.
pub fn format_rfc3339(t: SystemTime, precision: Precision) -> String {
    let n = unix_nanos(t);
    let secs = n.div_euclid(1_000_000_000);
    let frac = n.rem_euclid(1_000_000_000);
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    let (h, mi, se) = (s / 3600, s / 60 % 60, s % 60);
    let date = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{se:02}");
    match precision {
        Precision::Seconds => format!("{date}Z"),
        Precision::Millis => format!("{date}.{:03}Z", frac / 1_000_000),
        Precision::Nanos => format!("{date}.{frac:09}Z"),
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const WEEKDAYS_FROM_THURSDAY: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];

/// HTTP's IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`.
pub fn format_imf_fixdate(t: SystemTime) -> String {
    let secs = unix_nanos(t).div_euclid(1_000_000_000);
    let days = secs.div_euclid(86_400);
    let (y, mo, d) = civil_from_days(days);
    let s = secs.rem_euclid(86_400);
    format!(
        "{}, {d:02} {} {y:04} {:02}:{:02}:{:02} GMT",
        WEEKDAYS_FROM_THURSDAY[days.rem_euclid(7) as usize],
        MONTHS[(mo - 1) as usize],
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// The number written in `s[range]`, which must be ASCII digits only (no
/// sign, no spaces), as fixed-width date fields are.
pub(crate) fn digits(s: &str, range: std::ops::Range<usize>) -> Option<i64> {
    let part = s.get(range)?;
    part.bytes()
        .all(|c| c.is_ascii_digit())
        .then(|| part.parse().ok())?
}

/// Parses an IMF-fixdate; `None` when it is not one.
pub fn parse_imf_fixdate(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() != 29 || &b[3..5] != b", " || &b[25..] != b" GMT" {
        return None;
    }
    let num = |r| digits(s, r);
    let day = num(5..7)?;
    let month = MONTHS.iter().position(|m| s.get(8..11) == Some(m))? as i64 + 1;
    let year = num(12..16)?;
    let (hour, min, sec) = (num(17..19)?, num(20..22)?, num(23..25)?);
    if b[7] != b' ' || b[11] != b' ' || b[16] != b' ' || b[19] != b':' || b[22] != b':' {
        return None;
    }
    if !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 || year < 1970 {
        return None;
    }
    let secs = days_from_civil(year, month, day) * 86_400 + hour * 3600 + min * 60 + sec;
    Some(UNIX_EPOCH + Duration::from_secs(secs as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64, nanos: u32) -> SystemTime {
        UNIX_EPOCH + Duration::new(secs, nanos)
    }

    #[test]
    fn formats_rfc3339_at_each_precision() {
        assert_eq!(
            format_rfc3339(at(0, 0), Precision::Millis),
            "1970-01-01T00:00:00.000Z"
        );
        assert_eq!(
            format_rfc3339(at(1_795_578_233, 7_000_000), Precision::Millis),
            "2026-11-25T03:43:53.007Z"
        );
        assert_eq!(
            format_rfc3339(at(951_782_400, 0), Precision::Seconds),
            "2000-02-29T00:00:00Z"
        );
        assert_eq!(
            format_rfc3339(at(1, 5), Precision::Nanos),
            "1970-01-01T00:00:01.000000005Z"
        );
    }

    #[test]
    fn days_round_trip() {
        for days in [-800_000, -1, 0, 59, 10_956, 20_000, 2_000_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn imf_fixdate_round_trips() {
        let t = at(784_111_777, 0);
        assert_eq!(format_imf_fixdate(t), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(parse_imf_fixdate("Sun, 06 Nov 1994 08:49:37 GMT"), Some(t));
        assert_eq!(parse_imf_fixdate("Sunday, 06-Nov-94 08:49:37 GMT"), None);
    }
}
