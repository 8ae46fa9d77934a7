//! Conversion of configuration values into Rust types, with Alloy's
//! implicit conversions: numbers and strings convert into each other, a
//! string can become a secret (never the reverse), and durations are Go
//! duration strings.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use super::value::{Capsule, Number, Value};

/// Types a configuration value can be converted into. The error message
/// carries no location; the caller knows which attribute it came from.
pub trait FromValue: Sized {
    /// Whether the value is a secret, shown as `(secret)` wherever the
    /// evaluated arguments are displayed.
    const SECRET: bool = false;

    fn from_value(value: &Value) -> Result<Self, String>;

    /// The value as the configuration would write it, to show a default
    /// that was not written; `None` when the type has no such form.
    fn to_value(&self) -> Option<Value> {
        None
    }
}

/// A sensitive string (password, token, private key). Its `Debug` and
/// `Display` never show the contents.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(secret: impl Into<String>) -> Self {
        Secret(secret.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(secret)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(secret)")
    }
}

/// A number of bytes, written as `"256MiB"`, `"10MB"`, `"1024"` or `1024`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct ByteSize(pub u64);

pub(crate) fn type_error(expected: &str, got: &Value) -> String {
    format!("expected {expected}, got {}", got.describe())
}

impl FromValue for Value {
    fn from_value(value: &Value) -> Result<Self, String> {
        Ok(value.clone())
    }
}

impl FromValue for String {
    fn to_value(&self) -> Option<Value> {
        Some(Value::String(self.clone()))
    }

    fn from_value(value: &Value) -> Result<Self, String> {
        match value {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) => Ok(n.to_string()),
            Value::Secret(_) => Err(
                "expected string, got secret (a secret cannot be used as a plain string)".into(),
            ),
            other => Err(type_error("string", other)),
        }
    }
}

impl FromValue for bool {
    fn to_value(&self) -> Option<Value> {
        Some(Value::Bool(*self))
    }

    fn from_value(value: &Value) -> Result<Self, String> {
        match value {
            Value::Bool(b) => Ok(*b),
            other => Err(type_error("bool", other)),
        }
    }
}

impl FromValue for Number {
    fn from_value(value: &Value) -> Result<Self, String> {
        match value {
            Value::Number(n) => Ok(*n),
            Value::String(s) => parse_number(s).ok_or_else(|| type_error("number", value)),
            other => Err(type_error("number", other)),
        }
    }
}

/// Reads a number written as a string (`listen_port = "9999"`). Only plain
/// decimal syntax: no `inf`, `NaN` or surrounding spaces.
pub(crate) fn parse_number(text: &str) -> Option<Number> {
    let plain = !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b));
    if !plain {
        return None;
    }
    match text.parse::<i64>() {
        Ok(int) => Some(Number::Int(int)),
        Err(_) => text
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(Number::Float),
    }
}

impl FromValue for f64 {
    fn to_value(&self) -> Option<Value> {
        Some(Value::Number(Number::Float(*self)))
    }

    fn from_value(value: &Value) -> Result<Self, String> {
        Number::from_value(value).map(Number::as_f64)
    }
}

/// Any whole number as `i128`, wide enough to range-check every integer
/// target without overflow. Floats count when they have no fraction.
fn whole_number(value: &Value) -> Result<i128, String> {
    match Number::from_value(value)? {
        Number::Int(int) => Ok(int.into()),
        Number::Float(float) if float.is_finite() && float.fract() == 0.0 => Ok(float as i128),
        Number::Float(_) => Err(type_error("whole number", value)),
    }
}

macro_rules! integer_from_value {
    ($($int:ty),*) => {$(
        impl FromValue for $int {
            fn to_value(&self) -> Option<Value> {
                i64::try_from(*self).ok().map(|n| Value::Number(Number::Int(n)))
            }

            fn from_value(value: &Value) -> Result<Self, String> {
                let whole = whole_number(value)?;
                <$int>::try_from(whole).map_err(|_| {
                    format!("value {whole} is out of range ({} to {})", <$int>::MIN, <$int>::MAX)
                })
            }
        }
    )*};
}

integer_from_value!(i64, u16, u32, u64, usize);

impl FromValue for Duration {
    fn to_value(&self) -> Option<Value> {
        Some(Value::String(format_go_duration(*self)))
    }

