//! The deadline headers: Connect's `Connect-Timeout-Ms` and gRPC's
//! `grpc-timeout`.

use std::time::Duration;

use super::CodecError;

/// Most digits a `Connect-Timeout-Ms` value may have.
const CONNECT_MAX_DIGITS: usize = 10;
/// Most digits a `grpc-timeout` value may have.
const GRPC_MAX_DIGITS: usize = 8;
/// Largest value a `grpc-timeout` can carry.
const GRPC_MAX_VALUE: u128 = 99_999_999;

/// Parses `Connect-Timeout-Ms`: 1 to 10 ASCII digits, in milliseconds.
///
/// Signs and spaces are refused, which is stricter than connect-go's
/// `strconv.ParseInt` and what the protocol text ("positive integer")
/// asks. Zero is accepted and yields an already-passed deadline, so the
/// call fails with `deadline_exceeded` as it would against connect-go.
pub fn parse_connect_timeout_ms(value: &str) -> Result<Duration, CodecError> {
    let invalid = || CodecError::InvalidTimeout {
        header: "Connect-Timeout-Ms",
        value: value.to_owned(),
        expected: "expected 1 to 10 ASCII digits (milliseconds)",
    };
    if !is_digits(value, CONNECT_MAX_DIGITS) {
        return Err(invalid());
    }
    let millis: u64 = value.parse().map_err(|_| invalid())?;
    Ok(Duration::from_millis(millis))
}

/// Parses `grpc-timeout`: 1 to 8 ASCII digits followed by one unit, `H`
/// (hours), `M` (minutes), `S` (seconds), `m` (milliseconds), `u`
/// (microseconds) or `n` (nanoseconds).
pub fn parse_grpc_timeout(value: &str) -> Result<Duration, CodecError> {
    let invalid = || CodecError::InvalidTimeout {
        header: "grpc-timeout",
        value: value.to_owned(),
        expected: "expected 1 to 8 ASCII digits and a unit out of H, M, S, m, u, n",
    };
    let Some(unit) = value.chars().last() else {
        return Err(invalid());
    };
    let digits = &value[..value.len() - unit.len_utf8()];
    if !is_digits(digits, GRPC_MAX_DIGITS) {
        return Err(invalid());
    }
    let amount: u64 = digits.parse().map_err(|_| invalid())?;
    // At most 99999999 hours: far inside Duration's range.
    let duration = match unit {
        'H' => Duration::from_secs(amount * 3600),
        'M' => Duration::from_secs(amount * 60),
        'S' => Duration::from_secs(amount),
        'm' => Duration::from_millis(amount),
        'u' => Duration::from_micros(amount),
        'n' => Duration::from_nanos(amount),
        _ => return Err(invalid()),
    };
    Ok(duration)
}

/// Renders a deadline as `grpc-timeout`, in the finest unit whose value
/// fits in 8 digits. Values are rounded up so the peer never sees a shorter
/// deadline than ours; timeouts beyond 99999999 hours are capped there.
pub fn encode_grpc_timeout(timeout: Duration) -> String {
    const UNITS: [(u128, char); 6] = [
        (1, 'n'),
        (1_000, 'u'),
        (1_000_000, 'm'),
        (1_000_000_000, 'S'),
        (60_000_000_000, 'M'),
        (3_600_000_000_000, 'H'),
    ];
    let nanos = timeout.as_nanos();
    for (unit_nanos, unit) in UNITS {
        let amount = nanos.div_ceil(unit_nanos);
        if amount <= GRPC_MAX_VALUE {
            return format!("{amount}{unit}");
        }
    }
    format!("{GRPC_MAX_VALUE}H")
}

/// Renders a deadline as `Connect-Timeout-Ms`, rounded up to the next
/// millisecond and capped at the 10-digit maximum.
pub fn encode_connect_timeout_ms(timeout: Duration) -> String {
    const MAX_MILLIS: u128 = 9_999_999_999;
    timeout
        .as_nanos()
        .div_ceil(1_000_000)
        .min(MAX_MILLIS)
        .to_string()
}

fn is_digits(text: &str, max_digits: usize) -> bool {
    !text.is_empty() && text.len() <= max_digits && text.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_timeouts() {
        assert_eq!(
            parse_connect_timeout_ms("5000").unwrap(),
            Duration::from_secs(5)
        );
        assert_eq!(
            parse_connect_timeout_ms("9999999999").unwrap(),
            Duration::from_millis(9_999_999_999)
        );
        assert_eq!(parse_connect_timeout_ms("0").unwrap(), Duration::ZERO);
        for bad in ["", "12345678901", "-5", "+5", "5s", " 5", "1.5", "٣"] {
            let err = parse_connect_timeout_ms(bad).unwrap_err();
            assert_eq!(err.code(), crate::codec::Code::InvalidArgument, "{bad:?}");
        }
        assert_eq!(
            parse_connect_timeout_ms("abc").unwrap_err().to_string(),
            r#"invalid Connect-Timeout-Ms header "abc": expected 1 to 10 ASCII digits (milliseconds)"#
        );
    }

    #[test]
    fn grpc_timeouts() {
        let cases = [
            ("5000m", Duration::from_secs(5)),
            ("5S", Duration::from_secs(5)),
            ("2M", Duration::from_secs(120)),
            ("1H", Duration::from_secs(3600)),
            ("250u", Duration::from_micros(250)),
            ("7n", Duration::from_nanos(7)),
            ("99999999H", Duration::from_secs(99_999_999 * 3600)),
            ("0S", Duration::ZERO),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_grpc_timeout(text).unwrap(), expected, "{text}");
        }
        for bad in ["", "S", "5", "123456789S", "5s", "5 S", "-5S", "5é", "é"] {
            assert!(parse_grpc_timeout(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn grpc_timeout_encoding_rounds_up_and_round_trips() {
        assert_eq!(encode_grpc_timeout(Duration::from_nanos(7)), "7n");
        assert_eq!(encode_grpc_timeout(Duration::from_secs(5)), "5000000u");
        assert_eq!(
            encode_grpc_timeout(Duration::from_millis(123_456)),
            "123456m"
        );
        assert_eq!(
            encode_grpc_timeout(Duration::from_nanos(100_000_001)),
            "100001u"
        );
        assert_eq!(
            encode_grpc_timeout(Duration::from_secs(86_400 * 365)),
            "31536000S"
        );
        assert_eq!(encode_grpc_timeout(Duration::MAX), "99999999H");
        for nanos in [1, 999, 1_000_001, 5_000_000_000, 3_600_000_000_000_123] {
            let timeout = Duration::from_nanos(nanos);
            let parsed = parse_grpc_timeout(&encode_grpc_timeout(timeout)).unwrap();
            assert!(parsed >= timeout, "{nanos}");
        }
    }

    #[test]
    fn connect_timeout_encoding() {
        assert_eq!(encode_connect_timeout_ms(Duration::from_secs(10)), "10000");
        assert_eq!(encode_connect_timeout_ms(Duration::from_micros(1)), "1");
        assert_eq!(encode_connect_timeout_ms(Duration::ZERO), "0");
        assert_eq!(encode_connect_timeout_ms(Duration::MAX), "9999999999");
    }
}
