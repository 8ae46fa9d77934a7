//! The HTTP transport of one endpoint: hyper-util's pooled client over our
//! own connector ([`connect`]), with redirects followed by hand
//! ([`redirect`]) only when a 3xx actually arrives.
//!
//! Requests carry a prebuilt `http::Uri`, so nothing about the endpoint's
//! URL is parsed again per request.

mod connect;
mod redirect;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{AUTHORIZATION, COOKIE, PROXY_AUTHORIZATION, USER_AGENT as USER_AGENT_HEADER};
use http::{HeaderMap, HeaderValue, Method, Request, Response, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use super::http_config::{ProxyConfig, TlsConfig};
use super::{WriteError, headers, tls};
use crate::pipeline::UploadBody;
use connect::{Connector, ProxyRoute};

/// Sent on every request unless the endpoint's headers set another.
pub const USER_AGENT: &str = concat!("pyroscope-relay/", env!("CARGO_PKG_VERSION"));

/// Go's `http.Client` follows at most ten redirects.
const MAX_REDIRECTS: usize = 10;
/// Idle keep-alive connections are closed after this (Alloy: 5m).
const IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// Prometheus' dialer timeout and TCP keep-alive.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
const TCP_KEEPALIVE: Duration = Duration::from_secs(30);

/// How one transport connects: the `http_client` settings it depends on.
pub(super) struct Settings<'a> {
    pub tls: &'a TlsConfig,
    pub proxy: &'a ProxyConfig,
    pub http2: bool,
    pub follow_redirects: bool,
}

/// One request, reusable across redirects.
pub(super) struct Outgoing {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Bytes,
}

#[derive(Debug, thiserror::Error)]
pub(super) enum TransportError {
    #[error("{0}")]
    Request(String),
    #[error("redirect: {0}")]
    Redirect(String),
    #[error("stopped after {MAX_REDIRECTS} redirects")]
    TooManyRedirects,
}

pub(super) struct Transport {
    client: Client<Connector, Full<Bytes>>,
    /// For streamed debug-info uploads: the same connector (TLS, proxy),
    /// its own pool, since a client's pool is typed by its body.
    upload_client: Client<Connector, UploadBody>,
    proxy: Option<Arc<ProxyRoute>>,
    follow_redirects: bool,
    user_agent: HeaderValue,
}

impl Transport {
    pub fn build(endpoint: &str, settings: &Settings<'_>) -> Result<Self, WriteError> {
        let tls = tls::client_config(endpoint, settings.tls, settings.http2)?;
        let proxy = proxy_route(endpoint, settings.proxy)?.map(Arc::new);
        let mut tcp = HttpConnector::new();
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        tcp.set_keepalive(Some(TCP_KEEPALIVE));
        tcp.set_connect_timeout(Some(CONNECT_TIMEOUT));
        let connector = Connector::new(tcp, Arc::new(tls), proxy.clone());
        let mut builder = Client::builder(TokioExecutor::new());
        builder
            .pool_idle_timeout(IDLE_TIMEOUT)
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new());
        Ok(Self {
            client: builder.build(connector.clone()),
            upload_client: builder.build(connector),
            proxy,
            follow_redirects: settings.follow_redirects,
            user_agent: HeaderValue::from_static(USER_AGENT),
        })
    }

    /// Sends `req`, following redirects when configured to.
    pub async fn send(&self, mut req: Outgoing) -> Result<Response<Incoming>, TransportError> {
        // Where the redirects started; kept only once one arrives.
        let mut initial: Option<Uri> = None;
        for _ in 0..=MAX_REDIRECTS {
            let resp = self.send_once(&req).await?;
            if !self.follow_redirects || !resp.status().is_redirection() {
                return Ok(resp);
            }
            let hop = redirect::next(resp.status(), resp.headers(), &req.uri, &req.method)
                .map_err(TransportError::Redirect)?;
            let Some(hop) = hop else { return Ok(resp) };
            let initial = initial.get_or_insert_with(|| req.uri.clone());
            if !redirect::keeps_credentials(initial, &hop.uri) {
                req.headers.remove(AUTHORIZATION);
                req.headers.remove(COOKIE);
            }
            if !hop.keep_body {
                req.body = Bytes::new();
            }
            req.method = hop.method;
            req.uri = hop.uri;
        }
        Err(TransportError::TooManyRedirects)
    }

    async fn send_once(&self, req: &Outgoing) -> Result<Response<Incoming>, TransportError> {
        let mut headers = req.headers.clone();
        if !headers.contains_key(USER_AGENT_HEADER) {
            headers.insert(USER_AGENT_HEADER, self.user_agent.clone());
        }
        self.add_forward_proxy_headers(&req.uri, &mut headers);
        let mut request = Request::new(Full::new(req.body.clone()));
        *request.method_mut() = req.method.clone();
        *request.uri_mut() = req.uri.clone();
        *request.headers_mut() = headers;
        self.client
            .request(request)
            .await
            .map_err(|e| TransportError::Request(super::send::error_chain(&e)))
    }

    /// Sends one POST whose body streams from `body`. Redirects are not
    /// followed: a streamed body cannot be sent twice, so a 3xx is the
    /// answer (Go's client does the same for a body it cannot rewind).
    pub async fn send_streaming(
        &self,
        uri: Uri,
        mut headers: HeaderMap,
        body: UploadBody,
    ) -> Result<Response<Incoming>, TransportError> {
        if !headers.contains_key(USER_AGENT_HEADER) {
            headers.insert(USER_AGENT_HEADER, self.user_agent.clone());
        }
        self.add_forward_proxy_headers(&uri, &mut headers);
        let mut request = Request::new(body);
        *request.method_mut() = Method::POST;
        *request.uri_mut() = uri;
        *request.headers_mut() = headers;
        self.upload_client
            .request(request)
            .await
            .map_err(|e| TransportError::Request(super::send::error_chain(&e)))
    }

    /// A forwarding proxy (plain `http://` targets) sees the request itself,
    /// so its credentials and `proxy_connect_header` go on the request.
    fn add_forward_proxy_headers(&self, uri: &Uri, headers: &mut HeaderMap) {
        let Some(route) = &self.proxy else { return };
        if uri.scheme() != Some(&http::uri::Scheme::HTTP) {
            return;
        }
        let Some(proxy) = route.intercept(uri) else {
            return;
        };
        for (name, value) in &route.headers {
            headers.append(name, value.clone());
        }
        if let Some(auth) = proxy.basic_auth() {
            headers.insert(PROXY_AUTHORIZATION, auth.clone());
        }
    }
}

