//! A model-based property test of the log: random sequences of appends,
//! deliveries, checkpoints, disk failures and crashes, checked against a
//! simple in-memory model of what the log promises (docs/architecture.md,
//! "Testing the log").
//!
//! The model's source of truth is what the log tells its owner: a record
//! passed to [`Owner::written`] is committed (synced first under
//! `SyncPolicy::Always`). The properties:
//!
//! - every append answered `Ok` was committed, with the ids it was given;
//! - every committed record is read back after a crash and reopen unless it
//!   was delivered (and its segment deleted), with its body intact;
//! - a record whose append failed is never read back, except where the log
//!   could not cut it off again (see [`Model::maybe`]);
//! - ids only grow, across reopens too; readers return records in id order,
//!   never one twice within one open, never skip a committed record, and
//!   end (no loop);
//! - a failed write or fsync seals the segment: the next record goes into a
//!   new one, the failed bytes are cut off the sealed one, and the owner is
//!   told the disk is failing until an append succeeds again.
//!
//! `cargo test` runs 256 random cases (about 3 s); `PROPTEST_CASES=N`
//! runs N, and `fuzz/run.sh SECONDS storage_model` runs 50 per second.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use proptest::prelude::*;

use super::disk::{Disk, Faults, Op as DiskOp};
use super::*;
use steps::{Step, Tail, case};

mod crash;
mod steps;

const MAGIC: Magic = *b"MODELOG\x01";
const SEGMENT_SIZE: u64 = 4096;
const READER: &str = "reader";

/// An append's answer.
type Answer = Result<Range<u64>, StorageError>;

/// What the owner hooks saw.
#[derive(Default)]
struct Seen {
    /// (id, tag, segment, end offset) of every committed record, in order.
    written: Vec<(u64, u64, u64, u64)>,
    failing: Option<String>,
}

struct ModelOwner {
    seen: Arc<Mutex<Seen>>,
    /// The reader's position: every segment below it may go.
    delivered: Arc<AtomicU64>,
}

impl Owner for ModelOwner {
    fn written(&mut self, records: &[Written<'_>]) {
        let mut seen = self.seen.lock().unwrap();
        for w in records {
            let end = w.offset + w.prefix.record_len();
            seen.written.push((w.id, tag_of(w.meta), w.segment, end));
        }
    }

    /// Deletes what was delivered, as the write queue does.
    fn maintain(&mut self, log: &mut Control<'_>) {
        let delivered = self.delivered.load(Ordering::Relaxed);
        while log.segments().first().is_some_and(|s| {
            s.last_id.is_none_or(|last| last < delivered) && (!s.active || log.failing())
        }) {
            if log.retire_oldest().is_none() {
                break;
            }
        }
    }

    fn health(&mut self, failure: Option<&str>) {
        self.seen.lock().unwrap().failing = failure.map(str::to_owned);
    }
}

/// Whether a segment file holds more than its first `durable` bytes:
/// records past them, or bytes that are not what a reused file held
/// before (which ends at an intact record with an id below the segment's
/// name, see `Control::retire_oldest`, and is no part of the segment).
fn holds_more(path: &Path, first: u64, durable: u64) -> bool {
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    if meta.len() <= durable {
        return false;
    }
    match super::segment::scan(path, &MAGIC, true, first, None, |_| {}) {
        Ok(scan) => scan.valid_len > durable || scan.leftover_at.is_none(),
        Err(_) => true,
    }
}

fn tag_of(meta: &[u8]) -> u64 {
    u64::from_le_bytes(meta.try_into().expect("an 8-byte tag"))
}

fn body_of(tag: u64, size: usize) -> Bytes {
    (0..size)
        .map(|i| (tag as u8).wrapping_mul(31).wrapping_add(i as u8))
        .collect()
}

/// What the log must hold.
#[derive(Default)]
struct Model {
    next_tag: u64,
    /// Body size of every record ever appended, by tag.
    sizes: HashMap<u64, usize>,
    /// Committed records: id -> tag.
    committed: BTreeMap<u64, u64>,
    /// Records whose append failed but which may be read back after a
    /// reopen: a failed write's bytes that reached the file whole while
    /// cutting them off failed too (or the process died first). By tag;
    /// the id once seen.
    maybe: HashMap<u64, Option<u64>>,
    /// Every record below this id was delivered.
    delivered: u64,
    /// What POSITIONS may hold: the last save, and a newer one whose save
    /// failed after the rename.
    checkpoints: Vec<u64>,
    /// The segment sealed by the last failure, until the next commit.
    sealed: Option<u64>,
    /// End of the committed records of each segment.
    durable: BTreeMap<u64, u64>,
    /// Sealed segments whose failed tail could not be cut off.
    dirty: std::collections::BTreeSet<u64>,
}

struct Harness {
    dir: tempfile::TempDir,
    sync: SyncPolicy,
    faults: Arc<Faults>,
    seen: Arc<Mutex<Seen>>,
    delivered: Arc<AtomicU64>,
    log: Option<Log>,
    cursor: Cursor,
    ahead: ReadAhead,
    /// The last id the reader returned in this open.
    last_read: Option<u64>,
    model: Model,
}

impl Harness {
    fn new(sync: SyncPolicy) -> Harness {
        let mut h = Harness {
            dir: scratch_dir(),
            sync,
            faults: Arc::default(),
            seen: Arc::default(),
            delivered: Arc::default(),
            log: None,
            cursor: Cursor {
                segment: 0,
                offset: 0,
            },
            ahead: ReadAhead::default(),
            last_read: None,
            model: Model {
                checkpoints: vec![0],
                ..Model::default()
            },
        };
        h.reopen(None).unwrap();
        h
    }

