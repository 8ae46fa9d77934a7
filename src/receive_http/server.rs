//! The listeners: binding one socket per receiving thread on the same
//! address (`SO_REUSEPORT`), the accept loops with the connection limit
//! they share, and stopping (handing the listeners back for reuse, then
//! draining every thread's connections).

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use futures_util::future::join_all;
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use prometheus_client::metrics::gauge::Gauge;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{Semaphore, oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};

use super::arguments::{Http2Config, HttpConfig};
use super::clock::Timeouts;
use super::conn::{self, ConnShared};
use super::router::App;
use super::workers::Workers;

/// Pending connections the kernel queues per listener; Linux caps it at
/// somaxconn.
const LISTEN_BACKLOG: u32 = 4096;
/// Pause after a failed accept (e.g. out of file descriptors).
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// One listening socket per receiving thread, all on the same address.
#[derive(Debug)]
pub(super) struct Listeners(Vec<Listener>);

/// One thread's listening socket, and the connection it had accepted but
/// not yet served (it was waiting for a slot under `conn_limit`) when its
/// server stopped: the next server on the address serves it.
#[derive(Debug)]
struct Listener {
    socket: std::net::TcpListener,
    waiting: Option<std::net::TcpStream>,
}

impl Listeners {
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        match self.0.first() {
            Some(listener) => listener.socket.local_addr(),
            None => Err(io::Error::new(io::ErrorKind::NotFound, "no listener")),
        }
    }
}

/// A running server: a listener and an accept loop on every receiving
/// thread, and their connections.
pub(super) struct Server {
    local_addr: SocketAddr,
    tls: Option<Arc<ArcSwap<rustls::ServerConfig>>>,
    stop: watch::Sender<bool>,
    loops: Vec<(oneshot::Receiver<Listener>, JoinHandle<()>)>,
}

/// The accept loops letting their connections finish; see [`Server::stop`].
pub(super) struct Draining(Vec<JoinHandle<()>>);

impl Draining {
    /// Waits until every thread's connections are done (or were closed at
    /// the graceful timeout).
    pub async fn wait(self) {
        join_all(self.0).await;
    }
}

/// Binds `count` listeners on `listen_address:listen_port`; an empty
/// address is every interface (IPv6 and IPv4 when the host has IPv6, else
/// IPv4).
pub(super) async fn bind(config: &HttpConfig, count: usize) -> io::Result<Listeners> {
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
        match listen_all(addr, count.max(1)) {
            Ok(listeners) => return Ok(listeners),
            Err(err) => last_error = err,
        }
    }
    Err(last_error)
}

/// `count` listeners sharing `addr`. The port is first claimed by a socket
/// without `SO_REUSEPORT`: binding it fails when any other socket listens
/// there, even another process's with `SO_REUSEPORT` of its own, so a
/// second relay on a taken port gets "address in use" as before instead of
/// silently sharing the port. For port 0 it also picks the one port every
/// listener then binds.
fn listen_all(addr: SocketAddr, count: usize) -> io::Result<Listeners> {
    let addr = {
        let probe = socket_for(addr)?;
        probe.set_reuseaddr(true)?;
        probe.bind(addr)?;
        probe.local_addr()?
    };
    let listeners = (0..count)
        .map(|_| {
            let socket = socket_for(addr)?;
            socket.set_reuseaddr(true)?;
            socket.set_reuseport(true)?;
            socket.bind(addr)?;
            let socket = socket.listen(LISTEN_BACKLOG)?.into_std()?;
            Ok(Listener {
                socket,
                waiting: None,
            })
        })
        .collect::<io::Result<_>>()?;
    Ok(Listeners(listeners))
}

fn socket_for(addr: SocketAddr) -> io::Result<TcpSocket> {
    if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
}

