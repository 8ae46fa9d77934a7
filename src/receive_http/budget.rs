//! The process-wide memory budget for request data: every
//! `pyroscope.receive_http` component reserves from it before it buffers a
//! body (as it arrives) or decompressed data (as it is produced), and a
//! request that would take it past its limit is refused instead of read.
//!
//! A [`Reservation`] is tied to the buffer it pays for: [`Reservation::seal`]
//! turns the buffer into a `Bytes` that owns the reservation, so the bytes
//! are given back when the last clone of the body is dropped, i.e. after
//! every receiver of the fan-out is done with it, not when the request
//! handler returns. That is when the memory is really freed.
//!
//! Headroom for small requests: a request holding more than
//! [`SMALL_REQUEST`] may only fill the budget up to three quarters, so that
//! a few large or hostile uploads cannot lock out agents sending ordinary
//! profiles.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Requests holding at most this much may use the whole budget; larger
/// ones only three quarters of it.
pub const SMALL_REQUEST: u64 = 1 << 20;
/// Quarters of the budget that requests above [`SMALL_REQUEST`] may fill.
const LARGE_SHARE_NUMERATOR: u64 = 3;
/// At most one refusal warning per this interval.
const WARN_INTERVAL: Duration = Duration::from_secs(10);
/// The share of the machine's (or cgroup's) memory the default budget is.
const DEFAULT_DIVISOR: u64 = 4;

/// Why a reservation was refused.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error(
    "the relay's request memory budget ({limit} bytes, --request-memory-limit) is in use \
     by other requests; retry later"
)]
pub struct OverBudget {
    pub limit: u64,
}

/// The budget. Shared by every receiver in the process.
#[derive(Debug)]
pub struct RequestBudget {
    limit: u64,
    in_use: Gauge<u64, AtomicU64>,
    limit_gauge: Gauge<u64, AtomicU64>,
    refusals: Counter,
    started: Instant,
    /// Milliseconds since `started` of the last warning, plus one (0: never).
    warned_at: AtomicU64,
    /// Refusals since the last warning.
    unreported: AtomicU64,
}

impl RequestBudget {
    /// A budget of `limit` bytes, not exposed as metrics.
    pub fn new(limit: u64) -> Arc<Self> {
        let budget = Self {
            limit,
            in_use: Gauge::default(),
            limit_gauge: Gauge::default(),
            refusals: Counter::default(),
            started: Instant::now(),
            warned_at: AtomicU64::new(0),
            unreported: AtomicU64::new(0),
        };
        budget.limit_gauge.set(limit);
        Arc::new(budget)
    }

    /// Registers the budget's metrics (documented in docs/components.md).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "pyroscope_relay_request_memory_limit_bytes",
            "The request memory budget shared by every pyroscope.receive_http \
             (--request-memory-limit).",
            self.limit_gauge.clone(),
        );
        registry.register(
            "pyroscope_relay_request_memory_in_use_bytes",
            "Request bodies and decompressed data held now, compressed and decompressed.",
            self.in_use.clone(),
        );
        registry.register(
            "pyroscope_relay_request_memory_refusals",
            "Requests refused (429 / resource_exhausted) because the request memory budget \
             was in use.",
            self.refusals.clone(),
        );
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }

    pub fn in_use(&self) -> u64 {
        self.in_use.get()
    }

    /// An empty reservation, to grow as data arrives.
    pub fn reservation(self: &Arc<Self>) -> Reservation {
        Reservation {
            budget: self.clone(),
            held: 0,
        }
    }

    /// Refuses at once a request whose declared size cannot fit now, so
    /// that it is answered before its body is read. Reserves nothing: the
    /// body reader reserves when data arrives.
    pub fn check_declared(&self, declared: u64) -> Result<(), OverBudget> {
        if self.in_use().saturating_add(declared) <= self.ceiling(declared) {
            Ok(())
        } else {
            Err(self.refuse())
        }
    }

    /// How far the budget may be filled by a request holding `total`.
    fn ceiling(&self, total: u64) -> u64 {
        if total > SMALL_REQUEST {
            self.limit / 4 * LARGE_SHARE_NUMERATOR
        } else {
            self.limit
        }
    }

    /// Takes `more` bytes for a request that will then hold `total`.
    fn take(&self, more: u64, total: u64) -> Result<(), OverBudget> {
        let ceiling = self.ceiling(total);
        let taken = self
            .in_use
            .inner()
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(more).filter(|&after| after <= ceiling)
            });
        taken.map(|_| ()).map_err(|_| self.refuse())
    }

    fn give_back(&self, bytes: u64) {
        self.in_use.dec_by(bytes);
    }

    /// Counts a refusal; warns when refusals start, then at most once per
    /// [`WARN_INTERVAL`] with the number since the last warning.
    fn refuse(&self) -> OverBudget {
        self.refusals.inc();
        let unreported = self.unreported.fetch_add(1, Ordering::AcqRel) + 1;
        let now = self.started.elapsed().as_millis() as u64 + 1;
        let last = self.warned_at.load(Ordering::Acquire);
        let due = last == 0 || now.saturating_sub(last) >= WARN_INTERVAL.as_millis() as u64;
        if due
            && self
                .warned_at
                .compare_exchange(last, now, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            self.unreported.fetch_sub(unreported, Ordering::AcqRel);
            tracing::warn!(
                refused = unreported,
                limit_bytes = self.limit,
                in_use_bytes = self.in_use(),
                "refusing requests: the request memory budget is in use (--request-memory-limit)"
            );
        }
        OverBudget { limit: self.limit }
    }
}

