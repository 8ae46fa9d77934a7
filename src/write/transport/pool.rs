//! The open connections of one transport, kept per thread.
//!
//! Each thread that sends has its own shard (chosen by a thread-local
//! index), so a request checks out a connection that was last driven from
//! the same thread, and the shard's lock is never contended in the
//! thread-per-core design. HTTP/1.1 connections are lent to one request
//! at a time and come back when its response body has been read to the
//! end ([`ResponseBody`]); an HTTP/2 connection (ALPN `h2`) is shared by
//! every request of its shard. An idle connection is closed after the idle
//! timeout (by a small reaper task per shard that only runs while the
//! shard holds idle connections), and a shard keeps at most
//! `max_idle_per_host` idle HTTP/1.1 connections per host; one found
//! closed by the peer is dropped at checkout. See docs/architecture.md.

use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http::uri::{Authority, Scheme};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use tokio::time::Instant;

use super::body::RequestBody;

/// Where a connection goes: the destination's scheme and authority (also
/// when the connection runs through a proxy).
#[derive(Debug, Clone)]
pub(super) struct Key {
    pub scheme: Scheme,
    pub authority: Authority,
}

/// Byte for byte: `Authority`'s own comparison ignores case one character
/// at a time, which showed in the profile; a host spelled in two cases
/// only gets two idle lists.
impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.authority.as_str() == other.authority.as_str() && self.scheme == other.scheme
    }
}

impl Eq for Key {}

/// How long and how many idle connections are kept.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    pub idle_timeout: Duration,
    /// Per host, over all shards (each shard keeps its share).
    pub max_idle_per_host: usize,
}

/// A connection's request side, as checked out.
pub(super) enum Sender {
    Http1(http1::SendRequest<RequestBody>),
    Http2(http2::SendRequest<RequestBody>),
}

#[derive(Clone)]
pub(super) struct Pool {
    inner: Arc<Inner>,
}

struct Inner {
    shards: Box<[Mutex<Shard>]>,
    idle_timeout: Duration,
    max_idle_per_shard: usize,
}

#[derive(Default)]
struct Shard {
    /// Usually one: the endpoint's host (more only after redirects).
    hosts: Vec<Host>,
    /// Whether a reaper task is watching this shard.
    reaping: bool,
}

struct Host {
    key: Key,
    /// Most recently returned last.
    idle: Vec<Idle>,
    shared: Option<Shared>,
}

struct Idle {
    sender: http1::SendRequest<RequestBody>,
    since: Instant,
}

struct Shared {
    sender: http2::SendRequest<RequestBody>,
    last_used: Instant,
}

/// Each shard keeps at least this many idle connections per host, however
/// many shards share `max_idle_per_host`.
const MIN_IDLE_PER_SHARD: usize = 16;

static NEXT_THREAD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread's shard, modulo the shard count of each pool.
    static THREAD_INDEX: usize = NEXT_THREAD.fetch_add(1, Ordering::Relaxed);
}

impl Pool {
    pub fn new(limits: Limits) -> Self {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let shards = (threads * 2).clamp(2, 64);
        Self::with_shards(limits, shards)
    }

    pub(super) fn with_shards(limits: Limits, shards: usize) -> Self {
        let per_shard = limits.max_idle_per_host.div_ceil(shards);
        Self {
            inner: Arc::new(Inner {
                shards: (0..shards).map(|_| Mutex::default()).collect(),
                idle_timeout: limits.idle_timeout,
                max_idle_per_shard: per_shard.max(MIN_IDLE_PER_SHARD.min(limits.max_idle_per_host)),
            }),
        }
    }

    /// An open connection to `key` checked out on this thread, if the
    /// shard has one. An HTTP/1.1 sender may still need `ready()` (its
    /// connection task may not have seen the end of the last exchange).
    pub fn checkout(&self, key: &Key) -> Option<Sender> {
        let now = Instant::now();
        let timeout = self.inner.idle_timeout;
        let mut shard = self.inner.shard();
        let host = shard.hosts.iter_mut().find(|h| h.key == *key)?;
        if let Some(shared) = &mut host.shared {
            if !shared.sender.is_closed() && now - shared.last_used < timeout {
                shared.last_used = now;
                return Some(Sender::Http2(shared.sender.clone()));
            }
            host.shared = None;
        }
        while let Some(idle) = host.idle.pop() {
            if !idle.sender.is_closed() && now - idle.since < timeout {
                return Some(Sender::Http1(idle.sender));
            }
        }
        None
    }

    /// Keeps an HTTP/2 connection for the shard's next requests to `key`.
    pub fn share(&self, key: &Key, sender: http2::SendRequest<RequestBody>) {
        let mut shard = self.inner.shard();
        let shared = Shared {
            sender,
            last_used: Instant::now(),
        };
        shard.host(key).shared = Some(shared);
        self.inner.watch(&mut shard);
    }

    /// Returns an HTTP/1.1 connection whose exchange is complete.
    fn checkin(&self, key: &Key, sender: http1::SendRequest<RequestBody>) {
        if sender.is_closed() {
            return;
        }
        let mut shard = self.inner.shard();
        let max = self.inner.max_idle_per_shard;
        let host = shard.host(key);
        if host.idle.len() >= max {
            return;
        }
        host.idle.push(Idle {
            sender,
            since: Instant::now(),
        });
        self.inner.watch(&mut shard);
    }

