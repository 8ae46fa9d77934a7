//! Which failed attempts are worth another try (Alloy's `shouldRetry`,
//! alloy-behaviour.md §3.6), kept apart from how long to wait
//! ([`super::backoff`]) and from how often (the send loop).

use std::time::{Duration, SystemTime};

use crate::codec::Code;

/// What one attempt came back with.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A 2xx answer.
    Delivered,
    /// A non-2xx answer.
    Status {
        status: u16,
        /// The code of a Connect error body (push path only).
        connect: Option<Code>,
        /// The parsed `Retry-After` header, if any.
        retry_after: Option<Duration>,
    },
    /// The attempt ran out of time (`remote_timeout` or the caller's deadline).
    TimedOut,
    /// Connecting, TLS, writing or reading failed, or a token endpoint failed.
    Transport,
    /// A local problem that another attempt will not fix (an unreadable
    /// credentials file).
    Local,
}

/// The classifier's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Retry,
    /// Retry, but not before this long (the backend's `Retry-After`).
    RetryAfter(Duration),
    GiveUp,
}

/// Classifies an outcome. `retry_on_http_429` gates HTTP 429 and Connect
/// `resource_exhausted`.
///
/// A Connect error code decides when the body carried one; otherwise the
/// HTTP status does: 408 and 5xx are retried, 429 follows the flag and any
/// other status is final. (Alloy's Connect client first turns a bare 400
/// into `internal` and a bare 429 into `unavailable`, so it retries both on
/// the push path; we never retry a 4xx other than 408/429.)
pub fn classify(outcome: &Outcome, retry_on_http_429: bool) -> Decision {
    match outcome {
        Outcome::Delivered | Outcome::Local => Decision::GiveUp,
        Outcome::TimedOut | Outcome::Transport => Decision::Retry,
        Outcome::Status {
            status,
            connect,
            retry_after,
        } => {
            let retry = match connect {
                Some(code) => code_is_retryable(*code, retry_on_http_429),
                None => status_is_retryable(*status, retry_on_http_429),
            };
            match (retry, retry_after) {
                (false, _) => Decision::GiveUp,
                (true, Some(after)) if matches!(status, 429 | 503) => Decision::RetryAfter(*after),
                (true, _) => Decision::Retry,
            }
        }
    }
}

fn code_is_retryable(code: Code, retry_on_http_429: bool) -> bool {
    match code {
        Code::DeadlineExceeded
        | Code::Unknown
        | Code::Internal
        | Code::Unavailable
        | Code::DataLoss
        | Code::Aborted => true,
        Code::ResourceExhausted => retry_on_http_429,
        _ => false,
    }
}

fn status_is_retryable(status: u16, retry_on_http_429: bool) -> bool {
    match status {
        408 => true,
        429 => retry_on_http_429,
        s => s >= 500,
    }
}

/// Parses a `Retry-After` value: delay-seconds or an HTTP date (IMF-fixdate,
/// the form RFC 9110 requires senders to use). A date in the past is zero.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return value.parse::<u64>().ok().map(Duration::from_secs);
    }
    let at = parse_imf_fixdate(value)?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// `Sun, 06 Nov 1994 08:49:37 GMT`.
fn parse_imf_fixdate(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() != 29 || &b[3..5] != b", " || &b[25..] != b" GMT" {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u64> {
        let part = s.get(r)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let day = num(5..7)?;
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|m| s.get(8..11) == Some(m))? as u64 + 1;
    let year = num(12..16)?;
    let (hour, min, sec) = (num(17..19)?, num(20..22)?, num(23..25)?);
    if b[7] != b' ' || b[11] != b' ' || b[16] != b' ' || b[19] != b':' || b[22] != b':' {
        return None;
    }
    if !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 || year < 1970 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + min * 60 + sec;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (year >= 1970).
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(status: u16) -> Outcome {
        Outcome::Status {
            status,
            connect: None,
            retry_after: None,
        }
    }

    fn connect(code: Code) -> Outcome {
        Outcome::Status {
            status: code.http_status(),
            connect: Some(code),
            retry_after: None,
        }
    }

    // Test_shouldRetry_On429, adapted.
    #[test]
    fn http_statuses() {
        assert_eq!(classify(&status(429), true), Decision::Retry);
        assert_eq!(classify(&status(429), false), Decision::GiveUp);
        for flag in [true, false] {
            assert_eq!(classify(&status(408), flag), Decision::Retry);
            assert_eq!(classify(&status(503), flag), Decision::Retry);
            assert_eq!(classify(&status(500), flag), Decision::Retry);
            assert_eq!(classify(&status(400), flag), Decision::GiveUp);
            assert_eq!(classify(&status(401), flag), Decision::GiveUp);
            assert_eq!(classify(&status(404), flag), Decision::GiveUp);
            assert_eq!(classify(&status(307), flag), Decision::GiveUp);
        }
    }

    #[test]
    fn connect_codes() {
        assert_eq!(
            classify(&connect(Code::ResourceExhausted), true),
            Decision::Retry
        );
        assert_eq!(
            classify(&connect(Code::ResourceExhausted), false),
            Decision::GiveUp
        );
        for code in [
            Code::DeadlineExceeded,
            Code::Unknown,
            Code::Internal,
            Code::Unavailable,
            Code::DataLoss,
            Code::Aborted,
        ] {
            assert_eq!(classify(&connect(code), false), Decision::Retry, "{code:?}");
        }
        for code in [
            Code::InvalidArgument,
            Code::Unauthenticated,
            Code::PermissionDenied,
            Code::NotFound,
            Code::Unimplemented,
            Code::Canceled,
            Code::FailedPrecondition,
        ] {
            assert_eq!(classify(&connect(code), true), Decision::GiveUp, "{code:?}");
        }
        // The Connect code wins over the status it came with.
        let aborted_409 = Outcome::Status {
            status: 409,
            connect: Some(Code::Aborted),
            retry_after: None,
        };
        assert_eq!(classify(&aborted_409, false), Decision::Retry);
    }

    #[test]
    fn transport_and_timeouts_retry_local_does_not() {
        assert_eq!(classify(&Outcome::TimedOut, false), Decision::Retry);
        assert_eq!(classify(&Outcome::Transport, false), Decision::Retry);
        assert_eq!(classify(&Outcome::Local, true), Decision::GiveUp);
    }

    #[test]
    fn retry_after_only_on_429_and_503_when_retryable() {
        let with = |status, connect| Outcome::Status {
            status,
            connect,
            retry_after: Some(Duration::from_secs(2)),
        };
        let two = Decision::RetryAfter(Duration::from_secs(2));
        assert_eq!(classify(&with(429, None), true), two);
        assert_eq!(classify(&with(503, None), false), two);
        assert_eq!(
            classify(&with(429, Some(Code::ResourceExhausted)), true),
            two
        );
        assert_eq!(classify(&with(429, None), false), Decision::GiveUp);
        assert_eq!(classify(&with(500, None), true), Decision::Retry);
    }

    #[test]
    fn parses_retry_after_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777); // 1994-11-06T08:49:37Z
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:40:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_retry_after("Thu, 01 Jan 1970 00:00:00 GMT", SystemTime::UNIX_EPOCH),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_retry_after("Tue, 29 Feb 2028 00:00:01 GMT", SystemTime::UNIX_EPOCH),
            Some(Duration::from_secs(1_835_395_201))
        );
        for bad in [
            "",
            "-1",
            "1.5",
            "soon",
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 06 Foo 1994 08:49:37 GMT",
        ] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad:?}");
        }
    }
}
