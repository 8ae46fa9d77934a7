//! Routes a request to `/ingest`, the push RPC or the debuginfo routes,
//! answers everything else with 404 or 405, and records the request metric.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::header::CONNECTION;
use http::{HeaderName, HeaderValue, Method, Request, StatusCode, Version};
use http_body::Body;
use tokio::time::Instant;

use super::arguments::{Arguments, forward_header_name};
use super::budget::RequestBudget;
use super::debuginfo::{self, DebuginfoRoute};
use super::metrics::ComponentMetrics;
use super::reply::{self, HttpResponse};
use super::{ingest, push};
use crate::codec::rpc::PUSH_PROCEDURE;
use crate::pipeline::tap::Tap;
use crate::pipeline::{DEBUGINFO_SERVICE_PREFIX, Receiver};

const INGEST_PATH: &str = "/ingest";
const PUSH_SERVICE_PREFIX: &str = "/push.v1.PusherService/";

/// What handlers read per request; swapped whole on update, so a request
/// sees either the old or the new arguments, never a mix.
#[derive(Debug)]
pub(super) struct Settings {
    pub forward_to: Vec<Receiver>,
    pub forward_headers: Vec<HeaderName>,
    pub body_limit: u64,
    pub decompressed_limit: u64,
    /// Bounds a debuginfo upload instead of the server's timeouts.
    pub debug_info_upload_timeout: Duration,
}

impl Settings {
    pub fn from_arguments(args: &Arguments) -> Self {
        let forward_headers = args
            .forward_headers
            .iter()
            .filter_map(|name| match forward_header_name(name) {
                Ok(name) => Some(name),
                Err(reason) => {
                    tracing::warn!(%reason, "ignoring a forward_headers entry");
                    None
                }
            })
            .collect();
        Self {
            forward_to: args.forward_to.clone(),
            forward_headers,
            body_limit: args.http.body_limit(),
            decompressed_limit: args.http.decompressed_limit(),
            debug_info_upload_timeout: args.debug_info_upload_timeout,
        }
    }
}

/// State shared by every connection of every server of one component.
#[derive(Debug)]
pub(super) struct App {
    settings: ArcSwap<Settings>,
    pub metrics: ComponentMetrics,
    /// The process-wide request memory budget.
    pub budget: Arc<RequestBudget>,
    pub tap: Arc<Tap>,
}

impl App {
    pub fn new(
        settings: Settings,
        metrics: ComponentMetrics,
        budget: Arc<RequestBudget>,
        tap: Arc<Tap>,
    ) -> Self {
        Self {
            settings: ArcSwap::from_pointee(settings),
            metrics,
            budget,
            tap,
        }
    }

    pub fn settings(&self) -> Arc<Settings> {
        self.settings.load_full()
    }

    pub fn swap_settings(&self, settings: Settings) {
        self.settings.store(Arc::new(settings));
    }
}

/// When a request must be done by, from the server's timeouts.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Deadlines {
    /// The body must be read by then (`server_read_timeout`).
    pub read: Option<Instant>,
    /// The answer must be ready by then (`server_write_timeout`); it also
    /// bounds the downstream work.
    pub respond: Option<Instant>,
}

/// A handler's response and how to label it in metrics.
pub(super) struct Outcome {
    pub response: HttpResponse,
    pub route: &'static str,
    pub protocol: &'static str,
    pub status: Cow<'static, str>,
    /// The request body was not read to its end, so an HTTP/1 connection
    /// must not be reused.
    pub body_unread: bool,
}

impl Outcome {
    pub fn new(response: HttpResponse, route: &'static str, protocol: &'static str) -> Self {
        let status = status_label(response.status());
        Self {
            response,
            route,
            protocol,
            status,
            body_unread: false,
        }
    }
}

/// The `status` label of an HTTP answer: its code, without formatting a
/// new string for the codes this server sends.
fn status_label(status: StatusCode) -> Cow<'static, str> {
    const SENT: [&str; 13] = [
        "200", "400", "404", "405", "408", "413", "415", "429", "500", "501", "502", "503", "504",
    ];
    let code = status.as_str();
    match SENT.iter().find(|sent| **sent == code) {
        Some(sent) => Cow::Borrowed(sent),
        None => Cow::Owned(code.to_owned()),
    }
}

/// Serves one request.
pub(super) async fn route<B>(request: Request<B>, app: &App, deadlines: Deadlines) -> HttpResponse
where
    B: Body<Data = Bytes> + Unpin + Send + 'static,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let started = Instant::now();
    let version = request.version();
    let path = request.uri().path();
    let post = request.method() == Method::POST;
    let outcome = if path == INGEST_PATH {
        if post {
            ingest::handle(request, app, deadlines).await
        } else {
            Outcome::new(reply::method_not_allowed(), "ingest", "http")
        }
    } else if path == PUSH_PROCEDURE {
        if post {
            push::handle(request, app, deadlines).await
        } else {
            Outcome::new(reply::method_not_allowed(), "push", "http")
        }
    } else if let Some(rest) = path.strip_prefix(DEBUGINFO_SERVICE_PREFIX) {
        let route = DebuginfoRoute::of(rest);
        debuginfo::handle(route, request, app, deadlines).await
    } else if path.starts_with(PUSH_SERVICE_PREFIX) {
        // Alloy routes the whole service prefix to connect-go, which knows
        // only Push; gorilla answers other methods with 405 first.
        let response = if post {
            reply::not_found()
        } else {
            reply::method_not_allowed()
        };
        Outcome::new(response, "other", "http")
    } else {
        Outcome::new(reply::not_found(), "other", "http")
    };
    let Outcome {
        mut response,
        route,
        protocol,
        status,
        body_unread,
    } = outcome;
    app.metrics
        .observe_request(route, protocol, &status, started.elapsed().as_secs_f64());
    if version <= Version::HTTP_11 && body_unread {
        response
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
    }
    response
}
