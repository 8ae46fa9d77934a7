//! OAuth 2.0 client-credentials tokens (`oauth2` block), cached until ten
//! seconds before they expire, as `golang.org/x/oauth2` does. One fetch
//! runs at a time; concurrent requests wait for it.
//!
//! Client credentials go in a Basic `Authorization` header first; if the
//! token endpoint refuses that with a 4xx, they are sent in the form body
//! instead and that style is kept (x/oauth2's auto-detection).

use std::sync::Mutex as SyncMutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, Method, Uri};
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::WriteError;
use super::auth::{AuthFailure, basic, read_trimmed, sensitive};
use super::http_config::OAuth2Config;
use super::query::{form, query_escape};
use super::transport::{Outgoing, Settings, Transport, read_bounded};
use crate::config::Secret;

/// Tokens are refreshed this long before their stated expiry.
const EXPIRY_DELTA: Duration = Duration::from_secs(10);
/// The largest token response read.
const MAX_TOKEN_RESPONSE: usize = 64 * 1024;

pub(super) struct TokenSource {
    transport: Transport,
    token_url: Uri,
    client_id: String,
    secret: ClientSecret,
    scopes: Vec<String>,
    params: Vec<(String, String)>,
    cached: Mutex<Option<Token>>,
    /// Set once the endpoint refused header-style client authentication.
    credentials_in_body: AtomicBool,
    /// Bumped by `invalidate`, so a token fetched before a 401 is not kept.
    generation: SyncMutex<u64>,
}

enum ClientSecret {
    Inline(Secret),
    File(String),
}

struct Token {
    header: HeaderValue,
    /// `None`: the endpoint gave no lifetime; the token never expires.
    refresh_at: Option<Instant>,
    generation: u64,
}

impl TokenSource {
    pub fn new(endpoint: &str, cfg: &OAuth2Config) -> Result<Self, WriteError> {
        let invalid = |e: String| WriteError::InvalidConfig {
            endpoint: endpoint.to_owned(),
            message: format!("oauth2 token_url {:?}: {e}", cfg.token_url),
        };
        let token_url = super::endpoint::parse_url(&cfg.token_url)
            .map_err(invalid)?
            .as_str()
            .parse::<Uri>()
            .map_err(|e| invalid(e.to_string()))?;
        let transport = Transport::build(
            endpoint,
            &Settings {
                tls: &cfg.tls_config,
                proxy: &cfg.proxy,
                http2: true,
                follow_redirects: true,
            },
        )?;
        let secret = match &cfg.client_secret {
            Some(s) if !s.expose().is_empty() => ClientSecret::Inline(s.clone()),
            _ => ClientSecret::File(cfg.client_secret_file.clone()),
        };
        Ok(Self {
            transport,
            token_url,
            client_id: cfg.client_id.clone(),
            secret,
            scopes: cfg.scopes.clone(),
            params: cfg.endpoint_params.clone().into_iter().collect(),
            cached: Mutex::new(None),
            credentials_in_body: AtomicBool::new(false),
            generation: SyncMutex::new(0),
        })
    }

    /// A valid `Authorization` value, fetching a token when needed.
    pub async fn header(&self) -> Result<HeaderValue, AuthFailure> {
        let mut cached = self.cached.lock().await;
        let generation = self.generation();
        if let Some(token) = cached.as_ref() {
            let fresh = token.refresh_at.is_none_or(|at| Instant::now() < at);
            if fresh && token.generation == generation {
                return Ok(token.header.clone());
            }
        }
        let token = self.fetch(generation).await?;
        let header = token.header.clone();
        *cached = Some(token);
        Ok(header)
    }

    /// Drops the cached token (the backend refused it).
    pub fn invalidate(&self) {
        *self.generation.lock().unwrap_or_else(|e| e.into_inner()) += 1;
    }

