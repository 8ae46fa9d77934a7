//! Serves one accepted connection: the TLS handshake, HTTP/1.1 or HTTP/2
//! (told by the first bytes), the timeouts and graceful draining.
//!
//! Memory: hyper keeps an HTTP/1 connection's 8 KiB read buffer, 8 KiB
//! header write buffer and dispatcher for as long as the connection lives,
//! which made an idle keep-alive connection cost ~23 KiB. So an HTTP/1
//! connection that has been between requests for [`DETACH_AFTER`] is taken
//! apart (`into_parts`, which keeps any bytes hyper had read ahead) and only
//! the socket is kept until the next bytes arrive; then a new hyper
//! connection takes over. HTTP/2 connections keep their hyper state.

use std::convert::Infallible;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::header::CONNECTION;
use http::{HeaderMap, Version};
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;

use super::clock::{Alarm, ConnClock, Cut, Timeouts, TrackedIo, Verdict};
use super::reply::HttpResponse;
use super::router::{self, App, Deadlines};

/// How long an idle HTTP/2 connection gets to close after its GOAWAY.
const IDLE_DRAIN: Duration = Duration::from_secs(5);
/// Handshake limit when neither read nor write timeout is set.
const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an HTTP/1 connection stays between requests before its hyper
/// state is let go. Not zero, so that a busy client's next request reuses
/// the buffers instead of allocating them again.
const DETACH_AFTER: Duration = Duration::from_millis(100);
/// Bound on sending TLS `close_notify` and FIN when we close.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(1);
/// The start of every HTTP/2 connection (RFC 9113, 3.4).
const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// What every connection of one server shares.
pub(super) struct ConnShared {
    pub app: Arc<App>,
    pub http1: http1::Builder,
    pub http2: http2::Builder<TokioExecutor>,
    pub timeouts: Timeouts,
    pub tls: Option<Arc<ArcSwap<rustls::ServerConfig>>>,
}

/// Serves `stream` until it closes, times out, or `drain` asks it to finish
/// its requests and close.
pub(super) async fn serve(
    stream: TcpStream,
    shared: Arc<ConnShared>,
    drain: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    match &shared.tls {
        None => serve_io(stream, &shared, drain).await,
        // Boxed: a TLS session is several KiB, and every plain connection's
        // task would otherwise be that large too.
        Some(tls) => Box::pin(serve_tls(stream, tls, &shared, drain)).await,
    }
}

async fn serve_tls(
    stream: TcpStream,
    tls: &ArcSwap<rustls::ServerConfig>,
    shared: &ConnShared,
    drain: watch::Receiver<bool>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls.load_full());
    let limit = handshake_timeout(&shared.timeouts);
    // Polled by reference, so that a handshake cut for time keeps its
    // socket open until the cut is counted: a client that sees the close
    // and then reads the metrics finds it there.
    let accept = acceptor.accept(stream);
    tokio::pin!(accept);
    match tokio::time::timeout(limit, &mut accept).await {
        Ok(Ok(stream)) => serve_io(stream, shared, drain).await,
        Ok(Err(err)) => tracing::debug!(error = %err, "TLS handshake failed"),
        Err(_) => {
            tracing::debug!(reason = Cut::TlsHandshake.reason(), "closing connection");
            shared.app.metrics.connection_cut(Cut::TlsHandshake);
        }
    }
}

/// Go bounds the handshake by the shortest of its read and write timeouts.
fn handshake_timeout(t: &Timeouts) -> Duration {
    [t.read, t.write]
        .into_iter()
        .filter(|d| !d.is_zero())
        .min()
        .unwrap_or(DEFAULT_HANDSHAKE_TIMEOUT)
}

async fn serve_io<I>(io: I, shared: &ConnShared, mut drain: watch::Receiver<bool>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let clock = ConnClock::new();
    let mut io = TrackedIo::new(io, clock.clone());
    // The protocol is told by the first bytes, as hyper-util's auto
    // builder does: the HTTP/2 preface, or anything else for HTTP/1.
    let mut first = [0u8; H2_PREFACE.len()];
    let mut len = 0;
    let h2 = loop {
        match next_bytes(&mut io, &clock, shared, &mut drain, &mut first[len..]).await {
            Some(n) => len += n,
            None => return shutdown(io).await,
        }
        if first[..len] != H2_PREFACE[..len] {
            break false;
        }
        if len == H2_PREFACE.len() {
            break true;
        }
    };
    io.rewind(Bytes::copy_from_slice(&first[..len]));
    if h2 {
        clock.set_h2();
        let handler = Handler::new(shared, &clock);
        let conn = Box::pin(shared.http2.serve_connection(TokioIo::new(io), handler));
        let _ = drive(H2(conn), &clock, shared, &mut drain).await;
        return;
    }
    loop {
        let handler = Handler::new(shared, &clock);
        let conn = Box::pin(shared.http1.serve_connection(TokioIo::new(io), handler));
        let mut conn = H1 {
            conn: Some(conn),
            detaching: false,
        };
        match drive(&mut conn, &clock, shared, &mut drain).await {
            Ended::Error => return,
            Ended::Done => {
                let parts = conn.conn.take().map(|c| Pin::into_inner(c).into_parts());
                if let Some(parts) = parts {
                    return shutdown(parts.io.into_inner()).await;
                }
                return;
            }
            Ended::Detached => {}
        }
        let Some(parts) = conn.conn.take().map(|c| Pin::into_inner(c).into_parts()) else {
            return;
        };
        let http1::Parts {
            io: detached,
            read_buf,
            service,
            ..
        } = parts;
        drop(service);
        io = detached.into_inner();
        if !read_buf.is_empty() {
            clock.on_read();
            io.rewind(read_buf);
            continue;
        }
        // Even empty, it holds hyper's whole read buffer.
        drop(read_buf);
        let mut buf = [0u8; H2_PREFACE.len()];
        match next_bytes(&mut io, &clock, shared, &mut drain, &mut buf).await {
            Some(n) => io.rewind(Bytes::copy_from_slice(&buf[..n])),
            None => return shutdown(io).await,
        }
    }
}

