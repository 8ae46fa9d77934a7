//! URL query handling for the ingest path and form bodies.
//!
//! Alloy decodes the incoming query, sets `name` and re-encodes everything
//! with Go's `url.Values.Encode()` (keys sorted, values percent-encoded).
//! We sort the same way and encode `name` the same way, but copy every
//! other parameter byte for byte: a parameter Go would decode and
//! re-encode differently (`%20` vs `+`, a malformed escape it would drop)
//! reaches the backend exactly as the client sent it.

/// Go's `url.QueryEscape`: unreserved bytes kept, space as `+`, the rest
/// as upper-case `%XX`.
pub(super) fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 2);
    for &b in s.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                out.push('%');
                out.push(HEX[usize::from(b >> 4)] as char);
                out.push(HEX[usize::from(b & 15)] as char);
            }
        }
    }
    out
}

/// Decodes a query component (`+` as space, `%XX`); a malformed escape is
/// kept literally. Used only to compare and sort keys.
fn query_unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    out
}

/// The ingest query: every parameter of `raw` except `name`, unchanged,
/// plus `name=<name>`, sorted by decoded key (stable, so repeated keys keep
/// their order). Empty pieces (`a&&b`) are dropped, as Go drops them.
pub(super) fn with_name(raw: &str, name: &str) -> String {
    let mut pairs: Vec<(Vec<u8>, String)> = raw
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let key = p.split_once('=').map_or(p, |(k, _)| k);
            (query_unescape(key), p.to_owned())
        })
        .filter(|(key, _)| key.as_slice() != b"name")
        .collect();
    pairs.push((b"name".to_vec(), format!("name={}", query_escape(name))));
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = String::with_capacity(raw.len() + name.len() * 2);
    for (i, (_, pair)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(pair);
    }
    out
}

/// An `application/x-www-form-urlencoded` body, keys in the given order.
pub(super) fn form<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    pairs
        .into_iter()
        .map(|(k, v)| format!("{}={}", query_escape(k), query_escape(v)))
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_go() {
        assert_eq!(
            query_escape("app.cpu{a=b, c=d/e}"),
            "app.cpu%7Ba%3Db%2C+c%3Dd%2Fe%7D"
        );
        assert_eq!(query_escape("~-_.AZaz09"), "~-_.AZaz09");
        assert_eq!(query_escape("é"), "%C3%A9");
    }

    // The example of alloy-behaviour.md §5.
    #[test]
    fn name_is_replaced_and_keys_sorted() {
        let q = with_name(
            "name=app.cpu%7Benv%3Dprod%7D&from=1&until=2",
            "app.cpu{cluster=c1,env=prod,service_name=app.cpu}",
        );
        assert_eq!(
            q,
            "from=1&name=app.cpu%7Bcluster%3Dc1%2Cenv%3Dprod%2Cservice_name%3Dapp.cpu%7D&until=2"
        );
    }

    #[test]
    fn other_parameters_are_kept_byte_for_byte() {
        let raw = "until=2&spyName=go%20spy&custom=a+b&&flag&bad=%zz&z=1&z=0&na%6De=old";
        let q = with_name(raw, "svc{}");
        assert_eq!(
            q,
            "bad=%zz&custom=a+b&flag&name=svc%7B%7D&spyName=go%20spy&until=2&z=1&z=0"
        );
        assert_eq!(with_name("", "a{}"), "name=a%7B%7D");
    }

    #[test]
    fn unescape_handles_edges() {
        assert_eq!(query_unescape("a%2"), b"a%2");
        assert_eq!(query_unescape("%41%4a+"), b"AJ ");
        assert_eq!(query_unescape("%"), b"%");
    }

    #[test]
    fn form_body() {
        assert_eq!(
            form([("grant_type", "client_credentials"), ("scope", "a b")]),
            "grant_type=client_credentials&scope=a+b"
        );
    }
}
