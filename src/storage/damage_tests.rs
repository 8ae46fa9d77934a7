//! What recovery does with a damaged directory, case by case: which
//! records come back, what is counted corrupt, what a reader returns, and
//! that the log accepts appends afterwards.
//!
//! Every case starts from the same log: nine records of 100 bytes, three to
//! a segment, in `segment-1`, `segment-4` and `segment-7` (the active one).

use std::collections::BTreeMap;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::recovery_tests::{Inert, MAGIC, open};
use super::segment::file_name;
use super::*;

/// Each record's size on disk: prefix 12, header 17, body 100.
const RECORD: u64 = 129;
const BODY_AT: u64 = 29;

async fn nine_records() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let options = LogOptions::new(MAGIC, MAGIC.len() as u64 + 3 * RECORD);
    let (log, _) = Log::open(dir.path(), options, |_| {}, Box::new(Inert)).unwrap();
    for i in 1..=9u8 {
        let body = bytes::Bytes::from(vec![i; 100]);
        let entry = Entry {
            meta: Vec::new(),
            body,
        };
        log.append(vec![entry]).await.unwrap();
    }
    let firsts: Vec<u64> = log.segments().iter().map(|s| s.first_id).collect();
    assert_eq!(firsts, [1, 4, 7]);
    dir
}

fn segment(dir: &Path, first: u64) -> PathBuf {
    dir.join(file_name(first))
}

/// Where the record with `id` starts in its segment.
fn record_at(id: u64) -> u64 {
    MAGIC.len() as u64 + (id - 1) % 3 * RECORD
}

fn flip(path: &Path, offset: u64, bit: u8) {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut byte = [0u8];
    file.read_exact_at(&mut byte, offset).unwrap();
    byte[0] ^= 1 << bit;
    file.write_all_at(&byte, offset).unwrap();
}

fn set_len(path: &Path, len: u64) {
    let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    file.set_len(len).unwrap();
}

fn append_bytes(path: &Path, bytes: &[u8]) {
    let len = std::fs::metadata(path).unwrap().len();
    let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    file.write_all_at(bytes, len).unwrap();
}

/// What a reader from `from` returns until caught up: `Some(id)` for a
/// record (its body checked), `None` for a damaged one stepped over.
fn read_all(log: &Log, from: u64) -> Vec<Option<u64>> {
    let mut cursor = log.seek(from).unwrap();
    let mut ahead = ReadAhead::default();
    let mut out = Vec::new();
    for _ in 0..100 {
        match log.read_next(&mut cursor, &mut ahead).unwrap() {
            Next::Record(r) => {
                let id = r.head().id;
                if r.body().len() == 100 {
                    assert_eq!(r.body(), vec![id as u8; 100], "body of {id}");
                }
                out.push(Some(id));
            }
            Next::Corrupt(_) => out.push(None),
            Next::CaughtUp => return out,
        }
    }
    panic!("the reader did not catch up: {out:?}")
}

struct Case {
    name: &'static str,
    damage: fn(&Path),
    recovered: &'static [u64],
    corrupt: u64,
    read: &'static [Option<u64>],
    /// The id the next append gets.
    next_id: u64,
}

const ALL: &[Option<u64>] = &[
    Some(1),
    Some(2),
    Some(3),
    Some(4),
    Some(5),
    Some(6),
    Some(7),
    Some(8),
    Some(9),
];

