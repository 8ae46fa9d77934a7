//! The writer thread: group commit, segment rotation and eviction.
//!
//! Appends queue on a channel. The thread takes every request queued,
//! writes all their records with one `write` per segment and makes them
//! durable with one `fdatasync`, then indexes them and answers each
//! request. Requests that arrive during the sync form the next batch, so
//! N concurrent writers share each sync.

use std::fs::File;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::{Arc, mpsc};
use std::time::Duration;
use tokio::sync::oneshot;

use super::index::{Shared, create_segment};
use super::record::{self, Header, MAGIC, PREFIX, Prefix};
use super::store::Clock;
use super::time::unix_nanos;
use super::{ArchiveError, NewRecord, Origin, RecordId};

/// How often retention is checked when nothing is appended.
const ENFORCE_EVERY: Duration = Duration::from_secs(5);
/// A batch stops growing at this many body bytes...
const MAX_BATCH_BYTES: usize = 16 << 20;
/// ...or requests.
const MAX_BATCH_REQUESTS: usize = 1024;

type Reply = oneshot::Sender<Result<Vec<RecordId>, ArchiveError>>;

pub(crate) enum Request {
    Append {
        records: Vec<NewRecord>,
        reply: Reply,
    },
    /// Run eviction now; answer when done.
    Enforce(Option<oneshot::Sender<()>>),
}

pub(crate) struct Writer {
    shared: Arc<Shared>,
    dir: PathBuf,
    clock: Clock,
    active: File,
    active_id: u64,
    active_size: u64,
    next_id: u64,
    /// Set when an fsync failed: what is on disk is then unknown.
    failed: Option<String>,
    /// Encoded records not yet written, and where each starts in `buf`.
    buf: Vec<u8>,
    staged: Vec<(usize, Prefix, Header)>,
}

impl Writer {
    pub fn new(
        shared: Arc<Shared>,
        dir: PathBuf,
        clock: Clock,
        active: File,
        active_id: u64,
        active_size: u64,
        next_id: u64,
    ) -> Self {
        Self {
            shared,
            dir,
            clock,
            active,
            active_id,
            active_size,
            next_id,
            failed: None,
            buf: Vec::new(),
            staged: Vec::new(),
        }
    }

    pub fn run(mut self, rx: mpsc::Receiver<Request>) {
        loop {
            let first = match rx.recv_timeout(ENFORCE_EVERY) {
                Ok(r) => r,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    self.enforce();
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
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
            let enforced = self.process(batch);
            for done in enforced {
                let _ = done.send(());
            }
        }
    }

    /// Writes a batch; returns the enforce requests it held.
    fn process(&mut self, batch: Vec<Request>) -> Vec<oneshot::Sender<()>> {
        let limits = self.shared.lock().limits;
        // Each request's id range, or its error.
        let mut answers: Vec<(Reply, Result<Range<u64>, ArchiveError>)> = Vec::new();
        let mut error: Option<String> = None;
        let mut last_durable = self.next_id - 1;
        let mut enforced = Vec::new();
        for request in batch {
            let (records, reply) = match request {
                Request::Append { records, reply } => (records, reply),
                Request::Enforce(done) => {
                    enforced.extend(done);
                    continue;
                }
            };
            if let Some(f) = &self.failed {
                answers.push((reply, Err(ArchiveError::Failed(f.clone()))));
                continue;
            }
            if let Some(e) = &error {
                answers.push((reply, Err(ArchiveError::Write(e.clone()))));
                continue;
            }
            if let Some(big) = records
                .iter()
                .find(|r| max_record_len(r) + MAGIC.len() as u64 > limits.max_size)
            {
                let size = big.body.len() as u64;
                answers.push((
                    reply,
                    Err(ArchiveError::TooLarge {
                        size,
                        max: limits.max_size,
                    }),
                ));
                continue;
            }
            let first = self.next_id;
            let staged = records
                .into_iter()
                .try_for_each(|rec| self.stage(rec, limits.segment_size, &mut last_durable));
            match staged {
                Ok(()) => answers.push((reply, Ok(first..self.next_id))),
                Err(e) => {
                    error = Some(e.to_string());
                    answers.push((reply, Err(e)));
                }
            }
        }
        if error.is_some() {
            self.discard();
        } else if let Err(e) = self.flush(&mut last_durable) {
            error = Some(e.to_string());
        }
        // Evict before answering, so no caller sees the archive over its limits.
        self.enforce();
        for (reply, answer) in answers {
            let answer = answer.and_then(|ids| {
                if ids.is_empty() || ids.end - 1 <= last_durable {
                    Ok(ids.map(RecordId).collect())
                } else if let Some(f) = &self.failed {
                    Err(ArchiveError::Failed(f.clone()))
                } else {
                    Err(ArchiveError::Write(error.clone().unwrap_or_default()))
                }
            });
            let _ = reply.send(answer);
        }
        enforced
    }

    /// Encodes one record into the batch, starting a new segment first
    /// when it would overflow the active one.
    fn stage(
        &mut self,
        rec: NewRecord,
        segment_size: u64,
        last_durable: &mut u64,
    ) -> Result<(), ArchiveError> {
        let header = Header {
            id: self.next_id,
            arrival_nanos: unix_nanos((self.clock)()),
            origin: rec.origin,
            labels: rec.labels,
        };
        let start = self.buf.len();
        record::encode(&header, &rec.body, &mut self.buf)?;
        let record_len = (self.buf.len() - start) as u64;
        let used = self.active_size + start as u64;
        let mut at = start;
        if used > MAGIC.len() as u64 && used + record_len > segment_size {
            let tail = self.buf.split_off(start);
            self.flush(last_durable)?;
            self.rotate()?;
            self.buf = tail;
            at = 0;
        }
        let prefix = Prefix::parse(self.buf[at..at + PREFIX].try_into().expect("12 bytes"))?;
        self.staged.push((at, prefix, header));
        self.next_id += 1;
        Ok(())
    }

    fn sync(&self) -> std::io::Result<()> {
        #[cfg(test)]
        if self
            .shared
            .fail_next_sync
            .swap(false, std::sync::atomic::Ordering::Relaxed)
        {
            return Err(std::io::Error::other("injected fsync failure"));
        }
        self.active.sync_data()
    }

    /// From now on every append is refused; whoever watches health is told.
    fn fail(&mut self, reason: String) {
        tracing::error!(dir = %self.dir.display(), %reason, "archive stops accepting writes");
        if let Some(hook) = &self.shared.on_failure {
            hook(&reason);
        }
        self.failed = Some(reason);
    }

    /// Writes and syncs the batch, then indexes it.
    fn flush(&mut self, last_durable: &mut u64) -> Result<(), ArchiveError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let at = self.active_size;
        if let Err(e) = self.active.write_all_at(&self.buf, at) {
            self.discard();
            // Cut off a partial write so the segment stays parseable.
            if let Err(e2) = self.active.set_len(at) {
                self.fail(format!("{e}; then truncating: {e2}"));
            }
            return Err(ArchiveError::Write(e.to_string()));
        }
        if let Err(e) = self.sync() {
            self.discard();
            self.fail(format!("fsync: {e}"));
            return Err(ArchiveError::Failed(format!("fsync: {e}")));
        }
        let written = self.buf.len() as u64;
        let mut profiles = 0;
        let mut body_bytes = 0;
        {
            let mut state = self.shared.lock();
            for (offset, prefix, header) in self.staged.drain(..) {
                *last_durable = header.id;
                profiles += 1;
                body_bytes += prefix.body_len();
                state.add(self.active_id, at + offset as u64, prefix, header);
            }
            if let Some(seg) = state.segments.get_mut(&self.active_id) {
                seg.size += written;
            }
            state.disk_bytes += written;
            if let Some(m) = self.shared.metrics.load().as_ref() {
                m.stored_profiles.inc_by(profiles);
                m.stored_bytes.inc_by(body_bytes);
                m.set_usage(state.entries.len(), state.disk_bytes);
            }
        }
        self.active_size += written;
        self.buf.clear();
        Ok(())
    }

