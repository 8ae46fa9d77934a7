//! `pyroscope.write`: sends profiles to Pyroscope-compatible endpoints.
//!
//! The component exports a `receiver`. Each append goes to every endpoint
//! in parallel and succeeds only when all of them accepted it:
//! - push (`push.v1.PusherService/Push`, Connect unary, `application/proto`):
//!   labels validated and rewritten, all series of a request batched into
//!   one `PushRequest` per endpoint ([`push`]);
//! - ingest (`/ingest`): the raw body, with `name` rebuilt ([`ingest`]).
//!
//! Failed attempts are classified by [`retry`] and spaced by [`backoff`]
//! in the one loop of [`send`]. Metrics are in [`metrics`].
//!
//! Layout: `config` decodes the Alloy block, `http_config` holds the HTTP
//! client settings and their validation, `transport`/`tls` build the pooled
//! client, `auth`/`oauth2` produce `Authorization`, `endpoint` ties one
//! endpoint together, `appender` is what the receiver calls.

mod appender;
mod auth;
mod backoff;
mod config;
#[cfg(test)]
mod config_tests;
mod debuginfo;
mod endpoint;
mod headers;
mod http_config;
mod ingest;
mod labels;
pub mod metrics;
mod oauth2;
mod outgoing;
mod push;
mod query;
pub mod queue;
mod retry;
mod send;
mod tls;
mod transport;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use std::path::PathBuf;

use crate::pipeline::Receiver;
use crate::runtime::Health;
use appender::{State, WriteAppender};
use queue::Queue;

pub use crate::config::Secret;
pub use backoff::InvalidBackoff;
pub use http_config::{
    Authorization, BasicAuth, HttpClientConfig, OAuth2Config, ProxyConfig, TlsConfig, TlsVersion,
};
pub use metrics::Metrics;
pub use queue::{QueueArguments, WhenFull};
pub use transport::USER_AGENT;

/// The component's arguments.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Arguments {
    /// Added to every profile; they override the profile's own labels.
    pub external_labels: BTreeMap<String, String>,
    /// Zero or more; with none, appends succeed and send nothing.
    pub endpoints: Vec<EndpointConfig>,
    /// With a `queue` block, appends are acknowledged once on disk and
    /// sent from there ([`queue`]).
    pub queue: Option<QueueArguments>,
}

/// One `endpoint` block.
#[derive(Clone, PartialEq)]
pub struct EndpointConfig {
    pub url: String,
    /// Informational (Alloy uses it only to name the dialer); metrics and
    /// errors use the URL.
    pub name: String,
    pub remote_timeout: Duration,
    pub headers: BTreeMap<String, String>,
    pub min_backoff_period: Duration,
    pub max_backoff_period: Duration,
    /// Total attempts; 0 = until the caller's deadline.
    pub max_backoff_retries: u32,
    pub retry_on_http_429: bool,
    /// Bounds each debug-info upload relayed to this endpoint.
    pub debug_info_upload_timeout: Duration,
    pub http_client: HttpClientConfig,
}

impl EndpointConfig {
    /// An endpoint with Alloy's defaults.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            name: String::new(),
            remote_timeout: Duration::from_secs(10),
            headers: BTreeMap::new(),
            min_backoff_period: Duration::from_millis(500),
            max_backoff_period: Duration::from_secs(300),
            max_backoff_retries: 10,
            retry_on_http_429: true,
            debug_info_upload_timeout: Duration::from_secs(120),
            http_client: HttpClientConfig::default(),
        }
    }

    /// Every configuration problem (empty when valid), with Alloy's
    /// messages where Alloy has one.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.url.is_empty() {
            out.push("url must be set".to_owned());
        }
        if self.remote_timeout.is_zero() {
            out.push("remote_timeout must be greater than 0".to_owned());
        }
        if let Err(e) =
            backoff::BackoffConfig::new(self.min_backoff_period, self.max_backoff_period)
        {
            out.push(e.to_string());
        }
        out.extend(self.http_client.problems());
        out
    }
}

impl Default for EndpointConfig {
    fn default() -> Self {
        Self::new("")
    }
}

/// Hides the URL's password and credential-like header values.
impl fmt::Debug for EndpointConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: BTreeMap<&str, &str> = self
            .headers
            .iter()
            .map(|(k, v)| {
                let v = if headers::is_sensitive_name(k) {
                    "(secret)"
                } else {
                    v.as_str()
                };
                (k.as_str(), v)
            })
            .collect();
        f.debug_struct("EndpointConfig")
            .field("url", &endpoint::redacted(&self.url))
            .field("name", &self.name)
            .field("remote_timeout", &self.remote_timeout)
            .field("headers", &headers)
            .field("min_backoff_period", &self.min_backoff_period)
            .field("max_backoff_period", &self.max_backoff_period)
            .field("max_backoff_retries", &self.max_backoff_retries)
            .field("retry_on_http_429", &self.retry_on_http_429)
            .field("debug_info_upload_timeout", &self.debug_info_upload_timeout)
            .field("http_client", &self.http_client)
            .finish()
    }
}

