//! Opening a log: every segment scanned in order into the table readers
//! and the writer share, damage skipped and counted, and the last
//! segment's torn tail cut off (the "Recovery" paragraph of [`super`]).

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use super::table::{self, Table};
use super::{Magic, Recovery, StorageError, Written, disk, segment};

/// The last segment's first id, its write handle and its length.
pub(super) type Active = (u64, File, u64);

/// Scans every segment into a table. With a `repair` disk, the last
/// segment's torn tail is cut off and its write handle returned.
pub(super) fn load(
    dir: &Path,
    magic: &Magic,
    repair: Option<&disk::Disk>,
    recovered: &mut dyn FnMut(Written<'_>),
) -> Result<(Table, Option<Active>, Recovery), StorageError> {
    let segments = segment::list(dir)?;
    let mut table = Table {
        next_id: 1,
        ..Table::default()
    };
    let mut active = None;
    let mut recovery = Recovery::default();
    let count = segments.len();
    // Readers find records by id, so ids must increase across segments
    // too: a record not above every id before it is damage.
    let mut last_id = None;
    for (i, (first, path)) in segments.into_iter().enumerate() {
        let last = i + 1 == count;
        let mut seg_count = 0;
        let (mut min_arrival, mut max_arrival) = (i64::MAX, i64::MIN);
        let mut max_id = None;
        let scan = segment::scan(&path, magic, last, first, last_id, |r| {
            seg_count += 1;
            min_arrival = min_arrival.min(r.head.arrival_nanos);
            max_arrival = max_arrival.max(r.head.arrival_nanos);
            max_id = Some(r.head.id);
            recovered(r.written(first));
        });
        let scan = match scan {
            Err(StorageError::Io {
                kind: std::io::ErrorKind::NotFound,
                ..
            }) => continue,
            r => r?,
        };
        recovery.corrupt += scan.corrupt;
        let (file, size, file_len) = if let Some(disk) = repair.filter(|_| last) {
            recovery.truncated += scan.torn_bytes();
            let (f, size) = segment::repair_tail(disk, &path, &scan, magic)?;
            let read = f
                .try_clone()
                .map_err(|e| StorageError::io("opening", &path, e))?;
            active = Some((first, f, size));
            (read, size, size)
        } else {
            if let Some(why) = scan.stopped.as_ref().filter(|_| scan.leftover_at.is_none()) {
                recovery.corrupt += 1;
                tracing::warn!(segment = %path.display(), reason = %why, "log segment is damaged at its end; the records after the damage are skipped");
            }
            let f = File::open(&path).map_err(|e| StorageError::io("opening", &path, e))?;
            // Readers never read past the last intact record.
            (f, scan.valid_len.max(magic.len() as u64), scan.file_len)
        };
        table.disk_bytes += file_len;
        table.next_id = table.next_id.max(first).max(max_id.map_or(0, |id| id + 1));
        last_id = last_id.max(max_id);
        table.segments.insert(
            first,
            table::Segment {
                path,
                file: Arc::new(file),
                size,
                file_len,
                count: seg_count,
                min_arrival,
                max_arrival,
                last_id: max_id,
                skips: scan.skips,
            },
        );
    }
    Ok((table, active, recovery))
}
