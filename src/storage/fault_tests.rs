//! What the log does when the disk fails under it: regression tests for
//! what the model test (`model_tests`) found.

use std::path::Path;

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
    let Ok(Next::Record(record)) = log.read_next(&mut cursor) else {
        panic!("record 2 is not found from its id")
    };
    assert_eq!(record.head().id, 2);
}
