//! Per-request warnings under overload: a relay refusing 30,000 requests a
//! second must not write 30,000 log lines a second (the log is then the
//! bottleneck, and the one line that matters scrolls away). A [`Throttle`]
//! lets one line through per interval and counts the rest, which the next
//! line reports as `suppressed`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub struct Throttle {
    interval_nanos: u64,
    /// Nanoseconds since `epoch` when the last line went out (0: never).
    last: AtomicU64,
    suppressed: AtomicU64,
    epoch: std::sync::OnceLock<Instant>,
}

impl Throttle {
    pub const fn new(interval: Duration) -> Self {
        Self {
            interval_nanos: interval.as_nanos() as u64,
            last: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
            epoch: std::sync::OnceLock::new(),
        }
    }

    /// `Some(n)`: log now, mentioning the `n` lines suppressed since the
    /// last one; `None`: this one is counted and dropped.
    pub fn admit(&self) -> Option<u64> {
        let epoch = *self.epoch.get_or_init(Instant::now);
        // +1 so that the first call, at 0 ns, differs from "never".
        let now = epoch.elapsed().as_nanos() as u64 + 1;
        let last = self.last.load(Ordering::Relaxed);
        if last != 0 && now.saturating_sub(last) < self.interval_nanos {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        // One caller per interval wins; the others count as suppressed.
        if self
            .last
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        Some(self.suppressed.swap(0, Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval_and_the_rest_counted() {
        let t = Throttle::new(Duration::from_millis(50));
        assert_eq!(t.admit(), Some(0));
        for _ in 0..99 {
            assert_eq!(t.admit(), None);
        }
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(t.admit(), Some(99));
        assert_eq!(t.admit(), None);
    }

    #[test]
    fn threads_share_one_budget() {
        let t = std::sync::Arc::new(Throttle::new(Duration::from_secs(60)));
        let admitted: u64 = (0..4)
            .map(|_| {
                let t = t.clone();
                std::thread::spawn(move || (0..1000).filter(|_| t.admit().is_some()).count() as u64)
            })
            .map(|h| h.join().unwrap())
            .sum();
        assert_eq!(admitted, 1);
    }
}
