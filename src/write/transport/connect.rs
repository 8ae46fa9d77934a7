//! Opens the connections of one transport's pool: TCP, optionally through an
//! HTTP proxy (forwarding for `http://` targets, a CONNECT tunnel for
//! `https://` ones), then TLS for `https://` targets with ALPN deciding
//! between HTTP/1.1 and HTTP/2.

use std::error::Error as StdError;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{HeaderMap, Uri};

use super::super::http_config::ProxyConfig;
use super::super::{WriteError, headers};
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::proxy::matcher::{Intercept, Matcher};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsConnector;
use tower_service::Service;

type BoxError = Box<dyn StdError + Send + Sync>;

/// Any byte stream a connection can run on (TCP, TLS, TLS in a tunnel).
trait Stream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Stream for T {}

/// Where requests to some destinations go instead of straight to it.
pub(super) struct ProxyRoute {
    pub matcher: Matcher,
    /// `proxy_connect_header`: sent to the proxy (CONNECT or forwarded).
    pub headers: HeaderMap,
    /// Go's `ProxyFromEnvironment` never proxies loopback destinations.
    pub skip_loopback: bool,
}

impl ProxyRoute {
    /// The proxy for `dst`, if one applies.
    pub fn intercept(&self, dst: &Uri) -> Option<Intercept> {
        if self.skip_loopback && dst.host().is_some_and(is_loopback) {
            return None;
        }
        self.matcher.intercept(dst)
    }
}

fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[derive(Clone)]
pub(super) struct Connector {
    dialer: Dialer,
    proxy: Option<Arc<ProxyRoute>>,
}

/// TCP, plus TLS when the URI is `https://` (to a target or to a proxy).
#[derive(Clone)]
struct Dialer {
    tcp: HttpConnector,
    tls: TlsConnector,
    /// For `https://` proxies: the same trust, HTTP/1.1 only.
    proxy_tls: TlsConnector,
}

impl Connector {
    pub fn new(
        tcp: HttpConnector,
        tls: Arc<rustls::ClientConfig>,
        proxy: Option<Arc<ProxyRoute>>,
    ) -> Self {
        let mut proxy_tls = (*tls).clone();
        proxy_tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        Self {
            dialer: Dialer {
                tcp,
                tls: TlsConnector::from(tls),
                proxy_tls: TlsConnector::from(Arc::new(proxy_tls)),
            },
            proxy,
        }
    }

    /// A stream to `dst`'s host, through the proxy that applies to it.
    pub async fn connect(&self, dst: Uri) -> Result<Conn, BoxError> {
        let intercept = self.proxy.as_ref().and_then(|p| p.intercept(&dst));
        let Some(proxy) = intercept else {
            return self.dialer.dial(&dst, &self.dialer.tls).await;
        };
        if dst.scheme() != Some(&http::uri::Scheme::HTTPS) {
            let conn = self
                .dialer
                .dial(proxy.uri(), &self.dialer.proxy_tls)
                .await?;
            return Ok(conn);
        }
        let mut headers = self
            .proxy
            .as_ref()
            .map(|p| p.headers.clone())
            .unwrap_or_default();
        if let Some(auth) = proxy.basic_auth() {
            headers.insert(http::header::PROXY_AUTHORIZATION, auth.clone());
        }
        let mut tunnel =
            Tunnel::new(proxy.uri().clone(), ProxyDial(self.dialer.clone())).with_headers(headers);
        let tunneled = tunnel.call(dst.clone()).await?;
        self.dialer
            .handshake(tunneled.io.into_inner(), &dst, &self.dialer.tls)
            .await
    }
}

impl Dialer {
    async fn dial(&self, uri: &Uri, tls: &TlsConnector) -> Result<Conn, BoxError> {
        let tcp = self.tcp.clone().call(uri.clone()).await?.into_inner();
        if uri.scheme() == Some(&http::uri::Scheme::HTTPS) {
            self.handshake(Box::new(tcp), uri, tls).await
        } else {
            Ok(Conn::plain(Box::new(tcp)))
        }
    }

    async fn handshake(
        &self,
        io: Box<dyn Stream>,
        uri: &Uri,
        tls: &TlsConnector,
    ) -> Result<Conn, BoxError> {
        let host = uri.host().unwrap_or_default();
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let name = ServerName::try_from(host.to_owned())
            .map_err(|_| format!("{host:?} is not a valid TLS server name"))?;
        let stream = tls.connect(name, io).await?;
        let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
        Ok(Conn {
            h2,
            ..Conn::plain(Box::new(stream))
        })
    }
}

/// The dialer as the tunnel's inner connector (TCP or TLS to the proxy).
#[derive(Clone)]
struct ProxyDial(Dialer);

impl Service<Uri> for ProxyDial {
    type Response = Conn;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Conn, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, proxy: Uri) -> Self::Future {
        let dialer = self.0.clone();
        Box::pin(async move { dialer.dial(&proxy, &dialer.proxy_tls).await })
    }
}

/// One connection's stream, and whether ALPN chose HTTP/2 on it.
pub(super) struct Conn {
    io: TokioIo<Box<dyn Stream>>,
    pub h2: bool,
}

impl Conn {
    fn plain(io: Box<dyn Stream>) -> Self {
        Self {
            io: TokioIo::new(io),
            h2: false,
        }
    }
}

impl Read for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl Write for Conn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }
}

/// `proxy_url` (with `no_proxy`), or the environment's
/// `HTTP_PROXY`/`HTTPS_PROXY`/`NO_PROXY` with `proxy_from_environment`;
/// `proxy_connect_header` applies to either.
pub(super) fn proxy_route(
    endpoint: &str,
    cfg: &ProxyConfig,
) -> Result<Option<ProxyRoute>, WriteError> {
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
    let shown = crate::write::endpoint::redacted(&cfg.proxy_url);
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

    #[test]
    fn loopback_hosts() {
        for host in ["localhost", "LOCALHOST", "127.0.0.1", "127.1.2.3", "[::1]"] {
            assert!(is_loopback(host), "{host}");
        }
        for host in ["example.com", "10.0.0.1", "[::2]", "localhost.example"] {
            assert!(!is_loopback(host), "{host}");
        }
    }

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
