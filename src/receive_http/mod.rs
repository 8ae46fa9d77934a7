//! `pyroscope.receive_http`: an HTTP server that accepts profiles on
//! Pyroscope's `/ingest` and `push.v1.PusherService/Push` APIs and hands
//! them to every `forward_to` receiver, and relays the eBPF profiler's
//! debug-info uploads to the first debuginfo target behind `forward_to`.
//!
//! # Routes
//! | Path | Method | Answer |
//! |---|---|---|
//! | `/ingest` | POST | body forwarded byte for byte; 200 empty when every receiver succeeded |
//! | `/push.v1.PusherService/Push` | POST | Connect, gRPC and gRPC-Web; proto and JSON; gzip |
//! | `/ingest`, `/push.v1.PusherService/Push` | other | 405, `Allow: POST` |
//! | `/push.v1.PusherService/<other>` | POST / other | 404 / 405 |
//! | `/debuginfo.v1alpha1.DebuginfoService/...` | | see [`debuginfo`] |
//! | anything else | any | 404 |
//!
//! A push whose `Content-Type` names no supported protocol gets 415 with
//! `Accept-Post`. HTTP/1.1 and cleartext HTTP/2 (prior knowledge) are
//! served on the same port, so stock gRPC clients work without setup; with
//! TLS, ALPN offers `h2` and `http/1.1`. The `http2` block's `enabled` has
//! no effect (h2c is always on); its other attributes tune HTTP/2
//! (`max_concurrent_streams`, `max_read_frame_size`, `read_idle_timeout`
//! and `ping_timeout` for keep-alive pings, `idle_timeout`,
//! `max_upload_buffer_per_connection` / `_per_stream` as flow-control
//! windows); the rest are accepted and ignored. The `grpc` block is
//! accepted and ignored: Alloy's gRPC server has no services.
//!
//! # `/ingest`
//! Labels come from the `name` query parameter (Pyroscope's labelset
//! grammar; a parse error is logged and gives no labels, as in Alloy), then
//! `service_name` from `__name__`, or `app_name` when `service_name` is
//! set. Receivers get the body, every `Content-Type` value, the path and the
//! raw query. When a receiver fails, the answer is the downstream HTTP
//! status a writer reported, with its message; without one, 500
//! `Failed to process request`. Body over the limit: 413; body not read
//! within `server_read_timeout`: 408; malformed body (bad chunking): 400;
//! receivers not done within `server_write_timeout`: 504.
//!
//! # Errors
//! Push failures keep their meaning instead of Alloy's blanket `internal`:
//!
//! | Failure | Code | Connect HTTP | gRPC |
//! |---|---|---|---|
//! | bad `Connect-Timeout-Ms` / `grpc-timeout` | invalid_argument | 400 | 3 |
//! | unsupported `Content-Encoding` / `grpc-encoding` | unimplemented | 501 | 12 |
//! | body over `max_request_body_size` (declared or counted) | resource_exhausted | 429 | 8 |
//! | gzip expanding past `max_decompressed_body_size` | resource_exhausted | 429 | 8 |
//! | body not read within `server_read_timeout` | deadline_exceeded | 504 | 4 |
//! | bad envelope, bad gzip, undecodable protobuf / JSON | invalid_argument | 400 | 3 |
//! | zero or several messages in a unary gRPC body | unimplemented | 501 | 12 |
//! | compressed flag without `grpc-encoding` | internal | 500 | 13 |
//! | caller deadline or `server_write_timeout` passed | deadline_exceeded | 504 | 4 |
//! | receiver failed | the receiver's `AppendError.code` | per code | per code |
//!
//! Receivers' codes are theirs: a writer reports invalid labels as
//! invalid_argument, a backend 429 as resource_exhausted, a backend that is
//! down as unavailable. When several receivers fail, the answer carries
//! the most meaningful code, first in this order, then the lowest receiver
//! index: (1) unauthenticated, permission_denied (an operator must fix a
//! credential); (2) resource_exhausted (back off); (3) unavailable,
//! deadline_exceeded, aborted (retryable: a retry can still reach the
//! receiver that failed, so they win over permanent errors); (4)
//! invalid_argument, failed_precondition, out_of_range, not_found,
//! already_exists, unimplemented; (5) canceled, data_loss, internal,
//! unknown. The message lists every failure, one line each, in Alloy's
//! words: `unable to append series {app="app-0"} to appendable 1: <err>`.
//! `/ingest` applies the same order among failures that carry a downstream
//! HTTP status.
//!
//! # Timeouts
//! Zero disables a timeout (an idle timeout of zero means the read
//! timeout, as in Go).
//! - `server_read_timeout`: for HTTP/1.1, the whole request (head and
//!   body) must arrive within it, counted from the first byte of the
//!   request (from the connection's start for its first request), as
//!   Go's `ReadTimeout`; a head not complete in time closes the
//!   connection, a body not complete gets 408 / deadline_exceeded. For
//!   HTTP/2, each stream's body counts from its headers, and a new
//!   connection must open its first stream within it. It also bounds the
//!   TLS handshake (with the write timeout, whichever is shorter).
//! - `server_write_timeout`: the answer must be ready within it of the
//!   request's head, as Go's `WriteTimeout` (which runs from the end of the
//!   head to the end of the response). Unlike Go, which lets the handler
//!   run on and then fails the write, it is the downstream deadline
//!   (`Profile.deadline`), and the client gets 504 / deadline_exceeded in
//!   time. A write that makes no progress for that long (a client that
//!   stopped reading) closes the connection.
//! - `server_idle_timeout`: an HTTP/1.1 keep-alive connection with no
//!   request in flight and no byte received for that long is closed; an
//!   HTTP/2 connection with no open stream for that long (or the `http2`
//!   block's `idle_timeout`) gets a GOAWAY.
//!
//! The caller's deadline (`Connect-Timeout-Ms`, `grpc-timeout`) bounds the
//! body read and the downstream work too.
//!
//! # Limits
//! `conn_limit` connections are served at once, by all receiving threads
//! together (one semaphore: the kernel, not we, picks each connection's
//! thread, so a per-thread share would turn clients away from one thread
//! while another has room). Each thread waits for a slot after accepting a
//! connection, so at most one connection per thread waits outside the
//! kernel's accept queue, where further clients wait.
//!
//! # Threads
//! Connections are served on the process's receiving threads
//! ([`Workers`], `--receive-threads`): each server binds one listener per
//! thread on its address with `SO_REUSEPORT` and runs an accept loop on
//! each, and a request is read, decoded, forwarded and answered on the
//! thread of its connection.
//! `max_request_body_size` (256 MiB) is checked against `Content-Length`
//! before reading and counted while reading; the body is held once, in one
//! buffer shared by every receiver. Debuginfo uploads are streamed, never
//! held, and bounded by `debug_info_upload_timeout` instead. `max_decompressed_body_size` (4× the
//! body limit) stops gunzipping a push body when reached.
//!
//! Every component of the process also reserves what it buffers (bodies,
//! and gunzipped messages as they grow) from one [`RequestBudget`]
//! (`--request-memory-limit`) before buffering it; a request that does not
//! fit gets 429 with `Retry-After` on `/ingest` and resource_exhausted on
//! push. A reservation is owned by the body's `Bytes`, so it is given back
//! when the last receiver drops the body (see `budget`).
//!
//! Connections cut by a timeout (read: no complete head; write: the client
//! stopped reading; TLS handshake) are counted by reason in
//! `pyroscope_receive_http_connections_timed_out_total`.
//!
//! # Updates
//! A new `forward_to`, `forward_headers` or body limit is swapped in
//! atomically and used from the next request. A changed `http` block
//! starts a new server: on the same address every thread's listening
//! socket is handed over, with the connection it had accepted and not yet
//! served (no connection refused); on a new address every thread binds
//! anew, and the old connections finish within
//! `graceful_shutdown_timeout`. Certificate files are re-read on every
//! update. If the new server cannot start (port in use, unreadable
//! certificate), the old one keeps serving and the component is unhealthy.