/// Waits for the client's next bytes without a hyper connection, enforcing
/// the same timeouts and draining. `None`: close the connection.
async fn next_bytes<I>(
    io: &mut TrackedIo<I>,
    clock: &ConnClock,
    shared: &ConnShared,
    drain: &mut watch::Receiver<bool>,
    buf: &mut [u8],
) -> Option<usize>
where
    I: AsyncRead + AsyncWrite + Unpin,
{
    let mut alarm = Alarm::new();
    loop {
        let next = match clock.verdict(&shared.timeouts, Instant::now()) {
            Verdict::Close(cut) => {
                tracing::debug!(reason = cut.reason(), "closing connection");
                shared.app.metrics.connection_cut(cut);
                return None;
            }
            // Nothing in flight: the graceful close is just closing.
            Verdict::Idle => return None,
            Verdict::Keep(next) => next,
        };
        if *drain.borrow() || drain.has_changed().is_err() {
            return None;
        }
        alarm.set_by(next);
        tokio::select! {
            biased;
            read = io.read(buf) => return match read {
                Ok(0) => None,
                Ok(n) => Some(n),
                Err(err) => {
                    tracing::debug!(error = %err, "connection ended with an error");
                    None
                }
            },
            _ = drain.changed() => {}
            _ = clock.changed() => {}
            _ = alarm.rung() => {}
        }
    }
}

/// What the connection does once the client has its answers: hyper sends
/// FIN (and TLS `close_notify`) itself on HTTP/2, we do it on HTTP/1.
async fn shutdown<I: AsyncWrite + Unpin>(mut io: I) {
    let _ = tokio::time::timeout(SHUTDOWN_TIMEOUT, io.shutdown()).await;
}

/// How a hyper connection ended.
enum Ended {
    /// Hyper is done with it (HTTP/1: the socket is still open).
    Done,
    /// Taken apart between requests, at our request.
    Detached,
    /// Closed now: a timeout, or an error.
    Error,
}

/// A hyper connection as [`drive`] sees it.
trait Served {
    fn poll_done(&mut self, cx: &mut Context<'_>) -> Poll<hyper::Result<()>>;
    fn graceful_shutdown(&mut self);
    /// Let go of hyper's state between requests, if this protocol can.
    fn detach(&mut self) -> bool;
    fn detached(&self) -> bool;
}

type Http1Conn<I> = http1::Connection<TokioIo<TrackedIo<I>>, Handler>;
type Http2Conn<I> = http2::Connection<TokioIo<TrackedIo<I>>, Handler, TokioExecutor>;

struct H1<I: AsyncRead + AsyncWrite + Unpin + Send + 'static> {
    conn: Option<Pin<Box<Http1Conn<I>>>>,
    detaching: bool,
}

impl<I: AsyncRead + AsyncWrite + Unpin + Send + 'static> Served for &mut H1<I> {
    fn poll_done(&mut self, cx: &mut Context<'_>) -> Poll<hyper::Result<()>> {
        match self.conn.as_mut() {
            Some(conn) => conn.as_mut().poll_without_shutdown(cx),
            None => Poll::Ready(Ok(())),
        }
    }

    fn graceful_shutdown(&mut self) {
        if let Some(conn) = self.conn.as_mut() {
            conn.as_mut().graceful_shutdown();
        }
    }

    fn detach(&mut self) -> bool {
        // Hyper is idle with nothing read ahead (the clock says so), so
        // its graceful shutdown ends the connection without writing or
        // closing anything, and `into_parts` gives the socket back.
        self.graceful_shutdown();
        self.detaching = true;
        true
    }

    fn detached(&self) -> bool {
        self.detaching
    }
}

struct H2<I: AsyncRead + AsyncWrite + Unpin + Send + 'static>(Pin<Box<Http2Conn<I>>>);