    fn from_value(value: &Value) -> Result<Self, String> {
        match value {
            Value::String(s) => parse_duration(s),
            // Alloy turns the number into a string first, so `0` works and
            // `5` is rejected for its missing unit.
            Value::Number(n) => parse_duration(&n.to_string()),
            other => Err(type_error("duration (a string such as \"30s\")", other)),
        }
    }
}

impl FromValue for ByteSize {
    fn to_value(&self) -> Option<Value> {
        self.0.to_value()
    }

    fn from_value(value: &Value) -> Result<Self, String> {
        match value {
            Value::String(s) => parse_byte_size(s),
            Value::Number(_) => u64::from_value(value).map(ByteSize),
            other => Err(type_error("byte size (such as \"256MiB\")", other)),
        }
    }
}

impl FromValue for Secret {
    const SECRET: bool = true;

    fn from_value(value: &Value) -> Result<Self, String> {
        match value {
            Value::String(s) => Ok(Secret::new(s.as_str())),
            Value::Secret(secret) => Ok(secret.clone()),
            other => Err(type_error("secret", other)),
        }
    }
}

/// Any capsule; callers check `type_name` or downcast for the one they need.
impl FromValue for Capsule {
    fn from_value(value: &Value) -> Result<Self, String> {
        match value {
            Value::Capsule(capsule) => Ok(capsule.clone()),
            other => Err(type_error("capsule", other)),
        }
    }
}

impl<T: FromValue> FromValue for Option<T> {
    const SECRET: bool = T::SECRET;

    fn to_value(&self) -> Option<Value> {
        match self {
            Some(value) => value.to_value(),
            None => Some(Value::Null),
        }
    }

    fn from_value(value: &Value) -> Result<Self, String> {
        match value {
            Value::Null => Ok(None),
            other => T::from_value(other).map(Some),
        }
    }
}

impl<T: FromValue> FromValue for Vec<T> {
    const SECRET: bool = T::SECRET;

    fn to_value(&self) -> Option<Value> {
        self.iter()
            .map(T::to_value)
            .collect::<Option<_>>()
            .map(Value::List)
    }

    fn from_value(value: &Value) -> Result<Self, String> {
        let Value::List(items) = value else {
            return Err(type_error("list", value));
        };
        items
            .iter()
            .enumerate()
            .map(|(index, item)| T::from_value(item).map_err(|e| format!("element {index}: {e}")))
            .collect()
    }
}

impl<T: FromValue> FromValue for BTreeMap<String, T> {
    const SECRET: bool = T::SECRET;

    fn to_value(&self) -> Option<Value> {
        self.iter()
            .map(|(k, v)| Some((k.clone(), v.to_value()?)))
            .collect::<Option<_>>()
            .map(Value::Object)
    }

    fn from_value(value: &Value) -> Result<Self, String> {
        let Value::Object(fields) = value else {
            return Err(type_error("object", value));
        };
        fields
            .iter()
            .map(|(key, field)| match T::from_value(field) {
                Ok(converted) => Ok((key.clone(), converted)),
                Err(e) => Err(format!("key {key:?}: {e}")),
            })
            .collect()
    }
}

/// Splits `"12.5rest"` into `("12", "5", "rest")`; `None` if there is no
/// digit before the rest.
fn leading_decimal(text: &str) -> Option<(&str, &str, &str)> {
    let int_len = text.bytes().take_while(u8::is_ascii_digit).count();
    let (int_part, rest) = text.split_at(int_len);
    let (frac_part, rest) = match rest.strip_prefix('.') {
        Some(after_dot) => {
            after_dot.split_at(after_dot.bytes().take_while(u8::is_ascii_digit).count())
        }
        None => ("", rest),
    };
    (!int_part.is_empty() || !frac_part.is_empty()).then_some((int_part, frac_part, rest))
}

/// `int_part.frac_part × unit`, exactly (fraction digits past 18 are
/// dropped, below any unit's resolution); `None` on overflow.
fn scaled(int_part: &str, frac_part: &str, unit: u128) -> Option<u128> {
    const MAX_DIGITS: usize = 30;
    if int_part.len() > MAX_DIGITS {
        return None;
    }
    let whole = if int_part.is_empty() {
        0
    } else {
        int_part.parse::<u128>().ok()?
    };
    let frac_digits = &frac_part[..frac_part.len().min(18)];
    let fraction = if frac_digits.is_empty() {
        0
    } else {
        frac_digits.parse::<u128>().ok()? * unit / 10u128.pow(frac_digits.len() as u32)
    };
    whole.checked_mul(unit)?.checked_add(fraction)
}

