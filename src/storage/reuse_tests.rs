//! Segment files reused (`Control::retire_oldest`): the new segment is
//! written into a delivered one's file, and what that file held before is
//! never read back, counted as damage or saved aside.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use super::disk::{Disk, Fault, Faults, Op};
use super::recovery_tests::{Inert, MAGIC};
use super::segment::file_name;
use super::*;

const SEGMENT_SIZE: u64 = 4096;

/// Retires every sealed segment below `delivered`, as the write queue does.
struct Retire {
    delivered: Arc<AtomicU64>,
}

impl Owner for Retire {
    fn written(&mut self, _: &[Written<'_>]) {}
    fn maintain(&mut self, log: &mut Control<'_>) {
        let delivered = self.delivered.load(Ordering::Relaxed);
        while log
            .segments()
            .first()
            .is_some_and(|s| !s.active && s.last_id.is_some_and(|l| l < delivered))
            && log.retire_oldest().is_some()
        {}
    }
    fn health(&mut self, _: Option<&str>) {}
}

fn body(id: u64) -> bytes::Bytes {
    bytes::Bytes::from(vec![id as u8; 900])
}

async fn append(log: &Log, id: u64) {
    let entry = Entry {
        meta: Vec::new(),
        body: body(id),
    };
    assert_eq!(log.append(vec![entry]).await.unwrap(), id..id + 1);
}

fn inode(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().ino()
}

/// Bytes of every file in `dir` but the lock.
fn du(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name() != "LOCK")
        .map(|e| e.metadata().unwrap().len())
        .sum()
}

fn read_all(log: &Log, from: u64) -> Vec<u64> {
    let mut cursor = log.seek(from).unwrap();
    let mut ahead = ReadAhead::default();
    let mut ids = Vec::new();
    loop {
        match log.read_next(&mut cursor, &mut ahead).unwrap() {
            Next::Record(r) => {
                assert_eq!(r.body(), body(r.head().id));
                ids.push(r.head().id);
            }
            Next::Corrupt(why) => panic!("a reader read damage: {why}"),
            Next::CaughtUp => return ids,
        }
    }
}

/// Opens `dir` with a reusing owner; `delivered` moves it.
fn open_retiring(dir: &Path, faults: &Arc<Faults>) -> (Log, Arc<AtomicU64>) {
    let delivered = Arc::new(AtomicU64::new(0));
    let mut options = LogOptions::new(MAGIC, SEGMENT_SIZE);
    options.disk = Disk::failing_with(Arc::clone(faults));
    let owner = Retire {
        delivered: Arc::clone(&delivered),
    };
    let log = Log::open(dir, options, |_| {}, Box::new(owner)).unwrap().0;
    (log, delivered)
}

fn reopen(dir: &Path) -> (Log, Vec<u64>, Recovery) {
    let mut ids = Vec::new();
    let (log, recovery) = Log::open(
        dir,
        LogOptions::new(MAGIC, SEGMENT_SIZE),
        |w| ids.push(w.id),
        Box::new(Inert),
    )
    .unwrap();
    (log, ids, recovery)
}

/// Records 1 to 9 in three segments, 1 to 4 delivered and the first
/// segment's file retired, then records until the next segment starts in
/// it; the open log and the next id.
async fn write_into_a_reused_file(dir: &Path, faults: &Arc<Faults>) -> (Log, u64) {
    let (log, delivered) = open_retiring(dir, faults);
    for id in 1..=9 {
        append(&log, id).await;
    }
    delivered.store(5, Ordering::Relaxed);
    log.maintain().await;
    let mut id = 10;
    while dir.join("spare.dat").exists() {
        append(&log, id).await;
        id += 1;
    }
    (log, id)
}

fn damaged_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("damaged"))
        .collect()
}

#[tokio::test]
async fn a_delivered_segments_file_becomes_a_later_segment_and_its_leftovers_are_never_read() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Arc::new(Faults::default());
    let (log, delivered) = open_retiring(dir.path(), &faults);
    // Four records of 900 bytes fill a segment of 4 KiB.
    for id in 1..=9 {
        append(&log, id).await;
    }
    let first = inode(&dir.path().join(file_name(1)));
    delivered.store(5, Ordering::Relaxed);
    log.maintain().await;
    assert!(!dir.path().join(file_name(1)).exists());
    assert_eq!(inode(&dir.path().join("spare.dat")), first);
    assert_eq!(log.disk_bytes(), du(dir.path()));
    // The next segment starts in it.
    let mut id = 10;
    while dir.path().join("spare.dat").exists() {
        append(&log, id).await;
        id += 1;
    }
    let reused = *log.segments().last().unwrap();
    assert_eq!(inode(&dir.path().join(file_name(reused.first_id))), first);
    assert_eq!(log.disk_bytes(), du(dir.path()));
    // One record in it, the earlier records after it.
    assert_eq!(reused.count, 1);
    assert_eq!(read_all(&log, 5), (5..id).collect::<Vec<_>>());
    drop(log);

    let (log, recovered, recovery) = reopen(dir.path());
    assert_eq!(recovered, (5..id).collect::<Vec<_>>());
    assert_eq!(recovery.corrupt, 0);
    assert!(damaged_files(dir.path()).is_empty());
    assert_eq!(read_all(&log, 5), (5..id).collect::<Vec<_>>());
    assert_eq!(log.next_id(), id);
    // The active segment was cut back to its own record.
    let active = dir.path().join(file_name(reused.first_id));
    assert_eq!(std::fs::metadata(active).unwrap().len(), reused.size);
    assert_eq!(log.disk_bytes(), du(dir.path()));
}

