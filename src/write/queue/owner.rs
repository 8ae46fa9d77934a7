//! The queue's side of the log's writer thread: whether an append fits,
//! counting new records for every endpoint, checkpoints, deleting what
//! every endpoint has passed, and the component's queue gauges.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::metrics::DropReason;
use super::{Shared, WhenFull, entry};
use crate::storage::{Control, Owner, StorageError, Written, save_positions};

/// How often positions are checkpointed while records are delivered: each
/// checkpoint costs two fsyncs, which per batch would take the time of the
/// batch's own.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

type Positions = BTreeMap<String, u64>;

/// A checkpoint being saved on a thread of its own: its fsyncs of a file
/// and of the directory take 10-30 ms on ext4 (each a journal commit), and
/// on the writer thread every acknowledgement waited behind them (the
/// acknowledgement p99 in docs/performance.md, "The durable queue").
struct Saving {
    positions: Positions,
    thread: std::thread::JoinHandle<Result<(), StorageError>>,
}

pub(super) struct QueueOwner {
    shared: Arc<Shared>,
    saved: Positions,
    /// When `saved` was last written.
    saved_at: Instant,
    saving: Option<Saving>,
    /// Whether the 90% warning was logged since the queue last dropped
    /// below 80%.
    warned_full: bool,
}

impl QueueOwner {
    pub fn new(shared: Arc<Shared>) -> Self {
        Self {
            shared,
            saved: BTreeMap::new(),
            saved_at: Instant::now(),
            saving: None,
            warned_full: false,
        }
    }

    /// Deletes the oldest segment to make room, counting for each endpoint
    /// the profiles it had not read yet. Senders are held still meanwhile,
    /// so a record is either read (and delivered from memory) or counted.
    fn drop_oldest(&mut self, log: &mut Control<'_>) -> bool {
        let endpoints = self.shared.endpoints().clone();
        let mut reads: Vec<_> = endpoints.iter().map(|p| p.lock_read()).collect();
        let Some(oldest) = log.segments().first().copied() else {
            return false;
        };
        let mut lost = vec![(0u64, 0u64); endpoints.len()];
        log.scan_oldest(|w| {
            let counts = entry::counts(w.meta).unwrap_or((1, 0));
            for (i, read) in reads.iter().enumerate() {
                if w.id >= read.next_id {
                    lost[i].0 += counts.0;
                    lost[i].1 += counts.1;
                }
            }
        });
        let Some(dropped) = log.drop_oldest() else {
            return false;
        };
        debug_assert_eq!(dropped.first_id, oldest.first_id);
        for ((p, read), lost) in endpoints.iter().zip(reads.iter_mut()).zip(lost) {
            read.next_id = read.next_id.max(dropped.end_id);
            if lost.0 > 0 {
                p.remove_pending(lost);
                p.metrics.dropped(DropReason::DropOldest, lost.0);
            }
        }
        tracing::warn!(component_id = %self.shared.component_id, first_id = dropped.first_id, records = dropped.count, "queue full: dropped its oldest segment (when_full = \"drop_oldest\")");
        true
    }

    /// Deletes segments every endpoint has passed. The active one goes too
    /// when `active` says so and all of it was delivered (a new one is
    /// started). With `reuse`, a file may be kept to become a later
    /// segment; without, every byte is freed (room is needed).
    fn reclaim(&self, log: &mut Control<'_>, min: u64, active: bool, reuse: bool) {
        while log
            .segments()
            .first()
            .is_some_and(|s| s.last_id.is_none_or(|last| last < min) && (active || !s.active))
        {
            let removed = if reuse {
                log.retire_oldest()
            } else {
                log.drop_oldest()
            };
            if removed.is_none() {
                break;
            }
        }
    }

    /// The lowest position of any endpoint, as the senders have it now.
    fn min_position(&self) -> Option<u64> {
        let endpoints = self.shared.endpoints();
        if endpoints.iter().any(|p| !p.is_started()) {
            return None;
        }
        endpoints.iter().map(|p| p.position()).min()
    }

