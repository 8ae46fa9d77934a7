//! The writer thread: group commit, segment rotation, failure handling,
//! and the owner's maintenance.
//!
//! Appends queue on a channel. The thread takes every request queued,
//! encodes their records into one buffer, writes it with one `pwrite` per
//! segment and (under [`SyncPolicy::Always`]) makes it durable with one
//! `fdatasync` before anyone is answered. Requests that arrive during the
//! sync form the next batch, so N concurrent writers share each sync.

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, watch};

mod control;
mod segments;
mod syncer;

pub use control::Control;

use super::answer::{Answer, Reply};
use super::closer::Closer;
use super::disk::Disk;
use super::recent::RecentBatches;
use super::record::{self, PREFIX, Prefix};
use super::segment::{Magic, Spare};
use super::table::{SharedTable, lock};
use super::{Entry, Owner, StorageError, SyncPolicy, Written};
use crate::telemetry::civil_time::unix_nanos;
use syncer::{Syncer, observed_sync};

/// A batch stops growing at this many body bytes...
const MAX_BATCH_BYTES: usize = 16 << 20;
/// ...or requests.
const MAX_BATCH_REQUESTS: usize = 1024;
/// Blocks of the active segment are reserved this far ahead of its data
/// (never past the segment's size): a write into reserved blocks skips
/// the file system's delayed allocation, and its `fdatasync` the block
/// allocation, 6-15% of the kernel's time per batch on ext4
/// (docs/performance.md, "The durable queue"). The file's size still
/// grows with each write, so a scan after a crash finds the end as before.
const ALLOCATE_AHEAD: u64 = 4 << 20;
/// How often a writer with nothing to do looks for the end of a
/// background sync (`SyncPolicy::Every`).
const SYNC_POLL: Duration = Duration::from_millis(2);

pub(crate) enum Request {
    Append {
        entries: Vec<Entry>,
        reply: Reply,
    },
    /// Run the owner's maintenance now; answer when done.
    Maintain(Option<oneshot::Sender<()>>),
    SetSync(SyncPolicy),
}

pub(crate) struct Config {
    pub dir: PathBuf,
    pub magic: Magic,
    pub segment_size: u64,
    pub sync: SyncPolicy,
    pub tick: Duration,
    pub clock: super::Clock,
    pub fsync_observer: Option<super::FsyncObserver>,
    pub disk: Disk,
}

pub(crate) struct Core {
    cfg: Config,
    table: SharedTable,
    committed: watch::Sender<u64>,
    /// The active segment's write handle; `None` after a failed write or
    /// sync left it in an unknown state (it is never written or synced
    /// again, and closing it lets a deleted file's space go), until the
    /// next batch starts a new segment.
    active: Option<File>,
    active_id: u64,
    active_size: u64,
    /// Where the blocks reserved in the active segment end; `u64::MAX`
    /// once reserving failed there (it is not tried again in it).
    allocated_to: u64,
    /// Whether the last batch failed on the disk (for health).
    failing: bool,
    /// Whether the maintenance running now was asked for ([`super::Log::maintain`]).
    requested: bool,
    /// Written but not yet synced (only under `SyncPolicy::Every`).
    dirty_since: Option<Instant>,
    /// Where the syncs under `SyncPolicy::Every` are made.
    syncer: Syncer,
    closer: Closer,
    recent: Arc<RecentBatches>,
    /// A delivered segment's file, kept to become the next segment
    /// ([`Control::retire_oldest`]); counted in the table's `disk_bytes`.
    spare: Option<Spare>,
}

impl Core {
    pub fn new(
        cfg: Config,
        table: SharedTable,
        committed: watch::Sender<u64>,
        recent: Arc<RecentBatches>,
        active: (u64, File, u64),
    ) -> Self {
        let syncer = Syncer::new(cfg.disk.clone(), cfg.fsync_observer.clone());
        Self {
            cfg,
            table,
            committed,
            active_id: active.0,
            active: Some(active.1),
            active_size: active.2,
            allocated_to: 0,
            failing: false,
            requested: false,
            dirty_since: None,
            syncer,
            closer: Closer::default(),
            recent,
            spare: None,
        }
    }

