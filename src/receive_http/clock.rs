//! Per-connection timekeeping for the read, write and idle timeouts.
//!
//! [`TrackedIo`] wraps a connection's byte stream and notes when a request
//! head starts arriving and when writes stall; the handler notes when
//! requests begin and end. The connection task asks [`ConnClock::verdict`]
//! whether the connection must close, and when to ask again, and
//! [`ConnClock::reusable_idle_since`] whether hyper's HTTP/1 state can be
//! let go while the connection waits for its next request.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::Instant;

/// The server's timeouts; zero disables one.
#[derive(Debug, Clone, Copy)]
pub(super) struct Timeouts {
    pub read: Duration,
    pub write: Duration,
    /// Between HTTP/1 requests.
    pub idle: Duration,
    /// With no open stream, on HTTP/2.
    pub h2_idle: Duration,
}

/// What the connection task must do.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Carry on; ask again at the given time (or when notified).
    Keep(Option<Instant>),
    /// Close gracefully: idle, nothing in flight.
    Idle,
    /// Close now, for this reason.
    Close(Cut),
}

/// Why a connection is cut; counted in
/// `pyroscope_receive_http_connections_timed_out_total` by [`Cut::label`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Cut {
    /// No complete request head within `server_read_timeout` (also a
    /// connection that never sent a byte).
    Read,
    /// A write made no progress for `server_write_timeout`.
    Write,
    /// The TLS handshake did not finish in time.
    TlsHandshake,
}

impl Cut {
    pub const ALL: [Cut; 3] = [Cut::Read, Cut::Write, Cut::TlsHandshake];

    pub fn label(self) -> &'static str {
        match self {
            Cut::Read => "read",
            Cut::Write => "write",
            Cut::TlsHandshake => "tls_handshake",
        }
    }

    pub fn reason(self) -> &'static str {
        match self {
            Cut::Read => "read timeout: no complete request head",
            Cut::Write => "write timeout: the client stopped reading",
            Cut::TlsHandshake => "TLS handshake timed out",
        }
    }
}

/// Timestamps are milliseconds since `origin`, plus one so that 0 can mean
/// "not set".
#[derive(Debug)]
pub(super) struct ConnClock {
    origin: Instant,
    requests_begun: AtomicU64,
    in_flight: AtomicU64,
    idle_since: AtomicU64,
    head_started: AtomicU64,
    write_blocked: AtomicU64,
    h2: AtomicBool,
    /// A request or its answer asked for the connection to close.
    no_reuse: AtomicBool,
    changed: Notify,
}