/// Parses a Go duration (`"300ms"`, `"1m30s"`, `"1.5h"`, `"0"`). Negative
/// durations are rejected: no setting here has a use for them.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    const UNITS_HELP: &str = "use ns, us, ms, s, m or h";
    let invalid = |why: String| format!("invalid duration {text:?}: {why}");
    let (negative, mut rest) = match text.strip_prefix('-') {
        Some(unsigned) => (true, unsigned),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(invalid(
            "expected a number and a unit, such as \"30s\"".into(),
        ));
    }
    let mut nanos: u128 = 0;
    while !rest.is_empty() {
        let (int_part, frac_part, after_number) = leading_decimal(rest)
            .ok_or_else(|| invalid(format!("expected a number at {rest:?}")))?;
        let unit_len = after_number
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after_number.len());
        let (unit, after_unit) = after_number.split_at(unit_len);
        let nanos_per_unit: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => return Err(invalid(format!("missing unit ({UNITS_HELP})"))),
            other => return Err(invalid(format!("unknown unit {other:?} ({UNITS_HELP})"))),
        };
        nanos = scaled(int_part, frac_part, nanos_per_unit)
            .and_then(|part| nanos.checked_add(part))
            .filter(|&total| total <= i64::MAX as u128)
            .ok_or_else(|| invalid("too large".into()))?;
        rest = after_unit;
    }
    if negative && nanos > 0 {
        return Err(invalid("negative durations are not allowed".into()));
    }
    Ok(Duration::from_nanos(nanos as u64))
}

/// Parses a byte size: a number with an optional unit, decimal (`B`, `KB`,
/// `MB`, `GB`, `TB`, `PB`) or binary (`KiB` … `PiB`), case-insensitive.
/// Fractions (`"1.5GiB"`) are rounded down to whole bytes.
pub fn parse_byte_size(text: &str) -> Result<ByteSize, String> {
    let invalid = |why: &str| format!("invalid byte size {text:?}: {why}");
    let (int_part, frac_part, unit) = leading_decimal(text.trim()).ok_or_else(|| {
        invalid("expected a number of bytes, optionally with a unit, such as \"512KiB\"")
    })?;
    let multiplier: u128 = match unit.trim_start().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        "pb" => 1_000_000_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        "pib" => 1 << 50,
        _ => {
            return Err(invalid(
                "unknown unit (use B, KB, MB, GB, TB, KiB, MiB, GiB or TiB)",
            ));
        }
    };
    scaled(int_part, frac_part, multiplier)
        .and_then(|bytes| u64::try_from(bytes).ok())
        .map(ByteSize)
        .ok_or_else(|| invalid("too large"))
}

#[cfg(test)]
#[path = "convert_tests.rs"]
mod tests;

/// A duration as Go's `time.Duration.String` writes it (`30s`, `2m0s`,
/// `1h0m0s`, `1.5s`, `500ms`), the form Alloy shows.
pub fn format_go_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".to_owned();
    }
    let fraction = |whole: u128, frac: u128, digits: usize| {
        let frac = format!("{frac:0digits$}");
        let frac = frac.trim_end_matches('0');
        match frac.is_empty() {
            true => whole.to_string(),
            false => format!("{whole}.{frac}"),
        }
    };
    if nanos < 1_000 {
        return format!("{nanos}ns");
    }
    if nanos < 1_000_000 {
        return format!("{}µs", fraction(nanos / 1_000, nanos % 1_000, 3));
    }
    if nanos < 1_000_000_000 {
        return format!("{}ms", fraction(nanos / 1_000_000, nanos % 1_000_000, 6));
    }
    let secs = nanos / 1_000_000_000;
    let seconds = fraction(secs % 60, nanos % 1_000_000_000, 9);
    match (secs / 3600, secs / 60 % 60) {
        (0, 0) => format!("{seconds}s"),
        (0, m) => format!("{m}m{seconds}s"),
        (h, m) => format!("{h}h{m}m{seconds}s"),
    }
}
