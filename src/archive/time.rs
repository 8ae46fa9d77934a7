//! Timestamps as the archive shows and parses them: RFC 3339 in UTC, and
//! relative durations (`10m`, `1h30m`) for `--since`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::ArchiveError;

pub(crate) use crate::telemetry::civil_time::from_unix_nanos;
use crate::telemetry::civil_time::{Precision, days_from_civil};

/// `2025-01-02T03:04:05Z`, or with `.123456789` nanoseconds when `nanos`.
pub fn format_rfc3339(t: SystemTime, nanos: bool) -> String {
    let precision = if nanos {
        Precision::Nanos
    } else {
        Precision::Seconds
    };
    crate::telemetry::civil_time::format_rfc3339(t, precision)
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`.
pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() < 20 || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let num = |r| crate::telemetry::civil_time::digits(s, r);
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut rest = &s[19..];
    let mut frac_nanos = 0i64;
    if let Some(f) = rest.strip_prefix('.') {
        let digits = f.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        for (i, c) in f[..digits].bytes().take(9).enumerate() {
            frac_nanos += i64::from(c - b'0') * 10i64.pow(8 - i as u32);
        }
        rest = &f[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 && rest.as_bytes()[3] == b':' => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let oh: i64 = rest[1..3].parse().ok()?;
            let om: i64 = rest[4..6].parse().ok()?;
            sign * (oh * 3600 + om * 60)
        }
        _ => return None,
    };
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + se - offset;
    Some(from_unix_nanos(
        secs.checked_mul(1_000_000_000)? + frac_nanos,
    ))
}

/// Parses a duration as Go writes them (`10m`, `1h30m`, `1.5h`, `500ms`),
/// plus `d` for days.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let mut rest = s.trim();
    if rest.is_empty() {
        return None;
    }
    if rest == "0" {
        return Some(Duration::ZERO);
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let value: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = match &rest[..u] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86_400.0,
            _ => return None,
        };
        rest = &rest[u..];
        total += value * unit;
    }
    Duration::try_from_secs_f64(total).ok()
}

/// `10m`, `2h` (that long before now) or an RFC 3339 time.
pub fn parse_since(s: &str) -> Result<SystemTime, ArchiveError> {
    if let Some(t) = parse_rfc3339(s) {
        return Ok(t);
    }
    let d = parse_duration(s).ok_or_else(|| {
        ArchiveError::InvalidArgument(format!(
            "invalid since {s:?}: want a duration like 10m or 2h, or an RFC 3339 time"
        ))
    })?;
    Ok(SystemTime::now().checked_sub(d).unwrap_or(UNIX_EPOCH))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_rfc3339() {
        let t = from_unix_nanos(1_700_000_000_123_456_789);
        assert_eq!(format_rfc3339(t, false), "2023-11-14T22:13:20Z");
        assert_eq!(format_rfc3339(t, true), "2023-11-14T22:13:20.123456789Z");
        assert_eq!(parse_rfc3339("2023-11-14T22:13:20.123456789Z"), Some(t));
        assert_eq!(
            parse_rfc3339("2023-11-15T00:13:20+02:00"),
            Some(from_unix_nanos(1_700_000_000_000_000_000))
        );
        assert_eq!(format_rfc3339(UNIX_EPOCH, false), "1970-01-01T00:00:00Z");
        assert_eq!(
            parse_rfc3339("2000-02-29T12:00:00Z").map(|t| format_rfc3339(t, false)),
            Some("2000-02-29T12:00:00Z".to_string())
        );
        for bad in [
            "2023-11-14",
            "2023-11-14T22:13:20",
            "2023-13-14T22:13:20Z",
            "x",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn parses_durations_and_since() {
        assert_eq!(parse_duration("10m"), Some(Duration::from_secs(600)));
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1.5h"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("2d"), Some(Duration::from_secs(172_800)));
        assert_eq!(parse_duration("10"), None);
        assert_eq!(parse_duration("10x"), None);
        let since = parse_since("10m").unwrap();
        let ago = SystemTime::now().duration_since(since).unwrap();
        assert!(ago >= Duration::from_secs(600) && ago < Duration::from_secs(660));
        assert!(parse_since("yesterday").is_err());
        assert_eq!(
            parse_since("2023-11-14T22:13:20Z").unwrap(),
            from_unix_nanos(1_700_000_000_000_000_000)
        );
    }
}
