//! The process's own HTTP server on `--server.http.listen-addr`: readiness,
//! health, reload and metrics, with Alloy's paths and answers.

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::runtime::{HealthState, Runtime};
use crate::telemetry::{METRICS_CONTENT_TYPE, encode_text};

/// A bound admin server; [`AdminServer::serve`] runs it until shutdown.
pub struct AdminServer {
    listener: TcpListener,
    runtime: Arc<Runtime>,
}

impl AdminServer {
    pub async fn bind(addr: &str, runtime: Arc<Runtime>) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await.map_err(|e| {
            std::io::Error::new(e.kind(), format!("binding the admin server to {addr}: {e}"))
        })?;
        Ok(Self { listener, runtime })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` turns true; open connections are dropped then.
    pub async fn serve(self, mut shutdown: watch::Receiver<bool>) {
        loop {
            let accepted = tokio::select! {
                accepted = self.listener.accept() => accepted,
                _ = shutdown.wait_for(|stop| *stop) => return,
            };
            let Ok((stream, _)) = accepted else { continue };
            let runtime = self.runtime.clone();
            let mut conn_shutdown = shutdown.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let runtime = runtime.clone();
                    async move {
                        // The web UI (crate::ui) answers its own paths first.
                        let response = match crate::ui::route(&runtime, req).await {
                            Ok(ui) => ui,
                            Err(req) => route(&runtime, req).await.map(BodyExt::boxed),
                        };
                        Ok::<_, Infallible>(response)
                    }
                });
                let builder = auto::Builder::new(TokioExecutor::new());
                let conn = builder.serve_connection(TokioIo::new(stream), service);
                tokio::select! {
                    _ = conn => {}
                    _ = conn_shutdown.wait_for(|stop| *stop) => {}
                }
            });
        }
    }
}

async fn route(runtime: &Runtime, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let method = req.method().clone();
    match (req.uri().path(), method) {
        ("/-/ready", Method::GET) => ready(runtime),
        ("/-/healthy", Method::GET) => healthy(runtime).await,
        ("/-/reload", Method::GET | Method::POST) => reload(runtime).await,
        ("/metrics", Method::GET) => text(
            StatusCode::OK,
            METRICS_CONTENT_TYPE,
            encode_text(runtime.registry()),
        ),
        ("/-/ready" | "/-/healthy" | "/metrics", _) => method_not_allowed("GET"),
        ("/-/reload", _) => method_not_allowed("GET, POST"),
        (path, method) => {
            let stores = runtime.archive_stores().await;
            match crate::archive::api::handle(&stores, &method, path, req.uri().query()).await {
                Some(response) => response.map(Full::new),
                None => plain(StatusCode::NOT_FOUND, "404 page not found\n"),
            }
        }
    }
}

fn ready(runtime: &Runtime) -> Response<Full<Bytes>> {
    if runtime.is_ready() {
        plain(StatusCode::OK, "pyroscope-relay is ready.\n")
    } else {
        plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "pyroscope-relay is not ready.\n",
        )
    }
}

async fn healthy(runtime: &Runtime) -> Response<Full<Bytes>> {
    let unhealthy: Vec<String> = runtime
        .health()
        .await
        .into_iter()
        .filter_map(|c| match c.state {
            HealthState::Healthy => None,
            HealthState::Unhealthy(reason) => Some(format!("{} ({reason})", c.id)),
        })
        .collect();
    if unhealthy.is_empty() {
        plain(
            StatusCode::OK,
            "All pyroscope-relay components are healthy.\n",
        )
    } else {
        plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("unhealthy components: {}\n", unhealthy.join(", ")),
        )
    }
}

async fn reload(runtime: &Runtime) -> Response<Full<Bytes>> {
    match runtime.reload().await {
        Ok(()) => {
            tracing::info!("config reloaded");
            plain(StatusCode::OK, "config reloaded\n")
        }
        Err(e) => {
            tracing::error!(error = %e, "config reload failed; the running config is unchanged");
            plain(StatusCode::BAD_REQUEST, format!("{e}\n"))
        }
    }
}

fn method_not_allowed(allow: &'static str) -> Response<Full<Bytes>> {
    let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
    response
        .headers_mut()
        .insert(header::ALLOW, header::HeaderValue::from_static(allow));
    response
}

fn plain(status: StatusCode, body: impl Into<String>) -> Response<Full<Bytes>> {
    text(status, "text/plain; charset=utf-8", body.into())
}

fn text(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    response
}