fn cases() -> Vec<Case> {
    vec![
        Case {
            // Sealed segments have only their headers read on open; the
            // reader's checksum finds the damage.
            name: "flipped bit in a body, sealed segment",
            damage: |d| flip(&segment(d, 4), record_at(5) + BODY_AT + 50, 2),
            recovered: &[1, 2, 3, 4, 5, 6, 7, 8, 9],
            corrupt: 0,
            read: &[
                Some(1),
                Some(2),
                Some(3),
                Some(4),
                None,
                Some(6),
                Some(7),
                Some(8),
                Some(9),
            ],
            next_id: 10,
        },
        Case {
            name: "flipped bit in a body, active segment",
            damage: |d| flip(&segment(d, 7), record_at(8) + BODY_AT + 50, 2),
            recovered: &[1, 2, 3, 4, 5, 6, 7, 9],
            corrupt: 1,
            read: &[
                Some(1),
                Some(2),
                Some(3),
                Some(4),
                Some(5),
                Some(6),
                Some(7),
                None,
                Some(9),
            ],
            next_id: 10,
        },
        Case {
            // The top bit of the id: a header that still decodes.
            name: "flipped bit in a header's id, sealed segment",
            damage: |d| flip(&segment(d, 4), record_at(5) + 13 + 7, 7),
            recovered: &[1, 2, 3, 4, 6, 7, 8, 9],
            corrupt: 1,
            read: &[
                Some(1),
                Some(2),
                Some(3),
                Some(4),
                None,
                Some(6),
                Some(7),
                Some(8),
                Some(9),
            ],
            next_id: 10,
        },
        Case {
            name: "flipped bit in a header's version, active segment",
            damage: |d| flip(&segment(d, 7), record_at(8) + 12, 1),
            recovered: &[1, 2, 3, 4, 5, 6, 7, 9],
            corrupt: 1,
            read: &[
                Some(1),
                Some(2),
                Some(3),
                Some(4),
                Some(5),
                Some(6),
                Some(7),
                None,
                Some(9),
            ],
            next_id: 10,
        },
        Case {
            // The length grows by 8: the header still reads, so the scan
            // keeps the record (the reader's checksum then fails it, and
            // steps over the bytes up to the next record as a second
            // damaged stretch).
            name: "flipped bit in a length, sealed segment",
            damage: |d| flip(&segment(d, 4), record_at(5), 3),
            recovered: &[1, 2, 3, 4, 5, 6, 7, 8, 9],
            corrupt: 1,
            read: &[
                Some(1),
                Some(2),
                Some(3),
                Some(4),
                None,
                None,
                Some(6),
                Some(7),
                Some(8),
                Some(9),
            ],
            next_id: 10,
        },
        Case {
            name: "flipped bit in a length, active segment",
            damage: |d| flip(&segment(d, 7), record_at(8), 3),
            recovered: &[1, 2, 3, 4, 5, 6, 7, 9],
            corrupt: 1,
            read: &[
                Some(1),
                Some(2),
                Some(3),
                Some(4),
                Some(5),
                Some(6),
                Some(7),
                None,
                Some(9),
            ],
            next_id: 10,
        },
        Case {
            // A torn write: cut off, not counted; the lost ids are given
            // again.
            name: "truncated tail mid-record",
            damage: |d| set_len(&segment(d, 7), record_at(8) + 60),
            recovered: &[1, 2, 3, 4, 5, 6, 7],
            corrupt: 0,
            read: &ALL[..7],
            next_id: 8,
        },
        Case {
            name: "zero-filled tail",
            damage: |d| append_bytes(&segment(d, 7), &[0; 300]),
            recovered: &[1, 2, 3, 4, 5, 6, 7, 8, 9],
            corrupt: 0,
            read: ALL,
            next_id: 10,
        },
        Case {
            // Cut off too, after being saved beside the segment.
            name: "appended garbage",
            damage: |d| append_bytes(&segment(d, 7), b"\x17garbage that is no record at all"),
            recovered: &[1, 2, 3, 4, 5, 6, 7, 8, 9],
            corrupt: 0,
            read: ALL,
            next_id: 10,
        },
        Case {
            // Indistinguishable from ids consumed by failed writes: not
            // counted.
            name: "a missing segment in the middle",
            damage: |d| std::fs::remove_file(segment(d, 4)).unwrap(),
            recovered: &[1, 2, 3, 7, 8, 9],
            corrupt: 0,
            read: &[Some(1), Some(2), Some(3), Some(7), Some(8), Some(9)],
            next_id: 10,
        },
        Case {
            name: "an empty segment file in the middle",
            damage: |d| set_len(&segment(d, 4), 0),
            recovered: &[1, 2, 3, 7, 8, 9],
            corrupt: 1,
            read: &[Some(1), Some(2), Some(3), Some(7), Some(8), Some(9)],
            next_id: 10,
        },
        Case {
            // Its name keeps the next id at 7.
            name: "an empty last segment file",
            damage: |d| set_len(&segment(d, 7), 0),
            recovered: &[1, 2, 3, 4, 5, 6],
            corrupt: 0,
            read: &ALL[..6],
            next_id: 7,
        },
    ]
}

