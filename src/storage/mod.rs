//! The durable segment log under `pyroscope.archive` and the
//! `pyroscope.write` queue: records with checksums in append-only segment
//! files, a group-commit writer thread, recovery that survives torn and
//! damaged files, and readers that read records back by position. It knows
//! nothing about profiles: a record is the owner's metadata bytes and a
//! body.
//!
//! **Directory.** `<dir>/LOCK` (an advisory `flock`, held by the one
//! process that writes) and `<dir>/segment-<first id, 16 hex>.dat`. A
//! segment starts with the owner's 8-byte magic (name and format
//! version) followed by records. The segment with the highest first id is
//! the active one; only it is written. It is closed when the next record
//! would take it past `segment_size`, and a new one is started, named by
//! the next id. A record bigger than that gets a segment of its own.
//!
//! **Reuse.** An owner that is done with the oldest segment may retire it
//! instead of deleting it ([`Control::retire_oldest`]): its file is
//! renamed `<dir>/spare.dat`, given a sentinel record after its records
//! (synced), and renamed again to become the next segment.
//! Writing into blocks that were written before
//! neither allocates them nor changes the file's size, so `fdatasync`
//! writes back the data alone. One file at most is kept; it counts in
//! [`Log::disk_bytes`]. A spare found on open is deleted.
//!
//! **Record.** All integers little-endian:
//! ```text
//! len u32         bytes after the crc field: 4 + header_len + body_len
//! crc u32         CRC-32 (IEEE) of the len field and everything after crc
//! header_len u32
//! header          version u8 = 1 | id u64 | arrival unix nanos i64 | owner's metadata
//! body            the owner's bytes, verbatim
//! ```
//! Ids are `u64`, assigned in append order and never reused: an empty
//! active segment's name keeps the next id across restarts.
//!
//! **Durability.** One writer thread takes every queued append, encodes
//! the records into one buffer and writes it with one `pwrite`. Under
//! [`SyncPolicy::Always`] it then calls `fdatasync` and only after that
//! answers the appenders (group commit: appends arriving during the sync
//! form the next batch). Under [`SyncPolicy::Every`] it answers once
//! written and syncs at least that often: a killed process loses nothing,
//! a power failure can lose that window. A new segment is synced together
//! with its directory before records go into it, and the directory is
//! synced after a segment is deleted. A failed `pwrite` (disk full) is cut
//! off again with `ftruncate` and fails only its batch. A failed
//! `fdatasync` is never retried on the same file (the kernel may have
//! dropped the dirty pages, so a second sync could report success for
//! data that is gone): the segment is sealed at its last committed length,
//! the batch fails, and the next batch starts a new segment; the owner is
//! told through [`Owner::health`] until a batch succeeds again.
//!
//! **Recovery.** Opening scans every segment in order. Sealed segments
//! have only their headers read; the active one is checked record by
//! record. A damaged record is skipped and counted, and the scan goes on
//! at the next intact record; bytes at the end with no intact record after
//! them (a torn write) are cut off the active segment. In a reused file
//! the segment's records end at the first intact record whose id is below
//! the segment's name (no segment holds one): what the file held before,
//! ending with the sentinel (id 0), so there is always such a record after
//! the last new one. That is no damage: it is not counted, and it is cut
//! off the active segment. A reused file that still ends with its
//! sentinel is checked record by record even when sealed, because a torn
//! record there need not run past the end of the file.

mod answer;
mod closer;
#[cfg(test)]
mod damage_tests;
mod disk;
#[cfg(test)]
mod fault_tests;
#[cfg(test)]
mod model_tests;
mod positions;
mod reader;
mod recent;
mod record;
mod recovery;
#[cfg(test)]
mod recovery_tests;
#[cfg(test)]
mod reuse_tests;
mod segment;
mod table;
mod writer;

pub use positions::{load_positions, save_positions};
pub use reader::{Cursor, Next, ReadAhead};
pub use record::{
    Head, MetaReader, PREFIX, Prefix, checksum, decode_head, encoded_len, put_str, put_varint,
};
pub use segment::file_name as segment_file_name;
pub use segment::list as list_segments;
pub use segment::{Magic, Scanned};
pub use table::SegmentInfo;
pub use writer::Control;

