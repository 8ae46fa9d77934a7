//! What the `http` block puts in front of every admin route: TLS on new
//! connections and basic authentication on every request. Built on each
//! load of the config and swapped in whole, so a reload applies it:
//! connections opened before keep their transport (as in Alloy), and
//! their next request is checked against the new credentials.

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::Full;
use ring::digest::{SHA256, digest};
use tokio_rustls::TlsAcceptor;

use super::http_block::{AuthConfig, HttpBlock, PathFilter};

/// The challenge Alloy sends with a 401.
const CHALLENGE: &str = "Basic realm=\"Restricted\"";

/// TLS and authentication of the admin server, as configured.
#[derive(Default)]
pub struct Guard {
    tls: Option<TlsAcceptor>,
    auth: Option<BasicAuth>,
}

struct BasicAuth {
    /// SHA-256 of the expected username and password: comparing digests
    /// of equal length reveals neither value's length through timing.
    username: [u8; 32],
    password: [u8; 32],
    filter: PathFilter,
}

#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    #[error("http > tls: {0}")]
    Tls(String),
}

impl Guard {
    /// The guard for `block`; no block (or an empty one) guards nothing.
    pub fn build(block: Option<&HttpBlock>) -> Result<Guard, GuardError> {
        let Some(block) = block else {
            return Ok(Guard::default());
        };
        let tls = match &block.tls {
            None => None,
            Some(tls) => {
                let config = crate::receive_http::tls_server_config(
                    &tls.base,
                    tls.max_version,
                    &tls.curve_preferences,
                )
                .map_err(GuardError::Tls)?;
                Some(TlsAcceptor::from(config))
            }
        };
        Ok(Guard {
            tls,
            auth: block.auth.as_ref().and_then(BasicAuth::new),
        })
    }

    /// The TLS acceptor new connections go through, if TLS is on.
    pub fn tls(&self) -> Option<&TlsAcceptor> {
        self.tls.as_ref()
    }

    /// The 401 answer for a request that needs credentials and lacks
    /// the right ones; `None` lets it through.
    pub fn refuse<B>(&self, request: &Request<B>) -> Option<Response<Full<Bytes>>> {
        let auth = self.auth.as_ref()?;
        if !auth.filter.needs_credentials(request.uri().path()) {
            return None;
        }
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| basic_credentials(v.as_bytes()));
        if let Some((username, password)) = given
            && auth.accepts(&username, &password)
        {
            return None;
        }
        let mut response = Response::new(Full::new(Bytes::from_static(b"unauthorized\n")));
        *response.status_mut() = StatusCode::UNAUTHORIZED;
        let headers = response.headers_mut();
        headers.insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(CHALLENGE),
        );
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        Some(response)
    }
}

impl BasicAuth {
    /// Without a `basic` block the `auth` block authenticates nothing.
    fn new(config: &AuthConfig) -> Option<BasicAuth> {
        let (username, password) = config.basic.as_ref()?;
        Some(BasicAuth {
            username: sha256(username.as_bytes()),
            password: sha256(password.as_bytes()),
            filter: config.filter.clone(),
        })
    }

    fn accepts(&self, username: &[u8], password: &[u8]) -> bool {
        // Both compared whatever the first gives, so timing tells nothing.
        let user_ok = same_digest(&sha256(username), &self.username);
        let password_ok = same_digest(&sha256(password), &self.password);
        user_ok & password_ok
    }
}

fn sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0; 32];
    out.copy_from_slice(digest(&SHA256, data).as_ref());
    out
}

/// Constant-time equality of two digests.
fn same_digest(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The username and password of an `Authorization: Basic` value, read as
/// Go's `Request.BasicAuth` does: the scheme in any case, standard base64,
/// split at the first colon.
fn basic_credentials(value: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    use base64::Engine as _;
    const SCHEME: &[u8] = b"basic ";
    let (scheme, encoded) = value.split_at_checked(SCHEME.len())?;
    if !scheme.eq_ignore_ascii_case(SCHEME) {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    Some((decoded[..colon].to_vec(), decoded[colon + 1..].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_basic_credentials_as_go_does() {
        let read = |v: &str| basic_credentials(v.as_bytes());
        // "user:pa:ss"
        assert_eq!(
            read("Basic dXNlcjpwYTpzcw=="),
            Some((b"user".to_vec(), b"pa:ss".to_vec()))
        );
        assert_eq!(
            read("bAsIc dXNlcjpwYTpzcw=="),
            Some((b"user".to_vec(), b"pa:ss".to_vec()))
        );
        assert_eq!(read("Bearer dXNlcjpwYTpzcw=="), None);
        assert_eq!(read("Basic !!!"), None);
        // "nocolon"
        assert_eq!(read("Basic bm9jb2xvbg=="), None);
        assert_eq!(read("Basic"), None);
        assert_eq!(read(""), None);
    }

    #[test]
    fn only_the_configured_pair_is_accepted() {
        let auth = BasicAuth::new(&AuthConfig {
            basic: Some(("admin".into(), "s3cret".into())),
            filter: PathFilter::default(),
        })
        .unwrap();
        assert!(auth.accepts(b"admin", b"s3cret"));
        assert!(!auth.accepts(b"admin", b"s3cre"));
        assert!(!auth.accepts(b"Admin", b"s3cret"));
        assert!(!auth.accepts(b"", b""));
    }
}