/// Reads at most `limit` bytes of a body; a read error ends it early.
pub(super) async fn read_bounded(resp: Response<Incoming>, limit: usize) -> Vec<u8> {
    let mut body = resp.into_body();
    let mut out = Vec::new();
    while out.len() < limit {
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    let take = data.len().min(limit - out.len());
                    out.extend_from_slice(&data[..take]);
                }
            }
            Some(Err(_)) | None => break,
        }
    }
    out
}

/// `proxy_url` (with `no_proxy`), or the environment's
/// `HTTP_PROXY`/`HTTPS_PROXY`/`NO_PROXY` with `proxy_from_environment`;
/// `proxy_connect_header` applies to either.
fn proxy_route(endpoint: &str, cfg: &ProxyConfig) -> Result<Option<ProxyRoute>, WriteError> {
    let bad = |message: String| WriteError::BadProxy {
        endpoint: endpoint.to_owned(),
        message,
    };
    let mut connect_headers = HeaderMap::new();
    headers::extend_configured(
        &mut connect_headers,
        endpoint,
        "proxy_connect_header",
        cfg.proxy_connect_header
            .iter()
            .map(|(k, vs)| (k.as_str(), vs.iter().map(|s| s.expose()).collect())),
        true,
    )?;
    if cfg.proxy_from_environment {
        return Ok(Some(ProxyRoute {
            matcher: Matcher::from_env(),
            headers: connect_headers,
            skip_loopback: true,
        }));
    }
    if cfg.proxy_url.is_empty() {
        return Ok(None);
    }
    let shown = super::endpoint::redacted(&cfg.proxy_url);
    let url = url::Url::parse(&cfg.proxy_url).map_err(|e| bad(format!("{shown:?}: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || !url.has_host() {
        return Err(bad(format!(
            "{shown:?}: only http:// and https:// proxies are supported"
        )));
    }
    Ok(Some(ProxyRoute {
        matcher: Matcher::builder()
            .all(cfg.proxy_url.clone())
            .no(cfg.no_proxy.clone())
            .build(),
        headers: connect_headers,
        skip_loopback: false,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn connect_header() -> std::collections::BTreeMap<String, Vec<Secret>> {
        [("X-Proxy-Token".to_owned(), vec![Secret::new("abc")])].into()
    }

    #[test]
    fn proxy_connect_header_applies_to_the_environment_proxy() {
        let cfg = ProxyConfig {
            proxy_from_environment: true,
            proxy_connect_header: connect_header(),
            ..Default::default()
        };
        let route = proxy_route("e", &cfg).unwrap().unwrap();
        assert_eq!(route.headers["x-proxy-token"], "abc");
        // Go never sends loopback destinations to the environment's proxy.
        assert!(route.skip_loopback);
    }

    #[test]
    fn proxy_url_routes_all_but_no_proxy() {
        let cfg = ProxyConfig {
            proxy_url: "http://user:pw@proxy:3128".into(),
            no_proxy: "internal.example".into(),
            proxy_connect_header: connect_header(),
            ..Default::default()
        };
        let route = proxy_route("e", &cfg).unwrap().unwrap();
        let via = route
            .intercept(&"https://backend.example/".parse().unwrap())
            .unwrap();
        assert_eq!(via.uri(), "http://proxy:3128/");
        assert_eq!(via.basic_auth().unwrap(), "Basic dXNlcjpwdw==");
        assert!(
            route
                .intercept(&"http://internal.example/".parse().unwrap())
                .is_none()
        );
        assert!(proxy_route("e", &ProxyConfig::default()).unwrap().is_none());
        let socks = ProxyConfig {
            proxy_url: "socks5://p:1080".into(),
            ..Default::default()
        };
        let err = proxy_route("e", &socks).err().unwrap().to_string();
        assert!(err.contains("only http:// and https:// proxies"), "{err}");
    }
}
