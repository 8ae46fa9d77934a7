//! Crashing and reopening the log in the model test, and what must hold
//! after.

use futures_util::FutureExt;
use proptest::prelude::*;
use std::sync::Arc;

use super::super::disk::{Fault, Op as DiskOp};
use super::super::*;
use super::{Harness, ModelOwner, READER, Tail, tag_of};

impl Harness {
    pub(super) async fn crash(
        &mut self,
        mid_write: Option<(u16, Vec<usize>)>,
        tail: Option<Tail>,
        reopen_fault: Option<(DiskOp, Fault)>,
    ) -> Result<(), TestCaseError> {
        if let Some((permille, sizes)) = mid_write {
            // The batch reaches the file in part; the process dies before
            // it can cut it off again.
            self.faults.clear();
            self.faults.arm(DiskOp::Write, Fault::Short { permille });
            self.faults.arm(DiskOp::SetLen, Fault::Errno(libc::EIO));
            let entries: Vec<_> = sizes.into_iter().map(|s| self.entry(s)).collect();
            let log = self.log.as_ref().expect("an open log");
            let pending: Vec<_> = entries
                .into_iter()
                .map(|(tag, e)| {
                    self.model.maybe.insert(tag, None);
                    log.append(vec![e])
                })
                .collect();
            // Started, never answered: the process is gone.
            for append in pending {
                let _ = append.now_or_never();
            }
        }
        // A dropped log answers nothing more; its writer thread ends after
        // the requests already queued, as a killed process would have
        // left them (written, never acknowledged).
        drop(self.log.take());
        let written = std::mem::take(&mut self.seen.lock().unwrap().written);
        for (id, tag, segment, end) in written {
            self.model.maybe.remove(&tag);
            self.model.committed.insert(id, tag);
            self.model.durable.insert(segment, end);
        }
        self.find_dirty();
        self.faults.clear();
        self.faults.take_fired();
        if let Some(tail) = tail {
            self.damage_tail(tail);
        }
        if let Some((op, fault)) = reopen_fault {
            self.faults.arm(op, fault);
            // Open may fail on a failing disk, but cleanly.
            if let Err(e) = self.reopen(None) {
                prop_assert!(
                    matches!(e, StorageError::Io { .. } | StorageError::Write(_)),
                    "{e}"
                );
            }
            drop(self.log.take());
            self.faults.clear();
            self.faults.take_fired();
            self.seen.lock().unwrap().written.clear();
        }
        let mut recovered = Vec::new();
        let recovery = self
            .reopen(Some(&mut recovered))
            .map_err(|e| TestCaseError::fail(format!("reopen: {e}")))?;
        prop_assert!(
            recovery.corrupt <= self.model.dirty.len() as u64,
            "{} corrupt records, dirty segments {:?}",
            recovery.corrupt,
            self.model.dirty
        );
        self.check_recovered(&recovered)?;
        let loaded = load_positions(self.dir.path())
            .get(READER)
            .copied()
            .unwrap_or(0);
        prop_assert!(
            self.model.checkpoints.contains(&loaded),
            "POSITIONS holds {loaded}, saved {:?}",
            self.model.checkpoints
        );
        self.model.checkpoints = vec![loaded];
        self.cursor = self
            .log()
            .seek(loaded)
            .map_err(|e| TestCaseError::fail(format!("seek: {e}")))?;
        // A reader's piece belongs to the log it was read from.
        self.ahead = ReadAhead::default();
        self.last_read = None;
        // Read everything back: a reader that loops fails the bound.
        let bound = self.model.committed.len() + self.model.maybe.len() + 1;
        for _ in 0..=bound {
            if !self.read_one()? {
                return Ok(());
            }
        }
        Err(TestCaseError::fail("the reader did not catch up"))
    }

    /// Records found on open: in id order, each committed or a maybe.
    fn check_recovered(&mut self, recovered: &[(u64, u64)]) -> Result<(), TestCaseError> {
        let mut last = None;
        for &(id, tag) in recovered {
            prop_assert!(last.is_none_or(|l| id > l), "recovered {id} after {last:?}");
            last = Some(id);
            match self.model.committed.get(&id) {
                Some(&t) => prop_assert_eq!(t, tag),
                None => {
                    let maybe = self.model.maybe.get_mut(&tag);
                    prop_assert!(
                        maybe.is_some(),
                        "recovered {id} (tag {tag}): its append failed"
                    );
                    let seen = maybe.expect("checked");
                    prop_assert!(seen.is_none_or(|s| s == id));
                    *seen = Some(id);
                }
            }
        }
        // Everything committed and not delivered is there.
        let ids: std::collections::BTreeSet<u64> = recovered.iter().map(|r| r.0).collect();
        for (&id, _) in self.model.committed.range(self.model.delivered..) {
            prop_assert!(ids.contains(&id), "committed record {id} is lost");
        }
        Ok(())
    }

    fn damage_tail(&mut self, tail: Tail) {
        let Some((first, path)) = list_segments(self.dir.path()).unwrap().pop() else {
            return;
        };
        let durable = self.model.durable.get(&first).copied().unwrap_or(0);
        let len = std::fs::metadata(&path).unwrap().len();
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        match tail {
            Tail::Cut(permille) => {
                let past = len.saturating_sub(durable);
                file.set_len(durable.min(len) + past * u64::from(permille) / 1000)
                    .unwrap();
            }
            Tail::Zeros(n) => file.set_len(len + n as u64).unwrap(),
            Tail::Garbage(bytes) => {
                use std::os::unix::fs::FileExt;
                file.write_all_at(&bytes, len).unwrap();
            }
        }
    }

    pub(super) fn reopen(
        &mut self,
        recovered: Option<&mut Vec<(u64, u64)>>,
    ) -> Result<Recovery, StorageError> {
        // A new writer starts healthy, and may go on writing a segment the
        // last one sealed: it scans what the segment really holds first.
        self.seen.lock().unwrap().failing = None;
        self.model.sealed = None;
        let owner = ModelOwner {
            seen: Arc::clone(&self.seen),
            delivered: Arc::clone(&self.delivered),
        };
        let mut found = Vec::new();
        let (log, recovery) = Log::open(
            self.dir.path(),
            self.options(),
            |w| found.push((w.id, tag_of(w.meta))),
            Box::new(owner),
        )?;
        if let Some(out) = recovered {
            *out = found;
        }
        self.log = Some(log);
        Ok(recovery)
    }
}