impl ConnClock {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            origin: Instant::now(),
            requests_begun: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            idle_since: AtomicU64::new(1),
            head_started: AtomicU64::new(0),
            write_blocked: AtomicU64::new(0),
            h2: AtomicBool::new(false),
            no_reuse: AtomicBool::new(false),
            changed: Notify::new(),
        })
    }

    fn now(&self) -> u64 {
        self.origin.elapsed().as_millis() as u64 + 1
    }

    fn instant(&self, stamp: u64) -> Instant {
        self.origin + Duration::from_millis(stamp.saturating_sub(1))
    }

    /// Resolves when the state changed in a way that moves a deadline.
    pub async fn changed(&self) {
        self.changed.notified().await;
    }

    /// A request's handler starts. Returns the guard that ends it and,
    /// for HTTP/1, when the request's head started to arrive (the first
    /// request of a connection counts from the connection's start, as
    /// Go's server does).
    pub fn begin_request(self: &Arc<Self>) -> (RequestGuard, Option<Instant>) {
        let begun = self.requests_begun.fetch_add(1, Ordering::AcqRel);
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        let head = self.head_started.swap(0, Ordering::AcqRel);
        // A drain waiting for this request's head can go on now.
        self.changed.notify_one();
        let started = if self.h2.load(Ordering::Acquire) {
            None
        } else if begun == 0 {
            Some(self.origin)
        } else {
            (head != 0).then(|| self.instant(head))
        };
        (RequestGuard(self.clone()), started)
    }

    /// Whether part of an HTTP/1 request has arrived that no handler has
    /// started on yet. hyper counts such a connection as idle, and a
    /// graceful shutdown would close it under the client's request.
    pub fn head_pending(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0
            && self.head_started.load(Ordering::Acquire) != 0
    }

    /// The connection speaks HTTP/2 (told by its first bytes).
    pub fn set_h2(&self) {
        self.h2.store(true, Ordering::Release);
    }

    /// HTTP/1 will close after the current answer, so its state must not
    /// be taken apart and reused.
    pub fn set_no_reuse(&self) {
        self.no_reuse.store(true, Ordering::Release);
    }

    /// For HTTP/1: since when the connection is between requests with
    /// nothing of the next one read and nothing left to write, if it is.
    /// Only meaningful right after hyper was polled, since hyper writes
    /// an answer and goes back to reading within one poll.
    pub fn reusable_idle_since(&self) -> Option<Instant> {
        let quiet = !self.h2.load(Ordering::Acquire)
            && !self.no_reuse.load(Ordering::Acquire)
            && self.requests_begun.load(Ordering::Acquire) > 0
            && self.in_flight.load(Ordering::Acquire) == 0
            && self.head_started.load(Ordering::Acquire) == 0
            && self.write_blocked.load(Ordering::Acquire) == 0;
        quiet.then(|| self.instant(self.idle_since.load(Ordering::Acquire)))
    }

    /// Bytes of the next request arrived: from the socket, or kept by a
    /// hyper connection that was taken apart (without this, such a
    /// connection would look idle and be taken apart again at once).
    pub fn on_read(&self) {
        if self.in_flight.load(Ordering::Acquire) == 0
            && self.head_started.load(Ordering::Acquire) == 0
            && !self.h2.load(Ordering::Acquire)
        {
            self.head_started.store(self.now(), Ordering::Release);
            self.changed.notify_one();
        }
    }

    fn on_write(&self, pending: bool) {
        let blocked = self.write_blocked.load(Ordering::Acquire);
        if pending && blocked == 0 {
            self.write_blocked.store(self.now(), Ordering::Release);
            self.changed.notify_one();
        } else if !pending && blocked != 0 {
            self.write_blocked.store(0, Ordering::Release);
            // The connection may have become reusable.
            self.changed.notify_one();
        }
    }

    /// Whether the connection must close at `now`, and when to look again.
    pub fn verdict(&self, t: &Timeouts, now: Instant) -> Verdict {
        let mut next: Option<Instant> = None;
        let mut consider = |deadline: Instant| {
            next = Some(next.map_or(deadline, |n| n.min(deadline)));
        };
        let blocked = self.write_blocked.load(Ordering::Acquire);
        if blocked != 0 && !t.write.is_zero() {
            let deadline = self.instant(blocked) + t.write;
            if now >= deadline {
                return Verdict::Close(Cut::Write);
            }
            consider(deadline);
        }
        if self.in_flight.load(Ordering::Acquire) == 0 {
            let h2 = self.h2.load(Ordering::Acquire);
            let first = self.requests_begun.load(Ordering::Acquire) == 0;
            let head = self.head_started.load(Ordering::Acquire);
            if !h2 && (head != 0 || first) && !t.read.is_zero() {
                let start = if first {
                    self.origin
                } else {
                    self.instant(head)
                };
                let deadline = start + t.read;
                if now >= deadline {
                    return Verdict::Close(Cut::Read);
                }
                consider(deadline);
            } else {
                let limit = match (first, h2) {
                    (true, _) => t.read,
                    (false, true) => t.h2_idle,
                    (false, false) => t.idle,
                };
                if !limit.is_zero() {
                    let deadline = self.instant(self.idle_since.load(Ordering::Acquire)) + limit;
                    if now >= deadline {
                        return Verdict::Idle;
                    }
                    consider(deadline);
                }
            }
        }
        Verdict::Keep(next)
    }
}

/// Ends a request when dropped (also when the client went away).
#[derive(Debug)]
pub(super) struct RequestGuard(Arc<ConnClock>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        let clock = &self.0;
        if clock.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            clock.idle_since.store(clock.now(), Ordering::Release);
            clock.changed.notify_one();
        }
    }
}

/// A byte stream that reports its reads and stalled writes to a clock.
/// Bytes handed back with [`TrackedIo::rewind`] are read again first
/// (and not reported twice).
#[derive(Debug)]
pub(super) struct TrackedIo<T> {
    inner: T,
    clock: Arc<ConnClock>,
    rewound: Bytes,
}

impl<T> TrackedIo<T> {
    pub fn new(inner: T, clock: Arc<ConnClock>) -> Self {
        Self {
            inner,
            clock,
            rewound: Bytes::new(),
        }
    }

