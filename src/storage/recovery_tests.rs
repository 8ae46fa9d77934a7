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
    write_segment(dir.path(), 10, &[5, 9, 11]);
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