/// Bytes reserved for one buffer; given back when dropped.
#[derive(Debug)]
pub struct Reservation {
    budget: Arc<RequestBudget>,
    held: u64,
}

impl Reservation {
    /// Grows the reservation to `total` bytes (never shrinks it).
    pub fn grow_to(&mut self, total: u64) -> Result<(), OverBudget> {
        if total <= self.held {
            return Ok(());
        }
        self.budget.take(total - self.held, total)?;
        self.held = total;
        Ok(())
    }

    /// Gives back what is held beyond `total` bytes (a buffer that was
    /// reallocated no longer needs room for its old copy).
    pub fn shrink_to(&mut self, total: u64) {
        if total < self.held {
            self.budget.give_back(self.held - total);
            self.held = total;
        }
    }

    /// Bytes held.
    pub fn held(&self) -> u64 {
        self.held
    }

    /// `data` as `Bytes` that keep this reservation until the last clone
    /// is dropped. An empty buffer gives the reservation back at once.
    pub fn seal<T>(self, data: T) -> Bytes
    where
        T: AsRef<[u8]> + Send + 'static,
    {
        if data.as_ref().is_empty() {
            return Bytes::new();
        }
        Bytes::from_owner(Sealed {
            data,
            _reservation: self,
        })
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.held > 0 {
            self.budget.give_back(self.held);
        }
    }
}

/// A buffer and the reservation that pays for it.
struct Sealed<T> {
    data: T,
    _reservation: Reservation,
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Sealed<T> {
    fn as_ref(&self) -> &[u8] {
        self.data.as_ref()
    }
}

/// The default budget: a quarter of the cgroup's memory limit (v2
/// `memory.max`, v1 `memory.limit_in_bytes`), or of physical memory when
/// there is no lower limit.
pub fn default_limit() -> u64 {
    let physical = physical_memory();
    let limit = cgroup_memory_limit().map_or(physical, |c| c.min(physical));
    (limit / DEFAULT_DIVISOR).max(SMALL_REQUEST * 4)
}

/// `MemTotal` of `/proc/meminfo`; 4 GiB if it cannot be read.
fn physical_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| mem_total(&info))
        .unwrap_or(4 << 30)
}

fn mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib.saturating_mul(1024))
}

/// The tightest memory limit of this process's cgroup and its ancestors.
fn cgroup_memory_limit() -> Option<u64> {
    let membership = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    cgroup_limit_from(&membership, |path| std::fs::read_to_string(path).ok())
}

