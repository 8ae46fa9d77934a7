//! The HTTP transport of one endpoint: our own per-thread pool of
//! connections ([`pool`]) made by hyper's connection-level handshakes over
//! our connector ([`connect`]), with redirects followed by hand
//! ([`redirect`]) only when a 3xx actually arrives.
//!
//! Requests carry a prebuilt `http::Uri`, so nothing about the endpoint's
//! URL is parsed again per request.

mod body;
mod connect;
mod pool;
#[cfg(test)]
mod pool_tests;
mod redirect;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http::header::{
    AUTHORIZATION, COOKIE, HOST, PROXY_AUTHORIZATION, USER_AGENT as USER_AGENT_HEADER,
};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, Uri};
use http_body_util::BodyExt;
use hyper::client::conn::{http1, http2};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use super::http_config::{ProxyConfig, TlsConfig};
use super::{WriteError, tls};
use crate::pipeline::UploadBody;
use body::RequestBody;
use connect::{Connector, ProxyRoute, proxy_route};
pub(crate) use pool::ResponseBody;
use pool::{Key, Limits, Pool, Sender};

/// Sent on every request unless the endpoint's headers set another.
pub const USER_AGENT: &str = concat!("pyroscope-relay/", env!("CARGO_PKG_VERSION"));

/// Go's `http.Client` follows at most ten redirects.
const MAX_REDIRECTS: usize = 10;
/// Idle keep-alive connections are closed after this, and at most this
/// many are kept per host (Alloy's transport: `IdleConnTimeout` 5m,
/// `MaxIdleConnsPerHost` 1000).
const POOL_LIMITS: Limits = Limits {
    idle_timeout: Duration::from_secs(300),
    max_idle_per_host: 1000,
};
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

/// One request, reusable across redirects. Its headers are `headers`,
/// then `extra` (each replacing any header of its name): the caller's
/// shared headers are copied once per request sent, not once per layer.
pub(super) struct Outgoing<'a> {
    pub method: Method,
    pub uri: Uri,
    pub headers: &'a HeaderMap,
    pub extra: &'a [(HeaderName, HeaderValue)],
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
    connector: Connector,
    pool: Pool,
    http1: http1::Builder,
    http2: http2::Builder<TokioExecutor>,
    proxy: Option<Arc<ProxyRoute>>,
    follow_redirects: bool,
    user_agent: HeaderValue,
    /// The first destination's `Host` value, reused while requests go
    /// there (all of them but redirects).
    home: OnceLock<(Key, HeaderValue)>,
}

impl Transport {
    pub fn build(endpoint: &str, settings: &Settings<'_>) -> Result<Self, WriteError> {
        Self::with_limits(endpoint, settings, POOL_LIMITS)
    }

    fn with_limits(
        endpoint: &str,
        settings: &Settings<'_>,
        limits: Limits,
    ) -> Result<Self, WriteError> {
        let tls = tls::client_config(endpoint, settings.tls, settings.http2)?;
        let proxy = proxy_route(endpoint, settings.proxy)?.map(Arc::new);
        let mut tcp = HttpConnector::new();
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        tcp.set_keepalive(Some(TCP_KEEPALIVE));
        tcp.set_connect_timeout(Some(CONNECT_TIMEOUT));
        let mut http2 = http2::Builder::new(TokioExecutor::new());
        http2.timer(TokioTimer::new());
        Ok(Self {
            connector: Connector::new(tcp, Arc::new(tls), proxy.clone()),
            pool: Pool::new(limits),
            http1: http1::Builder::new(),
            http2,
            proxy,
            follow_redirects: settings.follow_redirects,
            user_agent: HeaderValue::from_static(USER_AGENT),
            home: OnceLock::new(),
        })
    }

    /// Sends `req`, following redirects when configured to.
    pub async fn send(
        &self,
        mut req: Outgoing<'_>,
    ) -> Result<Response<ResponseBody>, TransportError> {
        // Where the redirects started; kept only once one arrives.
        let mut initial: Option<Uri> = None;
        let mut credentials = true;
        for _ in 0..=MAX_REDIRECTS {
            let headers = request_headers(&req, credentials);
            let body = RequestBody::bytes(req.body.clone());
            let resp = self
                .exchange(req.method.clone(), &req.uri, headers, body)
                .await?;
            if !self.follow_redirects || !resp.status().is_redirection() {
                return Ok(resp);
            }
            let hop = redirect::next(resp.status(), resp.headers(), &req.uri, &req.method)
                .map_err(TransportError::Redirect)?;
            let Some(hop) = hop else { return Ok(resp) };
            let initial = initial.get_or_insert_with(|| req.uri.clone());
            credentials &= redirect::keeps_credentials(initial, &hop.uri);
            if !hop.keep_body {
                req.body = Bytes::new();
            }
            req.method = hop.method;
            req.uri = hop.uri;
        }
        Err(TransportError::TooManyRedirects)
    }

