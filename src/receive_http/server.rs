//! The listener: binding, the accept loop with the connection limit, and
//! stopping (handing the listener back for reuse, then draining).

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use prometheus_client::metrics::gauge::Gauge;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};

use super::arguments::{Http2Config, HttpConfig};
use super::clock::Timeouts;
use super::conn::{self, ConnShared};
use super::router::App;

/// Pending connections the kernel queues; Linux caps it at somaxconn.
const LISTEN_BACKLOG: u32 = 4096;
/// Pause after a failed accept (e.g. out of file descriptors).
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// A running server: one listener, its accept loop and its connections.
pub(super) struct Server {
    local_addr: SocketAddr,
    tls: Option<Arc<ArcSwap<rustls::ServerConfig>>>,
    stop: watch::Sender<bool>,
    listener_back: oneshot::Receiver<TcpListener>,
    task: JoinHandle<()>,
}

/// Binds `listen_address:listen_port`; an empty address is every
/// interface (IPv6 and IPv4 when the host has IPv6, else IPv4).
pub(super) async fn bind(config: &HttpConfig) -> io::Result<TcpListener> {
    let port = config.listen_port;
    let host = config
        .listen_address
        .trim_start_matches('[')
        .trim_end_matches(']');
    let candidates: Vec<SocketAddr> = if host.is_empty() {
        vec![
            (Ipv6Addr::UNSPECIFIED, port).into(),
            (Ipv4Addr::UNSPECIFIED, port).into(),
        ]
    } else {
        tokio::net::lookup_host((host, port)).await?.collect()
    };
    let mut last_error = io::Error::new(io::ErrorKind::AddrNotAvailable, "no address to bind");
    for addr in candidates {
        match listen(addr) {
            Ok(listener) => return Ok(listener),
            Err(err) => last_error = err,
        }
    }
    Err(last_error)
}

fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

impl Server {
    /// Starts accepting on `listener`.
    pub fn start(
        listener: TcpListener,
        config: &HttpConfig,
        tls: Option<Arc<rustls::ServerConfig>>,
        app: Arc<App>,
        graceful_timeout: Duration,
    ) -> io::Result<Server> {
        let local_addr = listener.local_addr()?;
        let tls = tls.map(|t| Arc::new(ArcSwap::new(t)));
        let shared = Arc::new(ConnShared {
            http1: http1_builder(),
            http2: http2_builder(&config.http2),
            timeouts: Timeouts {
                read: config.server_read_timeout,
                write: config.server_write_timeout,
                idle: config.effective_idle_timeout(),
                h2_idle: match config.http2.idle_timeout {
                    d if d.is_zero() => config.effective_idle_timeout(),
                    d => d,
                },
            },
            tls: tls.clone(),
            app: app.clone(),
        });
        let metrics = &app.metrics;
        metrics.connections_limit.set(config.conn_limit as i64);
        let limit = (config.conn_limit > 0).then(|| Arc::new(Semaphore::new(config.conn_limit)));
        let (stop, stop_rx) = watch::channel(false);
        let (listener_tx, listener_back) = oneshot::channel();
        let accept = AcceptLoop {
            listener,
            limit,
            shared,
            gauge: metrics.connections.clone(),
            graceful_timeout,
        };
        let task = tokio::spawn(accept.run(stop_rx, listener_tx));
        Ok(Server {
            local_addr,
            tls,
            stop,
            listener_back,
            task,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The live TLS configuration, swapped when certificates are re-read.
    pub fn tls(&self) -> Option<&ArcSwap<rustls::ServerConfig>> {
        self.tls.as_deref()
    }

    /// Stops accepting. Returns the listener, so a new server on the same
    /// address loses no queued connection, and the task that lets open
    /// connections finish (at most the graceful timeout, then closes them).
    pub async fn stop(self) -> (Option<TcpListener>, JoinHandle<()>) {
        let _ = self.stop.send(true);
        let listener = self.listener_back.await.ok();
        (listener, self.task)
    }
}

/// hyper's HTTP/1.1 builder. The header timeout is ours (see `clock`), so
/// hyper's own is off.
fn http1_builder() -> http1::Builder {
    let mut http1 = http1::Builder::new();
    http1
        .timer(TokioTimer::new())
        .header_read_timeout(None)
        .keep_alive(true);
    http1
}

/// hyper's HTTP/2 builder with the `http2` block's tuning.
fn http2_builder(h2: &Http2Config) -> http2::Builder<TokioExecutor> {
    let mut http2 = http2::Builder::new(TokioExecutor::new());
    http2
        .timer(TokioTimer::new())
        .max_concurrent_streams(h2.max_concurrent_streams);
    if h2.max_read_frame_size != 0 {
        http2.max_frame_size(h2.max_read_frame_size.clamp(16_384, 16_777_215));
    }
    if !h2.read_idle_timeout.is_zero() {
        http2
            .keep_alive_interval(h2.read_idle_timeout)
            .keep_alive_timeout(h2.ping_timeout);
    }
    if h2.max_upload_buffer_per_connection != 0 {
        http2.initial_connection_window_size(h2.max_upload_buffer_per_connection);
    }
    if h2.max_upload_buffer_per_stream != 0 {
        http2.initial_stream_window_size(h2.max_upload_buffer_per_stream);
    }
    http2
}

struct AcceptLoop {
    listener: TcpListener,
    limit: Option<Arc<Semaphore>>,
    shared: Arc<ConnShared>,
    gauge: Gauge,
    graceful_timeout: Duration,
}

/// Counts a connection while it lives (also when its task is aborted).
struct Counted(Gauge);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl AcceptLoop {
    async fn run(self, mut stop: watch::Receiver<bool>, listener_tx: oneshot::Sender<TcpListener>) {
        let (drain_tx, drain_rx) = watch::channel(false);
        let mut conns = JoinSet::new();
        loop {
            tokio::select! {
                biased;
                _ = stop.changed() => break,
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
                accepted = self.accept() => match accepted {
                    Ok((stream, permit)) => {
                        self.gauge.inc();
                        let counted = Counted(self.gauge.clone());
                        let shared = self.shared.clone();
                        let drain = drain_rx.clone();
                        conns.spawn(async move {
                            conn::serve(stream, shared, drain).await;
                            drop((permit, counted));
                        });
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "failed to accept a connection");
                        tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    }
                },
            }
        }
        let _ = listener_tx.send(self.listener);
        let _ = drain_tx.send(true);
        let drained = tokio::time::timeout(self.graceful_timeout, async {
            while conns.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::info!(
                open = conns.len(),
                "graceful shutdown timeout reached, closing the remaining connections"
            );
            conns.shutdown().await;
        }
    }

    /// Waits for a connection slot, then for a connection: beyond the limit
    /// clients wait in the kernel's accept queue, as with Go's
    /// `netutil.LimitListener`.
    async fn accept(&self) -> io::Result<(TcpStream, Option<OwnedSemaphorePermit>)> {
        let permit = match &self.limit {
            Some(limit) => Some(
                limit
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(|_| io::Error::other("connection limit closed"))?,
            ),
            None => None,
        };
        let (stream, _) = self.listener.accept().await?;
        Ok((stream, permit))
    }
}