mod arguments;
mod body;
mod budget;
mod clock;
mod config;
mod conn;
mod debuginfo;
mod forward;
mod ingest;
mod metrics;
mod push;
mod reply;
mod router;
mod server;
mod tls;
mod workers;

use std::net::SocketAddr;
use std::sync::Arc;

pub use arguments::{
    Arguments, ClientAuth, DEFAULT_CONN_LIMIT, DEFAULT_MAX_REQUEST_BODY_SIZE, Http2Config,
    HttpConfig, TlsConfig, TlsVersion, forward_header_name,
};
pub use budget::{RequestBudget, default_limit as default_request_memory_limit};
pub(crate) use config::decode_tls;
pub use metrics::{
    ConnLabels, CutLabels, DebuginfoCallLabels, Metrics, RequestLabels, RouteLabels,
};
pub(crate) use tls::server_config_with as tls_server_config;
pub use workers::Workers;

use crate::pipeline::tap::Tap;
use crate::runtime::Health;
use metrics::ComponentMetrics;
use router::{App, Settings};
use server::Server;

/// A running `pyroscope.receive_http` component.
pub struct ReceiveHttp {
    args: Arguments,
    app: Arc<App>,
    /// The process's receiving threads, where the server's listeners,
    /// connections and requests run.
    workers: Arc<Workers>,
    health: Health,
    /// The server and the `http` block it was built from.
    server: Option<(Server, HttpConfig)>,
}