    fn log(&self) -> &Log {
        self.log.as_ref().expect("an open log")
    }

    fn options(&self) -> LogOptions {
        let mut options = LogOptions::new(MAGIC, SEGMENT_SIZE);
        options.sync = self.sync;
        options.disk = Disk::failing_with(Arc::clone(&self.faults));
        options
    }

    fn entry(&mut self, size: usize) -> (u64, Entry) {
        let tag = self.model.next_tag;
        self.model.next_tag += 1;
        self.model.sizes.insert(tag, size);
        let entry = Entry {
            meta: tag.to_le_bytes().to_vec(),
            body: body_of(tag, size),
        };
        (tag, entry)
    }

    async fn run(&mut self, step: Step) -> Result<(), TestCaseError> {
        match step {
            Step::Append(sizes) => {
                let before = self.newest_segment();
                let requests: Vec<_> = sizes.into_iter().map(|s| self.entry(s)).collect();
                let tags: Vec<Vec<u64>> = requests.iter().map(|(t, _)| vec![*t]).collect();
                let log = self.log.as_ref().expect("an open log");
                let answers = futures_util::future::join_all(
                    requests.into_iter().map(|(_, e)| log.append(vec![e])),
                )
                .await;
                self.settle(answers.iter().all(Result::is_ok)).await;
                self.answered(before, tags.into_iter().zip(answers).collect())
            }
            Step::AppendMany(sizes) => {
                let before = self.newest_segment();
                let entries: Vec<_> = sizes.into_iter().map(|s| self.entry(s)).collect();
                let tags = entries.iter().map(|(t, _)| *t).collect();
                let answer = self
                    .log()
                    .append(entries.into_iter().map(|(_, e)| e).collect())
                    .await;
                self.settle(answer.is_ok()).await;
                self.answered(before, vec![(tags, answer)])
            }
            Step::Fail(op, fault) => {
                self.faults.arm(op, fault);
                Ok(())
            }
            Step::Deliver(n) => self.deliver(n),
            Step::Checkpoint => self.checkpoint(),
            Step::Crash {
                mid_write,
                tail,
                reopen_fault,
            } => self.crash(mid_write, tail, reopen_fault).await,
        }
    }

