//! One configured endpoint, ready to send: its pooled client, URLs,
//! configured headers, authentication, retry policy and metric handles.

use std::time::Duration;

use http::HeaderMap;

use super::auth::Auth;
use super::backoff::BackoffConfig;
use super::metrics::{EndpointMetrics, Metrics};
use super::{EndpointConfig, WriteError, client, headers};

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
    pub push_url: reqwest::Url,
    /// The configured URL; ingest requests join their path onto it.
    pub base_url: reqwest::Url,
    pub client: reqwest::Client,
    /// `headers` then `http_headers`.
    pub configured_headers: HeaderMap,
    pub auth: Auth,
    pub policy: RetryPolicy,
    pub metrics: EndpointMetrics,
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
        let base_url = parse_url(&cfg.url).map_err(&invalid)?;
        let push_url = parse_url(&format!(
            "{}{PUSH_PROCEDURE}",
            cfg.url.trim_end_matches('/')
        ))
        .map_err(&invalid)?;
        let backoff = BackoffConfig::new(cfg.min_backoff_period, cfg.max_backoff_period)
            .map_err(|e| invalid(e.to_string()))?;
        let client = client::build(&label, &cfg.http_client)?;
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
        let auth = Auth::from_config(&label, &cfg.http_client, &client)?;
        Ok(Self {
            metrics: metrics.endpoint(component_id, &label),
            label,
            push_url,
            base_url,
            client,
            configured_headers,
            auth,
            policy: RetryPolicy {
                remote_timeout: cfg.remote_timeout,
                backoff,
                max_attempts: cfg.max_backoff_retries,
                retry_on_http_429: cfg.retry_on_http_429,
            },
        })
    }

    /// `<url path>/<incoming path>` with `query`, as Go's `path.Join`
    /// would give for the usual `/ingest`.
    pub fn ingest_url(&self, incoming_path: &str, query: &str) -> reqwest::Url {
        let mut url = self.base_url.clone();
        let base = url.path().trim_end_matches('/');
        let tail = incoming_path.trim_start_matches('/');
        let path = format!("{base}/{tail}");
        url.set_path(&path);
        url.set_query((!query.is_empty()).then_some(query));
        url
    }
}

pub(super) fn parse_url(s: &str) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(s).map_err(|e| format!("invalid url {:?}: {e}", redacted(s)))?;
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
    match reqwest::Url::parse(s) {
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
        assert_eq!(
            e.push_url.as_str(),
            "http://h:4040/push.v1.PusherService/Push"
        );
        assert_eq!(
            e.ingest_url("/ingest", "a=1").as_str(),
            "http://h:4040/ingest?a=1"
        );
        let e = ep("http://h/prefix").unwrap();
        assert_eq!(
            e.push_url.as_str(),
            "http://h/prefix/push.v1.PusherService/Push"
        );
        assert_eq!(
            e.ingest_url("/ingest", "").as_str(),
            "http://h/prefix/ingest"
        );
        let e = ep("http://h/prefix/").unwrap();
        assert_eq!(
            e.ingest_url("/ingest", "n=x").as_str(),
            "http://h/prefix/ingest?n=x"
        );
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
