//! One configured endpoint, ready to send: its pooled transport, URIs,
//! configured headers, authentication, retry policy and metric handles.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderMap, Uri};
use tokio::sync::Notify;

use super::auth::Auth;
use super::backoff::BackoffConfig;
use super::metrics::{EndpointMetrics, Metrics};
use super::transport::{Settings, Transport};
use super::{EndpointConfig, WriteError, headers};

/// The Connect procedure of `push.v1.PusherService/Push`.
const PUSH_PROCEDURE: &str = "/push.v1.PusherService/Push";

pub(super) struct RetryPolicy {
    pub remote_timeout: Duration,
    pub backoff: BackoffConfig,
    /// Total attempts allowed; 0 = until the caller's deadline.
    pub max_attempts: u32,
    pub retry_on_http_429: bool,
}

pub(super) struct Endpoint {
    /// The URL with any password redacted: metric label, logs, errors.
    pub label: String,
    pub push_uri: Uri,
    /// Where ingest requests go: the configured URL's scheme, host and
    /// path, which each request's path is joined onto.
    base: Base,
    pub transport: Transport,
    /// `headers` then `http_headers`.
    pub configured_headers: HeaderMap,
    pub auth: Auth,
    pub policy: RetryPolicy,
    /// Bounds each debug-info upload, start to answer.
    pub debug_info_upload_timeout: Duration,
    pub metrics: EndpointMetrics,
    /// Wakes the queue's retries waiting out a backoff once a request to
    /// this endpoint succeeds.
    pub recovered: Recovered,
}

/// The queue's retries of one endpoint, waiting out their backoff, and the
/// signal that ends the wait: a request to the endpoint succeeded. After a
/// long outage each unit in flight has backed off towards
/// `max_backoff_period` (5 minutes by default); without this, once the
/// first of them got through, the rest each waited out their own delay
/// while the queue sent through the one freed slot.
#[derive(Default)]
pub(super) struct Recovered {
    waiting: AtomicUsize,
    notify: Notify,
}

impl Recovered {
    /// Sleeps for `delay`, or less if a request succeeds meanwhile.
    pub async fn sleep(&self, delay: Duration) {
        let woken = self.notify.notified();
        tokio::pin!(woken);
        // Registered before it is counted, so a success seen after the
        // count reaches this waiter.
        woken.as_mut().enable();
        self.waiting.fetch_add(1, Ordering::SeqCst);
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = woken => {}
        }
        self.waiting.fetch_sub(1, Ordering::SeqCst);
    }

    /// A request succeeded. One atomic load when nobody waits.
    pub fn succeeded(&self) {
        if self.waiting.load(Ordering::SeqCst) > 0 {
            self.notify.notify_waiters();
        }
    }
}

impl Endpoint {
    pub fn build(
        component_id: &str,
        cfg: &EndpointConfig,
        metrics: &Metrics,
    ) -> Result<Self, WriteError> {
        let label = redacted(&cfg.url);
        let invalid = |message: String| WriteError::InvalidConfig {
            endpoint: label.clone(),
            message,
        };
        if let Some(problem) = cfg.problems().into_iter().next() {
            return Err(invalid(problem));
        }
        let url = parse_url(&cfg.url).map_err(&invalid)?;
        let base = Base::new(&url).map_err(&invalid)?;
        let push_uri = base.join(PUSH_PROCEDURE, "").map_err(&invalid)?;
        let backoff = BackoffConfig::new(cfg.min_backoff_period, cfg.max_backoff_period)
            .map_err(|e| invalid(e.to_string()))?;
        let http = &cfg.http_client;
        let transport = Transport::build(
            &label,
            &Settings {
                tls: &http.tls_config,
                proxy: &http.proxy,
                http2: http.enable_http2,
                follow_redirects: http.follow_redirects,
            },
        )?;
        let mut configured_headers = HeaderMap::new();
        headers::extend_configured(
            &mut configured_headers,
            &label,
            "headers",
            cfg.headers
                .iter()
                .map(|(k, v)| (k.as_str(), vec![v.as_str()])),
            false,
        )?;
        headers::extend_configured(
            &mut configured_headers,
            &label,
            "http_headers",
            cfg.http_client
                .http_headers
                .iter()
                .map(|(k, vs)| (k.as_str(), vs.iter().map(|s| s.expose()).collect())),
            true,
        )?;
        let auth = Auth::from_config(&label, &cfg.http_client, url_credentials(&url))?;
        Ok(Self {
            metrics: metrics.endpoint(component_id, &label),
            label,
            push_uri,
            base,
            transport,
            configured_headers,
            auth,
            policy: RetryPolicy {
                remote_timeout: cfg.remote_timeout,
                backoff,
                max_attempts: cfg.max_backoff_retries,
                retry_on_http_429: cfg.retry_on_http_429,
            },
            debug_info_upload_timeout: cfg.debug_info_upload_timeout,
            recovered: Recovered::default(),
        })
    }