impl Server {
    /// Starts accepting on `listeners`, listener `i` on receiving thread
    /// `i`.
    pub fn start(
        listeners: Listeners,
        config: &HttpConfig,
        tls: Option<Arc<rustls::ServerConfig>>,
        app: Arc<App>,
        graceful_timeout: Duration,
        workers: &Workers,
    ) -> io::Result<Server> {
        let local_addr = listeners.local_addr()?;
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
        // One limit for all threads: a per-thread share would refuse a
        // client while another thread has room, since the kernel, not we,
        // picks the thread of each connection.
        let limit = (config.conn_limit > 0).then(|| Arc::new(Semaphore::new(config.conn_limit)));
        let (stop, stop_rx) = watch::channel(false);
        let loops = listeners
            .0
            .into_iter()
            .enumerate()
            .map(|(index, listener)| {
                let (listener_tx, listener_back) = oneshot::channel();
                let accept = AcceptLoop {
                    limit: limit.clone(),
                    shared: shared.clone(),
                    gauge: metrics.connections.clone(),
                    graceful_timeout,
                };
                let task = workers.spawn(
                    index % workers.len(),
                    accept.run(listener, stop_rx.clone(), listener_tx),
                );
                (listener_back, task)
            })
            .collect();
        Ok(Server {
            local_addr,
            tls,
            stop,
            loops,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The live TLS configuration, swapped when certificates are re-read.
    pub fn tls(&self) -> Option<&ArcSwap<rustls::ServerConfig>> {
        self.tls.as_deref()
    }

    /// Stops accepting. Returns the listeners, so a new server on the same
    /// address loses no queued connection (all of them or none), and the
    /// loops that let open connections finish (at most the graceful
    /// timeout, then close them).
    pub async fn stop(self) -> (Option<Listeners>, Draining) {
        let _ = self.stop.send(true);
        let (backs, tasks): (Vec<_>, Vec<_>) = self.loops.into_iter().unzip();
        let returned: Vec<_> = join_all(backs).await;
        let listeners = returned
            .into_iter()
            .collect::<Result<Vec<_>, _>>()
            .ok()
            .map(Listeners);
        (listeners, Draining(tasks))
    }
}

/// The largest HTTP/1.1 request head (request line and headers) read; a
/// larger one gets `431 Request Header Fields Too Large`. It is also the
/// most a connection's read buffer grows to: with hyper's default (about
/// 400 KiB) every connection receiving a large body held a 400 KiB buffer,
/// 25 MiB with 64 such connections (docs/performance.md, "Targets: met,
/// missed, and why"). Envoy's default limit is 60 KiB, Go's (Alloy's) 1 MiB
/// (docs/compatibility.md).
const MAX_REQUEST_HEAD_BYTES: usize = 64 << 10;

/// hyper's HTTP/1.1 builder. The header timeout is ours (see `clock`), so
/// hyper's own is off.
fn http1_builder() -> http1::Builder {
    let mut http1 = http1::Builder::new();
    http1
        .timer(TokioTimer::new())
        .header_read_timeout(None)
        .keep_alive(true);
    http1.max_buf_size(MAX_REQUEST_HEAD_BYTES);
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
    /// Runs on one receiving thread: accepts on its listener and serves
    /// each connection on this thread until `stop`; then hands the listener
    /// back and drains.
    ///
    /// Under `conn_limit`, a connection is accepted first and then waits
    /// for a slot, so that a thread idle on its own listener never holds a
    /// slot that a client queued on another thread's listener needs. At
    /// most one connection per thread waits so; the rest wait in the
    /// kernel's accept queue, as with Go's `netutil.LimitListener`.
    async fn run(
        self,
        listener: Listener,
        mut stop: watch::Receiver<bool>,
        listener_tx: oneshot::Sender<Listener>,
    ) {
        let socket = match TcpListener::from_std(listener.socket) {
            Ok(socket) => socket,
            Err(err) => {
                // Closing it takes it out of the port's group, so the
                // kernel sends its clients to the other threads.
                tracing::error!(error = %err, "cannot watch a listening socket");
                return;
            }
        };
        let mut waiting = listener.waiting.and_then(|s| TcpStream::from_std(s).ok());
        let (drain_tx, drain_rx) = watch::channel(false);
        let mut conns = JoinSet::new();
        'serve: loop {
            let stream = match waiting.take() {
                Some(stream) => stream,
                None => tokio::select! {
                    biased;
                    _ = stop.changed() => break 'serve,
                    Some(_) = conns.join_next(), if !conns.is_empty() => continue 'serve,
                    accepted = socket.accept() => match accepted {
                        Ok((stream, _)) => stream,
                        Err(err) => {
                            tracing::warn!(error = %err, "failed to accept a connection");
                            tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                            continue 'serve;
                        }
                    },
                },
            };
            let permit = match &self.limit {
                None => None,
                Some(limit) => {
                    // Kept across loop turns, so that a connection ending
                    // here does not send this one to the back of the queue.
                    let mut acquire = pin!(limit.clone().acquire_owned());
                    loop {
                        tokio::select! {
                            biased;
                            _ = stop.changed() => {
                                waiting = Some(stream);
                                break 'serve;
                            }
                            Some(_) = conns.join_next(), if !conns.is_empty() => {}
                            // The semaphore is never closed.
                            permit = &mut acquire => break permit.ok(),
                        }
                    }
                }
            };
            self.gauge.inc();
            let counted = Counted(self.gauge.clone());
            let shared = self.shared.clone();
            let drain = drain_rx.clone();
            conns.spawn(async move {
                conn::serve(stream, shared, drain).await;
                // The gauge first: a connection waiting for this slot is
                // counted once it gets it, and must not be counted beside
                // this one.
                drop(counted);
                drop(permit);
            });
        }
        match socket.into_std() {
            Ok(socket) => {
                let waiting = waiting.and_then(|s| s.into_std().ok());
                let _ = listener_tx.send(Listener { socket, waiting });
            }
            Err(err) => tracing::error!(error = %err, "cannot hand a listening socket over"),
        }
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
}