/// The limit named by `/proc/self/cgroup` (`membership`), reading control
/// files with `read`. v2 lines are `0::/path`; v1 memory lines are
/// `N:memory:/path` (or with other controllers, comma-separated).
fn cgroup_limit_from(membership: &str, read: impl Fn(&str) -> Option<String>) -> Option<u64> {
    let mut tightest: Option<u64> = None;
    let mut consider = |file: String| {
        let value = read(&file)?;
        let value = value.trim();
        // "max" (v2) means none; v1 writes a huge number instead.
        let bytes: u64 = value.parse().ok()?;
        tightest = Some(tightest.map_or(bytes, |t| t.min(bytes)));
        Some(())
    };
    for line in membership.lines() {
        let mut fields = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let (root, file) = if controllers.is_empty() {
            ("/sys/fs/cgroup", "memory.max")
        } else if controllers.split(',').any(|c| c == "memory") {
            ("/sys/fs/cgroup/memory", "memory.limit_in_bytes")
        } else {
            continue;
        };
        // The cgroup and each ancestor up to the root of the hierarchy.
        let mut dir = path.trim_end_matches('/');
        loop {
            let _ = consider(format!("{root}{dir}/{file}"));
            match dir.rfind('/') {
                Some(cut) => dir = &dir[..cut],
                None => break,
            }
            if dir.is_empty() {
                let _ = consider(format!("{root}/{file}"));
                break;
            }
        }
    }
    tightest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_grow_within_the_limit_and_are_given_back_on_drop() {
        let budget = RequestBudget::new(8 << 20);
        let mut a = budget.reservation();
        a.grow_to(1000).unwrap();
        a.grow_to(500).unwrap(); // never shrinks
        assert_eq!((a.held(), budget.in_use()), (1000, 1000));
        a.shrink_to(2000); // never grows
        a.shrink_to(900);
        a.grow_to(1000).unwrap();
        assert_eq!((a.held(), budget.in_use()), (1000, 1000));
        let mut b = budget.reservation();
        // Small requests may use the whole budget...
        b.grow_to(SMALL_REQUEST).unwrap();
        // ...large ones only three quarters of it.
        let mut c = budget.reservation();
        assert!(c.grow_to(6 << 20).is_err());
        c.grow_to((6 << 20) - 1000 - SMALL_REQUEST).unwrap();
        assert!(c.grow_to(6 << 20).is_err());
        let mut small = budget.reservation();
        small.grow_to(SMALL_REQUEST).unwrap();
        drop((a, b, c, small));
        assert_eq!(budget.in_use(), 0);
        assert_eq!(budget.refusals.get(), 2);
    }

    #[test]
    fn sealed_bytes_hold_the_reservation_until_the_last_clone_is_dropped() {
        let budget = RequestBudget::new(1 << 30);
        let mut r = budget.reservation();
        r.grow_to(4096).unwrap();
        let body = r.seal(vec![7u8; 4096]);
        let slice = body.slice(10..20);
        let clone = body.clone();
        drop(body);
        assert_eq!(budget.in_use(), 4096);
        drop(clone);
        assert_eq!((budget.in_use(), &slice[..]), (4096, &[7u8; 10][..]));
        drop(slice);
        assert_eq!(budget.in_use(), 0);
        let mut empty = budget.reservation();
        empty.grow_to(10).unwrap();
        assert!(empty.seal(Vec::<u8>::new()).is_empty());
        assert_eq!(budget.in_use(), 0);
    }

    #[test]
    fn a_declared_size_that_cannot_fit_is_refused_without_reserving() {
        let budget = RequestBudget::new(4 << 20);
        assert!(budget.check_declared(3 << 20).is_ok());
        assert!(budget.check_declared((3 << 20) + 1).is_err());
        assert_eq!(budget.in_use(), 0);
    }

    #[test]
    fn cgroup_limits_come_from_v2_and_v1_files_and_the_tightest_ancestor_wins() {
        let files = |path: &str| -> Option<String> {
            match path {
                "/sys/fs/cgroup/relay.slice/relay.service/memory.max" => Some("max\n".into()),
                "/sys/fs/cgroup/relay.slice/memory.max" => Some("2147483648\n".into()),
                "/sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes" => {
                    Some("536870912\n".into())
                }
                "/sys/fs/cgroup/memory/memory.limit_in_bytes" => {
                    Some("9223372036854771712\n".into())
                }
                _ => None,
            }
        };
        let v2 = "0::/relay.slice/relay.service\n";
        assert_eq!(cgroup_limit_from(v2, files), Some(2 << 30));
        let v1 = "12:cpu,cpuacct:/docker/abc\n4:memory:/docker/abc\n";
        assert_eq!(cgroup_limit_from(v1, files), Some(512 << 20));
        assert_eq!(cgroup_limit_from("0::/\n", files), None);
        let meminfo = "MemTotal:       24730748 kB\nMemFree:  100 kB\n";
        assert_eq!(mem_total(meminfo), Some(24730748 * 1024));
        assert!(default_limit() >= SMALL_REQUEST * 4);
    }
}