    /// Under `Every` syncs run in the background: after appends that
    /// succeeded, `Log::maintain` syncs what was written and waits, so that
    /// a sync's failure, if one was armed, has fired and sealed the segment
    /// (or its success made the log healthy again) before the step's
    /// outcome is read. (After a failed append it would start the next
    /// segment, which the step's checks would take for the sealed one.)
    async fn settle(&self, all_ok: bool) {
        if self.sync != SyncPolicy::Always && all_ok {
            self.log().maintain().await;
        }
    }

    /// Folds the answers of appends (and what the owner saw meanwhile)
    /// into the model.
    fn newest_segment(&self) -> Option<u64> {
        self.log().segments().last().map(|s| s.first_id)
    }

    fn answered(
        &mut self,
        before: Option<u64>,
        answers: Vec<(Vec<u64>, Answer)>,
    ) -> Result<(), TestCaseError> {
        let fired = self.faults.take_fired();
        let cut_failed = fired.iter().any(|(op, _)| *op == DiskOp::SetLen);
        let sealing = fired
            .iter()
            .any(|(op, _)| matches!(op, DiskOp::Write | DiskOp::SyncData | DiskOp::Create));
        let written = std::mem::take(&mut self.seen.lock().unwrap().written);
        let mut committed_tags = HashMap::new();
        for &(id, tag, segment, end) in &written {
            if let Some(&last) = self.model.committed.keys().next_back() {
                prop_assert!(id > last, "id {id} committed after {last}");
            }
            if let Some(sealed) = self.model.sealed.take() {
                prop_assert!(
                    segment > sealed,
                    "record {id} went into segment {segment:x}, sealed by a failure"
                );
            }
            self.model.committed.insert(id, tag);
            self.model.durable.insert(segment, end);
            committed_tags.insert(tag, id);
        }
        let (mut failed, mut succeeded) = (false, false);
        for (tags, answer) in answers {
            match answer {
                Ok(ids) => {
                    succeeded = true;
                    prop_assert_eq!(ids.end - ids.start, tags.len() as u64);
                    for (id, tag) in ids.zip(&tags) {
                        prop_assert_eq!(committed_tags.get(tag), Some(&id), "acknowledged {}", id);
                    }
                }
                Err(e) => {
                    failed = true;
                    prop_assert!(
                        matches!(e, StorageError::Write(_) | StorageError::Io { .. }),
                        "{e}"
                    );
                    for tag in tags.iter().filter(|t| !committed_tags.contains_key(t)) {
                        if cut_failed {
                            self.model.maybe.insert(*tag, None);
                        }
                    }
                }
            }
        }
        prop_assert!(
            !failed || !fired.is_empty(),
            "an append failed with no disk fault"
        );
        if cut_failed {
            self.find_dirty();
        }
        let failing = self.seen.lock().unwrap().failing.clone();
        // (When some appends of a step failed and others succeeded, which
        // came first is not known.)
        if failed && sealing && !succeeded {
            prop_assert!(failing.is_some(), "a failed write left the log healthy");
            // The failure sealed the segment being written: the newest one
            // (unless it was deleted since, as delivered).
            let sealed = self.newest_segment();
            self.model.sealed = sealed.max(before).max(self.model.sealed);
            if !cut_failed {
                self.check_cut(sealed)?;
            }
        } else if succeeded && !failed && fired.is_empty() {
            prop_assert!(
                failing.is_none(),
                "healthy appends left the log failing: {failing:?}"
            );
        }
        Ok(())
    }

    /// Segment files holding more than what was committed in them: a
    /// failed write that could not be cut off.
    fn find_dirty(&mut self) {
        for (first, path) in list_segments(self.dir.path()).unwrap() {
            let durable = self.model.durable.get(&first).copied();
            if holds_more(&path, first, durable.unwrap_or(MAGIC.len() as u64)) {
                self.model.dirty.insert(first);
            }
        }
    }

