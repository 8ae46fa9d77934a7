//! The `name` parameter of `/ingest`: `<service>{key=value,...}`.
//!
//! Parsing follows Pyroscope's `labelset.Parse` rule for rule, quirks
//! included, because clients are written against it:
//! - the service name is everything before the first `{`, trimmed; it must
//!   be non-empty and use only `[A-Za-z0-9_.\-/]`; it becomes `__name__`;
//! - inside the braces a key runs until `=`, and a `,` typed where a key is
//!   expected becomes part of the key (`a=1,,b=2` has the key `,b`);
//! - a value runs until `,` or `}`, so it may hold `=`, `{` and `/` but
//!   never `,` or `}`: there is no escaping;
//! - a key without `=` before `}` is dropped, and so is the last pair when
//!   the `}` is missing; anything after `}` is ignored;
//! - keys and values are trimmed; keys must be non-empty `[A-Za-z0-9_.]`,
//!   except `__name__`, which is taken as is and replaces the service name;
//! - the last duplicate wins.
//!
//! Empty values are dropped, as Alloy's receiver does when it turns the
//! parsed set into labels.

use crate::pipeline::Labels;

/// The label that carries the service name.
pub const SERVICE_NAME_LABEL: &str = "__name__";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LabelsetError {
    #[error("service name is required")]
    ServiceNameRequired,
    #[error("invalid service name: {name}: character is not allowed: {}", quote_char(*.character))]
    InvalidServiceName { name: String, character: char },
    #[error("label name is required")]
    LabelNameRequired,
    #[error("invalid label name: {name}: character is not allowed: {}", quote_char(*.character))]
    InvalidLabelName { name: String, character: char },
}

/// Parses a Pyroscope `name` into labels, the service name as `__name__`.
///
/// Every delimiter is ASCII, so the parts are sliced out of `name` by byte
/// position (one copy each, into the labels) rather than built up a
/// character at a time.
pub fn parse(name: &str) -> Result<Labels, LabelsetError> {
    let mut labels = Labels::new();
    let (service, braced) = match name.split_once('{') {
        Some((service, rest)) => (service, Some(rest)),
        None => (name, None),
    };
    let service = service.trim();
    validate_service_name(service)?;
    labels.set(SERVICE_NAME_LABEL, service);
    let Some(mut rest) = braced else {
        return Ok(labels);
    };
    // A key runs to `=` (a `}` first ends the set, dropping the key); its
    // value runs to `,` or `}`; a pair cut off by the end is dropped.
    while let Some(eq) = find_byte(rest, |b| b == b'=' || b == b'}') {
        if rest.as_bytes()[eq] == b'}' {
            break;
        }
        let after = &rest[eq + 1..];
        let Some(end) = find_byte(after, |b| b == b',' || b == b'}') else {
            break;
        };
        let label = rest[..eq].trim();
        if label != SERVICE_NAME_LABEL {
            validate_label_name(label)?;
        }
        labels.set(label, after[..end].trim());
        if after.as_bytes()[end] == b'}' {
            break;
        }
        rest = &after[end + 1..];
    }
    Ok(labels)
}

/// The position of the first byte of `s` that `wanted` picks; only for
/// ASCII bytes, so the position is a character boundary.
fn find_byte(s: &str, wanted: impl Fn(u8) -> bool) -> Option<usize> {
    s.bytes().position(wanted)
}

/// Renders labels as Pyroscope's `Normalized()`: the `__name__` value, then
/// `{`, the other labels as `k=v` sorted by name and joined by `,`, then `}`.
/// Nothing is escaped, so the result re-parses to the same labels only when
/// no value holds `,` or `}`.
pub fn normalized(labels: &Labels) -> String {
    let pairs: Vec<(&str, &str)> = labels
        .iter()
        .map(|l| (l.name.as_str(), l.value.as_str()))
        .collect();
    normalized_pieces(&pairs).collect()
}

/// [`normalized`] of `pairs` (sorted by name, no duplicates) as borrowed
/// pieces of text, for a caller that escapes them straight into a query.
pub fn normalized_pieces<'a>(
    pairs: &'a [(&'a str, &'a str)],
) -> impl Iterator<Item = &'a str> + Clone + 'a {
    let name = pairs
        .iter()
        .find(|(n, _)| *n == SERVICE_NAME_LABEL)
        .map_or("", |(_, v)| *v);
    // `Labels` and the writer's pairs are sorted by name: the order wanted.
    let others = pairs
        .iter()
        .filter(|(n, _)| *n != SERVICE_NAME_LABEL)
        .enumerate()
        .flat_map(|(i, (n, v))| [if i == 0 { "" } else { "," }, *n, "=", *v]);
    [name, "{"].into_iter().chain(others).chain(["}"])
}

/// Whether `name` is a valid Pyroscope label name: non-empty, only
/// `[A-Za-z0-9_.]`. Reserved names (`__name__`) are not singled out here.
pub fn is_valid_label_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(is_label_name_char)
}

