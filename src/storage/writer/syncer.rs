//! Under `SyncPolicy::Every`, the periodic `fdatasync` on a thread of its
//! own. Made on the writer thread, one sync of a period's writes (20 MB at
//! 100 MB/s and 200 ms) held every append that arrived meanwhile: the
//! acknowledgement p99 of `sync = "200ms"` was above that of `"always"`
//! (docs/performance.md, "Periodic syncs off the writer thread"). Appends
//! are acknowledged once written under `Every`, so nothing needs to wait
//! for a sync but the next sync and the writer's shutdown.

use std::fs::File;
use std::io;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Instant;

use super::Core;
use crate::storage::SyncPolicy;
use crate::storage::disk::Disk;
use crate::storage::{FsyncObserver, Owner};

/// A finished sync of segment `segment`.
pub(super) struct Synced {
    pub segment: u64,
    pub result: io::Result<()>,
}

struct Job {
    segment: u64,
    file: File,
}

/// `fdatasync` of `file`, its duration given to `observer` (every sync of
/// a log is counted in its histogram, wherever it is made).
pub(super) fn observed_sync(
    disk: &Disk,
    observer: Option<&FsyncObserver>,
    file: &File,
) -> io::Result<()> {
    let started = Instant::now();
    let result = disk.sync_data(file);
    if let Some(observe) = observer {
        observe(started.elapsed());
    }
    result
}

pub(super) struct Syncer {
    disk: Disk,
    observer: Option<FsyncObserver>,
    /// Started with the first sync.
    worker: Option<Worker>,
    in_flight: usize,
}

struct Worker {
    jobs: mpsc::Sender<Job>,
    done: mpsc::Receiver<Synced>,
    thread: JoinHandle<()>,
}

impl Syncer {
    pub fn new(disk: Disk, observer: Option<FsyncObserver>) -> Syncer {
        Syncer {
            disk,
            observer,
            worker: None,
            in_flight: 0,
        }
    }

    pub fn is_busy(&self) -> bool {
        self.in_flight > 0
    }

    /// Syncs `file` (of segment `segment`) in the background, after the
    /// syncs started before; the result comes back through
    /// [`Syncer::finished`]. Hands the file back when no thread can be
    /// started (the caller then syncs it itself).
    pub fn start(&mut self, segment: u64, file: File) -> Result<(), File> {
        if self.worker.is_none() {
            let (jobs, rx) = mpsc::channel::<Job>();
            let (tx, done) = mpsc::channel();
            let (disk, observer) = (self.disk.clone(), self.observer.clone());
            let spawned = std::thread::Builder::new()
                .name("log-syncer".into())
                .spawn(move || {
                    for Job { segment, file } in rx {
                        let result = observed_sync(&disk, observer.as_ref(), &file);
                        drop(file);
                        if tx.send(Synced { segment, result }).is_err() {
                            return;
                        }
                    }
                });
            match spawned {
                Ok(thread) => self.worker = Some(Worker { jobs, done, thread }),
                Err(_) => return Err(file),
            }
        }
        let worker = self.worker.as_ref().expect("started above");
        match worker.jobs.send(Job { segment, file }) {
            Ok(()) => {
                self.in_flight += 1;
                Ok(())
            }
            Err(mpsc::SendError(job)) => Err(job.file),
        }
    }

    /// The syncs finished since the last call, in the order started; with
    /// `wait`, once every sync started has finished.
    pub fn finished(&mut self, wait: bool) -> Vec<Synced> {
        let mut out = Vec::new();
        let Some(worker) = &self.worker else {
            return out;
        };
        while self.in_flight > 0 {
            let next = if wait {
                worker.done.recv().ok()
            } else {
                worker.done.try_recv().ok()
            };
            let Some(synced) = next else { break };
            self.in_flight -= 1;
            out.push(synced);
        }
        out
    }

    /// Waits for every sync started, then stops the thread.
    pub fn shut_down(&mut self) -> Vec<Synced> {
        let out = self.finished(true);
        if let Some(Worker { jobs, thread, .. }) = self.worker.take() {
            drop(jobs);
            let _ = thread.join();
        }
        self.in_flight = 0;
        out
    }
}