    /// `<url path>/<incoming path>?<query>`, as Go's `path.Join` would
    /// give for the usual `/ingest`.
    pub fn ingest_uri(&self, incoming_path: &str, query: &str) -> Result<Uri, String> {
        self.base.join(incoming_path, query)
    }

    /// `<url path>/<procedure>`: where the debuginfo calls go, as Alloy's
    /// Connect client and upload URL put them under the endpoint URL.
    pub fn procedure_uri(&self, procedure: &str) -> Result<Uri, String> {
        self.base.join(procedure, "")
    }
}

/// The parts of the endpoint URL every request reuses.
struct Base {
    scheme: Scheme,
    /// Without user info: that becomes basic auth ([`url_credentials`]).
    authority: Authority,
    /// The URL's path without its trailing slash (`""` for `/`).
    path: String,
}

impl Base {
    fn new(url: &url::Url) -> Result<Self, String> {
        let host_port = match (url.host_str(), url.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_owned(),
            (None, _) => return Err(format!("url {:?} has no host", redacted(url.as_str()))),
        };
        Ok(Self {
            scheme: url.scheme().parse().map_err(|e| format!("scheme: {e}"))?,
            authority: host_port.parse().map_err(|e| format!("host: {e}"))?,
            path: url.path().trim_end_matches('/').to_owned(),
        })
    }

    fn join(&self, tail: &str, query: &str) -> Result<Uri, String> {
        let tail = tail.trim_start_matches('/');
        let mut buf = BytesMut::with_capacity(self.path.len() + tail.len() + query.len() + 2);
        buf.put_slice(self.path.as_bytes());
        buf.put_u8(b'/');
        buf.put_slice(tail.as_bytes());
        if !query.is_empty() {
            buf.put_u8(b'?');
            buf.put_slice(query.as_bytes());
        }
        let path = PathAndQuery::from_maybe_shared(buf.freeze()).map_err(|e| e.to_string())?;
        Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(path)
            .build()
            .map_err(|e| e.to_string())
    }
}

/// `user:password@` in the endpoint URL, percent-decoded: Go's client
/// sends it as basic auth when nothing else sets `Authorization`.
fn url_credentials(url: &url::Url) -> Option<(String, String)> {
    if url.username().is_empty() && url.password().is_none() {
        return None;
    }
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    Some((
        decode(url.username()),
        decode(url.password().unwrap_or_default()),
    ))
}

pub(super) fn parse_url(s: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(s).map_err(|e| format!("invalid url {:?}: {e}", redacted(s)))?;
    if !matches!(url.scheme(), "http" | "https") || !url.has_host() {
        return Err(format!(
            "url {:?} must be http:// or https:// with a host",
            redacted(s)
        ));
    }
    Ok(url)
}

/// The URL as configured, or with its password replaced by `xxxxx` (Go's
/// `URL.Redacted`) when it has one.
pub(super) fn redacted(s: &str) -> String {
    match url::Url::parse(s) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("xxxxx"));
            url.to_string()
        }
        _ => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords_only() {
        assert_eq!(redacted("http://h:4040"), "http://h:4040");
        assert_eq!(redacted("https://u:secret@h/p"), "https://u:xxxxx@h/p");
        assert_eq!(redacted("https://u@h/p"), "https://u@h/p");
    }

    #[test]
    fn urls() {
        let mut registry = prometheus_client::registry::Registry::default();
        let metrics = Metrics::register(&mut registry);
        let ep = |url: &str| Endpoint::build("c", &EndpointConfig::new(url), &metrics);
        let e = ep("http://h:4040/").unwrap();
        assert_eq!(e.push_uri, "http://h:4040/push.v1.PusherService/Push");
        assert_eq!(
            e.ingest_uri("/ingest", "a=1").unwrap(),
            "http://h:4040/ingest?a=1"
        );
        let e = ep("http://h/prefix").unwrap();
        assert_eq!(e.push_uri, "http://h/prefix/push.v1.PusherService/Push");
        assert_eq!(
            e.ingest_uri("/ingest", "").unwrap(),
            "http://h/prefix/ingest"
        );
        let e = ep("http://u:p%40ss@h/prefix/").unwrap();
        assert_eq!(
            e.ingest_uri("/ingest", "n=x").unwrap(),
            "http://h/prefix/ingest?n=x"
        );
        assert_eq!(
            url_credentials(&parse_url("http://u:p%40ss@h/").unwrap()),
            Some(("u".to_owned(), "p@ss".to_owned()))
        );
        assert_eq!(url_credentials(&parse_url("http://h/").unwrap()), None);
        let e = ep("https://[::1]:9/").unwrap();
        assert_eq!(e.push_uri, "https://[::1]:9/push.v1.PusherService/Push");
        assert!(ep("ftp://h").is_err());
        assert!(
            ep("not a url")
                .err()
                .unwrap()
                .to_string()
                .contains("invalid url")
        );
    }
}
