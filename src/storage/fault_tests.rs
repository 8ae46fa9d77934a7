//! What the log does when the disk fails under it: regression tests for
//! what the model test (`model_tests`) found.

use super::recovery_tests::{MAGIC, open};
use super::segment::file_name;
use super::*;

fn entry(body: &'static [u8]) -> Entry {
    Entry {
        meta: Vec::new(),
        body: bytes::Bytes::from_static(body),
    }
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