    /// Sends one POST whose body streams from `body`. Redirects are not
    /// followed: a streamed body cannot be sent twice, so a 3xx is the
    /// answer (Go's client does the same for a body it cannot rewind).
    pub async fn send_streaming(
        &self,
        uri: Uri,
        headers: HeaderMap,
        body: UploadBody,
    ) -> Result<Response<ResponseBody>, TransportError> {
        self.exchange(Method::POST, &uri, headers, RequestBody::Stream(body))
            .await
    }

    /// One request on a pooled connection. A request that comes back
    /// unsent from a reused connection (closed by the peer meanwhile) is
    /// sent once more on a new connection, as hyper-util's client did.
    async fn exchange(
        &self,
        method: Method,
        uri: &Uri,
        mut headers: HeaderMap,
        body: RequestBody,
    ) -> Result<Response<ResponseBody>, TransportError> {
        let key = key_of(uri)?;
        if !headers.contains_key(USER_AGENT_HEADER) {
            headers.insert(USER_AGENT_HEADER, self.user_agent.clone());
        }
        let proxied = self.add_forward_proxy_headers(uri, &mut headers);
        let mut request = Request::new(body);
        *request.method_mut() = method;
        *request.headers_mut() = headers;
        let mut reuse = true;
        loop {
            let (sender, reused) = self.acquire(&key, uri, reuse).await?;
            let sent = match sender {
                Sender::Http1(mut tx) => {
                    *request.uri_mut() = if proxied {
                        uri.clone()
                    } else {
                        origin_form(uri)
                    };
                    if !request.headers().contains_key(HOST) {
                        let host = self.host_header(&key)?;
                        request.headers_mut().insert(HOST, host);
                    }
                    match tx.try_send_request(request).await {
                        Ok(resp) => {
                            let (parts, body) = resp.into_parts();
                            let body = self.pool.lend_back(&key, tx, body);
                            return Ok(Response::from_parts(parts, body));
                        }
                        Err(e) => e,
                    }
                }
                Sender::Http2(mut tx) => {
                    *request.uri_mut() = uri.clone();
                    request.headers_mut().remove(HOST);
                    match tx.try_send_request(request).await {
                        Ok(resp) => return Ok(resp.map(ResponseBody::unpooled)),
                        Err(e) => e,
                    }
                }
            };
            let mut failed = sent;
            match failed.take_message() {
                Some(unsent) if reused => {
                    tracing::debug!(error = %failed.error(), "a reused connection closed before the request was sent; retrying on a new one");
                    request = unsent;
                    reuse = false;
                }
                _ => {
                    let error = super::send::error_chain(&failed.into_error());
                    return Err(TransportError::Request(error));
                }
            }
        }
    }

    /// A connection to `key`: an idle one of this thread when `reuse`,
    /// else a new one. Returns whether it was reused.
    async fn acquire(
        &self,
        key: &Key,
        uri: &Uri,
        reuse: bool,
    ) -> Result<(Sender, bool), TransportError> {
        while let Some(sender) = reuse.then(|| self.pool.checkout(key)).flatten() {
            match sender {
                Sender::Http1(mut tx) => {
                    // Its task may not have seen the end of the last
                    // exchange yet; an error means the peer closed it.
                    if tx.is_ready() || tx.ready().await.is_ok() {
                        return Ok((Sender::Http1(tx), true));
                    }
                }
                shared => return Ok((shared, true)),
            }
        }
        self.connect(key, uri).await.map(|sender| (sender, false))
    }

