//! The segment table: what the log holds, shared between its writer and
//! its readers.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

/// One segment file as the log knows it.
#[derive(Debug, Clone)]
pub struct Segment {
    pub path: PathBuf,
    pub file: Arc<File>,
    /// Bytes readers may read: written (and synced, under
    /// [`SyncPolicy::Always`](super::SyncPolicy)) records and the magic.
    pub size: u64,
    /// Bytes the file takes: `size`, or more when it holds what a reused
    /// file held before, or damage readers never reach.
    pub file_len: u64,
    pub count: u64,
    /// Arrival of the oldest and newest record (`i64::MAX`/`i64::MIN` when
    /// empty).
    pub min_arrival: i64,
    pub max_arrival: i64,
    /// The highest id readable in the segment (`None` when empty).
    pub last_id: Option<u64>,
    /// Damaged ranges found on open: (start, the next intact record).
    pub skips: Vec<(u64, u64)>,
}

/// A summary of one segment, for an owner deciding what to delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentInfo {
    pub first_id: u64,
    /// One past the last id the segment can hold: the next segment's first
    /// id, or the next id to be assigned for the active one.
    pub end_id: u64,
    pub count: u64,
    pub size: u64,
    pub min_arrival: i64,
    pub max_arrival: i64,
    /// The highest id readable in the segment (`None` when empty). Ids
    /// between it and `end_id` belong to writes that failed.
    pub last_id: Option<u64>,
    pub active: bool,
}

#[derive(Debug, Default)]
pub(crate) struct Table {
    /// By first id, oldest first; the last one is the active segment.
    pub segments: BTreeMap<u64, Segment>,
    /// Every segment's `file_len`, and the spare file's (kept for reuse).
    pub disk_bytes: u64,
    /// The id the next record will get.
    pub next_id: u64,
}

impl Table {
    pub fn infos(&self) -> Vec<SegmentInfo> {
        let mut out: Vec<SegmentInfo> = Vec::with_capacity(self.segments.len());
        let mut iter = self.segments.iter().peekable();
        while let Some((&first, seg)) = iter.next() {
            let next = iter.peek().map(|(id, _)| **id);
            out.push(SegmentInfo {
                first_id: first,
                end_id: next.unwrap_or(self.next_id),
                count: seg.count,
                size: seg.size,
                min_arrival: seg.min_arrival,
                max_arrival: seg.max_arrival,
                last_id: seg.last_id,
                active: next.is_none(),
            });
        }
        out
    }
}

pub(crate) type SharedTable = Arc<Mutex<Table>>;

pub(crate) fn lock(t: &Mutex<Table>) -> MutexGuard<'_, Table> {
    t.lock().unwrap_or_else(|e| e.into_inner())
}
