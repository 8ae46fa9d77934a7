//! What an owner's hooks may do with the writer: look at the segments,
//! scan and delete the oldest one.

use std::sync::Arc;

use super::Core;
use crate::storage::Written;
use crate::storage::record;
use crate::storage::segment;
use crate::storage::table::{SegmentInfo, lock};
use crate::telemetry::civil_time::unix_nanos;

/// The part of the writer an owner's hooks may act on.
pub struct Control<'a> {
    pub(super) w: &'a mut Core,
}

impl Control<'_> {
    /// Every segment, oldest first.
    pub fn segments(&self) -> Vec<SegmentInfo> {
        lock(&self.w.table).infos()
    }

    pub fn disk_bytes(&self) -> u64 {
        lock(&self.w.table).disk_bytes
    }

    pub fn now_nanos(&self) -> i64 {
        unix_nanos((self.w.cfg.clock)())
    }

    /// Whether the last write failed (the disk may be full).
    pub fn failing(&self) -> bool {
        self.w.failing
    }

    /// Whether this maintenance was asked for ([`super::Log::maintain`],
    /// e.g. before closing) rather than run after a batch or on a tick:
    /// work an owner spaces out (checkpoints) should be done now.
    pub fn requested(&self) -> bool {
        self.w.requested
    }

    /// The size of an empty segment.
    pub fn magic_len(&self) -> u64 {
        self.w.cfg.magic.len() as u64
    }

    /// Calls `each` for every record of the oldest segment (headers only).
    pub fn scan_oldest(&self, mut each: impl FnMut(Written<'_>)) {
        let Some((first, path)) = lock(&self.w.table)
            .segments
            .iter()
            .next()
            .map(|(id, s)| (*id, s.path.clone()))
        else {
            return;
        };
        let scanned = segment::scan(&path, &self.w.cfg.magic, false, first, None, |r| {
            each(r.written(first))
        });
        if let Err(e) = scanned {
            tracing::warn!(segment = %path.display(), error = %e, "could not read a segment before deleting it");
        }
    }

    /// Deletes the oldest segment (closing the active one first when it is
    /// the oldest and holds records). `None` when only an empty active
    /// segment is left, a new segment could not be started, or the file
    /// could not be deleted.
    pub fn drop_oldest(&mut self) -> Option<SegmentInfo> {
        self.remove_oldest(false)
    }

    /// As [`Control::drop_oldest`], for a segment whose records are done
    /// with, not to make room: its file may be kept, still counted in
    /// [`Control::disk_bytes`], to become a later segment (writing into
    /// blocks written before costs the disk less; docs/performance.md,
    /// "Segment files reused"). One file at most is kept, never while the
    /// disk is failing, and never one a reader still has open.
    pub fn retire_oldest(&mut self) -> Option<SegmentInfo> {
        self.remove_oldest(true)
    }

    /// Deletes the file kept by [`Control::retire_oldest`], if any; the
    /// bytes freed. For an owner that needs room.
    pub fn discard_spare(&mut self) -> u64 {
        self.w.discard_spare()
    }

    fn remove_oldest(&mut self, reuse: bool) -> Option<SegmentInfo> {
        if self.w.failing {
            // Every byte may count on a full disk.
            self.w.discard_spare();
        }
        let oldest = *lock(&self.w.table).infos().first()?;
        // A segment sealed after a failed write is never written again, so
        // it can go without a new one being started first (which a full
        // disk may not allow); the next batch starts one.
        if oldest.active && self.w.active.is_some() {
            if oldest.count == 0 {
                return None;
            }
            if let Err(e) = self.w.rotate() {
                tracing::warn!(error = %e, "could not start a new segment to delete the old one");
                return None;
            }
        }
        let mut table = lock(&self.w.table);
        let info = *table.infos().first()?;
        if info.active {
            // The last segment, sealed: with no file left named by the next
            // id, ids would start again at 1 after a restart, below the
            // owner's checkpointed positions (the queue would take the new
            // records for delivered ones). An empty file keeps the name; it
            // needs no data block, so a full disk allows it. The next batch
            // starts its segment there.
            // (A segment named by the next id holds no record: it stays.)
            if info.first_id == table.next_id {
                return None;
            }
            let keep = self.w.cfg.dir.join(segment::file_name(table.next_id));
            if let Err(e) = self.w.cfg.disk.create(&keep) {
                tracing::warn!(segment = %keep.display(), error = %e, "could not keep the next id on disk; the last segment stays");
                return None;
            }
        }
        let (first, seg) = table.segments.pop_first()?;
        // Out of the table, the file gets no new readers; one that still
        // has it open would read what a new segment writes over it.
        // A file longer than a segment (segments were longer when it was
        // written: a smaller `max_size`) is not kept: reuse does not cut
        // files back (`segment::retire`).
        let keep = (reuse
            && !self.w.failing
            && self.w.spare.is_none()
            && seg.size >= self.w.cfg.segment_size / 2
            && seg.file_len <= self.w.cfg.segment_size + record::MIN_RECORD
            && Arc::strong_count(&seg.file) == 1)
            .then_some(seg.size);
        // Unlinking (or renaming) needs no free space, so a full disk can
        // still be emptied.
        let (disk, dir) = (&self.w.cfg.disk, &self.w.cfg.dir);
        let magic = &self.w.cfg.magic;
        let spare = match segment::retire(disk, dir, &seg.path, keep, magic) {
            Ok(spare) => spare,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                tracing::warn!(segment = %seg.path.display(), error = %e, "could not delete a log segment; it stays");
                table.segments.insert(first, seg);
                return None;
            }
        };
        table.disk_bytes -= seg.file_len;
        table.disk_bytes += spare.as_ref().map_or(0, |s| s.len);
        drop(table);
        if spare.is_some() {
            self.w.spare = spare;
        } else if !self.w.failing {
            self.w.closer.close(seg.file);
        }
        if let Err(e) = segment::sync_dir(&self.w.cfg.disk, &self.w.cfg.dir) {
            tracing::warn!(error = %e, "could not sync the log directory after a delete");
        }
        Some(info)
    }
}