    fn discard(&mut self) {
        self.buf.clear();
        self.staged.clear();
    }

    /// Closes the active segment and starts a new one named by the next id.
    fn rotate(&mut self) -> Result<(), ArchiveError> {
        let (file, seg) = create_segment(&self.dir, self.next_id)?;
        let mut state = self.shared.lock();
        state.disk_bytes += seg.size;
        state.segments.insert(self.next_id, seg);
        self.active = file;
        self.active_id = self.next_id;
        self.active_size = MAGIC.len() as u64;
        Ok(())
    }

    /// Deletes whole segments, oldest first, while the archive is over
    /// `max_size` or its oldest segment's newest record is older than
    /// `retention`. The active segment is first closed when it must go.
    fn enforce(&mut self) {
        let now = unix_nanos((self.clock)());
        let mut evicted = 0;
        loop {
            let mut state = self.shared.lock();
            let limits = state.limits;
            let cutoff =
                now.saturating_sub(i64::try_from(limits.retention.as_nanos()).unwrap_or(i64::MAX));
            let Some((&first, seg)) = state.segments.first_key_value() else {
                break;
            };
            let expired = seg.max_arrival < cutoff;
            if !(expired || state.disk_bytes > limits.max_size) {
                break;
            }
            if first == self.active_id {
                if seg.count == 0 {
                    break;
                }
                drop(state);
                if let Err(e) = self.rotate() {
                    tracing::warn!(error = %e, "archive could not start a new segment to evict the old one");
                    break;
                }
                continue;
            }
            let Some(seg) = state.remove_oldest() else {
                break;
            };
            drop(state);
            evicted += seg.count;
            if let Err(e) = std::fs::remove_file(&seg.path) {
                tracing::warn!(segment = %seg.path.display(), error = %e, "archive could not delete an evicted segment");
            }
        }
        let mut state = self.shared.lock();
        if evicted > 0 {
            state.prune_interned();
        }
        if let Some(m) = self.shared.metrics.load().as_ref() {
            m.evicted_profiles.inc_by(evicted);
            m.set_usage(state.entries.len(), state.disk_bytes);
        }
    }
}

fn request_bytes(r: &Request) -> usize {
    match r {
        Request::Append { records, .. } => records.iter().map(|r| r.body.len() + 256).sum(),
        Request::Enforce(_) => 0,
    }
}

/// An upper bound of a record's size on disk, header included.
fn max_record_len(r: &NewRecord) -> u64 {
    let strings: usize = match &r.origin {
        Origin::Push { sample_id } => 10 + sample_id.len(),
        Origin::Ingest {
            content_types,
            path,
            query,
        } => {
            30 + path.len()
                + query.len()
                + content_types.iter().map(|c| 10 + c.len()).sum::<usize>()
        }
    };
    let labels: usize = r
        .labels
        .iter()
        .map(|l| 20 + l.name.len() + l.value.len())
        .sum();
    // prefix, version, id, arrival, kind, label count
    (PREFIX + 1 + 8 + 8 + 1 + 10 + strings + labels + r.body.len()) as u64
}