/// Why the component could not be built from its arguments. `endpoint` is
/// the endpoint's URL with any password redacted.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("endpoint {endpoint}: {message}")]
    InvalidConfig { endpoint: String, message: String },
    #[error("endpoint {endpoint}: cannot read tls_config.{attribute} {path:?}: {source}")]
    ReadFile {
        endpoint: String,
        attribute: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("endpoint {endpoint}: tls_config.{attribute}: {message}")]
    BadPem {
        endpoint: String,
        attribute: &'static str,
        message: String,
    },
    #[error("endpoint {endpoint}: invalid proxy_url {message}")]
    BadProxy { endpoint: String, message: String },
    #[error("endpoint {endpoint}: cannot build the HTTP client: {message}")]
    Client { endpoint: String, message: String },
    #[error("queue in {dir}: {message}")]
    Queue { dir: String, message: String },
}

/// A running `pyroscope.write` component.
pub struct Write {
    component_id: String,
    receiver: Receiver,
    state: Arc<ArcSwap<State>>,
    metrics: Arc<Metrics>,
    /// `<storage.path>/<component id>`, where the queue lives.
    data_dir: PathBuf,
    health: Health,
    queue: tokio::sync::Mutex<Option<Arc<Queue>>>,
}

impl Write {
    /// Builds every endpoint's client, opens the queue when configured,
    /// and installs the appender into `receiver`.
    pub fn start(
        component_id: &str,
        receiver: Receiver,
        args: Arguments,
        metrics: Arc<Metrics>,
        data_dir: PathBuf,
        health: Health,
    ) -> Result<Write, WriteError> {
        let mut state = State::build(component_id, &args, &metrics)?;
        let queue = match &args.queue {
            Some(q) => Some(Arc::new(Queue::open(
                component_id,
                &data_dir,
                q,
                &state.endpoints,
                Arc::clone(&metrics),
                health.clone(),
            )?)),
            None => None,
        };
        state.queue = queue.clone();
        let state = Arc::new(ArcSwap::from_pointee(state));
        receiver.install(WriteAppender {
            state: state.clone(),
        });
        Ok(Write {
            component_id: component_id.to_owned(),
            receiver,
            state,
            metrics,
            data_dir,
            health,
            queue: tokio::sync::Mutex::new(queue),
        })
    }

    /// Rebuilds every client from `args` and swaps them in atomically.
    /// Appends already running finish on the previous clients. On error
    /// the previous arguments stay in force. The queue keeps its data
    /// whatever changes; removing the block leaves it on disk.
    pub async fn update(&self, args: Arguments) -> Result<(), WriteError> {
        let mut state = State::build(&self.component_id, &args, &self.metrics)?;
        let mut queue = self.queue.lock().await;
        match (&args.queue, queue.as_ref()) {
            (Some(q), Some(running)) => {
                running.update(q, &state.endpoints).await;
            }
            (Some(q), None) => {
                *queue = Some(Arc::new(Queue::open(
                    &self.component_id,
                    &self.data_dir,
                    q,
                    &state.endpoints,
                    Arc::clone(&self.metrics),
                    self.health.clone(),
                )?));
            }
            (None, Some(_)) => {
                tracing::warn!(component_id = %self.component_id, dir = %self.data_dir.display(), "the queue block was removed: queued profiles stay on disk until it is added back");
            }
            (None, None) => {}
        }
        state.queue = if args.queue.is_some() {
            queue.clone()
        } else {
            None
        };
        self.state.store(Arc::new(state));
        if args.queue.is_none()
            && let Some(old) = queue.take()
        {
            close(old, false).await;
        }
        Ok(())
    }

    /// The component's `receiver` export.
    pub fn receiver(&self) -> &Receiver {
        &self.receiver
    }

    /// For a component deleted from the config (`exiting = false`) or a
    /// process shutting down (`true`: the queue first sends its backlog for
    /// up to its `drain_timeout`): appends fail as "not running" from now on
    /// (running ones finish), the queue checkpoints and closes, and the
    /// metric series are removed. Dropping a `Write` does none of this, so
    /// that a replacement can take over the same receiver first.
    pub async fn stop(self, exiting: bool) {
        self.receiver.uninstall();
        // The appender holds the queue too; let go of it first.
        self.state
            .store(Arc::new(State::empty(&self.metrics, &self.component_id)));
        if let Some(queue) = self.queue.lock().await.take() {
            close(queue, exiting).await;
        }
        self.metrics.remove_component(&self.component_id);
    }
}

/// Closes a queue once no append holds it any more.
async fn close(queue: Arc<Queue>, exiting: bool) {
    let mut queue = queue;
    for _ in 0..200 {
        match Arc::try_unwrap(queue) {
            Ok(q) => return q.shutdown(exiting).await,
            Err(shared) => queue = shared,
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    tracing::warn!("queue still in use after 5s; closing it when the last append ends");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_credentials() {
        let mut e = EndpointConfig::new("https://user:hunter1@example.com/p");
        e.headers
            .insert("Authorization".into(), "Bearer hunter2".into());
        e.headers.insert("X-Scope-OrgID".into(), "tenant".into());
        e.http_client.bearer_token = Some(Secret::new("hunter3"));
        let args = Arguments {
            endpoints: vec![e],
            ..Default::default()
        };
        let s = format!("{args:?}");
        assert!(!s.contains("hunter"), "{s}");
        assert!(
            s.contains("tenant") && s.contains("user:xxxxx@example.com"),
            "{s}"
        );
    }

    #[test]
    fn problems_are_collected() {
        let mut e = EndpointConfig::new("http://h");
        assert!(e.problems().is_empty());
        e.min_backoff_period = Duration::ZERO;
        e.remote_timeout = Duration::ZERO;
        assert_eq!(
            e.problems(),
            [
                "remote_timeout must be greater than 0",
                "min_backoff_period must be greater than 0"
            ]
        );
    }
}
