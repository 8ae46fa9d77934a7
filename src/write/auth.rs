//! The `Authorization` header of an endpoint: `basic_auth`,
//! `authorization`, `bearer_token(_file)` or `oauth2`.
//!
//! Credential files are read on every request, trimmed, as Prometheus does,
//! so a rotated secret is picked up without a reload.

use std::sync::Arc;

use base64::Engine;
use http::HeaderValue;

use super::WriteError;
use super::http_config::HttpClientConfig;
use super::oauth2::TokenSource;

pub(super) enum Auth {
    None,
    /// A header value known at build time.
    Static(HeaderValue),
    /// `<scheme> <trimmed file content>`.
    CredentialsFile {
        scheme: String,
        path: String,
    },
    /// Basic auth whose password is in a file.
    BasicPasswordFile {
        username: String,
        path: String,
    },
    OAuth2(Arc<TokenSource>),
}

/// Why no header could be produced.
#[derive(Debug)]
pub(super) enum AuthFailure {
    /// A local problem (unreadable file): another attempt will not help.
    Local(String),
    /// The token endpoint failed: worth retrying.
    Remote(String),
}

impl Auth {
    /// `url_credentials`: the endpoint URL's `user:password@`, used when
    /// no other method is configured (Go's client does the same).
    pub fn from_config(
        endpoint: &str,
        cfg: &HttpClientConfig,
        url_credentials: Option<(String, String)>,
    ) -> Result<Auth, WriteError> {
        let invalid = |message: String| WriteError::InvalidConfig {
            endpoint: endpoint.to_owned(),
            message,
        };
        let secret = |s: &Option<crate::config::Secret>| {
            s.as_ref()
                .map(|s| s.expose().to_owned())
                .unwrap_or_default()
        };
        if let Some(token) = cfg.bearer_token.as_ref().filter(|t| !t.expose().is_empty()) {
            return static_credentials("Bearer", token.expose()).map_err(invalid);
        }
        if !cfg.bearer_token_file.is_empty() {
            return Ok(Auth::CredentialsFile {
                scheme: "Bearer".to_owned(),
                path: cfg.bearer_token_file.clone(),
            });
        }
        if let Some(a) = &cfg.authorization {
            let scheme = match a.r#type.trim() {
                "" => "Bearer".to_owned(),
                s => s.to_owned(),
            };
            if !a.credentials_file.is_empty() {
                return Ok(Auth::CredentialsFile {
                    scheme,
                    path: a.credentials_file.clone(),
                });
            }
            return static_credentials(&scheme, &secret(&a.credentials)).map_err(invalid);
        }
        if let Some(b) = &cfg.basic_auth {
            if !b.password_file.is_empty() {
                return Ok(Auth::BasicPasswordFile {
                    username: b.username.clone(),
                    path: b.password_file.clone(),
                });
            }
            return Ok(Auth::Static(basic(&b.username, &secret(&b.password))));
        }
        if let Some(o) = &cfg.oauth2 {
            let source = TokenSource::new(endpoint, o)?;
            return Ok(Auth::OAuth2(Arc::new(source)));
        }
        Ok(url_credentials.map_or(Auth::None, |(user, password)| {
            Auth::Static(basic(&user, &password))
        }))
    }

    /// The header for the next attempt, if any.
    pub async fn header(&self) -> Result<Option<HeaderValue>, AuthFailure> {
        match self {
            Auth::None => Ok(None),
            Auth::Static(v) => Ok(Some(v.clone())),
            Auth::CredentialsFile { scheme, path } => {
                credentials(scheme, &read_trimmed(path)?).map_err(AuthFailure::Local)
            }
            Auth::BasicPasswordFile { username, path } => {
                Ok(Some(basic(username, &read_trimmed(path)?)))
            }
            Auth::OAuth2(source) => source.header().await.map(Some),
        }
    }

    /// The backend answered 401: forget a cached token.
    pub fn rejected(&self) {
        if let Auth::OAuth2(source) = self {
            source.invalidate();
        }
    }
}