    async fn connect(&self, key: &Key, uri: &Uri) -> Result<Sender, TransportError> {
        let failed = |what: &str, e: &dyn std::error::Error| {
            let chain = super::send::error_chain(e);
            TransportError::Request(format!("{what} {}: {chain}", key.authority))
        };
        let conn = self
            .connector
            .connect(uri.clone())
            .await
            .map_err(|e| failed("cannot connect to", &*e))?;
        if conn.h2 {
            let (mut tx, connection) = self
                .http2
                .handshake(conn)
                .await
                .map_err(|e| failed("HTTP/2 handshake with", &e))?;
            drive(connection, "HTTP/2");
            tx.ready()
                .await
                .map_err(|e| failed("HTTP/2 connection to", &e))?;
            self.pool.share(key, tx.clone());
            return Ok(Sender::Http2(tx));
        }
        let (mut tx, connection) = self
            .http1
            .handshake(conn)
            .await
            .map_err(|e| failed("HTTP/1.1 handshake with", &e))?;
        drive(connection, "HTTP/1.1");
        tx.ready()
            .await
            .map_err(|e| failed("HTTP/1.1 connection to", &e))?;
        Ok(Sender::Http1(tx))
    }

    /// `Host` for HTTP/1.1: the destination's host and any non-default
    /// port (as Go and hyper-util send it), computed once for the usual
    /// destination.
    fn host_header(&self, key: &Key) -> Result<HeaderValue, TransportError> {
        if let Some((home, host)) = self.home.get()
            && home == key
        {
            return Ok(host.clone());
        }
        let host = host_value(key)?;
        let _ = self.home.set((key.clone(), host.clone()));
        Ok(host)
    }

    /// A forwarding proxy (plain `http://` targets) sees the request itself,
    /// so its credentials and `proxy_connect_header` go on the request,
    /// and the request goes in absolute form. Returns whether it does.
    fn add_forward_proxy_headers(&self, uri: &Uri, headers: &mut HeaderMap) -> bool {
        let Some(route) = &self.proxy else {
            return false;
        };
        if uri.scheme() != Some(&http::uri::Scheme::HTTP) {
            return false;
        }
        let Some(proxy) = route.intercept(uri) else {
            return false;
        };
        for (name, value) in &route.headers {
            headers.append(name, value.clone());
        }
        if let Some(auth) = proxy.basic_auth() {
            headers.insert(PROXY_AUTHORIZATION, auth.clone());
        }
        true
    }
}

/// The headers of one request sent: room for those the transport adds
/// (`User-Agent`, `Host`, proxy credentials) so that none grows the map.
fn request_headers(req: &Outgoing<'_>, credentials: bool) -> HeaderMap {
    let mut headers = HeaderMap::with_capacity(req.headers.len() + req.extra.len() + 3);
    for (name, value) in req.headers {
        headers.append(name.clone(), value.clone());
    }
    for (name, value) in req.extra {
        headers.insert(name.clone(), value.clone());
    }
    if !credentials {
        headers.remove(AUTHORIZATION);
        headers.remove(COOKIE);
    }
    headers
}

/// Runs a connection's task on the current runtime (with one
/// current-thread runtime per core: on this thread, beside its requests).
fn drive<F>(connection: F, protocol: &'static str)
where
    F: std::future::Future<Output = hyper::Result<()>> + Send + 'static,
{
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, protocol, "a connection to a backend ended");
        }
    });
}

fn key_of(uri: &Uri) -> Result<Key, TransportError> {
    match (uri.scheme(), uri.authority()) {
        (Some(scheme), Some(authority)) => Ok(Key {
            scheme: scheme.clone(),
            authority: authority.clone(),
        }),
        _ => Err(TransportError::Request(format!(
            "{uri} is not an absolute URL"
        ))),
    }
}

/// `/path?query` of an absolute URI: what HTTP/1.1 sends to an origin.
fn origin_form(uri: &Uri) -> Uri {
    match uri.path_and_query() {
        Some(path) => Uri::from(path.clone()),
        None => Uri::from_static("/"),
    }
}

fn host_value(key: &Key) -> Result<HeaderValue, TransportError> {
    let host = key.authority.host();
    let default_port = match key.scheme.as_str() {
        "https" => 443,
        _ => 80,
    };
    let value = match key.authority.port_u16() {
        Some(port) if port != default_port => HeaderValue::try_from(format!("{host}:{port}")),
        _ => HeaderValue::try_from(host),
    };
    value.map_err(|_| TransportError::Request(format!("{host:?} is not a valid Host")))
}

/// Reads at most `limit` bytes of a body; a read error ends it early.
pub(super) async fn read_bounded(resp: Response<ResponseBody>, limit: usize) -> Vec<u8> {
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