impl Core {
    /// Under `SyncPolicy::Every`: starts a sync of what was written when
    /// the period has passed, in the background (`syncer`), one at a time.
    pub(super) fn periodic_sync(&mut self, owner: &mut dyn Owner) {
        let SyncPolicy::Every(every) = self.cfg.sync else {
            return;
        };
        self.collect_syncs(owner, false);
        let Some(since) = self.dirty_since else {
            return;
        };
        if self.committed.is_closed() {
            return self.final_sync(owner);
        }
        if since.elapsed() < every || self.syncer.is_busy() {
            return;
        }
        self.start_sync(owner);
    }

    /// Under `SyncPolicy::Every`: syncs what was written now, whatever the
    /// period, and waits for every sync started (`Log::maintain`).
    pub(super) fn sync_now(&mut self, owner: &mut dyn Owner) {
        if self.cfg.sync == SyncPolicy::Always {
            return;
        }
        if self.dirty_since.is_some() {
            self.start_sync(owner);
        }
        self.collect_syncs(owner, true);
    }

    /// Hands the active segment's sync to the syncer (here when it cannot).
    fn start_sync(&mut self, owner: &mut dyn Owner) {
        self.dirty_since = None;
        let dup = self.active.as_ref().map(File::try_clone);
        let handed = match dup {
            Some(Ok(file)) => self.syncer.start(self.active_id, file).is_ok(),
            _ => false,
        };
        if !handed {
            self.sync_here(owner);
        }
    }

    /// Syncs the active segment on the writer thread, its outcome handled
    /// as a background sync's.
    fn sync_here(&mut self, owner: &mut dyn Owner) {
        let result = self.sync();
        let segment = self.active_id;
        self.sync_finished(owner, Synced { segment, result });
    }

    /// On shutdown: every background sync finished, then what is left
    /// synced here.
    pub(super) fn final_sync(&mut self, owner: &mut dyn Owner) {
        for synced in self.syncer.shut_down() {
            self.sync_finished(owner, synced);
        }
        if self.dirty_since.take().is_some() {
            self.sync_here(owner);
        }
    }

    /// Handles the background syncs that have finished (with `wait`,
    /// after all of them have).
    pub(super) fn collect_syncs(&mut self, owner: &mut dyn Owner, wait: bool) {
        for synced in self.syncer.finished(wait) {
            self.sync_finished(owner, synced);
        }
    }

    /// A failed sync, of the active segment or of one before it, seals the
    /// active segment: what was written past the last good sync may be
    /// gone from the kernel's cache, and a later sync of the same file
    /// could succeed without it. Writing goes on in a new segment, and the
    /// owner is healthy again once a sync of that segment succeeds.
    pub(super) fn sync_finished(&mut self, owner: &mut dyn Owner, synced: Synced) {
        match synced.result {
            Err(e) => {
                let reason = format!("periodic fsync of segment {:016x}: {e}", synced.segment);
                self.disk_failed(owner, reason);
            }
            Ok(()) if self.failing && self.active.is_some() && synced.segment == self.active_id => {
                self.failing = false;
                owner.health(None);
            }
            Ok(()) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::disk::{Fault, Faults, Op};
    use std::sync::Arc;

    #[test]
    fn syncs_finish_in_the_order_started_and_a_failure_is_reported() {
        let faults = Arc::new(Faults::default());
        let mut syncer = Syncer::new(Disk::failing_with(Arc::clone(&faults)), None);
        assert!(!syncer.is_busy());
        syncer.start(1, tempfile::tempfile().unwrap()).unwrap();
        let first = syncer.finished(true);
        assert!(!syncer.is_busy());
        faults.arm(Op::SyncData, Fault::Errno(libc::EIO));
        syncer.start(2, tempfile::tempfile().unwrap()).unwrap();
        syncer.start(3, tempfile::tempfile().unwrap()).unwrap();
        assert!(syncer.is_busy());
        let rest = syncer.shut_down();
        assert!(!syncer.is_busy());
        let ids: Vec<u64> = first.iter().chain(&rest).map(|s| s.segment).collect();
        assert_eq!(ids, [1, 2, 3]);
        assert!(first[0].result.is_ok());
        assert_eq!(
            rest[0].result.as_ref().unwrap_err().raw_os_error(),
            Some(libc::EIO)
        );
        assert!(rest[1].result.is_ok());
    }
}