    /// The response to an HTTP/1.1 request: its connection goes back to
    /// the pool when the body has been read to the end, and is closed if
    /// the body is dropped before.
    pub fn lend_back(
        &self,
        key: &Key,
        sender: http1::SendRequest<RequestBody>,
        body: Incoming,
    ) -> ResponseBody {
        if body.is_end_stream() {
            self.checkin(key, sender);
            return ResponseBody::unpooled(body);
        }
        ResponseBody {
            inner: body,
            lent: Some(Lent {
                pool: self.clone(),
                key: key.clone(),
                sender,
            }),
        }
    }

    /// Idle connections (HTTP/1.1, plus shared HTTP/2 ones) held for `key`
    /// in all shards; for tests and the debug log.
    #[cfg(test)]
    pub fn idle_count(&self, key: &Key) -> usize {
        self.inner
            .shards
            .iter()
            .map(|s| {
                let s = s.lock().unwrap_or_else(|e| e.into_inner());
                s.hosts
                    .iter()
                    .filter(|h| h.key == *key)
                    .map(|h| h.idle.len() + usize::from(h.shared.is_some()))
                    .sum::<usize>()
            })
            .sum()
    }
}

impl Inner {
    fn shard(&self) -> MutexGuard<'_, Shard> {
        let index = THREAD_INDEX.with(|i| *i) % self.shards.len();
        self.shards[index].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts the shard's reaper unless one runs (or no runtime does: the
    /// next checkout still skips expired connections).
    fn watch(self: &Arc<Self>, shard: &mut Shard) {
        if shard.reaping {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let index = THREAD_INDEX.with(|i| *i) % self.shards.len();
        shard.reaping = true;
        runtime.spawn(reap(Arc::downgrade(self), index));
    }
}

impl Shard {
    fn host(&mut self, key: &Key) -> &mut Host {
        let at = match self.hosts.iter().position(|h| h.key == *key) {
            Some(at) => at,
            None => {
                self.hosts.push(Host {
                    key: key.clone(),
                    idle: Vec::new(),
                    shared: None,
                });
                self.hosts.len() - 1
            }
        };
        &mut self.hosts[at]
    }

    /// Drops expired and closed connections, and hosts left with none;
    /// returns when the next one expires.
    fn prune(&mut self, now: Instant, timeout: Duration) -> Option<Instant> {
        let open = |since: Instant, closed: bool| !closed && now - since < timeout;
        for host in &mut self.hosts {
            host.idle.retain(|i| open(i.since, i.sender.is_closed()));
            if host
                .shared
                .as_ref()
                .is_some_and(|s| !open(s.last_used, s.sender.is_closed()))
            {
                host.shared = None;
            }
        }
        self.hosts
            .retain(|h| !h.idle.is_empty() || h.shared.is_some());
        let oldest = self.hosts.iter().flat_map(|h| {
            let idle = h.idle.iter().map(|i| i.since);
            idle.chain(h.shared.as_ref().map(|s| s.last_used))
        });
        oldest.min().map(|since| since + timeout)
    }
}

/// Closes a shard's connections as they expire; ends when the shard holds
/// none (the next checkin starts another) or the pool is gone.
async fn reap(pool: Weak<Inner>, index: usize) {
    /// Clears `reaping` if the task is dropped mid-sleep (its runtime
    /// shutting down), so that the next checkin starts another.
    struct Cancelled {
        pool: Weak<Inner>,
        index: usize,
        armed: bool,
    }
    impl Drop for Cancelled {
        fn drop(&mut self) {
            if let Some(pool) = self.pool.upgrade().filter(|_| self.armed) {
                let mut shard = pool.shards[self.index]
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                shard.reaping = false;
            }
        }
    }
    let mut cancelled = Cancelled {
        pool: pool.clone(),
        index,
        armed: true,
    };
    loop {
        let next = {
            let Some(inner) = pool.upgrade() else { return };
            let mut shard = inner.shards[index]
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            match shard.prune(Instant::now(), inner.idle_timeout) {
                Some(at) => at,
                None => {
                    // Under the lock, so a checkin now starts a new reaper.
                    shard.reaping = false;
                    cancelled.armed = false;
                    return;
                }
            }
        };
        tokio::time::sleep_until(next).await;
    }
}

/// A lent HTTP/1.1 connection, owed back to its pool.
struct Lent {
    pool: Pool,
    key: Key,
    sender: http1::SendRequest<RequestBody>,
}

/// A response body that returns its HTTP/1.1 connection to the pool once
/// read to the end.
pub(crate) struct ResponseBody {
    inner: Incoming,
    lent: Option<Lent>,
}

impl ResponseBody {
    pub(super) fn unpooled(inner: Incoming) -> Self {
        Self { inner, lent: None }
    }

    fn give_back(&mut self) {
        if let Some(lent) = self.lent.take() {
            lent.pool.checkin(&lent.key, lent.sender);
        }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let frame = ready!(Pin::new(&mut self.inner).poll_frame(cx));
        match &frame {
            None => self.give_back(),
            Some(Ok(_)) if self.inner.is_end_stream() => self.give_back(),
            // A broken exchange: the connection is not reused.
            Some(Err(_)) => self.lent = None,
            Some(Ok(_)) => {}
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
