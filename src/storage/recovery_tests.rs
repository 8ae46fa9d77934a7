//! Recovery of segments whose record ids are out of order.

use std::path::Path;

use super::record::encode;
use super::segment::file_name;
use super::*;

pub(super) const MAGIC: Magic = *b"TESTLOG\x01";

pub(super) fn write_segment(dir: &Path, first_id: u64, ids: &[u64]) {
    let mut bytes = MAGIC.to_vec();
    for &id in ids {
        encode(id, 1_700_000_000_000_000_000, b"meta", b"body", &mut bytes).unwrap();
    }
    std::fs::write(dir.join(file_name(first_id)), bytes).unwrap();
}

pub(super) struct Inert;

impl Owner for Inert {
    fn written(&mut self, _: &[Written<'_>]) {}
    fn maintain(&mut self, _: &mut Control<'_>) {}
    fn health(&mut self, _: Option<&str>) {}
}

pub(super) fn open(dir: &Path) -> (Log, Vec<u64>, Recovery) {
    let mut ids = Vec::new();
    let (log, recovery) = Log::open(
        dir,
        LogOptions::new(MAGIC, 1 << 20),
        |w| ids.push(w.id),
        Box::new(Inert),
    )
    .unwrap();
    (log, ids, recovery)
}

/// The `archive_recovery` fuzz finding, carried over to the log (see
/// docs/fuzzing.md): ids were
/// checked within a segment but not across segments, so a later segment
/// could hand over ids at or below an earlier one's (readers find records
/// by id), and an id of `u64::MAX` overflowed the next id.
#[tokio::test]
async fn ids_must_increase_across_segments_and_stop_below_the_maximum() {
    let dir = tempfile::tempdir().unwrap();
    write_segment(dir.path(), 1, &[1, 2, 9]);
    write_segment(dir.path(), 3, &[5, 9, 11]);
    let (log, ids, recovery) = open(dir.path());
    assert_eq!(ids, [1, 2, 9, 11]);
    // 5 and 9 are one stretch of damage: the scan resumes at 11.
    assert_eq!(recovery.corrupt, 1);
    let appended = log
        .append(vec![Entry {
            meta: Vec::new(),
            body: bytes::Bytes::from_static(b"new"),
        }])
        .await
        .unwrap();
    assert_eq!(appended, 12..13);
    drop(log);

    let dir = tempfile::tempdir().unwrap();
    write_segment(dir.path(), 1, &[3, u64::MAX]);
    let (log, ids, _) = open(dir.path());
    assert_eq!(ids, [3]);
    assert_eq!(log.next_id(), 4);
}

/// A reused segment file (`Control::retire_oldest`) still holds what it
/// held before past the new records: intact records whose ids are below
/// the segment's name. The scan ends there, without counting damage, and
/// the active segment is cut back to its own records.
#[tokio::test]
async fn records_below_a_segments_name_end_it_as_a_reused_files_leftovers() {
    let dir = tempfile::tempdir().unwrap();
    write_segment(dir.path(), 1, &[1, 2]);
    write_segment(dir.path(), 3, &[3, 4, 1, 2]);
    write_segment(dir.path(), 5, &[5, 6, 3, 4]);
    let (log, ids, recovery) = open(dir.path());
    assert_eq!(ids, [1, 2, 3, 4, 5, 6]);
    assert_eq!(recovery, Recovery::default());
    assert_eq!(log.next_id(), 7);
    let active = std::fs::metadata(dir.path().join(file_name(5))).unwrap();
    let mut expected = MAGIC.to_vec();
    for id in [5, 6] {
        encode(
            id,
            1_700_000_000_000_000_000,
            b"meta",
            b"body",
            &mut expected,
        )
        .unwrap();
    }
    assert_eq!(active.len(), expected.len() as u64);
    // The sealed one keeps its leftovers, which readers never reach.
    let mut cursor = log.seek(1).unwrap();
    let mut ahead = ReadAhead::default();
    let mut read = Vec::new();
    while let Next::Record(r) = log.read_next(&mut cursor, &mut ahead).unwrap() {
        read.push(r.head().id);
    }
    assert_eq!(read, [1, 2, 3, 4, 5, 6]);
}