/// A write cut short in a reused file leaves a torn record with the file's
/// earlier content after it, not the end of the file: the scan finds the
/// end all the same, and nothing of it is read back or counted.
#[tokio::test]
async fn a_torn_write_into_a_reused_file_is_cut_off_without_counting_damage() {
    for permille in [0, 10, 400, 990] {
        let dir = tempfile::tempdir().unwrap();
        let faults = Arc::new(Faults::default());
        let (log, id) = write_into_a_reused_file(dir.path(), &faults).await;
        // Part of the next batch reaches the file, and the process dies
        // before cutting it off (the cut fails).
        faults.arm(Op::Write, Fault::Short { permille });
        faults.arm(Op::SetLen, Fault::Errno(libc::EIO));
        let torn = Entry {
            meta: Vec::new(),
            body: bytes::Bytes::from(vec![0xee; 2000]),
        };
        assert!(log.append(vec![torn]).await.is_err());
        drop(log);

        let (log, recovered, recovery) = reopen(dir.path());
        assert_eq!(
            recovered,
            (5..id).collect::<Vec<_>>(),
            "{permille}‰ written"
        );
        assert_eq!(recovery.corrupt, 0, "{permille}‰ written");
        assert!(damaged_files(dir.path()).is_empty(), "{permille}‰ written");
        assert_eq!(read_all(&log, 5), (5..id).collect::<Vec<_>>());
    }
}

/// A sealed segment in a reused file is checked record by record on open
/// (while the file ends with its sentinel), so a torn record the writer
/// could not cut off is not trusted on its header alone.
#[tokio::test]
async fn a_torn_record_in_a_sealed_reused_segment_is_found_by_its_checksum() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Arc::new(Faults::default());
    let (log, id) = write_into_a_reused_file(dir.path(), &faults).await;
    // Half a record written, not cut off: the segment is sealed, and the
    // next record goes into a new one.
    faults.arm(Op::Write, Fault::Short { permille: 700 });
    faults.arm(Op::SetLen, Fault::Errno(libc::EIO));
    let torn = Entry {
        meta: Vec::new(),
        body: bytes::Bytes::from(vec![0xee; 2000]),
    };
    assert!(log.append(vec![torn]).await.is_err());
    let skipped = id;
    append(&log, id + 1).await;
    drop(log);

    let (log, recovered, recovery) = reopen(dir.path());
    let mut expected: Vec<u64> = (5..skipped).collect();
    expected.push(skipped + 1);
    assert_eq!(recovered, expected);
    assert_eq!(recovery.corrupt, 0);
    assert_eq!(read_all(&log, 5), expected);
}

/// A spare a run left behind may not have its sentinel yet (the process
/// died between the rename and the sentinel's sync): it is deleted on open,
/// never made a segment.
#[tokio::test]
async fn a_spare_file_found_on_open_is_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Arc::new(Faults::default());
    let (log, delivered) = open_retiring(dir.path(), &faults);
    for id in 1..=9 {
        append(&log, id).await;
    }
    delivered.store(5, Ordering::Relaxed);
    log.maintain().await;
    assert!(dir.path().join("spare.dat").exists());
    drop(log);
    let (log, _) = open_retiring(dir.path(), &faults);
    assert!(!dir.path().join("spare.dat").exists());
    assert_eq!(log.disk_bytes(), du(dir.path()));
    assert_eq!(read_all(&log, 5), (5..=9).collect::<Vec<_>>());
}

/// Appends a record of `size` bytes (each byte its id) with the next id.
async fn append_sized(log: &Log, id: &mut u64, size: usize) {
    let entry = Entry {
        meta: Vec::new(),
        body: bytes::Bytes::from(vec![*id as u8; size]),
    };
    assert_eq!(log.append(vec![entry]).await.unwrap(), *id..*id + 1);
    *id += 1;
}

