//! Label matchers in Prometheus' selector syntax, for the live tap's
//! filter: `{service_name="checkout", env=~"prod.*"}` with `=`, `!=`, `=~`
//! and `!~`. Regexes are fully anchored, as in Prometheus; a label that is
//! absent has the empty value.

use regex::Regex;

use crate::pipeline::Labels;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum MatcherError {
    #[error("a matcher is written {{name=\"value\", ...}}; {0}")]
    Syntax(String),
    #[error("invalid regular expression for {name}: {message}")]
    Regex { name: String, message: String },
}

#[derive(Debug)]
enum Op {
    Equal(String),
    NotEqual(String),
    Matches(Regex),
    NotMatches(Regex),
}

/// A conjunction of label matchers; the empty one matches everything.
#[derive(Debug, Default)]
pub struct Matcher {
    terms: Vec<(String, Op)>,
}

impl Matcher {
    pub fn parse(text: &str) -> Result<Matcher, MatcherError> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(Matcher::default());
        }
        let inner = text
            .strip_prefix('{')
            .and_then(|t| t.strip_suffix('}'))
            .ok_or_else(|| MatcherError::Syntax("it must start with { and end with }".into()))?;
        let mut terms = Vec::new();
        let mut rest = inner.trim_start();
        while !rest.is_empty() {
            let name_len = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            let (name, after) = rest.split_at(name_len);
            if name.is_empty() {
                return Err(MatcherError::Syntax(format!(
                    "expected a label name at {rest:?}"
                )));
            }
            let after = after.trim_start();
            let (op, after) = ["=~", "!~", "!=", "="]
                .iter()
                .find_map(|op| after.strip_prefix(op).map(|a| (*op, a)))
                .ok_or_else(|| {
                    MatcherError::Syntax(format!("expected =, !=, =~ or !~ after {name}"))
                })?;
            let (value, after) = quoted(after.trim_start())?;
            let regex = |v: &str| {
                Regex::new(&format!("^(?:{v})$")).map_err(|e| MatcherError::Regex {
                    name: name.to_owned(),
                    message: e.to_string(),
                })
            };
            let op = match op {
                "=" => Op::Equal(value),
                "!=" => Op::NotEqual(value),
                "=~" => Op::Matches(regex(&value)?),
                _ => Op::NotMatches(regex(&value)?),
            };
            terms.push((name.to_owned(), op));
            rest = after.trim_start();
            if let Some(after_comma) = rest.strip_prefix(',') {
                rest = after_comma.trim_start();
            } else if !rest.is_empty() {
                return Err(MatcherError::Syntax(format!("expected , at {rest:?}")));
            }
        }
        Ok(Matcher { terms })
    }

    /// True for `{}`: matches everything.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    pub fn matches(&self, labels: &Labels) -> bool {
        self.matches_by(|name| labels.get(name))
    }

    /// Matches the labels that `get` looks up by name.
    pub fn matches_by<'a>(&self, get: impl Fn(&str) -> Option<&'a str>) -> bool {
        self.terms.iter().all(|(name, op)| {
            let value = get(name).unwrap_or("");
            match op {
                Op::Equal(v) => value == v,
                Op::NotEqual(v) => value != v,
                Op::Matches(r) => r.is_match(value),
                Op::NotMatches(r) => !r.is_match(value),
            }
        })
    }
}

/// A double-quoted string with `\"` and `\\` escapes, and what follows it.
fn quoted(text: &str) -> Result<(String, &str), MatcherError> {
    let body = text
        .strip_prefix('"')
        .ok_or_else(|| MatcherError::Syntax(format!("expected a quoted value at {text:?}")))?;
    let mut value = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((value, &body[i + 1..])),
            '\\' => match chars.next() {
                Some((_, 'n')) => value.push('\n'),
                Some((_, c)) => value.push(c),
                None => break,
            },
            c => value.push(c),
        }
    }
    Err(MatcherError::Syntax("a quoted value is not closed".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> Labels {
        Labels::from_pairs([("service_name", "checkout"), ("env", "prod-eu")])
    }

    #[test]
    fn operators() {
        let yes = [
            "",
            "{}",
            r#"{service_name="checkout", env=~"prod.*"}"#,
            r#"{env!="dev",missing=""}"#,
            r#"{env!~"dev|test"}"#,
        ];
        for m in yes {
            assert!(Matcher::parse(m).unwrap().matches(&labels()), "{m}");
        }
        let no = [
            r#"{service_name="cart"}"#,
            r#"{env=~"prod"}"#,
            r#"{missing!=""}"#,
        ];
        for m in no {
            assert!(!Matcher::parse(m).unwrap().matches(&labels()), "{m}");
        }
    }

    #[test]
    fn errors_say_what_is_wrong() {
        for bad in [
            "service_name=x",
            r#"{service_name=checkout}"#,
            r#"{a="b" c="d"}"#,
            r#"{a~"b"}"#,
            r#"{a="b}"#,
        ] {
            assert!(
                matches!(Matcher::parse(bad), Err(MatcherError::Syntax(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            Matcher::parse(r#"{a=~"("}"#),
            Err(MatcherError::Regex { .. })
        ));
    }
}