    fn generation(&self) -> u64 {
        *self.generation.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn fetch(&self, generation: u64) -> Result<Token, AuthFailure> {
        let secret = match &self.secret {
            ClientSecret::Inline(s) => s.expose().to_owned(),
            ClientSecret::File(path) => read_trimmed(path)?,
        };
        if !self.credentials_in_body.load(Ordering::Relaxed) {
            match self.request(&secret, false).await {
                Err(Refused::ClientAuth(_)) => {}
                other => {
                    return other
                        .map_err(Refused::into_failure)
                        .map(|t| t.at(generation));
                }
            }
        }
        let token = self
            .request(&secret, true)
            .await
            .map_err(Refused::into_failure)?;
        self.credentials_in_body.store(true, Ordering::Relaxed);
        Ok(token.at(generation))
    }

    async fn request(&self, secret: &str, in_body: bool) -> Result<Token, Refused> {
        let scope = self.scopes.join(" ");
        let mut pairs = vec![("grant_type", "client_credentials")];
        if !scope.is_empty() {
            pairs.push(("scope", scope.as_str()));
        }
        let mut params: Vec<(&str, &str)> = self
            .params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        if in_body {
            params.push(("client_id", &self.client_id));
            params.push(("client_secret", secret));
        }
        pairs.extend(params);
        pairs.sort_by_key(|(k, _)| *k);
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        if !in_body {
            let auth = basic(&query_escape(&self.client_id), &query_escape(secret));
            headers.insert(AUTHORIZATION, auth);
        }
        let failed = |m: String| Refused::Other(format!("oauth2: cannot fetch token: {m}"));
        let req = Outgoing {
            method: Method::POST,
            uri: self.token_url.clone(),
            headers: &headers,
            extra: &[],
            body: Bytes::from(form(pairs)),
        };
        let resp = self
            .transport
            .send(req)
            .await
            .map_err(|e| failed(e.to_string()))?;
        let status = resp.status();
        let body = read_bounded(resp, MAX_TOKEN_RESPONSE).await;
        if !status.is_success() {
            let message = format!("{status}; body: {}", String::from_utf8_lossy(&body));
            return Err(if status.is_client_error() && !in_body {
                Refused::ClientAuth(message)
            } else {
                Refused::Other(format!("oauth2: cannot fetch token: {message}"))
            });
        }
        parse_token(&body).map_err(failed)
    }
}

enum Refused {
    /// A 4xx to header-style client authentication.
    ClientAuth(String),
    Other(String),
}

impl Refused {
    fn into_failure(self) -> AuthFailure {
        match self {
            Refused::ClientAuth(m) => {
                AuthFailure::Remote(format!("oauth2: cannot fetch token: {m}"))
            }
            Refused::Other(m) => AuthFailure::Remote(m),
        }
    }
}

impl Token {
    fn at(mut self, generation: u64) -> Self {
        self.generation = generation;
        self
    }
}

fn parse_token(body: &[u8]) -> Result<Token, String> {
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("invalid token response: {e}"))?;
    let access = v
        .get("access_token")
        .and_then(|t| t.as_str())
        .filter(|t| !t.is_empty())
        .ok_or("server response missing access_token")?;
    let kind = match v.get("token_type").and_then(|t| t.as_str()).unwrap_or("") {
        t if t.is_empty() || t.eq_ignore_ascii_case("bearer") => "Bearer",
        t if t.eq_ignore_ascii_case("mac") => "MAC",
        t if t.eq_ignore_ascii_case("basic") => "Basic",
        t => t,
    };
    let expires_in = match v.get("expires_in") {
        Some(serde_json::Value::Number(n)) => n.as_u64(),
        Some(serde_json::Value::String(s)) => s.parse().ok(),
        _ => None,
    }
    .filter(|s| *s > 0);
    let header =
        sensitive(format!("{kind} {access}")).ok_or("access_token is not a valid header value")?;
    Ok(Token {
        header,
        refresh_at: expires_in
            .map(|s| Instant::now() + Duration::from_secs(s).saturating_sub(EXPIRY_DELTA)),
        generation: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_token_responses() {
        let t = parse_token(br#"{"access_token":"abc","token_type":"bearer","expires_in":3600}"#)
            .unwrap();
        assert_eq!(t.header, "Bearer abc");
        assert!(t.refresh_at.unwrap() > Instant::now() + Duration::from_secs(3500));
        let t = parse_token(br#"{"access_token":"abc","expires_in":"5"}"#).unwrap();
        assert!(t.refresh_at.unwrap() <= Instant::now());
        let t = parse_token(br#"{"access_token":"abc"}"#).unwrap();
        assert!(t.refresh_at.is_none());
        assert!(parse_token(br#"{"token_type":"bearer"}"#).is_err());
        assert!(parse_token(b"not json").is_err());
    }
}