use bytes::Bytes;
use std::fs::{File, OpenOptions, TryLockError};
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};
use tokio::sync::{oneshot, watch};

use table::{SharedTable, lock};
use writer::{Core, Request};

/// Where "now" comes from; tests inject their own.
pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;
/// Told how long each `fdatasync` took.
pub type FsyncObserver = Arc<dyn Fn(Duration) + Send + Sync>;

#[derive(Debug, Clone, thiserror::Error)]
pub enum StorageError {
    #[error("{context}: {message}")]
    Io {
        context: String,
        message: String,
        kind: std::io::ErrorKind,
    },
    #[error("{} is in use by another process", .0.display())]
    Locked(PathBuf),
    #[error("{} is opened read-only", .0.display())]
    ReadOnly(PathBuf),
    #[error("the log is closed")]
    Closed,
    #[error("disk write failed: {0}")]
    Write(String),
    #[error("corrupt record: {0}")]
    Corrupt(String),
    #[error("a record of {size} bytes is larger than the largest possible record ({max} bytes)")]
    TooLarge { size: u64, max: u64 },
    /// The owner refused the append (for example: full).
    #[error("{0}")]
    Refused(String),
}

impl StorageError {
    pub(crate) fn io(context: impl std::fmt::Display, path: &Path, source: std::io::Error) -> Self {
        StorageError::Io {
            context: format!("{context} {}", path.display()),
            message: source.to_string(),
            kind: source.kind(),
        }
    }
}

/// When appends are made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPolicy {
    /// `fdatasync` before an append is answered.
    Always,
    /// Answer once written; `fdatasync` at least this often.
    Every(Duration),
}

/// A record to append.
#[derive(Debug, Clone)]
pub struct Entry {
    pub meta: Vec<u8>,
    pub body: Bytes,
}

/// A record that was just written, as the owner is told of it.
#[derive(Debug, Clone, Copy)]
pub struct Written<'a> {
    pub id: u64,
    pub arrival_nanos: i64,
    pub segment: u64,
    pub offset: u64,
    pub prefix: Prefix,
    pub meta: &'a [u8],
}