/// [`is_valid_label_name`] with Pyroscope's error for the first offending
/// character.
pub fn validate_label_name(name: &str) -> Result<(), LabelsetError> {
    if name.is_empty() {
        return Err(LabelsetError::LabelNameRequired);
    }
    match name.chars().find(|&c| !is_label_name_char(c)) {
        Some(character) => Err(LabelsetError::InvalidLabelName {
            name: name.to_owned(),
            character,
        }),
        None => Ok(()),
    }
}

/// Checks a service name: non-empty, only `[A-Za-z0-9_.\-/]`.
pub fn validate_service_name(name: &str) -> Result<(), LabelsetError> {
    if name.is_empty() {
        return Err(LabelsetError::ServiceNameRequired);
    }
    match name.chars().find(|&c| !is_service_name_char(c)) {
        Some(character) => Err(LabelsetError::InvalidServiceName {
            name: name.to_owned(),
            character,
        }),
        None => Ok(()),
    }
}

fn is_label_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '.'
}

fn is_service_name_char(c: char) -> bool {
    is_label_name_char(c) || c == '-' || c == '/'
}

/// Quotes a character as Go's `%q` does for a rune, so messages read like
/// Pyroscope's: `'a'`, `' '`, `'\''`, `'\n'`, `'\x00'`, `'\u200b'`.
fn quote_char(c: char) -> String {
    let inner = match c {
        '\'' => "\\'".to_owned(),
        '\\' => "\\\\".to_owned(),
        '\u{07}' => "\\a".to_owned(),
        '\u{08}' => "\\b".to_owned(),
        '\u{0c}' => "\\f".to_owned(),
        '\n' => "\\n".to_owned(),
        '\r' => "\\r".to_owned(),
        '\t' => "\\t".to_owned(),
        '\u{0b}' => "\\v".to_owned(),
        ' ' => " ".to_owned(),
        c if c.is_ascii_control() => format!("\\x{:02x}", u32::from(c)),
        // Go prints letters, marks, numbers, punctuation and symbols as
        // they are; controls and spaces other than ' ' are escaped.
        c if c.is_control() || c.is_whitespace() || c == '\u{200b}' || c == '\u{feff}' => {
            if u32::from(c) <= 0xffff {
                format!("\\u{:04x}", u32::from(c))
            } else {
                format!("\\U{:08x}", u32::from(c))
            }
        }
        c => c.to_string(),
    };
    format!("'{inner}'")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The character-at-a-time state machine `parse` was before it sliced
    /// by byte position: the rules written out one state per rule.
    fn parse_by_chars(name: &str) -> Result<Labels, LabelsetError> {
        enum State {
            ServiceName,
            Key,
            Value,
            Done,
        }
        let mut labels = Labels::new();
        let mut state = State::ServiceName;
        let (mut key, mut text) = (String::new(), String::new());
        for c in name.chars().chain(['{']) {
            match state {
                State::ServiceName if c == '{' => {
                    let service = text.trim();
                    validate_service_name(service)?;
                    labels.set(SERVICE_NAME_LABEL, service);
                    state = State::Key;
                }
                State::ServiceName => text.push(c),
                State::Key => match c {
                    '}' => state = State::Done,
                    '=' => {
                        text.clear();
                        state = State::Value;
                    }
                    _ => key.push(c),
                },
                State::Value => match c {
                    ',' | '}' => {
                        let label = key.trim();
                        if label != SERVICE_NAME_LABEL {
                            validate_label_name(label)?;
                        }
                        labels.set(label, text.trim());
                        key.clear();
                        state = if c == '}' { State::Done } else { State::Key };
                    }
                    _ => text.push(c),
                },
                State::Done => break,
            }
        }
        Ok(labels)
    }

    #[test]
    fn slicing_parses_exactly_as_the_state_machine() {
        let crafted = [
            "",
            " ",
            "a",
            "a{",
            "a{}",
            "a{b}",
            "a{b=",
            "a{b=1",
            "a{b=1}",
            "a{b=1,}",
            "a{b=1,,c=2}",
            "a{=1}",
            "a{b c=1}",
            "a{b=1}x{c=2}",
            "a{b={c}=d,e=f}",
            "a {b = 1 , c = 2 }",
            "a{__name__=x,b=2}",
            "a{b=1,b=2}",
            "a{b=}",
            "é{b=1}",
            "a{é=1}",
            "a{b=é,c=2}",
            "{b=1}",
            "a/b.c-d{x.y=1}",
            "a{b=1}}",
            "a{{b=1}",
        ];
        let alphabet: Vec<char> = "ab_.{}=, é/".chars().collect();
        let random = (0..5_000).map(|_| {
            let len = fastrand::usize(0..16);
            (0..len)
                .map(|_| alphabet[fastrand::usize(..alphabet.len())])
                .collect::<String>()
        });
        for name in crafted.iter().map(|s| s.to_string()).chain(random) {
            assert_eq!(parse(&name), parse_by_chars(&name), "{name:?}");
        }
    }

    fn pairs(name: &str) -> Vec<(String, String)> {
        parse(name)
            .unwrap()
            .iter()
            .map(|l| (l.name.clone(), l.value.clone()))
            .collect()
    }

    fn owned(expected: &[(&str, &str)]) -> Vec<(String, String)> {
        expected
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn accepted_names() {
        let cases: &[(&str, &[(&str, &str)])] = &[
            ("test_app", &[("__name__", "test_app")]),
            (
                "test.app{env=prod,region=us-east}",
                &[
                    ("__name__", "test.app"),
                    ("env", "prod"),
                    ("region", "us-east"),
                ],
            ),
            // A key without `=` is dropped silently.
            (
                "test.app{invalid-label-syntax}",
                &[("__name__", "test.app")],
            ),
            ("app{}", &[("__name__", "app")]),
            (
                "nodeapp{otel.scope.name=com.grafana.pyroscope/nodejs,env=test}",
                &[
                    ("__name__", "nodeapp"),
                    ("env", "test"),
                    ("otel.scope.name", "com.grafana.pyroscope/nodejs"),
                ],
            ),
            ("app{a=x=y{z}", &[("__name__", "app"), ("a", "x=y{z")]),
            ("app{__name__=x}", &[("__name__", "x")]),
            (
                "  my-app/x  { a = 1 , b=2 }",
                &[("__name__", "my-app/x"), ("a", "1"), ("b", "2")],
            ),
            // Missing `}` loses the last pair.
            ("app{a=1,b=2", &[("__name__", "app"), ("a", "1")]),
            ("app{a=1", &[("__name__", "app")]),
            ("app{a=1,a=2}", &[("__name__", "app"), ("a", "2")]),
            // Empty values are dropped; an empty last duplicate deletes.
            ("app{a=,b=1}", &[("__name__", "app"), ("b", "1")]),
            ("app{a=1,a=}", &[("__name__", "app")]),
            // Everything after `}` is ignored, even invalid text.
            ("app{a=1}{b=2} junk!", &[("__name__", "app"), ("a", "1")]),
            (
                "pyapp.cpu.cpu{env=test,handler=a,region=us-east}",
                &[
                    ("__name__", "pyapp.cpu.cpu"),
                    ("env", "test"),
                    ("handler", "a"),
                    ("region", "us-east"),
                ],
            ),
        ];
        for (name, expected) in cases {
            assert_eq!(pairs(name), owned(expected), "{name:?}");
        }
    }

    #[test]
    fn refused_names() {
        let cases = [
            ("", "service name is required"),
            ("   ", "service name is required"),
            ("{a=b}", "service name is required"),
            (
                "app name",
                "invalid service name: app name: character is not allowed: ' '",
            ),
            (
                "app{a=1,,b=2}",
                "invalid label name: ,b: character is not allowed: ','",
            ),
            (
                "app{my-label=1}",
                "invalid label name: my-label: character is not allowed: '-'",
            ),
            ("app{=1}", "label name is required"),
            (
                "app\u{0}x",
                "invalid service name: app\u{0}x: character is not allowed: '\\x00'",
            ),
            (
                "apé",
                "invalid service name: apé: character is not allowed: 'é'",
            ),
            (
                "a'b",
                "invalid service name: a'b: character is not allowed: '\\''",
            ),
        ];
        for (name, message) in cases {
            assert_eq!(parse(name).unwrap_err().to_string(), message, "{name:?}");
        }
    }

    #[test]
    fn normalized_is_sorted_and_unescaped() {
        let labels = parse("app.cpu{zone=b,env=prod,a.b=x/y=z}").unwrap();
        assert_eq!(normalized(&labels), "app.cpu{a.b=x/y=z,env=prod,zone=b}");
        assert_eq!(normalized(&parse("app").unwrap()), "app{}");
        let no_name = Labels::from_pairs([("b", "2"), ("a", "1")]);
        assert_eq!(normalized(&no_name), "{a=1,b=2}");
        // Re-parsing a normalized name gives the same labels.
        assert_eq!(parse(&normalized(&labels)).unwrap(), labels);
    }

    #[test]
    fn label_name_validation() {
        assert!(is_valid_label_name("service_name"));
        assert!(is_valid_label_name("otel.scope.name"));
        assert!(is_valid_label_name("__name__"));
        assert!(!is_valid_label_name(""));
        assert!(!is_valid_label_name("a-b"));
        assert!(!is_valid_label_name("é"));
        assert_eq!(
            validate_label_name(""),
            Err(LabelsetError::LabelNameRequired)
        );
        assert!(validate_service_name("a/b-c.d_e").is_ok());
    }

    #[test]
    fn quoting_follows_go() {
        assert_eq!(quote_char('a'), "'a'");
        assert_eq!(quote_char('\t'), "'\\t'");
        assert_eq!(quote_char('\\'), "'\\\\'");
        assert_eq!(quote_char('\u{200b}'), "'\\u200b'");
        assert_eq!(quote_char('\u{a0}'), "'\\u00a0'");
        assert_eq!(quote_char('😀'), "'😀'");
    }
}
