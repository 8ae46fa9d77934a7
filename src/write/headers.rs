//! Which headers an outgoing request carries, shared by push and ingest.
//!
//! Precedence, lowest first: forwarded client headers, the configured
//! authentication, the endpoint's `headers`, its `http_headers`, then the
//! path's own `Content-Type` (and Connect headers on push). Hop-by-hop
//! headers, `Content-Length` and `Host` are never copied from any source.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

use super::WriteError;

/// Headers that describe one connection or one message framing, never
/// forwarded (RFC 9110 §7.6.1, plus `Content-Length` and `Host`, which the
/// client library computes).
pub(super) fn is_hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "content-length"
            | "host"
    )
}

/// Builds a header map from configured `(name, values)` pairs: the first
/// value replaces earlier ones of the same name, the rest are added.
/// Values marked `sensitive` are hidden from debug output.
pub(super) fn extend_configured<'a>(
    map: &mut HeaderMap,
    endpoint: &str,
    attribute: &str,
    pairs: impl IntoIterator<Item = (&'a str, Vec<&'a str>)>,
    sensitive: bool,
) -> Result<(), WriteError> {
    let invalid = |name: &str, what: &str| WriteError::InvalidConfig {
        endpoint: endpoint.to_owned(),
        message: format!("{attribute}: invalid header {what} for {name:?}"),
    };
    for (name, values) in pairs {
        let header = HeaderName::try_from(name).map_err(|_| invalid(name, "name"))?;
        if is_hop_by_hop(&header) {
            tracing::warn!(
                endpoint,
                header = name,
                "ignoring a hop-by-hop header in {attribute}"
            );
            continue;
        }
        for (i, value) in values.into_iter().enumerate() {
            let mut v = HeaderValue::try_from(value).map_err(|_| invalid(name, "value"))?;
            v.set_sensitive(sensitive || is_sensitive_name(name));
            if i == 0 {
                map.insert(header.clone(), v);
            } else {
                map.append(header.clone(), v);
            }
        }
    }
    Ok(())
}

/// The headers of one request before the path adds its own: forwarded
/// client headers the endpoint does not set itself, then the endpoint's.
pub(super) fn assemble(
    configured: &HeaderMap,
    forwarded: &[(HeaderName, HeaderValue)],
) -> HeaderMap {
    let mut out = HeaderMap::with_capacity(configured.len() + forwarded.len() + 2);
    let connection_tokens: Vec<String> = forwarded
        .iter()
        .filter(|(n, _)| *n == header::CONNECTION)
        .filter_map(|(_, v)| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .collect();
    for (name, value) in forwarded {
        if is_hop_by_hop(name)
            || configured.contains_key(name)
            || connection_tokens.iter().any(|t| t == name.as_str())
        {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    for (name, value) in configured {
        out.append(name.clone(), value.clone());
    }
    out
}

/// Header names whose values are credentials, redacted in debug output.
pub(super) fn is_sensitive_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    matches!(
        n.as_str(),
        "authorization" | "proxy-authorization" | "cookie"
    ) || ["token", "secret", "password", "api-key", "apikey"]
        .iter()
        .any(|s| n.contains(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(name: &'static str, value: &'static str) -> (HeaderName, HeaderValue) {
        (
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        )
    }

    #[test]
    fn endpoint_headers_win_and_hop_by_hop_is_dropped() {
        let mut configured = HeaderMap::new();
        extend_configured(
            &mut configured,
            "e",
            "headers",
            [
                ("X-Scope-OrgID", vec!["endpoint"]),
                ("Connection", vec!["close"]),
            ],
            false,
        )
        .unwrap();
        let forwarded = [
            h("x-scope-orgid", "client"),
            h("x-trace", "1"),
            h("x-trace", "2"),
            h("connection", "keep-alive, x-private"),
            h("x-private", "p"),
            h("keep-alive", "timeout=5"),
            h("transfer-encoding", "chunked"),
            h("content-length", "12"),
            h("host", "client.example"),
            h("te", "trailers"),
            h("upgrade", "h2c"),
        ];
        let out = assemble(&configured, &forwarded);
        let names: Vec<_> = out.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, ["x-trace", "x-scope-orgid"]);
        assert_eq!(out.get_all("x-trace").iter().count(), 2);
        assert_eq!(out["x-scope-orgid"], "endpoint");
    }

    #[test]
    fn configured_values_first_set_then_added_and_validated() {
        let mut map = HeaderMap::new();
        map.insert("x-a", HeaderValue::from_static("old"));
        extend_configured(
            &mut map,
            "e",
            "http_headers",
            [("X-A", vec!["1", "2"])],
            true,
        )
        .unwrap();
        let values: Vec<_> = map.get_all("x-a").iter().collect();
        assert_eq!(values, ["1", "2"]);
        assert!(values[0].is_sensitive());
        let err = extend_configured(&mut map, "e", "headers", [("bad name", vec!["v"])], false);
        assert!(err.unwrap_err().to_string().contains("invalid header name"));
        let err = extend_configured(&mut map, "e", "headers", [("x", vec!["a\nb"])], false);
        assert!(
            err.unwrap_err()
                .to_string()
                .contains("invalid header value")
        );
    }
}
