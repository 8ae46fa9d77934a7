//! What the log does when the disk fails under it: regression tests for
//! what the model test (`model_tests`) found.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use super::disk::{Disk, Fault, Faults, Op};
use super::recovery_tests::{Inert, MAGIC, open};
use super::segment::file_name;
use super::*;

fn entry(body: &'static [u8]) -> Entry {
    Entry {
        meta: Vec::new(),
        body: bytes::Bytes::from_static(body),
    }
}

fn open_with(dir: &Path, segment_size: u64, faults: &Arc<Faults>, owner: Box<dyn Owner>) -> Log {
    let mut options = LogOptions::new(MAGIC, segment_size);
    options.disk = Disk::failing_with(Arc::clone(faults));
    Log::open(dir, options, |_| {}, owner).unwrap().0
}

/// Deletes every segment it may while `now` is set, or while writes fail
/// (as the write queue does once everything was delivered).
struct Delete {
    now: Arc<AtomicBool>,
}

impl Owner for Delete {
    fn written(&mut self, _: &[Written<'_>]) {}
    fn maintain(&mut self, log: &mut Control<'_>) {
        while (self.now.load(Ordering::Relaxed) || log.failing())
            && log
                .segments()
                .first()
                .is_some_and(|s| !s.active || log.failing())
            && log.drop_oldest().is_some()
        {}
    }
    fn health(&mut self, _: Option<&str>) {}
}

/// A batch whose fsync failed was answered with an error but stayed in the
/// segment file, so after a restart it was read back and delivered as if
/// it had been written.
#[tokio::test]
async fn a_batch_whose_fsync_failed_is_cut_off_and_not_read_back_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _, _) = open(dir.path());
    assert_eq!(log.append(vec![entry(b"kept")]).await.unwrap(), 1..2);
    log.fail_next_sync();
    let failed = log.append(vec![entry(b"failed")]).await.unwrap_err();
    assert!(failed.to_string().contains("fsync"), "{failed}");
    let sealed = dir.path().join(file_name(1));
    let kept_len = (MAGIC.len() as u64) + record::encoded_len(0, 4);
    assert_eq!(std::fs::metadata(&sealed).unwrap().len(), kept_len);
    drop(log);

    let (_log, ids, recovery) = open(dir.path());
    assert_eq!(ids, [1]);
    assert_eq!(recovery, Recovery::default());
}

/// A new segment whose creation failed half way (its file exists, its
/// directory entry was not synced) left the old segment active, so the
/// next, smaller record went into the old segment under an id at or above
/// the new file's name; after a restart a reader seeking that id looked in
/// the new file and skipped the record.
#[tokio::test]
async fn a_failed_rotation_seals_the_segment_so_ids_stay_in_the_segment_their_name_says() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Arc::new(Faults::default());
    let small = || entry(&[b's'; 20]);
    let big = || entry(&[b'b'; 100]);
    let log = open_with(dir.path(), 120, &faults, Box::new(Inert));
    assert_eq!(log.append(vec![small()]).await.unwrap(), 1..2);
    faults.arm(Op::SyncDir, Fault::Errno(libc::EIO));
    log.append(vec![big()]).await.unwrap_err();
    assert!(dir.path().join(file_name(2)).exists());
    let second = log.append(vec![small()]).await.unwrap();
    assert_eq!(second, 2..3);
    assert_eq!(log.segments().last().unwrap().first_id, 2);
    drop(log);

    let (log, ids, _) = open(dir.path());
    assert_eq!(ids, [1, 2]);
    let mut cursor = log.seek(2).unwrap();
    let Ok(Next::Record(record)) = log.read_next(&mut cursor, &mut ReadAhead::default()) else {
        panic!("record 2 is not found from its id")
    };
    assert_eq!(record.head().id, 2);
}

/// Deleting the last segment (sealed after a failed fsync) left no file
/// named by the next id, so after a restart ids began again at 1, below
/// the checkpointed positions, and the queue skipped the new records as
/// already delivered.
#[tokio::test]
async fn ids_go_on_after_a_restart_when_every_segment_was_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Arc::new(Faults::default());
    let owner = Delete {
        now: Arc::default(),
    };
    let log = open_with(dir.path(), 1 << 20, &faults, Box::new(owner));
    assert_eq!(
        log.append(vec![entry(b"a"), entry(b"b")]).await.unwrap(),
        1..3
    );
    log.fail_next_sync();
    log.append(vec![entry(b"c")]).await.unwrap_err();
    assert!(log.segments().is_empty(), "{:?}", log.segments());
    drop(log);
    let kept = dir.path().join(file_name(4));
    assert_eq!(list_segments(dir.path()).unwrap(), [(4, kept)]);

    let (log, ids, recovery) = open(dir.path());
    assert!(ids.is_empty());
    assert_eq!(recovery.corrupt, 0);
    assert_eq!(log.append(vec![entry(b"d")]).await.unwrap(), 4..5);
}