/// What the owner of a log decides; every hook runs on the writer thread.
pub trait Owner: Send + 'static {
    /// Before an append's records are written: whether `bytes` more may
    /// go in. It may delete old segments to make room.
    fn admit(&mut self, _bytes: u64, _log: &mut Control<'_>) -> Result<(), StorageError> {
        Ok(())
    }
    /// Records are written (and synced under `Always`); called before the
    /// appenders and readers learn of them.
    fn written(&mut self, records: &[Written<'_>]);
    /// After every batch and every tick: delete what the owner's limits say.
    fn maintain(&mut self, log: &mut Control<'_>);
    /// `Some(reason)` when writes start failing, `None` when they work again.
    fn health(&mut self, failure: Option<&str>);
}

/// Options of [`Log::open`].
#[derive(Clone)]
pub struct LogOptions {
    pub magic: Magic,
    pub segment_size: u64,
    pub sync: SyncPolicy,
    /// How often [`Owner::maintain`] runs when nothing is appended.
    pub tick: Duration,
    pub clock: Clock,
    pub fsync_observer: Option<FsyncObserver>,
    /// The writer thread's name.
    pub thread_name: &'static str,
    /// What the log's writes go through (tests make it fail).
    pub(crate) disk: disk::Disk,
}

impl LogOptions {
    pub fn new(magic: Magic, segment_size: u64) -> Self {
        Self {
            magic,
            segment_size,
            sync: SyncPolicy::Always,
            tick: Duration::from_secs(1),
            clock: Arc::new(SystemTime::now),
            fsync_observer: None,
            thread_name: "log-writer",
            disk: disk::Disk::default(),
        }
    }
}

/// What a scan on open found, beside the records it handed over.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Recovery {
    /// Damaged records skipped.
    pub corrupt: u64,
    /// Bytes cut off the end of the active segment.
    pub truncated: u64,
}

/// An open log.
pub struct Log {
    dir: PathBuf,
    magic: Magic,
    table: SharedTable,
    committed: watch::Receiver<u64>,
    recent: Arc<recent::RecentBatches>,
    tx: Option<Mutex<mpsc::Sender<Request>>>,
    writer: Option<JoinHandle<()>>,
    #[cfg(test)]
    disk: disk::Disk,
    _lock: Option<File>,
}

impl Log {
    /// Opens (creating) `dir` for writing: takes the lock, scans every
    /// segment (calling `recovered` for each intact record, oldest first),
    /// repairs the active segment's tail, and starts the writer thread with
    /// `owner`.
    pub fn open(
        dir: &Path,
        options: LogOptions,
        mut recovered: impl FnMut(Written<'_>),
        owner: Box<dyn Owner>,
    ) -> Result<(Log, Recovery), StorageError> {
        std::fs::create_dir_all(dir).map_err(|e| StorageError::io("creating", dir, e))?;
        let lock_path = dir.join("LOCK");
        let lock_file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| StorageError::io("opening", &lock_path, e))?;
        match lock_file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(StorageError::Locked(dir.to_owned())),
            Err(TryLockError::Error(e)) => return Err(StorageError::io("locking", &lock_path, e)),
        }
        let repair = Some(&options.disk);
        let (mut table, active, recovery) =
            recovery::load(dir, &options.magic, repair, &mut recovered)?;
        let (active_id, file, size) = match active {
            Some(a) => a,
            None => {
                let id = table.next_id;
                let (path, file) = segment::create(&options.disk, dir, id, &options.magic)?;
                let size = options.magic.len() as u64;
                table.disk_bytes += size;
                table
                    .segments
                    .insert(id, new_segment(path, &file, size, size)?);
                (id, file, size)
            }
        };
        table.next_id = table.next_id.max(active_id);
        if let Err(e) = segment::discard_spare(&options.disk, dir) {
            tracing::warn!(dir = %dir.display(), error = %e, "could not delete the log's spare segment file");
        }
        let committed_id = table.next_id;
        let table = Arc::new(Mutex::new(table));
        let (committed_tx, committed) = watch::channel(committed_id);
        #[cfg(test)]
        let disk = options.disk.clone();
        let cfg = writer::Config {
            dir: dir.to_owned(),
            magic: options.magic,
            segment_size: options.segment_size,
            sync: options.sync,
            tick: options.tick,
            clock: options.clock,
            fsync_observer: options.fsync_observer,
            disk: options.disk,
        };
        let recent = Arc::new(recent::RecentBatches::default());
        let core = Core::new(
            cfg,
            Arc::clone(&table),
            committed_tx,
            Arc::clone(&recent),
            (active_id, file, size),
        );
        let (tx, rx) = mpsc::channel();
        let handle = std::thread::Builder::new()
            .name(options.thread_name.into())
            .spawn(move || core.run(owner, rx))
            .map_err(|e| StorageError::io("starting the writer of", dir, e))?;
        let _ = tx.send(Request::Maintain(None));
        let log = Log {
            dir: dir.to_owned(),
            magic: options.magic,
            table,
            committed,
            recent,
            tx: Some(Mutex::new(tx)),
            writer: Some(handle),
            #[cfg(test)]
            disk,
            _lock: Some(lock_file),
        };
        Ok((log, recovery))
    }

    /// Opens `dir` to read what it holds now, beside a running writer
    /// (another process): no lock, no repair, no writes.
    pub fn open_read_only(
        dir: &Path,
        magic: Magic,
        mut recovered: impl FnMut(Written<'_>),
    ) -> Result<(Log, Recovery), StorageError> {
        let (table, _, recovery) = recovery::load(dir, &magic, None, &mut recovered)?;
        let (_, committed) = watch::channel(table.next_id);
        let log = Log {
            dir: dir.to_owned(),
            magic,
            table: Arc::new(Mutex::new(table)),
            committed,
            recent: Default::default(),
            tx: None,
            writer: None,
            #[cfg(test)]
            disk: Default::default(),
            _lock: None,
        };
        Ok((log, recovery))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends `entries` in order; returns their ids once they are written
    /// (and synced, under `Always`).
    pub async fn append(&self, entries: Vec<Entry>) -> Result<Range<u64>, StorageError> {
        let (reply, answer) = answer::Reply::new();
        self.send(Request::Append { entries, reply })?;
        answer.await.map_err(|_| StorageError::Closed)?
    }

    /// Runs the owner's maintenance now and waits until it is done.
    pub async fn maintain(&self) {
        let (done, wait) = oneshot::channel();
        if self.send(Request::Maintain(Some(done))).is_ok() {
            let _ = wait.await;
        }
    }

    /// Changes when appends are synced, from the next batch on.
    pub fn set_sync(&self, policy: SyncPolicy) {
        let _ = self.send(Request::SetSync(policy));
    }

    /// Asks for maintenance without waiting.
    pub fn request_maintenance(&self) {
        let _ = self.send(Request::Maintain(None));
    }

    fn send(&self, request: Request) -> Result<(), StorageError> {
        let tx = self
            .tx
            .as_ref()
            .ok_or_else(|| StorageError::ReadOnly(self.dir.clone()))?;
        tx.lock()
            .unwrap_or_else(|e| e.into_inner())
            .send(request)
            .map_err(|_| StorageError::Closed)
    }

    /// Every segment, oldest first.
    pub fn segments(&self) -> Vec<SegmentInfo> {
        lock(&self.table).infos()
    }

    pub fn disk_bytes(&self) -> u64 {
        lock(&self.table).disk_bytes
    }

    /// The id the next record will get; everything below it that is still
    /// in a segment can be read. Changes are announced on [`Log::watch`].
    pub fn next_id(&self) -> u64 {
        *self.committed.borrow()
    }

    /// A receiver that sees [`Log::next_id`] change.
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.committed.clone()
    }

    /// Reads `len` bytes of a segment at `offset`.
    pub fn read_at(&self, segment: u64, offset: u64, len: u64) -> Result<Vec<u8>, StorageError> {
        let file = {
            let table = lock(&self.table);
            let seg = table
                .segments
                .get(&segment)
                .ok_or_else(|| StorageError::Corrupt(format!("segment {segment:016x} is gone")))?;
            if offset + len > seg.size {
                return Err(StorageError::Corrupt(format!(
                    "read past the end of segment {segment:016x}"
                )));
            }
            Arc::clone(&seg.file)
        };
        let mut buf = vec![0; len as usize];
        file.read_exact_at(&mut buf, offset).map_err(|e| {
            StorageError::io(format!("reading segment {segment:016x} of"), &self.dir, e)
        })?;
        Ok(buf)
    }

    /// The whole record at `offset`, checked against its checksum.
    pub fn read_record(&self, segment: u64, offset: u64) -> Result<RecordBytes, StorageError> {
        let p = self.read_at(segment, offset, PREFIX as u64)?;
        let prefix = Prefix::parse(p.as_slice().try_into().expect("12 bytes"))?;
        let buf = self.read_at(segment, offset, prefix.record_len())?;
        record::verify(&buf)?;
        Ok(RecordBytes {
            prefix,
            bytes: Bytes::from(buf),
        })
    }

    #[cfg(test)]
    pub(crate) fn fail_next_sync(&self) {
        self.disk
            .faults()
            .arm(disk::Op::SyncData, disk::Fault::Errno(libc::EIO));
    }

    pub fn magic(&self) -> &Magic {
        &self.magic
    }
}

/// A record read back whole.
#[derive(Debug, Clone)]
pub struct RecordBytes {
    pub prefix: Prefix,
    bytes: Bytes,
}

impl RecordBytes {
    pub fn head(&self) -> Head<'_> {
        record::decode_head(&self.bytes[PREFIX..self.prefix.body_start()]).expect("verified record")
    }

    pub fn body(&self) -> Bytes {
        self.bytes.slice(self.prefix.body_start()..)
    }

    pub fn len(&self) -> u64 {
        self.prefix.record_len()
    }

    pub fn is_empty(&self) -> bool {
        false
    }
}

impl Drop for Log {
    fn drop(&mut self) {
        // Closing the channel ends the writer after the requests queued.
        self.tx = None;
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
    }
}

/// An empty segment's table entry, read through a clone of `file`.
fn new_segment(
    path: PathBuf,
    file: &File,
    size: u64,
    file_len: u64,
) -> Result<table::Segment, StorageError> {
    let read = file
        .try_clone()
        .map_err(|e| StorageError::io("opening", &path, e))?;
    Ok(table::Segment {
        path,
        file: Arc::new(read),
        size,
        file_len,
        count: 0,
        min_arrival: i64::MAX,
        max_arrival: i64::MIN,
        last_id: None,
        skips: Vec::new(),
    })
}