/// Every record from `from` on: (id, body length), each byte checked.
fn read_sized(log: &Log, from: u64) -> Vec<(u64, usize)> {
    let mut cursor = log.seek(from).unwrap();
    let mut ahead = ReadAhead::default();
    let mut found = Vec::new();
    loop {
        match log.read_next(&mut cursor, &mut ahead).unwrap() {
            Next::Record(r) => {
                let id = r.head().id;
                assert!(r.body().iter().all(|&b| b == id as u8), "record {id}");
                found.push((id, r.body().len()));
            }
            Next::Corrupt(why) => panic!("a reader read damage: {why}"),
            Next::CaughtUp => return found,
        }
    }
}

/// A file is not cut back when it is retired again after a use shorter
/// than an earlier one: past its new sentinel it still holds the earlier
/// use's tail and sentinel. A third use that ends in that tail, whole or
/// torn, reads back its own records and nothing else, and counts no damage.
#[tokio::test]
async fn a_file_reused_for_fewer_bytes_than_before_keeps_its_older_tail_unread() {
    for torn in [None, Some(0), Some(500), Some(990)] {
        let dir = tempfile::tempdir().unwrap();
        let faults = Arc::new(Faults::default());
        let (log, delivered) = open_retiring(dir.path(), &faults);
        let mut id = 1;
        let mut sizes = Vec::new();
        // Four records of 900 bytes a segment.
        for _ in 1..=9 {
            sizes.push((id, 900));
            append_sized(&log, &mut id, 900).await;
        }
        let file = inode(&dir.path().join(file_name(1)));
        let first_use = std::fs::metadata(dir.path().join(file_name(1)))
            .unwrap()
            .len();
        // Each retire lets the next segment start in the retired file;
        // records of 1700 bytes fill a segment two at a time, so the file
        // that held 1-4 holds less the second time.
        let retire_and_refill = async |upto: u64, id: &mut u64, sizes: &mut Vec<_>| {
            delivered.store(upto, Ordering::Relaxed);
            log.maintain().await;
            while dir.path().join("spare.dat").exists() {
                sizes.push((*id, 1700));
                append_sized(&log, id, 1700).await;
            }
        };
        retire_and_refill(5, &mut id, &mut sizes).await;
        let second = log.segments().last().unwrap().first_id;
        assert_eq!(inode(&dir.path().join(file_name(second))), file);
        // Fill it, then retire the segments before it (each one's file
        // becomes a later segment), then it.
        while log.segments().last().unwrap().first_id == second {
            sizes.push((id, 1700));
            append_sized(&log, &mut id, 1700).await;
        }
        let second_use = log
            .segments()
            .iter()
            .find(|s| s.first_id == second)
            .unwrap()
            .size;
        assert!(
            second_use + record::MIN_RECORD < first_use,
            "{second_use} {first_use}"
        );
        for s in log
            .segments()
            .iter()
            .filter(|s| s.first_id <= second)
            .skip(1)
        {
            let upto = s.first_id;
            retire_and_refill(upto, &mut id, &mut sizes).await;
        }
        delivered.store(second + 2, Ordering::Relaxed);
        log.maintain().await;
        assert_eq!(inode(&dir.path().join("spare.dat")), file);
        // The file keeps its first use's length.
        assert!(
            std::fs::metadata(dir.path().join("spare.dat"))
                .unwrap()
                .len()
                > first_use
        );
        assert_eq!(log.disk_bytes(), du(dir.path()));
        // The third use: records until the next segment starts in the file,
        // then one that ends past the second use's sentinel, in the first
        // use's tail; whole, or torn with the cut-off failing.
        while dir.path().join("spare.dat").exists() {
            sizes.push((id, 300));
            append_sized(&log, &mut id, 300).await;
        }
        let third = log.segments().last().unwrap().first_id;
        assert_eq!(inode(&dir.path().join(file_name(third))), file);
        let size = (second_use + 40) as usize - 300 - 2 * record::MIN_RECORD as usize;
        match torn {
            None => {
                sizes.push((id, size));
                append_sized(&log, &mut id, size).await;
            }
            Some(permille) => {
                faults.arm(Op::Write, Fault::Short { permille });
                faults.arm(Op::SetLen, Fault::Errno(libc::EIO));
                let entry = Entry {
                    meta: Vec::new(),
                    body: bytes::Bytes::from(vec![0xee; size]),
                };
                assert!(log.append(vec![entry]).await.is_err());
            }
        }
        let live: Vec<(u64, usize)> = sizes
            .iter()
            .copied()
            .filter(|&(i, _)| i >= second + 2)
            .collect();
        assert_eq!(read_sized(&log, second + 2), live, "{torn:?}");
        drop(log);

        let (log, recovered, recovery) = reopen(dir.path());
        let ids: Vec<u64> = live.iter().map(|&(i, _)| i).collect();
        assert_eq!(recovered, ids, "{torn:?}");
        assert_eq!(recovery.corrupt, 0, "{torn:?}");
        assert!(damaged_files(dir.path()).is_empty(), "{torn:?}");
        assert_eq!(read_sized(&log, second + 2), live, "{torn:?}");
        assert_eq!(log.disk_bytes(), du(dir.path()));
    }
}