    /// Puts `bytes` in front of what is still unread.
    pub fn rewind(&mut self, bytes: Bytes) {
        debug_assert!(self.rewound.is_empty());
        self.rewound = bytes;
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for TrackedIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.rewound.is_empty() {
            let n = self.rewound.len().min(buf.remaining());
            buf.put_slice(&self.rewound[..n]);
            self.rewound.advance(n);
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = result
            && buf.filled().len() > before
        {
            self.clock.on_read();
        }
        result
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for TrackedIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.clock.on_write(result.is_pending());
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.clock.on_write(result.is_pending());
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = Pin::new(&mut self.inner).poll_flush(cx);
        self.clock.on_write(result.is_pending());
        result
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// One timer for a connection's deadlines, moved only when a deadline
/// comes earlier than the one set, or after it rang.
///
/// A timer registered earlier than the next wake-up its runtime planned
/// makes tokio wake its own thread through the event loop's eventfd: a
/// system call and a spurious turn of the loop. A fresh timer per pass of
/// the connection loop did that for about one request in four on each
/// receiving thread (docs/performance.md, "The durable queue"). Ringing
/// early is harmless: the caller asks the clock again.
pub(super) struct Alarm {
    sleep: Pin<Box<tokio::time::Sleep>>,
    set: Option<Instant>,
}

impl Alarm {
    pub fn new() -> Self {
        // Not registered with the timer until it is first set.
        Self {
            sleep: Box::pin(tokio::time::sleep_until(Instant::now())),
            set: None,
        }
    }

    /// Rings no later than `at` (never for `None`, unless set already).
    pub fn set_by(&mut self, at: Option<Instant>) {
        if let Some(at) = at
            && self.set.is_none_or(|set| at < set)
        {
            self.sleep.as_mut().reset(at);
            self.set = Some(at);
        }
    }

    /// Resolves when the time set has come; pending while none is set.
    pub async fn rung(&mut self) {
        if self.set.is_none() {
            return std::future::pending().await;
        }
        self.sleep.as_mut().await;
        self.set = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Timeouts = Timeouts {
        read: Duration::from_secs(30),
        write: Duration::from_secs(30),
        idle: Duration::from_secs(120),
        h2_idle: Duration::from_secs(120),
    };
    const SLACK: Duration = Duration::from_millis(50);

    /// `verdict` is `Keep` with a next check close to `expected` (stamps
    /// are kept in whole milliseconds).
    fn assert_next(verdict: Verdict, expected: Instant) {
        let Verdict::Keep(Some(next)) = verdict else {
            panic!("expected a next check, got {verdict:?}");
        };
        assert!(
            next <= expected && expected - next < SLACK,
            "{next:?} vs {expected:?}"
        );
    }

    /// Whether `alarm` rings within `wait` (of paused, auto-advancing time).
    async fn rings_within(alarm: &mut Alarm, wait: Duration) -> bool {
        tokio::time::timeout(wait, alarm.rung()).await.is_ok()
    }

    #[tokio::test(start_paused = true)]
    async fn an_alarm_moves_only_earlier_and_rings_once_per_setting() {
        let mut alarm = Alarm::new();
        assert!(
            !rings_within(&mut alarm, Duration::from_secs(3600)).await,
            "never set"
        );
        let start = Instant::now();
        alarm.set_by(Some(start + Duration::from_secs(10)));
        // Later: kept at 10 s. Earlier: moved to 5 s. None: unchanged.
        alarm.set_by(Some(start + Duration::from_secs(20)));
        alarm.set_by(Some(start + Duration::from_secs(5)));
        alarm.set_by(None);
        assert!(rings_within(&mut alarm, Duration::from_secs(6)).await);
        assert_eq!(Instant::now() - start, Duration::from_secs(5));
        // Rung: pending until set again, then set for any time.
        assert!(!rings_within(&mut alarm, Duration::from_secs(60)).await);
        let again = Instant::now();
        alarm.set_by(Some(again + Duration::from_secs(30)));
        assert!(rings_within(&mut alarm, Duration::from_secs(31)).await);
        assert_eq!(Instant::now() - again, Duration::from_secs(30));
    }

    #[test]
    fn first_request_counts_from_the_connection_start() {
        let clock = ConnClock::new();
        let origin = clock.origin;
        assert_eq!(
            clock.verdict(&T, origin),
            Verdict::Keep(Some(origin + T.read))
        );
        assert!(matches!(
            clock.verdict(&T, origin + T.read),
            Verdict::Close(_)
        ));
        let (guard, head) = clock.begin_request();
        assert_eq!(head, Some(origin));
        assert_eq!(clock.verdict(&T, origin + T.read), Verdict::Keep(None));
        drop(guard);
    }

    #[test]
    fn keep_alive_uses_idle_then_read_timeout() {
        let clock = ConnClock::new();
        let (guard, _) = clock.begin_request();
        drop(guard);
        let idle_from = Instant::now();
        assert_next(clock.verdict(&T, idle_from), idle_from + T.idle);
        assert_eq!(clock.verdict(&T, idle_from + T.idle), Verdict::Idle);
        clock.on_read();
        let head = Instant::now();
        assert_next(clock.verdict(&T, head), head + T.read);
        assert!(matches!(
            clock.verdict(&T, head + T.read),
            Verdict::Close(_)
        ));
        let (_guard, started) = clock.begin_request();
        let started = started.unwrap();
        assert!(started <= head && head - started < SLACK);
        assert_eq!(clock.verdict(&T, head + T.idle), Verdict::Keep(None));
    }

    #[test]
    fn h2_ignores_bytes_between_streams_and_stalled_writes_close() {
        let clock = ConnClock::new();
        clock.on_read();
        clock.set_h2();
        let (guard, head) = clock.begin_request();
        assert_eq!(head, None);
        drop(guard);
        clock.on_read();
        let now = Instant::now();
        assert_next(clock.verdict(&T, now), now + T.h2_idle);
        clock.on_write(true);
        assert!(matches!(
            clock.verdict(&T, now + T.write),
            Verdict::Close(_)
        ));
        clock.on_write(false);
        assert_next(clock.verdict(&T, now + T.write), now + T.h2_idle);
    }
}