impl<I: AsyncRead + AsyncWrite + Unpin + Send + 'static> Served for H2<I> {
    fn poll_done(&mut self, cx: &mut Context<'_>) -> Poll<hyper::Result<()>> {
        self.0.as_mut().poll(cx)
    }

    fn graceful_shutdown(&mut self) {
        self.0.as_mut().graceful_shutdown();
    }

    fn detach(&mut self) -> bool {
        false
    }

    fn detached(&self) -> bool {
        false
    }
}

/// Runs a hyper connection under the clock's timeouts and the drain signal.
async fn drive<S: Served>(
    mut conn: S,
    clock: &ConnClock,
    shared: &ConnShared,
    drain: &mut watch::Receiver<bool>,
) -> Ended {
    // The server asked this connection to finish (a rebind or shutdown)...
    let mut drain_asked = false;
    // ...and hyper was told: it closes an idle connection at once, and any
    // other after its response, which it marks `Connection: close`.
    let mut draining = false;
    let mut drain_by: Option<Instant> = None;
    let mut can_detach = true;
    let mut alarm = Alarm::new();
    loop {
        let now = Instant::now();
        let mut next = match clock.verdict(&shared.timeouts, now) {
            Verdict::Close(cut) => {
                tracing::debug!(reason = cut.reason(), "closing connection");
                shared.app.metrics.connection_cut(cut);
                return Ended::Error;
            }
            Verdict::Idle if drain_by.is_some() => return Ended::Error,
            Verdict::Idle => {
                conn.graceful_shutdown();
                draining = true;
                drain_by = Some(now + IDLE_DRAIN);
                drain_by
            }
            Verdict::Keep(next) => earliest(next, drain_by),
        };
        if drain_by.is_some_and(|d| d <= now) {
            return Ended::Error;
        }
        // A drain seen while the connection was detached counts too.
        drain_asked |= *drain.borrow() || drain.has_changed().is_err();
        // Not while a request head is arriving: the client is already
        // writing it and would get a reset. Its handler starting wakes
        // this loop; the read timeout bounds the wait.
        if drain_asked && !draining && !clock.head_pending() {
            conn.graceful_shutdown();
            draining = true;
        }
        if can_detach
            && !draining
            && let Some(since) = clock.reusable_idle_since()
        {
            let at = since + DETACH_AFTER;
            if at <= now {
                if conn.detach() {
                    can_detach = false;
                }
            } else {
                next = earliest(next, Some(at));
            }
        }
        alarm.set_by(next);
        tokio::select! {
            biased;
            result = poll_fn(|cx| conn.poll_done(cx)) => {
                return match result {
                    Ok(()) if conn.detached() && !draining => Ended::Detached,
                    Ok(()) => Ended::Done,
                    Err(err) => {
                        tracing::debug!(error = %err, "connection ended with an error");
                        Ended::Error
                    }
                };
            }
            changed = drain.changed(), if !drain_asked => {
                drain_asked = changed.is_err() || *drain.borrow();
            }
            _ = clock.changed() => {}
            _ = alarm.rung() => {}
        }
    }
}

/// The per-connection service. Its future is boxed: hyper's HTTP/1
/// dispatcher allocates room for one future per connection for the
/// connection's whole life, and the routing future is large.
#[derive(Clone)]
struct Handler {
    app: Arc<App>,
    clock: Arc<ConnClock>,
    timeouts: Timeouts,
}

impl Handler {
    fn new(shared: &ConnShared, clock: &Arc<ConnClock>) -> Self {
        Self {
            app: shared.app.clone(),
            clock: clock.clone(),
            timeouts: shared.timeouts,
        }
    }
}

type HandlerFuture = Pin<Box<dyn Future<Output = Result<HttpResponse, Infallible>> + Send>>;

impl hyper::service::Service<hyper::Request<Incoming>> for Handler {
    type Response = HttpResponse;
    type Error = Infallible;
    type Future = HandlerFuture;

    fn call(&self, request: hyper::Request<Incoming>) -> Self::Future {
        let app = self.app.clone();
        let clock = self.clock.clone();
        let timeouts = self.timeouts;
        Box::pin(async move {
            let (guard, head_started) = clock.begin_request();
            let now = Instant::now();
            let deadlines = Deadlines {
                read: nonzero(timeouts.read).map(|t| head_started.unwrap_or(now) + t),
                respond: nonzero(timeouts.write).map(|t| now + t),
            };
            let closing = asks_close(request.version(), request.headers());
            let response = router::route(request, &app, deadlines).await;
            if closing || asks_close(Version::HTTP_11, response.headers()) {
                clock.set_no_reuse();
            }
            drop(guard);
            Ok(response)
        })
    }
}

/// Whether a message ends its HTTP/1 connection: `Connection: close`, or
/// HTTP/1.0 (whose keep-alive we do not rely on here).
fn asks_close(version: Version, headers: &HeaderMap) -> bool {
    version < Version::HTTP_11
        || headers
            .get_all(CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|token| token.trim().eq_ignore_ascii_case("close"))
}

fn nonzero(d: Duration) -> Option<Duration> {
    (!d.is_zero()).then_some(d)
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
#[path = "conn_tests.rs"]
mod tests;
