//! Which failed attempts are worth another try (Alloy's `shouldRetry`,
//! see docs/compatibility.md), kept apart from how long to wait
//! ([`super::backoff`]) and from how often (the send loop).

use std::time::{Duration, SystemTime};

use crate::codec::Code;
use crate::telemetry::civil_time::parse_imf_fixdate;

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