    /// Saves the positions once a second (on a thread of its own) or, when
    /// `now`, at once on this thread after any save in progress.
    fn checkpoint(&mut self, now: bool) {
        if self
            .saving
            .as_ref()
            .is_some_and(|s| now || s.thread.is_finished())
        {
            self.finish_saving();
        }
        if self.saving.is_some() || (!now && self.saved_at.elapsed() < CHECKPOINT_EVERY) {
            return;
        }
        let endpoints = self.shared.endpoints().clone();
        if endpoints.iter().any(|p| !p.is_started()) {
            return;
        }
        let positions: Positions = endpoints
            .iter()
            .map(|p| (p.key.clone(), p.position()))
            .collect();
        if positions == self.saved {
            return;
        }
        self.saved_at = Instant::now();
        if !now {
            let dir = self.shared.dir.clone();
            let to_save = positions.clone();
            let spawned = std::thread::Builder::new()
                .name("queue-checkpoint".into())
                .spawn(move || save_positions(&dir, &to_save));
            if let Ok(thread) = spawned {
                self.saving = Some(Saving { positions, thread });
                return;
            }
        }
        let result = save_positions(&self.shared.dir, &positions);
        self.saved(positions, result);
    }

    fn finish_saving(&mut self) {
        if let Some(Saving { positions, thread }) = self.saving.take() {
            let result = thread.join().unwrap_or_else(|_| {
                Err(StorageError::Write("the checkpoint thread panicked".into()))
            });
            self.saved(positions, result);
        }
    }

    fn saved(&mut self, positions: Positions, result: Result<(), StorageError>) {
        match result {
            Ok(()) => self.saved = positions,
            Err(e) => {
                tracing::warn!(component_id = %self.shared.component_id, error = %e, "could not checkpoint queue positions");
            }
        }
    }

    fn publish_gauges(&mut self, log: &Control<'_>) {
        let settings = self.shared.settings.load();
        let disk = log.disk_bytes();
        let m = &self.shared.metrics;
        m.size_bytes.set(disk as i64);
        m.max_size_bytes.set(settings.max_size as i64);
        let now = log.now_nanos();
        for p in self.shared.endpoints().iter() {
            p.publish_gauges(now);
        }
        let ratio = disk as f64 / settings.max_size.max(1) as f64;
        if ratio > 0.9 && !self.warned_full {
            self.warned_full = true;
            tracing::warn!(component_id = %self.shared.component_id, disk_bytes = disk, max_size = settings.max_size, "queue is over 90% of max_size");
        } else if ratio < 0.8 {
            self.warned_full = false;
        }
    }
}

impl Owner for QueueOwner {
    fn admit(&mut self, bytes: u64, log: &mut Control<'_>) -> Result<(), StorageError> {
        let settings = self.shared.settings.load_full();
        if bytes + log.magic_len() > settings.max_size {
            return Err(StorageError::Refused(format!(
                "a request of {bytes} bytes does not fit the queue's max_size of {} bytes",
                settings.max_size
            )));
        }
        if log.disk_bytes() + bytes > settings.max_size {
            log.discard_spare();
            if let Some(min) = self.min_position() {
                self.reclaim(log, min, true, false);
            }
        }
        while log.disk_bytes() + bytes > settings.max_size {
            if settings.when_full == WhenFull::Reject || !self.drop_oldest(log) {
                return Err(StorageError::Refused(format!(
                    "queue is full ({} of max_size {} bytes)",
                    log.disk_bytes(),
                    settings.max_size
                )));
            }
        }
        Ok(())
    }

    fn written(&mut self, records: &[Written<'_>]) {
        let endpoints = self.shared.endpoints();
        for w in records {
            let counts = entry::counts(w.meta).unwrap_or((1, 0));
            for p in endpoints.iter() {
                p.add_pending(counts);
                p.oldest_arrival
                    .fetch_min(w.arrival_nanos, Ordering::Relaxed);
            }
        }
    }

    fn maintain(&mut self, log: &mut Control<'_>) {
        // What was delivered goes even when the checkpoint cannot be saved
        // (a full disk): a restart then resumes at the oldest remaining
        // segment, which is at least once all the same.
        self.checkpoint(log.requested());
        if let Some(min) = self.min_position() {
            // A delivered active segment is only closed early once it is
            // big enough to matter, not on every quiet second.
            let big = log
                .segments()
                .last()
                .is_some_and(|s| s.size > self.shared.segment_size / 2);
            self.reclaim(log, min, big || log.failing(), true);
        }
        self.publish_gauges(log);
    }

    fn health(&mut self, failure: Option<&str>) {
        match failure {
            Some(reason) => self.shared.health.set_unhealthy(format!(
                "queue writes are failing ({reason}); check the disk under {}",
                self.shared.dir.display()
            )),
            None => self.shared.health.set_healthy(),
        }
    }
}