impl ReceiveHttp {
    /// Starts the server. Never fails: a bind or TLS error leaves the
    /// component unhealthy, with the reason, until an update fixes it.
    pub async fn start(
        component_id: &str,
        args: Arguments,
        metrics: Arc<Metrics>,
        budget: Arc<RequestBudget>,
        health: Health,
        tap: Arc<Tap>,
        workers: Arc<Workers>,
    ) -> ReceiveHttp {
        let app = Arc::new(App::new(
            Settings::from_arguments(&args),
            ComponentMetrics::new(component_id, metrics),
            budget,
            tap,
        ));
        let mut component = ReceiveHttp {
            args,
            app,
            workers,
            health,
            server: None,
        };
        component.apply_http().await;
        component
    }

    /// Applies new arguments; see the module docs, "Updates".
    pub async fn update(&mut self, args: Arguments) {
        self.app.swap_settings(Settings::from_arguments(&args));
        self.args = args;
        self.apply_http().await;
    }

    /// The address the server listens on, if it runs.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.server.as_ref().map(|(s, _)| s.local_addr())
    }

    /// Stops accepting and lets in-flight requests finish within
    /// `graceful_shutdown_timeout`.
    pub async fn shutdown(mut self) {
        if let Some((server, _)) = self.server.take() {
            let (listeners, draining) = server.stop().await;
            drop(listeners);
            draining.wait().await;
        }
        self.app.metrics.remove();
    }

    /// Starts, restarts or refreshes the server for `self.args.http`.
    async fn apply_http(&mut self) {
        let wanted = self.args.http.clone();
        let unchanged =
            matches!(&self.server, Some((_, running)) if !running.needs_restart(&wanted));
        let result = if unchanged {
            self.reload_certificates()
        } else {
            self.restart().await
        };
        match result {
            Ok(()) => self.health.set_healthy(),
            Err(reason) => {
                tracing::error!(%reason, "pyroscope.receive_http cannot serve its configuration");
                self.health.set_unhealthy(reason);
            }
        }
    }

    /// Re-reads certificate files for the running server.
    fn reload_certificates(&self) -> Result<(), String> {
        let (Some(tls), Some((server, _))) = (&self.args.http.tls, &self.server) else {
            return Ok(());
        };
        if let Some(live) = server.tls().filter(|_| tls.reads_files()) {
            live.store(tls::server_config(tls)?);
        }
        Ok(())
    }

    /// Builds a server for the wanted `http` block. The old one keeps
    /// serving until the new one is ready, and is kept if it cannot be.
    async fn restart(&mut self) -> Result<(), String> {
        let wanted = self.args.http.clone();
        let tls = match &wanted.tls {
            Some(tls) => Some(tls::server_config(tls)?),
            None => None,
        };
        let same_address = matches!(&self.server, Some((server, running))
            if running.listen_address == wanted.listen_address
                && (wanted.listen_port == running.listen_port
                    || wanted.listen_port == server.local_addr().port()));
        let (listeners, old_drain) = match self.server.take() {
            Some((old, _)) if same_address => {
                let (listeners, draining) = old.stop().await;
                (listeners, Some(draining))
            }
            other => {
                self.server = other;
                (None, None)
            }
        };
        let listeners = match listeners {
            Some(listeners) => listeners,
            None => server::bind(&wanted, self.workers.len())
                .await
                .map_err(|err| {
                    format!(
                        "failed to listen on {:?} port {}: {err}",
                        wanted.listen_address, wanted.listen_port
                    )
                })?,
        };
        let graceful = self.args.graceful_shutdown_timeout;
        let server = Server::start(
            listeners,
            &wanted,
            tls,
            self.app.clone(),
            graceful,
            &self.workers,
        )
        .map_err(|err| format!("failed to start the HTTP server: {err}"))?;
        tracing::info!(addr = %server.local_addr(), "pyroscope.receive_http listening");
        if let Some((old, _)) = self.server.replace((server, wanted)) {
            let (listeners, draining) = old.stop().await;
            drop(listeners);
            drop(draining); // finishes in the background
        }
        drop(old_drain);
        Ok(())
    }
}