/// Reads a credentials file, trimmed of surrounding whitespace.
pub(super) fn read_trimmed(path: &str) -> Result<String, AuthFailure> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .map_err(|e| AuthFailure::Local(format!("unable to read credentials file {path:?}: {e}")))
}

fn credentials(scheme: &str, creds: &str) -> Result<Option<HeaderValue>, String> {
    if creds.is_empty() {
        return Ok(None);
    }
    sensitive(format!("{scheme} {creds}"))
        .map(Some)
        .ok_or_else(|| "authorization credentials are not a valid header value".to_owned())
}

fn static_credentials(scheme: &str, creds: &str) -> Result<Auth, String> {
    credentials(scheme, creds).map(|v| v.map_or(Auth::None, Auth::Static))
}

pub(super) fn basic(username: &str, password: &str) -> HeaderValue {
    let encoded =
        base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    sensitive(format!("Basic {encoded}")).expect("base64 is a valid header value")
}

pub(super) fn sensitive(value: String) -> Option<HeaderValue> {
    let mut v = HeaderValue::try_from(value).ok()?;
    v.set_sensitive(true);
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;
    use crate::write::http_config::{Authorization, BasicAuth};

    fn header(cfg: HttpClientConfig) -> Option<HeaderValue> {
        let auth = Auth::from_config("e", &cfg, None).unwrap();
        futures_util::FutureExt::now_or_never(auth.header())
            .unwrap()
            .unwrap()
    }

    #[test]
    fn static_methods() {
        let cfg = HttpClientConfig {
            bearer_token: Some(Secret::new("tok")),
            ..Default::default()
        };
        assert_eq!(header(cfg).unwrap(), "Bearer tok");
        let cfg = HttpClientConfig {
            basic_auth: Some(BasicAuth {
                username: "user".into(),
                password: Some(Secret::new("pass")),
                password_file: String::new(),
            }),
            ..Default::default()
        };
        let v = header(cfg).unwrap();
        assert_eq!(v, "Basic dXNlcjpwYXNz");
        assert!(v.is_sensitive());
        let cfg = HttpClientConfig {
            authorization: Some(Authorization {
                r#type: "Token".into(),
                credentials: Some(Secret::new("abc")),
                credentials_file: String::new(),
            }),
            ..Default::default()
        };
        assert_eq!(header(cfg).unwrap(), "Token abc");
        assert_eq!(header(HttpClientConfig::default()), None);
        let from_url = Auth::from_config("e", &HttpClientConfig::default(), url_user());
        let from_url = futures_util::FutureExt::now_or_never(from_url.unwrap().header());
        assert_eq!(from_url.unwrap().unwrap().unwrap(), "Basic dXNlcjpwYXNz");
    }

    fn url_user() -> Option<(String, String)> {
        Some(("user".to_owned(), "pass".to_owned()))
    }

    #[test]
    fn configured_auth_wins_over_url_credentials() {
        let cfg = HttpClientConfig {
            bearer_token: Some(Secret::new("tok")),
            ..Default::default()
        };
        let auth = Auth::from_config("e", &cfg, url_user()).unwrap();
        let v = futures_util::FutureExt::now_or_never(auth.header()).unwrap();
        assert_eq!(v.unwrap().unwrap(), "Bearer tok");
    }

    #[test]
    fn files_are_read_per_request_and_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "first\n").unwrap();
        let cfg = HttpClientConfig {
            bearer_token_file: path.to_str().unwrap().to_owned(),
            ..Default::default()
        };
        let auth = Auth::from_config("e", &cfg, None).unwrap();
        let get = || futures_util::FutureExt::now_or_never(auth.header()).unwrap();
        assert_eq!(get().unwrap().unwrap(), "Bearer first");
        std::fs::write(&path, " second ").unwrap();
        assert_eq!(get().unwrap().unwrap(), "Bearer second");
        std::fs::remove_file(&path).unwrap();
        assert!(
            matches!(get(), Err(AuthFailure::Local(m)) if m.contains("unable to read credentials file"))
        );
    }
}
