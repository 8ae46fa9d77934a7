//! The archive's in-memory index, kept by the log's writer thread through
//! the [`Owner`] hooks: records are indexed as they are written, and
//! retention and `max_size` delete whole segments, oldest first.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use arc_swap::ArcSwapOption;

use super::meta::{profile_type_of, service_of};
use super::record::decode_meta;
use super::store::{Limits, Stats};
use super::{ComponentMetrics, Origin};
use crate::pipeline::Labels;
use crate::storage::{Control, Owner, Prefix, Written};

/// One record in the index: where it is and what lists filter on.
pub(crate) struct Entry {
    pub id: u64,
    pub arrival_nanos: i64,
    pub segment: u64,
    pub offset: u64,
    pub prefix: Prefix,
    pub labels: Arc<Labels>,
    pub service: Arc<str>,
    pub profile_type: Arc<str>,
}

pub(crate) struct State {
    pub entries: VecDeque<Entry>,
    pub limits: Limits,
    labels: HashSet<Arc<Labels>>,
    strings: HashSet<Arc<str>>,
}

impl State {
    pub fn new(limits: Limits) -> Self {
        Self {
            entries: VecDeque::new(),
            limits,
            labels: HashSet::new(),
            strings: HashSet::new(),
        }
    }

    fn intern_str(&mut self, s: String) -> Arc<str> {
        if let Some(a) = self.strings.get(s.as_str()) {
            return Arc::clone(a);
        }
        let a: Arc<str> = Arc::from(s);
        self.strings.insert(Arc::clone(&a));
        a
    }

    /// Indexes a record; one whose metadata cannot be read is skipped.
    pub fn add(&mut self, w: &Written<'_>) {
        let (origin, labels) = match decode_meta(w.meta) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(id = w.id, error = %e, "archive record with unreadable metadata is skipped");
                return;
            }
        };
        self.add_decoded(w, origin, labels);
    }

    fn add_decoded(&mut self, w: &Written<'_>, origin: Origin, labels: Labels) {
        let service = self.intern_str(service_of(&labels, &origin));
        let profile_type = self.intern_str(profile_type_of(&labels, &origin));
        let labels = match self.labels.get(&labels) {
            Some(l) => Arc::clone(l),
            None => {
                let l = Arc::new(labels);
                self.labels.insert(Arc::clone(&l));
                l
            }
        };
        self.entries.push_back(Entry {
            id: w.id,
            arrival_nanos: w.arrival_nanos,
            segment: w.segment,
            offset: w.offset,
            prefix: w.prefix,
            labels,
            service,
            profile_type,
        });
    }

    /// Forgets the records of segments below `end_id`; returns how many.
    fn remove_before(&mut self, end_id: u64) -> u64 {
        let mut n = 0;
        while self.entries.front().is_some_and(|e| e.id < end_id) {
            self.entries.pop_front();
            n += 1;
        }
        n
    }

    /// Forgets interned labels and strings no record uses any more.
    fn prune_interned(&mut self) {
        self.labels.retain(|l| Arc::strong_count(l) > 1);
        self.strings.retain(|s| Arc::strong_count(s) > 1);
    }

    pub fn find(&self, id: u64) -> Option<&Entry> {
        let i = self.entries.binary_search_by_key(&id, |e| e.id).ok()?;
        self.entries.get(i)
    }
}

/// Called with the reason when archive writes start failing, and with
/// `None` when they work again.
pub type FailureHook = Arc<dyn Fn(Option<&str>) + Send + Sync>;

pub(crate) struct Shared {
    pub state: Mutex<State>,
    pub metrics: ArcSwapOption<ComponentMetrics>,
    pub on_failure: Option<FailureHook>,
}

impl Shared {
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn stats(&self, disk_bytes: u64, segments: usize) -> Stats {
        Stats {
            profiles: self.lock().entries.len(),
            segments,
            disk_bytes,
        }
    }
}

/// The archive's side of the log.
pub(crate) struct ArchiveOwner(pub Arc<Shared>);

impl Owner for ArchiveOwner {
    fn written(&mut self, records: &[Written<'_>]) {
        let mut state = self.0.lock();
        let mut bytes = 0;
        for w in records {
            bytes += w.prefix.body_len();
            state.add(w);
        }
        if let Some(m) = self.0.metrics.load().as_ref() {
            m.stored_profiles.inc_by(records.len() as u64);
            m.stored_bytes.inc_by(bytes);
        }
    }

    /// Deletes whole segments, oldest first, while the archive is over
    /// `max_size` or its oldest segment's newest record is older than
    /// `retention`.
    fn maintain(&mut self, log: &mut Control<'_>) {
        let now = log.now_nanos();
        let mut evicted = 0;
        loop {
            let limits = self.0.lock().limits;
            let cutoff =
                now.saturating_sub(i64::try_from(limits.retention.as_nanos()).unwrap_or(i64::MAX));
            let Some(oldest) = log.segments().first().copied() else {
                break;
            };
            let expired = oldest.max_arrival < cutoff;
            let over = log.disk_bytes() > limits.max_size;
            if !(expired || over) {
                break;
            }
            if over && log.discard_spare() > 0 {
                continue;
            }
            // An expired segment's file may be kept to become a later one
            // (still counted in the archive's size).
            let dropped = if over {
                log.drop_oldest()
            } else {
                log.retire_oldest()
            };
            let Some(dropped) = dropped else {
                break;
            };
            evicted += self.0.lock().remove_before(dropped.end_id);
        }
        let mut state = self.0.lock();
        if evicted > 0 {
            state.prune_interned();
        }
        if let Some(m) = self.0.metrics.load().as_ref() {
            m.evicted_profiles.inc_by(evicted);
            m.set_usage(state.entries.len(), log.disk_bytes());
        }
    }

    fn health(&mut self, failure: Option<&str>) {
        if let Some(hook) = &self.0.on_failure {
            hook(failure);
        }
    }
}
