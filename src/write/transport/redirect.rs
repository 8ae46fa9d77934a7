//! What to do with a 3xx, following Go's `http.Client`: 301, 302 and 303
//! turn anything but GET/HEAD into a GET without a body; 307 and 308
//! repeat the request as it was. Credentials only go to the same host or
//! its subdomains.

use http::{HeaderMap, Method, StatusCode, Uri};

/// The request to send next.
#[derive(Debug, PartialEq)]
pub(super) struct Hop {
    pub method: Method,
    pub uri: Uri,
    /// 307/308 keep the body; the others drop it.
    pub keep_body: bool,
}

/// The next hop for a redirect answer, `Ok(None)` when the answer should be
/// returned as it is (not a redirect, or no `Location`).
pub(super) fn next(
    status: StatusCode,
    headers: &HeaderMap,
    current: &Uri,
    method: &Method,
) -> Result<Option<Hop>, String> {
    let (method, keep_body) = match status.as_u16() {
        301..=303 if method == Method::GET || method == Method::HEAD => (method.clone(), false),
        301..=303 => (Method::GET, false),
        307 | 308 => (method.clone(), true),
        _ => return Ok(None),
    };
    let Some(location) = headers.get(http::header::LOCATION) else {
        return Ok(None);
    };
    let location = location
        .to_str()
        .map_err(|_| "redirect Location is not valid text".to_owned())?;
    let base = url::Url::parse(&current.to_string()).map_err(|e| e.to_string())?;
    let target = base
        .join(location)
        .map_err(|e| format!("failed to parse Location header {location:?}: {e}"))?;
    if !matches!(target.scheme(), "http" | "https") {
        return Err(format!(
            "redirect to unsupported scheme {:?}",
            target.scheme()
        ));
    }
    let uri = target
        .as_str()
        .parse::<Uri>()
        .map_err(|e| format!("redirect Location {location:?}: {e}"))?;
    Ok(Some(Hop {
        method,
        uri,
        keep_body,
    }))
}

/// Go's `shouldCopyHeaderOnRedirect`: `Authorization` and cookies survive
/// a redirect to the same host or a subdomain of it, and nowhere else.
pub(super) fn keeps_credentials(initial: &Uri, next: &Uri) -> bool {
    let (Some(from), Some(to)) = (initial.host(), next.host()) else {
        return false;
    };
    let from = from.to_ascii_lowercase();
    let to = to.to_ascii_lowercase();
    to == from || (to.ends_with(&from) && to[..to.len() - from.len()].ends_with('.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hop(status: u16, location: &str, method: Method) -> Result<Option<Hop>, String> {
        let mut headers = HeaderMap::new();
        headers.insert(http::header::LOCATION, location.parse().unwrap());
        let current: Uri = "http://a.example:4040/base/push?x=1".parse().unwrap();
        next(
            StatusCode::from_u16(status).unwrap(),
            &headers,
            &current,
            &method,
        )
    }

    #[test]
    fn method_and_body_by_status() {
        let h = hop(307, "/other", Method::POST).unwrap().unwrap();
        assert_eq!(h.uri, "http://a.example:4040/other");
        assert_eq!((h.method, h.keep_body), (Method::POST, true));
        let h = hop(308, "https://b.example/p", Method::POST)
            .unwrap()
            .unwrap();
        assert_eq!(h.uri, "https://b.example/p");
        assert!(h.keep_body);
        for status in [301, 302, 303] {
            let h = hop(status, "next", Method::POST).unwrap().unwrap();
            assert_eq!(h.uri, "http://a.example:4040/base/next");
            assert_eq!((h.method, h.keep_body), (Method::GET, false));
        }
        assert_eq!(hop(304, "/x", Method::POST).unwrap(), None);
        assert_eq!(hop(300, "/x", Method::POST).unwrap(), None);
    }

    #[test]
    fn missing_or_bad_locations() {
        let current: Uri = "http://a/".parse().unwrap();
        let none = next(
            StatusCode::TEMPORARY_REDIRECT,
            &HeaderMap::new(),
            &current,
            &Method::POST,
        );
        assert_eq!(none.unwrap(), None);
        assert!(
            hop(307, "ftp://x/", Method::POST)
                .unwrap_err()
                .contains("scheme")
        );
        assert!(hop(307, "http://[bad", Method::POST).is_err());
    }

    #[test]
    fn credentials_follow_same_host_and_subdomains() {
        let from: Uri = "http://example.com/a".parse().unwrap();
        let keep = |to: &str| keeps_credentials(&from, &to.parse().unwrap());
        assert!(keep("https://example.com:8443/b"));
        assert!(keep("http://api.EXAMPLE.com/"));
        assert!(!keep("http://badexample.com/"));
        assert!(!keep("http://other.org/"));
    }
}
