//! Serves one accepted connection: the TLS handshake, HTTP/1.1 or HTTP/2
//! (told by the first bytes, or ALPN), the timeouts and graceful draining.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;

use super::clock::{ConnClock, Timeouts, TrackedIo, Verdict};
use super::router::{self, App, Deadlines};

/// How long an idle HTTP/2 connection gets to close after its GOAWAY.
const IDLE_DRAIN: Duration = Duration::from_secs(5);
/// Handshake limit when neither read nor write timeout is set.
const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What every connection of one server shares.
pub(super) struct ConnShared {
    pub app: Arc<App>,
    pub builder: auto::Builder<TokioExecutor>,
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
        Some(tls) => {
            let acceptor = tokio_rustls::TlsAcceptor::from(tls.load_full());
            let limit = handshake_timeout(&shared.timeouts);
            match tokio::time::timeout(limit, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => serve_io(stream, &shared, drain).await,
                Ok(Err(err)) => tracing::debug!(error = %err, "TLS handshake failed"),
                Err(_) => tracing::debug!("TLS handshake timed out"),
            }
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

async fn serve_io<I>(io: I, shared: &Arc<ConnShared>, mut drain: watch::Receiver<bool>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let clock = ConnClock::new();
    let io = TokioIo::new(TrackedIo::new(io, clock.clone()));
    let service = {
        let app = shared.app.clone();
        let clock = clock.clone();
        let timeouts = shared.timeouts;
        service_fn(move |request: hyper::Request<Incoming>| {
            let app = app.clone();
            let clock = clock.clone();
            async move {
                let (guard, head_started) = clock.begin_request();
                let now = Instant::now();
                let deadlines = Deadlines {
                    read: nonzero(timeouts.read).map(|t| head_started.unwrap_or(now) + t),
                    respond: nonzero(timeouts.write).map(|t| now + t),
                };
                let response = router::route(request, &app, deadlines).await;
                drop(guard);
                Ok::<_, Infallible>(response)
            }
        })
    };
    let conn = shared.builder.serve_connection(io, service);
    tokio::pin!(conn);
    let mut draining = false;
    let mut drain_by: Option<Instant> = None;
    loop {
        let next = match clock.verdict(&shared.timeouts, Instant::now()) {
            Verdict::Close(reason) => {
                tracing::debug!(reason, "closing connection");
                return;
            }
            Verdict::Idle if drain_by.is_some() => return,
            Verdict::Idle => {
                conn.as_mut().graceful_shutdown();
                draining = true;
                drain_by = Some(Instant::now() + IDLE_DRAIN);
                drain_by
            }
            Verdict::Keep(next) => earliest(next, drain_by),
        };
        if drain_by.is_some_and(|d| d <= Instant::now()) {
            return;
        }
        tokio::select! {
            biased;
            result = conn.as_mut() => {
                if let Err(err) = result {
                    tracing::debug!(error = %err, "connection ended with an error");
                }
                return;
            }
            changed = drain.changed(), if !draining => {
                if changed.is_err() || *drain.borrow() {
                    conn.as_mut().graceful_shutdown();
                    draining = true;
                }
            }
            _ = clock.changed() => {}
            _ = sleep_until(next) => {}
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
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
