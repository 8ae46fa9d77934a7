//! The process's own HTTP server on `--server.http.listen-addr`: readiness,
//! health, reload and metrics, with Alloy's paths and answers, behind the
//! TLS and basic authentication of the config's `http` block ([`Guard`]).

mod guard;
pub mod http_block;

pub use guard::{Guard, GuardError};
pub use http_block::HttpBlock;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
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
            let conn_shutdown = shutdown.clone();
            tokio::spawn(serve_connection(stream, runtime, conn_shutdown));
        }
    }
}

/// How long a client may take over its TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves one connection: over TLS when the `http` block has a `tls`
/// block at the moment it was accepted, with every request checked
/// against the credentials configured when it arrives.
async fn serve_connection(
    stream: TcpStream,
    runtime: Arc<Runtime>,
    mut shutdown: watch::Receiver<bool>,
) {
    let tls = runtime.admin_guard().tls().cloned();
    let service = hyper::service::service_fn(move |req| {
        let runtime = runtime.clone();
        async move {
            let refused = runtime.admin_guard().refuse(&req);
            // The web UI (crate::ui) answers its own paths first.
            Ok::<_, Infallible>(match refused {
                Some(response) => response.map(BodyExt::boxed),
                None => match crate::ui::route(&runtime, req).await {
                    Ok(ui) => ui,
                    Err(req) => route(&runtime, req).await.map(BodyExt::boxed),
                },
            })
        }
    });
    let builder = auto::Builder::new(TokioExecutor::new());
    match tls {
        None => {
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = conn => {}
                _ = shutdown.wait_for(|stop| *stop) => {}
            }
        }
        Some(acceptor) => {
            let handshake = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream));
            let stream = tokio::select! {
                done = handshake => match done {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(e)) => {
                        tracing::debug!(error = %e, "admin server: TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!("admin server: TLS handshake timed out");
                        return;
                    }
                },
                _ = shutdown.wait_for(|stop| *stop) => return,
            };
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = conn => {}
                _ = shutdown.wait_for(|stop| *stop) => {}
            }
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