    /// A sealed segment ends at its last committed record on disk too.
    fn check_cut(&self, sealed: Option<u64>) -> Result<(), TestCaseError> {
        let Some(sealed) = sealed.filter(|s| !self.model.dirty.contains(s)) else {
            return Ok(());
        };
        let path = self.dir.path().join(segment_file_name(sealed));
        let Ok(meta) = std::fs::metadata(&path) else {
            return Ok(());
        };
        let expected = self
            .model
            .durable
            .get(&sealed)
            .copied()
            .unwrap_or(MAGIC.len() as u64);
        prop_assert!(
            !holds_more(&path, sealed, expected),
            "sealed segment {sealed:x} is {} bytes, committed {expected}",
            meta.len()
        );
        Ok(())
    }

    fn deliver(&mut self, n: usize) -> Result<(), TestCaseError> {
        for _ in 0..n {
            if !self.read_one()? {
                break;
            }
        }
        Ok(())
    }

    /// Reads the next record; false when caught up.
    fn read_one(&mut self) -> Result<bool, TestCaseError> {
        let log = self.log.as_ref().expect("an open log");
        let next = log.read_next(&mut self.cursor, &mut self.ahead);
        let next = next.map_err(|e| TestCaseError::fail(format!("read_next: {e}")))?;
        let record = match next {
            Next::Record(r) => r,
            Next::CaughtUp => {
                let from = self.last_read.map_or(self.model.delivered, |l| l + 1);
                let missed = self
                    .model
                    .committed
                    .range(from.max(self.model.delivered)..)
                    .next();
                prop_assert!(missed.is_none(), "caught up before committed {missed:?}");
                return Ok(false);
            }
            Next::Corrupt(why) => return Err(TestCaseError::fail(format!("corrupt: {why}"))),
        };
        let head = record.head();
        let (id, tag) = (head.id, tag_of(head.meta));
        if let Some(last) = self.last_read {
            prop_assert!(id > last, "read {id} after {last} in one open");
        }
        match self.model.committed.get(&id) {
            Some(&t) => prop_assert_eq!(t, tag, "id {} holds the wrong record", id),
            None => prop_assert_eq!(
                self.model.maybe.get(&tag).copied().flatten(),
                Some(id),
                "read back record {} (tag {}), which was never committed",
                id,
                tag
            ),
        }
        let size = self.model.sizes[&tag];
        prop_assert!(record.body() == body_of(tag, size), "body of {id} differs");
        // Nothing committed and undelivered was skipped.
        let from = self
            .last_read
            .map_or(0, |l| l + 1)
            .max(self.model.delivered);
        let skipped = self.model.committed.range(from..id.max(from)).next();
        prop_assert!(skipped.is_none(), "skipped {skipped:?} reading {id}");
        self.last_read = Some(id);
        self.model.delivered = self.model.delivered.max(id + 1);
        self.delivered
            .store(self.model.delivered, Ordering::Relaxed);
        Ok(true)
    }

    fn checkpoint(&mut self) -> Result<(), TestCaseError> {
        let position = self.model.delivered;
        let positions = BTreeMap::from([(READER.to_owned(), position)]);
        let disk = Disk::failing_with(Arc::clone(&self.faults));
        let saved = positions::write(&disk, self.dir.path(), &positions);
        let fired = self.faults.take_fired();
        match saved {
            Ok(()) => self.model.checkpoints = vec![position],
            Err(_) if fired.iter().any(|(op, _)| *op == DiskOp::SyncDir) => {
                self.model.checkpoints.push(position)
            }
            Err(_) => {}
        }
        Ok(())
    }
}

/// In memory when the machine has it: the test is about what the log does
/// with failures, not how fast the disk syncs.
fn scratch_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir()
        && let Ok(dir) = tempfile::tempdir_in(shm)
    {
        return dir;
    }
    tempfile::tempdir().unwrap()
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn the_log_keeps_what_it_acknowledged((sync, steps) in case()) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let mut h = Harness::new(sync);
            for step in steps {
                h.run(step).await?;
            }
            // A last crash and reopen checks everything still held.
            h.crash(None, None, None).await
        })?;
    }
}