/// A segment deleted between finding the cursor's segment and reading
/// from it made `read_next` fail instead of moving on to the next segment.
#[tokio::test]
async fn a_segment_deleted_under_a_reader_is_stepped_over() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Arc::new(Faults::default());
    let now = Arc::new(AtomicBool::new(false));
    let owner = Delete {
        now: Arc::clone(&now),
    };
    let log = open_with(dir.path(), 40, &faults, Box::new(owner));
    log.append(vec![entry(&[1; 20])]).await.unwrap();
    log.append(vec![entry(&[2; 20])]).await.unwrap();
    let cursor = log.seek(1).unwrap();
    assert_eq!(cursor.segment, 1);
    now.store(true, Ordering::Relaxed);
    log.maintain().await;
    assert_eq!(log.segments().first().unwrap().first_id, 2);
    assert!(
        log.read_here(&cursor, record::PREFIX as u64)
            .unwrap()
            .is_none()
    );
    let mut cursor = cursor;
    let Ok(Next::Record(record)) = log.read_next(&mut cursor, &mut ReadAhead::default()) else {
        panic!("the reader did not move on")
    };
    assert_eq!(record.head().id, 2);
}

/// The active segment's blocks are reserved ahead of its data, and its
/// size is still the data's (a scan after a crash finds the end by it); a
/// file system that refuses the reservation changes nothing but the
/// speed, and is not asked again for the same segment.
#[tokio::test]
async fn blocks_are_reserved_ahead_without_growing_the_file_and_a_refusal_changes_nothing() {
    use std::os::unix::fs::MetadataExt;
    let file_len = |body: usize| MAGIC.len() as u64 + record::encoded_len(0, body);
    let dir = tempfile::tempdir().unwrap();
    let faults = Arc::new(Faults::default());
    let log = open_with(dir.path(), 64 << 20, &faults, Box::new(Inert));
    assert_eq!(log.append(vec![entry(b"first")]).await.unwrap(), 1..2);
    let meta = std::fs::metadata(dir.path().join(file_name(1))).unwrap();
    assert_eq!(meta.len(), file_len(5));
    let probe = tempfile::tempfile_in(dir.path()).unwrap();
    if Disk::default().allocate(&probe, 0, 1 << 20).is_ok() {
        assert!(meta.blocks() * 512 >= 4 << 20, "{} blocks", meta.blocks());
    }
    assert_eq!(faults.take_fired(), []);
    drop(log);

    let refused = tempfile::tempdir().unwrap();
    let log = open_with(refused.path(), 64 << 20, &faults, Box::new(Inert));
    faults.arm(Op::Allocate, Fault::Errno(libc::EOPNOTSUPP));
    faults.arm(Op::Allocate, Fault::Errno(libc::EOPNOTSUPP));
    assert_eq!(log.append(vec![entry(b"one")]).await.unwrap(), 1..2);
    assert_eq!(log.append(vec![entry(b"two")]).await.unwrap(), 2..3);
    assert_eq!(
        faults.take_fired(),
        [(Op::Allocate, Fault::Errno(libc::EOPNOTSUPP))]
    );
    drop(log);
    let (_log, ids, recovery) = open(refused.path());
    assert_eq!(ids, [1, 2]);
    assert_eq!(recovery, Recovery::default());
}

/// Remembers every health it was told.
struct Health(Arc<std::sync::Mutex<Vec<Option<String>>>>);

impl Owner for Health {
    fn written(&mut self, _: &[Written<'_>]) {}
    fn maintain(&mut self, _: &mut Control<'_>) {}
    fn health(&mut self, failure: Option<&str>) {
        self.0.lock().unwrap().push(failure.map(str::to_owned));
    }
}

/// Under `SyncPolicy::Every` the sync runs on the `log-syncer` thread; its
/// failure still seals the segment (nothing syncs that file again) and
/// turns the owner unhealthy until a sync of the next segment succeeds.
#[tokio::test]
async fn a_failed_background_sync_seals_the_segment_until_a_sync_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Arc::new(Faults::default());
    let health = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut options = LogOptions::new(MAGIC, 1 << 20);
    options.disk = Disk::failing_with(Arc::clone(&faults));
    options.sync = SyncPolicy::Every(Duration::from_millis(1));
    let owner = Box::new(Health(Arc::clone(&health)));
    let log = Log::open(dir.path(), options, |_| {}, owner).unwrap().0;

    faults.arm(Op::SyncData, Fault::Errno(libc::EIO));
    // Acknowledged once written, before any sync.
    assert_eq!(log.append(vec![entry(b"first")]).await.unwrap(), 1..2);
    // The period passes; the idle writer hands the sync to the syncer.
    tokio::time::sleep(Duration::from_millis(30)).await;
    log.maintain().await;
    assert_eq!(faults.take_fired().len(), 1);
    let told = health.lock().unwrap().clone();
    let [Some(reason)] = &told[..] else {
        panic!("told {told:?}")
    };
    assert!(reason.contains("periodic fsync"), "{reason}");

    // Written into a new segment; still unhealthy until it is synced.
    assert_eq!(log.append(vec![entry(b"second")]).await.unwrap(), 2..3);
    let firsts: Vec<u64> = log.segments().iter().map(|s| s.first_id).collect();
    assert_eq!(firsts, [1, 2], "the sealed segment took no more records");
    assert_eq!(health.lock().unwrap().len(), 1);
    log.maintain().await;
    assert_eq!(
        health.lock().unwrap().last(),
        Some(&None),
        "healthy after a good sync"
    );
    assert!(faults.take_fired().is_empty());
    drop(log);

    let (_log, ids, _) = open(dir.path());
    assert_eq!(ids, [1, 2]);
}