#[tokio::test]
async fn recovery_of_each_kind_of_damage() {
    for case in cases() {
        let dir = nine_records().await;
        (case.damage)(dir.path());
        let (log, recovered, recovery) = open(dir.path());
        let name = case.name;
        assert_eq!(recovered, case.recovered, "{name}: recovered");
        assert_eq!(recovery.corrupt, case.corrupt, "{name}: corrupt");
        assert_eq!(read_all(&log, 0), case.read, "{name}: read");
        let entry = Entry {
            meta: Vec::new(),
            body: bytes::Bytes::from_static(b"after"),
        };
        let next = log.append(vec![entry]).await.unwrap();
        assert_eq!(next.start, case.next_id, "{name}: next id");
        let read = read_all(&log, case.next_id);
        assert_eq!(read, [Some(case.next_id)], "{name}: the new record");
        drop(log);
        // And again: the repaired directory opens the same way.
        let (_, again, recovery) = open(dir.path());
        assert!(
            again.ends_with(&[case.next_id]),
            "{name}: reopened {again:?}"
        );
        assert_eq!(recovery.truncated, 0, "{name}: repaired for good");
    }
}

/// What a reader placed by a checkpointed position reads.
#[tokio::test]
async fn positions_ahead_of_behind_and_beside_the_data() {
    let positions = |dir: &Path, id: u64| {
        save_positions(dir, &BTreeMap::from([("reader".to_owned(), id)])).unwrap();
        load_positions(dir)["reader"]
    };

    // Past the end (the data it counted was lost): the reader waits at
    // the end and reads what comes next, whose id is below the position.
    let dir = nine_records().await;
    let at = positions(dir.path(), 50);
    let (log, _, _) = open(dir.path());
    let mut cursor = log.seek(at).unwrap();
    let mut ahead = ReadAhead::default();
    assert!(matches!(
        log.read_next(&mut cursor, &mut ahead),
        Ok(Next::CaughtUp)
    ));
    let entry = Entry {
        meta: Vec::new(),
        body: bytes::Bytes::from_static(b"after"),
    };
    assert_eq!(log.append(vec![entry]).await.unwrap(), 10..11);
    let Ok(Next::Record(r)) = log.read_next(&mut cursor, &mut ahead) else {
        panic!("the new record is not read")
    };
    assert_eq!(r.head().id, 10);
    drop(log);

    // Into a deleted segment: the reader starts at the next record there is.
    let dir = nine_records().await;
    std::fs::remove_file(segment(dir.path(), 4)).unwrap();
    let at = positions(dir.path(), 5);
    let (log, _, _) = open(dir.path());
    assert_eq!(read_all(&log, at), [Some(7), Some(8), Some(9)]);
    drop(log);

    // Older than the oldest segment: it starts at the oldest record.
    let dir = nine_records().await;
    std::fs::remove_file(segment(dir.path(), 1)).unwrap();
    let at = positions(dir.path(), 1);
    let (log, _, _) = open(dir.path());
    assert_eq!(read_all(&log, at), ALL[3..]);
}

#[test]
fn a_damaged_positions_file_keeps_the_lines_it_can_read() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("POSITIONS");
    std::fs::write(
        &file,
        b"\xff\xfe\x00 binary\n7 reader\n12\nx other\n3 r\xc3",
    )
    .unwrap();
    let loaded = load_positions(dir.path());
    assert_eq!(loaded.get("reader"), Some(&7));
    assert_eq!(loaded.len(), 2, "{loaded:?}");
    // Cut short: the last line's name is cut too, so that reader starts
    // from the oldest record (at least once, nothing lost).
    std::fs::write(&file, b"7 reader\n9 rea").unwrap();
    let loaded = load_positions(dir.path());
    assert_eq!(loaded.get("reader"), Some(&7));
    assert_eq!(loaded.get("rea"), Some(&9));
}
