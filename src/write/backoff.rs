//! Jittered exponential backoff, as dskit's `backoff.Backoff` computes it:
//! the n-th delay is random in `[d, 2d)` where `d` starts at the minimum
//! and the range doubles until its upper end reaches the maximum; from then
//! on every delay is drawn from that last range.
//!
//! This file only computes delays. Whether to retry at all is decided by
//! [`super::retry`], and how many attempts and how long by the send loop.

use std::time::Duration;

/// Validated backoff bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffConfig {
    min: Duration,
    max: Duration,
}

/// Why a pair of bounds was refused. dskit would panic on either
/// (`rand.Int63n` of zero or a negative span), so they are config errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidBackoff {
    #[error("min_backoff_period must be greater than 0")]
    ZeroMin,
    #[error("min_backoff_period ({min:?}) must not be greater than max_backoff_period ({max:?})")]
    MinAboveMax { min: Duration, max: Duration },
}

impl BackoffConfig {
    pub fn new(min: Duration, max: Duration) -> Result<Self, InvalidBackoff> {
        if min.is_zero() {
            return Err(InvalidBackoff::ZeroMin);
        }
        if min > max {
            return Err(InvalidBackoff::MinAboveMax { min, max });
        }
        Ok(Self { min, max })
    }

    pub fn max(&self) -> Duration {
        self.max
    }
}

/// The delay sequence of one send. Cheap to create per send.
#[derive(Debug, Clone)]
pub struct Backoff {
    max: Duration,
    /// Lower bound of the next delay's range.
    lower: Duration,
    /// Upper bound (exclusive) of the next delay's range.
    upper: Duration,
}

impl Backoff {
    pub fn new(config: BackoffConfig) -> Self {
        Self {
            max: config.max,
            lower: config.min,
            upper: double_capped(config.min, config.max),
        }
    }

    /// The next delay, drawn with `rng`, then widens the range.
    pub fn next_delay(&mut self, rng: &mut fastrand::Rng) -> Duration {
        if self.lower >= self.upper {
            return self.lower;
        }
        let span = (self.upper - self.lower).as_nanos();
        let jitter = rng.u64(0..u64::try_from(span).unwrap_or(u64::MAX));
        let delay = self.lower + Duration::from_nanos(jitter);
        if self.upper < self.max {
            self.lower = double_capped(self.lower, self.max);
            self.upper = double_capped(self.upper, self.max);
        }
        delay
    }
}

fn double_capped(d: Duration, max: Duration) -> Duration {
    d.checked_mul(2).map_or(max, |d| d.min(max))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn rejects_bad_bounds() {
        assert_eq!(
            BackoffConfig::new(ms(0), ms(1)),
            Err(InvalidBackoff::ZeroMin)
        );
        assert!(matches!(
            BackoffConfig::new(ms(2), ms(1)),
            Err(InvalidBackoff::MinAboveMax { .. })
        ));
        assert!(BackoffConfig::new(ms(1), ms(1)).is_ok());
    }

    #[test]
    fn delays_stay_in_doubling_ranges_then_keep_the_last() {
        let cfg = BackoffConfig::new(ms(100), ms(1000)).unwrap();
        for seed in 0..200 {
            let mut rng = fastrand::Rng::with_seed(seed);
            let mut b = Backoff::new(cfg);
            let ranges = [(100, 200), (200, 400), (400, 800), (800, 1000)];
            for (lo, hi) in ranges {
                let d = b.next_delay(&mut rng);
                assert!(
                    d >= ms(lo) && d < ms(hi),
                    "seed {seed}: {d:?} not in [{lo},{hi})"
                );
            }
            for _ in 0..5 {
                let d = b.next_delay(&mut rng);
                assert!(d >= ms(800) && d < ms(1000), "seed {seed}: {d:?}");
            }
        }
    }

    #[test]
    fn equal_bounds_give_constant_delay() {
        let cfg = BackoffConfig::new(ms(5), ms(5)).unwrap();
        let mut b = Backoff::new(cfg);
        let mut rng = fastrand::Rng::with_seed(1);
        for _ in 0..3 {
            assert_eq!(b.next_delay(&mut rng), ms(5));
        }
    }

    #[test]
    fn jitter_is_deterministic_for_a_seed_and_varies_across_seeds() {
        let cfg = BackoffConfig::new(ms(100), ms(300_000)).unwrap();
        let run = |seed| {
            let mut rng = fastrand::Rng::with_seed(seed);
            let mut b = Backoff::new(cfg);
            (0..4).map(|_| b.next_delay(&mut rng)).collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }

    #[test]
    fn huge_max_does_not_overflow() {
        let cfg = BackoffConfig::new(ms(1), Duration::MAX).unwrap();
        let mut b = Backoff::new(cfg);
        let mut rng = fastrand::Rng::with_seed(3);
        for _ in 0..200 {
            b.next_delay(&mut rng);
        }
    }
}