    pub fn run(mut self, mut owner: Box<dyn Owner>, rx: mpsc::Receiver<Request>) {
        loop {
            let wait = match (self.dirty_since, self.cfg.sync) {
                (Some(since), SyncPolicy::Every(every)) => {
                    (since + every).saturating_duration_since(Instant::now())
                }
                _ => self.cfg.tick,
            };
            // A sync in the background reports back on a channel of its
            // own; its failure is looked for this often meanwhile.
            let wait = if self.syncer.is_busy() {
                wait.min(SYNC_POLL)
            } else {
                wait
            };
            let first = match rx.recv_timeout(wait.min(self.cfg.tick)) {
                Ok(r) => r,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    self.periodic_sync(owner.as_mut());
                    owner.maintain(&mut Control { w: &mut self });
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    self.final_sync(owner.as_mut());
                    return;
                }
            };
            let mut bytes = request_bytes(&first);
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH_REQUESTS && bytes < MAX_BATCH_BYTES {
                match rx.try_recv() {
                    Ok(r) => {
                        bytes += request_bytes(&r);
                        batch.push(r);
                    }
                    Err(_) => break,
                }
            }
            self.process(owner.as_mut(), batch);
            self.periodic_sync(owner.as_mut());
        }
    }

    fn process(&mut self, owner: &mut dyn Owner, batch: Vec<Request>) {
        // A failed background sync seals the segment before this batch is
        // written.
        self.collect_syncs(owner, false);
        let mut answers: Vec<(Reply, Answer)> = Vec::new();
        let mut maintained = Vec::new();
        // Sized for the whole batch at once: grown by doubling, the buffer
        // was copied again on every growth (memmove was the writer thread's
        // top cost; docs/performance.md, "The durable queue").
        let mut buf = Vec::with_capacity(batch_bytes(&batch));
        // (offset in buf, prefix) of each staged record.
        let mut staged: Vec<(usize, Prefix)> = Vec::new();
        let mut failure: Option<StorageError> = None;
        let mut first_unwritten = lock(&self.table).next_id;
        if self.active.is_none() {
            // Let the owner free space (a full disk) before a new segment
            // is started.
            owner.maintain(&mut Control { w: self });
            if let Err(e) = self.rotate() {
                failure = Some(self.disk_failed(owner, e.to_string()));
            }
        }
        for request in batch {
            let (entries, reply) = match request {
                Request::Append { entries, reply } => (entries, reply),
                Request::Maintain(done) => {
                    maintained.extend(done);
                    continue;
                }
                Request::SetSync(policy) => {
                    // No background sync may end after a batch synced on
                    // the same file under `Always` (see `collect_syncs`).
                    self.collect_syncs(owner, true);
                    if policy == SyncPolicy::Always && self.dirty_since.take().is_some() {
                        // What was acknowledged under the old policy is
                        // made durable before the stricter one applies.
                        if let Err(e) = self.sync() {
                            failure = Some(self.disk_failed(owner, format!("fsync: {e}")));
                        }
                    }
                    self.cfg.sync = policy;
                    continue;
                }
            };
            if let Some(e) = &failure {
                answers.push((reply, Err(e.clone())));
                continue;
            }
            let needed = encoded_bytes(&entries);
            if let Err(e) = owner.admit(needed, &mut Control { w: self }) {
                answers.push((reply, Err(e)));
                continue;
            }
            let first = lock(&self.table).next_id;
            let mut result = Ok(());
            for entry in entries {
                result = self.stage(owner, entry, &mut buf, &mut staged, &mut first_unwritten);
                if result.is_err() {
                    break;
                }
            }
            match result {
                Ok(()) => answers.push((reply, Ok(first..lock(&self.table).next_id))),
                Err(e) => {
                    failure = Some(e.clone());
                    answers.push((reply, Err(e)));
                }
            }
        }
        if failure.is_none()
            && let Err(e) = self.flush(owner, &mut buf, &mut staged, &mut first_unwritten)
        {
            failure = Some(e);
        }
        // Under `Every` a write proves little: health comes back with the
        // next good sync (`sync_finished`).
        if failure.is_none() && self.failing && self.cfg.sync == SyncPolicy::Always {
            self.failing = false;
            owner.health(None);
        }
        // Before the answers: an owner's limits (the archive's `max_size`)
        // hold by the time an append is answered.
        self.requested = !maintained.is_empty();
        owner.maintain(&mut Control { w: self });
        self.requested = false;
        for (reply, answer) in answers {
            let answer = answer.and_then(|ids| {
                if ids.end <= first_unwritten {
                    Ok(ids)
                } else {
                    Err(failure
                        .clone()
                        .unwrap_or_else(|| StorageError::Write("not written".into())))
                }
            });
            reply.send(answer);
        }
        if !maintained.is_empty() {
            // One who waits for maintenance finds what was written synced.
            self.sync_now(owner);
        }
        for done in maintained {
            let _ = done.send(());
        }
    }

    /// Encodes one record into the batch, first writing out what is staged
    /// and starting a new segment when it would overflow the active one.
    fn stage(
        &mut self,
        owner: &mut dyn Owner,
        entry: Entry,
        buf: &mut Vec<u8>,
        staged: &mut Vec<(usize, Prefix)>,
        first_unwritten: &mut u64,
    ) -> Result<(), StorageError> {
        let id = lock(&self.table).next_id;
        let arrival = unix_nanos((self.cfg.clock)());
        let start = buf.len();
        record::encode(id, arrival, &entry.meta, &entry.body, buf)?;
        let record_len = (buf.len() - start) as u64;
        let used = self.active_size + start as u64;
        let mut at = start;
        if used > self.cfg.magic.len() as u64 && used + record_len > self.cfg.segment_size {
            let tail = buf.split_off(start);
            self.flush(owner, buf, staged, first_unwritten)?;
            if let Err(e) = self.rotate() {
                return Err(self.disk_failed(owner, e.to_string()));
            }
            *buf = tail;
            at = 0;
        }
        let prefix = Prefix::parse(buf[at..at + PREFIX].try_into().expect("12 bytes"))?;
        staged.push((at, prefix));
        lock(&self.table).next_id = id + 1;
        Ok(())
    }

    fn sync(&mut self) -> std::io::Result<()> {
        match &self.active {
            Some(file) => observed_sync(&self.cfg.disk, self.cfg.fsync_observer.as_ref(), file),
            None => Err(std::io::Error::other(
                "the segment was sealed after a failure",
            )),
        }
    }

    /// A failed write or sync: the active segment's state past what was
    /// committed is unknown (the kernel may have dropped the dirty pages),
    /// so it is never synced again; the next batch starts a new segment.
    fn disk_failed(&mut self, owner: &mut dyn Owner, reason: String) -> StorageError {
        tracing::error!(dir = %self.cfg.dir.display(), %reason, "log write failed; sealing the segment");
        self.active = None;
        // A sealed segment is never synced again.
        self.dirty_since = None;
        if !self.failing {
            self.failing = true;
            owner.health(Some(&reason));
        }
        StorageError::Write(reason)
    }

    /// Writes the staged records (syncing them under `Always`), then
    /// publishes them to the owner and the readers.
    fn flush(
        &mut self,
        owner: &mut dyn Owner,
        buf: &mut Vec<u8>,
        staged: &mut Vec<(usize, Prefix)>,
        first_unwritten: &mut u64,
    ) -> Result<(), StorageError> {
        if buf.is_empty() {
            return Ok(());
        }
        let at = self.active_size;
        self.allocate_ahead(at + buf.len() as u64);
        let Some(file) = &self.active else {
            buf.clear();
            staged.clear();
            return Err(StorageError::Write("no segment to write to".into()));
        };
        if let Err(e) = self.cfg.disk.write_at(file, buf, at) {
            buf.clear();
            staged.clear();
            // Cut off a partial write so the segment stays parseable.
            let reason = match self.cfg.disk.set_len(file, at) {
                Ok(()) => {
                    self.cut_to(at);
                    format!("write: {e}")
                }
                Err(e2) => format!("write: {e}; then truncating: {e2}"),
            };
            return Err(self.disk_failed(owner, reason));
        }
        match self.cfg.sync {
            SyncPolicy::Always => {
                if let Err(e) = self.sync() {
                    buf.clear();
                    staged.clear();
                    // The batch fails, so its records must not come back
                    // after a restart as if they had been written: cut them
                    // off (a power failure may still bring them back; the
                    // log then delivers them, at least once).
                    let reason = match self.active.as_ref().map(|f| self.cfg.disk.set_len(f, at)) {
                        Some(Err(e2)) => format!("fsync: {e}; then truncating: {e2}"),
                        Some(Ok(())) => {
                            self.cut_to(at);
                            format!("fsync: {e}")
                        }
                        None => format!("fsync: {e}"),
                    };
                    return Err(self.disk_failed(owner, reason));
                }
            }
            SyncPolicy::Every(_) => {
                self.dirty_since.get_or_insert_with(Instant::now);
            }
        }
        let written: Vec<Written<'_>> = staged
            .iter()
            .map(|&(offset, prefix)| {
                let rec = &buf[offset..offset + prefix.record_len() as usize];
                let head = record::decode_head(&rec[PREFIX..prefix.body_start()])
                    .expect("a record just encoded");
                Written {
                    id: head.id,
                    arrival_nanos: head.arrival_nanos,
                    segment: self.active_id,
                    offset: at + offset as u64,
                    prefix,
                    meta: head.meta,
                }
            })
            .collect();
        owner.written(&written);
        let size = buf.len() as u64;
        {
            let mut table = lock(&self.table);
            let table = &mut *table;
            if let Some(seg) = table.segments.get_mut(&self.active_id) {
                // A reused file's blocks are counted already.
                let grown = (seg.size + size).saturating_sub(seg.file_len);
                seg.file_len += grown;
                table.disk_bytes += grown;
                seg.size += size;
                seg.count += written.len() as u64;
                for w in &written {
                    seg.min_arrival = seg.min_arrival.min(w.arrival_nanos);
                    seg.max_arrival = seg.max_arrival.max(w.arrival_nanos);
                }
                seg.last_id = written.last().map(|w| w.id).or(seg.last_id);
            }
        }
        let next_id = written.last().map(|w| w.id + 1);
        drop(written);
        // Before the readers are told: a reader woken by the new id finds
        // the batch in memory.
        self.recent
            .push(self.active_id, at, bytes::Bytes::from(std::mem::take(buf)));
        if let Some(next_id) = next_id {
            *first_unwritten = next_id;
            self.committed.send_replace(next_id);
        }
        self.active_size += size;
        staged.clear();
        Ok(())
    }
}

/// What `entries` take encoded in the log.
fn encoded_bytes(entries: &[Entry]) -> u64 {
    entries
        .iter()
        .map(|e| record::encoded_len(e.meta.len(), e.body.len()))
        .sum()
}

/// What a batch's records take encoded, capped at a segment's worth of
/// batch (a batch that fills a segment is written in pieces).
fn batch_bytes(batch: &[Request]) -> usize {
    let encoded: u64 = batch
        .iter()
        .map(|r| match r {
            Request::Append { entries, .. } => encoded_bytes(entries),
            Request::Maintain(_) | Request::SetSync(_) => 0,
        })
        .sum();
    encoded.min(MAX_BATCH_BYTES as u64 * 2) as usize
}

fn request_bytes(r: &Request) -> usize {
    match r {
        Request::Append { entries, .. } => entries.iter().map(|e| e.body.len() + 256).sum(),
        Request::Maintain(_) | Request::SetSync(_) => 0,
    }
}
