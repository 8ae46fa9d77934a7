use super::*;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[test]
fn go_durations() {
    let cases = [
        ("500ms", Duration::from_millis(500)),
        ("1m30s", secs(90)),
        ("1.5h", secs(5400)),
        ("0", Duration::ZERO),
        ("-0", Duration::ZERO),
        ("+5s", secs(5)),
        ("2h45m", secs(9900)),
        (".5s", Duration::from_millis(500)),
        ("1us", Duration::from_micros(1)),
        ("1µs", Duration::from_micros(1)),
        ("3ns", Duration::from_nanos(3)),
        ("1.0000000001s", Duration::from_nanos(1_000_000_000)),
    ];
    for (text, expected) in cases {
        assert_eq!(parse_duration(text), Ok(expected), "{text}");
    }
}

#[test]
fn bad_durations_explain_themselves() {
    assert_eq!(
        parse_duration("5 minutes").unwrap_err(),
        "invalid duration \"5 minutes\": unknown unit \" minutes\" (use ns, us, ms, s, m or h)"
    );
    assert_eq!(
        parse_duration("5").unwrap_err(),
        "invalid duration \"5\": missing unit (use ns, us, ms, s, m or h)"
    );
    assert!(parse_duration("-5s").unwrap_err().contains("negative"));
    assert!(parse_duration("").is_err());
    assert!(parse_duration("s").is_err());
    assert!(parse_duration(".s").is_err());
    assert!(
        parse_duration("9999999999999h")
            .unwrap_err()
            .contains("too large")
    );
    assert!(parse_duration(&"9".repeat(100)).is_err());
}

#[test]
fn byte_sizes() {
    let cases = [
        ("256MiB", 256 << 20),
        ("1GiB", 1 << 30),
        ("10MB", 10_000_000),
        ("512KiB", 512 << 10),
        ("1024", 1024),
        ("1.5GiB", 1_610_612_736),
        ("2 kb", 2000),
        ("7B", 7),
    ];
    for (text, expected) in cases {
        assert_eq!(parse_byte_size(text), Ok(ByteSize(expected)), "{text}");
    }
    assert!(parse_byte_size("-1MB").is_err());
    assert!(
        parse_byte_size("12 bananas")
            .unwrap_err()
            .contains("unknown unit")
    );
    assert!(
        parse_byte_size("99999999PiB")
            .unwrap_err()
            .contains("too large")
    );
    assert_eq!(ByteSize::from_value(&Value::from(4096)), Ok(ByteSize(4096)));
    assert!(ByteSize::from_value(&Value::from(-1)).is_err());
}

#[test]
fn strings_convert_to_numbers() {
    assert_eq!(u16::from_value(&Value::from("9999")), Ok(9999));
    assert_eq!(f64::from_value(&Value::from("1.5")), Ok(1.5));
    assert_eq!(i64::from_value(&Value::from("-3")), Ok(-3));
    assert_eq!(
        i64::from_value(&Value::from("abc")).unwrap_err(),
        "expected number, got string \"abc\""
    );
    assert!(f64::from_value(&Value::from("NaN")).is_err());
    assert!(f64::from_value(&Value::from(" 1")).is_err());
}

#[test]
fn numbers_convert_to_strings() {
    assert_eq!(
        String::from_value(&Value::from(9999)),
        Ok("9999".to_string())
    );
    assert_eq!(String::from_value(&Value::from(1.5)), Ok("1.5".to_string()));
    assert_eq!(
        String::from_value(&Value::Bool(true)).unwrap_err(),
        "expected string, got bool true"
    );
}

#[test]
fn integers_are_range_checked() {
    assert_eq!(
        u16::from_value(&Value::from(70000)).unwrap_err(),
        "value 70000 is out of range (0 to 65535)"
    );
    assert!(u64::from_value(&Value::from(-1)).is_err());
    assert_eq!(u32::from_value(&Value::from(3.0)), Ok(3));
    assert_eq!(
        u32::from_value(&Value::from(3.5)).unwrap_err(),
        "expected whole number, got number 3.5"
    );
    assert_eq!(usize::from_value(&Value::from(7)), Ok(7));
}

#[test]
fn secrets_accept_strings_but_never_become_strings() {
    let secret = Secret::from_value(&Value::from("hunter2")).unwrap();
    assert_eq!(secret.expose(), "hunter2");
    assert_eq!(format!("{secret} {secret:?}"), "(secret) (secret)");
    assert_eq!(
        Secret::from_value(&Value::Secret(secret.clone())),
        Ok(secret.clone())
    );
    assert!(
        String::from_value(&Value::Secret(secret))
            .unwrap_err()
            .contains("secret")
    );
    assert!(Secret::from_value(&Value::from(1)).is_err());
}

#[test]
fn durations_from_values() {
    assert_eq!(Duration::from_value(&Value::from("30s")), Ok(secs(30)));
    assert_eq!(Duration::from_value(&Value::from(0)), Ok(Duration::ZERO));
    assert!(
        Duration::from_value(&Value::from(5))
            .unwrap_err()
            .contains("missing unit")
    );
    assert!(Duration::from_value(&Value::Bool(true)).is_err());
}

#[test]
fn containers_name_the_failing_element() {
    let list = Value::from(vec![Value::from(1), Value::from("x")]);
    assert_eq!(
        Vec::<i64>::from_value(&list).unwrap_err(),
        "element 1: expected number, got string \"x\""
    );
    assert_eq!(
        Vec::<String>::from_value(&list),
        Ok(vec!["1".to_string(), "x".to_string()])
    );
    let object: Value = [
        ("a".to_string(), Value::from("1")),
        ("b".to_string(), Value::Null),
    ]
    .into_iter()
    .collect();
    assert_eq!(
        BTreeMap::<String, i64>::from_value(&object).unwrap_err(),
        "key \"b\": expected number, got null"
    );
    let maybe = BTreeMap::<String, Option<i64>>::from_value(&object).unwrap();
    assert_eq!(maybe["a"], Some(1));
    assert_eq!(maybe["b"], None);
    assert_eq!(Option::<bool>::from_value(&Value::Null), Ok(None));
    assert_eq!(Value::from_value(&list), Ok(list.clone()));
}

#[test]
fn durations_are_shown_as_go_writes_them() {
    let cases = [
        (Duration::ZERO, "0s"),
        (Duration::from_nanos(3), "3ns"),
        (Duration::from_micros(1), "1µs"),
        (Duration::from_millis(500), "500ms"),
        (Duration::from_millis(1500), "1.5s"),
        (secs(30), "30s"),
        (secs(120), "2m0s"),
        (secs(3600), "1h0m0s"),
        (secs(9900), "2h45m0s"),
    ];
    for (duration, text) in cases {
        assert_eq!(format_go_duration(duration), text);
        assert_eq!(parse_duration(text), Ok(duration), "{text} reads back");
    }
}

#[test]
fn defaults_convert_back_to_values() {
    assert_eq!(secs(30).to_value(), Some(Value::String("30s".into())));
    assert_eq!(true.to_value(), Some(Value::Bool(true)));
    assert_eq!(
        vec!["a".to_owned()].to_value(),
        Some(Value::List(vec![Value::String("a".into())]))
    );
    let n = 16384u64.to_value();
    assert!(
        matches!(n, Some(Value::Number(Number::Int(16384)))),
        "{n:?}"
    );
    assert_eq!(
        Secret::new("x").to_value(),
        None,
        "a secret has no shown form"
    );
}
