//! The writer's segments: starting one (in a reused file when there is
//! one), reserving blocks ahead, cutting back after a failure, and the
//! spare file.

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;

use super::syncer::observed_sync;
use super::{ALLOCATE_AHEAD, Core};
use crate::storage::StorageError;
use crate::storage::segment;
use crate::storage::table::lock;

impl Core {
    /// Reserves the active segment's blocks up to [`ALLOCATE_AHEAD`] past
    /// `end`, when `end` is past what is reserved.
    pub(super) fn allocate_ahead(&mut self, end: u64) {
        let Some(file) = &self.active else { return };
        let from = self.allocated_to.max(self.active_size);
        let to = (end + ALLOCATE_AHEAD).min(self.cfg.segment_size);
        if end <= self.allocated_to || to <= from {
            return;
        }
        self.allocated_to = match self.cfg.disk.allocate(file, from, to - from) {
            Ok(()) => to,
            Err(e) => {
                tracing::debug!(error = %e, segment = self.active_id, "cannot reserve blocks ahead in a log segment; writing without");
                u64::MAX
            }
        };
    }

    /// Closes the active segment and starts a new one named by the next id.
    /// When that fails the old segment is sealed all the same: a file named
    /// by the next id may exist now, and records written into the old
    /// segment under ids at or above that name would be looked for in the
    /// wrong segment after a restart (readers find an id by segment names).
    pub(super) fn rotate(&mut self) -> Result<(), StorageError> {
        let started = self.start_segment();
        if started.is_err() {
            self.active = None;
        }
        started
    }

    fn start_segment(&mut self) -> Result<(), StorageError> {
        if self.dirty_since.take().is_some()
            && let Some(old) = self.active.take()
        {
            // The old segment's last writes are synced in the background
            // (`SyncPolicy::Every`), before any sync of the next one.
            if let Err(old) = self.syncer.start(self.active_id, old) {
                observed_sync(&self.cfg.disk, self.cfg.fsync_observer.as_ref(), &old)
                    .map_err(|e| StorageError::Write(format!("fsync: {e}")))?;
            }
        }
        let next_id = lock(&self.table).next_id;
        let size = self.cfg.magic.len() as u64;
        let (path, file, file_len) = match self.reuse_spare(next_id) {
            Some(reused) => reused,
            None => {
                let (path, file) =
                    segment::create(&self.cfg.disk, &self.cfg.dir, next_id, &self.cfg.magic)?;
                lock(&self.table).disk_bytes += size;
                (path, file, size)
            }
        };
        let seg = crate::storage::new_segment(path, &file, size, file_len)?;
        lock(&self.table).segments.insert(next_id, seg);
        self.active = Some(file);
        self.active_id = next_id;
        self.active_size = size;
        // A reused file's blocks are there already.
        self.allocated_to = file_len;
        Ok(())
    }

    /// The spare file made the segment named `first_id`: its path, handle
    /// and length. `None` when there is no spare or reusing it failed (it
    /// is then deleted, and a new file is created instead).
    fn reuse_spare(&mut self, first_id: u64) -> Option<(PathBuf, File, u64)> {
        let spare = self.spare.take()?;
        let (disk, dir) = (&self.cfg.disk, &self.cfg.dir);
        match segment::reuse(disk, dir, first_id) {
            Ok(path) => Some((path, spare.file, spare.len)),
            Err(e) => {
                tracing::warn!(error = %e, "could not reuse a delivered segment's file; creating a new one");
                lock(&self.table).disk_bytes -= spare.len;
                // Renamed already, it is written over by the new segment
                // (a file named by the next id must stay: it keeps the id).
                let _ = segment::discard_spare(disk, dir);
                let _ = segment::sync_dir(disk, dir);
                None
            }
        }
    }

    /// The active segment's file was cut back to `len` (a failed write).
    pub(super) fn cut_to(&mut self, len: u64) {
        let mut table = lock(&self.table);
        if let Some(seg) = table.segments.get_mut(&self.active_id)
            && seg.file_len > len
        {
            let cut = seg.file_len - len;
            seg.file_len = len;
            table.disk_bytes -= cut;
        }
        self.allocated_to = self.allocated_to.min(len);
    }

    /// Deletes the spare file; the bytes freed.
    pub(super) fn discard_spare(&mut self) -> u64 {
        let Some(spare) = self.spare.take() else {
            return 0;
        };
        if let Err(e) = segment::discard_spare(&self.cfg.disk, &self.cfg.dir) {
            tracing::warn!(error = %e, "could not delete the log's spare segment file; it stays");
            self.spare = Some(spare);
            return 0;
        }
        lock(&self.table).disk_bytes -= spare.len;
        if !self.failing {
            self.closer.close(Arc::new(spare.file));
        }
        if let Err(e) = segment::sync_dir(&self.cfg.disk, &self.cfg.dir) {
            tracing::warn!(error = %e, "could not sync the log directory after a delete");
        }
        spare.len
    }
}
