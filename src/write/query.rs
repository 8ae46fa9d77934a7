//! URL query handling for the ingest path and form bodies.
//!
//! Alloy decodes the incoming query, sets `name` and re-encodes everything
//! with Go's `url.Values.Encode()` (keys sorted, values percent-encoded).
//! We sort the same way and encode `name` the same way, but copy every
//! other parameter byte for byte: a parameter Go would decode and
//! re-encode differently (`%20` vs `+`, a malformed escape it would drop)
//! reaches the backend exactly as the client sent it.

use std::borrow::Cow;

pub(super) use crate::codec::query::escape as query_escape;
use crate::codec::query::{escape_into, unescape};

/// The ingest query: every parameter of `raw` except `name`, unchanged,
/// plus `name=<name>`, sorted by decoded key (stable, so repeated keys keep
/// their order). `name` comes in pieces, escaped as their concatenation
/// would be. Empty pieces (`a&&b`) are dropped, as Go drops them. A key
/// with a malformed escape sorts by its raw bytes.
pub(super) fn with_name<'n>(raw: &str, name: impl IntoIterator<Item = &'n str>) -> String {
    let mut pairs: Vec<(Cow<'_, str>, &str)> = Vec::with_capacity(8);
    for_each_pair(raw, |pair, key, escaped| {
        let key = match escaped {
            false => Cow::Borrowed(key),
            true => unescape(key).unwrap_or(Cow::Borrowed(key)),
        };
        if key != "name" {
            pairs.push((key, pair));
        }
    });
    // `name` goes where its key sorts; the placeholder is never written.
    pairs.push((Cow::Borrowed("name"), ""));
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    let mut name = Some(name);
    // Room for a rebuilt name a little longer than the one replaced.
    let mut out = String::with_capacity(raw.len() + raw.len() / 2 + 32);
    for (i, (key, pair)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        if pair.is_empty() && key == "name" {
            out.push_str("name=");
            for piece in name.take().into_iter().flatten() {
                escape_into(&mut out, piece);
            }
        } else {
            out.push_str(pair);
        }
    }
    out
}

/// Calls `f(pair, raw key, whether the key holds an escape)` for every
/// non-empty `&`-separated pair. Pairs are found with `memchr`; only keys
/// (short) are scanned byte by byte.
fn for_each_pair<'a>(raw: &'a str, mut f: impl FnMut(&'a str, &'a str, bool)) {
    for pair in raw.split('&').filter(|p| !p.is_empty()) {
        let mut key = pair;
        let mut escaped = false;
        for (i, b) in pair.bytes().enumerate() {
            match b {
                b'=' => {
                    key = &pair[..i];
                    break;
                }
                b'%' | b'+' => escaped = true,
                _ => {}
            }
        }
        f(pair, key, escaped);
    }
}

/// An `application/x-www-form-urlencoded` body, keys in the given order.
pub(super) fn form<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut out = String::new();
    for (i, (k, v)) in pairs.into_iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        escape_into(&mut out, k);
        out.push('=');
        escape_into(&mut out, v);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // `name` replaced, the other keys sorted as Go's `url.Values.Encode` does.
    #[test]
    fn name_is_replaced_and_keys_sorted() {
        let q = with_name(
            "name=app.cpu%7Benv%3Dprod%7D&from=1&until=2",
            ["app.cpu{cluster=c1,", "env=prod,service_name=app.cpu}"],
        );
        assert_eq!(
            q,
            "from=1&name=app.cpu%7Bcluster%3Dc1%2Cenv%3Dprod%2Cservice_name%3Dapp.cpu%7D&until=2"
        );
    }

    #[test]
    fn other_parameters_are_kept_byte_for_byte() {
        let raw = "until=2&spyName=go%20spy&custom=a+b&&flag&bad=%zz&z=1&z=0&na%6De=old";
        let q = with_name(raw, ["svc{}"]);
        assert_eq!(
            q,
            "bad=%zz&custom=a+b&flag&name=svc%7B%7D&spyName=go%20spy&until=2&z=1&z=0"
        );
        assert_eq!(with_name("", ["a{}"]), "name=a%7B%7D");
        assert_eq!(
            with_name("b=%C3%A9&&a+b=1&=x&name", ["é", " "]),
            "=x&a+b=1&b=%C3%A9&name=%C3%A9+"
        );
    }

    #[test]
    fn form_body() {
        assert_eq!(
            form([("grant_type", "client_credentials"), ("scope", "a b")]),
            "grant_type=client_credentials&scope=a+b"
        );
    }
}
