//! The relabel result cache: an LRU from an input label set to its result.
//!
//! Keyed by the whole label set, so two sets never share an entry (Alloy
//! keys by a 64-bit fingerprint and resolves collisions in a list). A result
//! is `Some(labels)` (possibly empty) or `None` for "dropped", so an empty
//! result is never mistaken for a drop.
//!
//! Each purge starts a new generation; an insert made with an older
//! generation (a request that relabeled with the previous rules while the
//! rules changed) is ignored, so stale results never reach the new cache.

use lru::LruCache;
use prometheus_client::metrics::gauge::Gauge;
use std::num::NonZeroUsize;
use std::sync::{Mutex, MutexGuard};

use crate::pipeline::Labels;

/// A cached outcome: the relabeled set, or `None` when it was dropped.
pub(crate) type Outcome = Option<Labels>;

pub(crate) struct Cache {
    inner: Mutex<Inner>,
    /// `pyroscope_relabel_cache_size`, kept equal to the entry count.
    size: Gauge,
}

struct Inner {
    /// `None` when the capacity is 0: caching is off.
    lru: Option<LruCache<Labels, Outcome>>,
    generation: u64,
}

impl Cache {
    pub(crate) fn new(capacity: usize, size: Gauge) -> Self {
        size.set(0);
        Self {
            inner: Mutex::new(Inner {
                lru: new_lru(capacity),
                generation: 0,
            }),
            size,
        }
    }

    /// The outcome cached for `key`, marking it recently used.
    pub(crate) fn get(&self, key: &Labels) -> Option<Outcome> {
        self.lock().lru.as_mut()?.get(key).cloned()
    }

    /// Caches `outcome` for `key` unless the cache was purged since
    /// `generation` was read or caching is off.
    pub(crate) fn insert(&self, generation: u64, key: &Labels, outcome: &Outcome) {
        let mut inner = self.lock();
        if inner.generation != generation {
            return;
        }
        if let Some(lru) = inner.lru.as_mut() {
            lru.put(key.clone(), outcome.clone());
            self.size.set(gauge_value(lru.len()));
        }
    }

    /// Empties the cache and returns the new generation.
    pub(crate) fn purge(&self) -> u64 {
        let mut inner = self.lock();
        if let Some(lru) = inner.lru.as_mut() {
            lru.clear();
        }
        inner.generation += 1;
        self.size.set(0);
        inner.generation
    }

    /// Changes the capacity, evicting the least recently used entries.
    pub(crate) fn resize(&self, capacity: usize) {
        let mut inner = self.lock();
        match (NonZeroUsize::new(capacity), inner.lru.as_mut()) {
            (Some(cap), Some(lru)) => lru.resize(cap),
            (cap, _) => inner.lru = cap.map(LruCache::sparse),
        }
        let len = inner.lru.as_ref().map_or(0, LruCache::len);
        self.size.set(gauge_value(len));
    }

    pub(crate) fn generation(&self) -> u64 {
        self.lock().generation
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().lru.as_ref().map_or(0, LruCache::len)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The critical sections cannot leave the LRU half-updated, so a
        // poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn new_lru(capacity: usize) -> Option<LruCache<Labels, Outcome>> {
    // Sparse: memory grows with use, not with the configured maximum.
    NonZeroUsize::new(capacity).map(LruCache::sparse)
}

fn gauge_value(len: usize) -> i64 {
    i64::try_from(len).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(value: &str) -> Labels {
        Labels::from_pairs([("env", value)])
    }

    #[test]
    fn caches_kept_empty_and_dropped_outcomes_apart() {
        let cache = Cache::new(10, Gauge::default());
        let g = cache.generation();
        cache.insert(g, &env("a"), &Some(env("b")));
        cache.insert(g, &env("c"), &Some(Labels::new()));
        cache.insert(g, &env("d"), &None);
        assert_eq!(cache.get(&env("a")), Some(Some(env("b"))));
        assert_eq!(cache.get(&env("c")), Some(Some(Labels::new())));
        assert_eq!(cache.get(&env("d")), Some(None));
        assert_eq!(cache.get(&env("e")), None);
        assert_eq!(cache.len(), 3);
    }

    #[test]
    fn lru_evicts_least_recently_used() {
        let size = Gauge::default();
        let cache = Cache::new(2, size.clone());
        let g = cache.generation();
        for v in ["prod", "dev", "stage"] {
            cache.insert(g, &env(v), &Some(env(v)));
        }
        assert_eq!(cache.len(), 2);
        assert_eq!(size.get(), 2);
        assert_eq!(cache.get(&env("prod")), None);
        assert!(cache.get(&env("dev")).is_some());
        assert!(cache.get(&env("stage")).is_some());
    }

    #[test]
    fn purge_empties_and_ignores_stale_inserts() {
        let size = Gauge::default();
        let cache = Cache::new(10, size.clone());
        let old = cache.generation();
        cache.insert(old, &env("a"), &None);
        let new = cache.purge();
        assert_ne!(old, new);
        assert_eq!((cache.len(), size.get()), (0, 0));
        cache.insert(old, &env("b"), &None);
        assert_eq!(cache.len(), 0, "insert from before the purge is ignored");
        cache.insert(new, &env("b"), &None);
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn resize_shrinks_disables_and_reenables() {
        let size = Gauge::default();
        let cache = Cache::new(3, size.clone());
        let g = cache.generation();
        for v in ["a", "b", "c"] {
            cache.insert(g, &env(v), &None);
        }
        cache.get(&env("a"));
        cache.resize(1);
        assert_eq!((cache.len(), size.get()), (1, 1));
        assert!(
            cache.get(&env("a")).is_some(),
            "most recently used survives"
        );
        cache.resize(0);
        cache.insert(g, &env("d"), &None);
        assert_eq!((cache.len(), size.get()), (0, 0));
        assert_eq!(cache.get(&env("d")), None);
        cache.resize(2);
        cache.insert(g, &env("d"), &None);
        assert_eq!((cache.len(), size.get()), (1, 1));
    }
}
