//! The pooled HTTP client of one endpoint: reqwest on our own rustls
//! configuration (ring), with redirects, HTTP/2 and proxy settings.

use std::time::Duration;

use http::HeaderMap;

use super::http_config::{HttpClientConfig, ProxyConfig};
use super::{WriteError, headers, tls};

/// Sent on every request unless the endpoint's headers set another.
pub const USER_AGENT: &str = concat!("pyroscope-relay/", env!("CARGO_PKG_VERSION"));

/// Go's `http.Client` follows at most ten redirects.
const MAX_REDIRECTS: usize = 10;
/// Idle keep-alive connections are closed after this (Alloy: 5m).
const IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// Prometheus' dialer timeout and TCP keep-alive.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
const TCP_KEEPALIVE: Duration = Duration::from_secs(30);

pub(super) fn build(endpoint: &str, cfg: &HttpClientConfig) -> Result<reqwest::Client, WriteError> {
    let tls = tls::client_config(endpoint, &cfg.tls_config, cfg.enable_http2)?;
    let redirect = if cfg.follow_redirects {
        reqwest::redirect::Policy::limited(MAX_REDIRECTS)
    } else {
        reqwest::redirect::Policy::none()
    };
    let mut builder = reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .user_agent(USER_AGENT)
        .redirect(redirect)
        .pool_idle_timeout(IDLE_TIMEOUT)
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_keepalive(TCP_KEEPALIVE)
        .tcp_nodelay(true);
    if !cfg.enable_http2 {
        builder = builder.http1_only();
    }
    builder = proxy(endpoint, &cfg.proxy, builder)?;
    builder.build().map_err(|e| WriteError::Client {
        endpoint: endpoint.to_owned(),
        message: super::send::error_chain(&e),
    })
}

/// `proxy_url` (with `no_proxy` and `proxy_connect_header`), or the
/// environment's `HTTP_PROXY`/`HTTPS_PROXY`/`NO_PROXY` with
/// `proxy_from_environment`, or no proxy at all.
fn proxy(
    endpoint: &str,
    cfg: &ProxyConfig,
    builder: reqwest::ClientBuilder,
) -> Result<reqwest::ClientBuilder, WriteError> {
    if cfg.proxy_from_environment {
        return Ok(builder);
    }
    if cfg.proxy_url.is_empty() {
        return Ok(builder.no_proxy());
    }
    let bad = |message: String| WriteError::BadProxy {
        endpoint: endpoint.to_owned(),
        message,
    };
    let url = reqwest::Url::parse(&cfg.proxy_url).map_err(|e| {
        bad(format!(
            "{:?}: {e}",
            super::endpoint::redacted(&cfg.proxy_url)
        ))
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad(format!(
            "{:?}: only http:// and https:// proxies are supported",
            super::endpoint::redacted(&cfg.proxy_url)
        )));
    }
    let mut proxy = reqwest::Proxy::all(url).map_err(|e| bad(super::send::error_chain(&e)))?;
    if !cfg.no_proxy.is_empty() {
        proxy = proxy.no_proxy(reqwest::NoProxy::from_string(&cfg.no_proxy));
    }
    if !cfg.proxy_connect_header.is_empty() {
        let mut map = HeaderMap::new();
        headers::extend_configured(
            &mut map,
            endpoint,
            "proxy_connect_header",
            cfg.proxy_connect_header
                .iter()
                .map(|(k, vs)| (k.as_str(), vs.iter().map(|s| s.expose()).collect())),
            true,
        )?;
        proxy = proxy.headers(map);
    }
    Ok(builder.proxy(proxy))
}
