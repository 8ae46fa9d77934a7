//! The store: segment files on disk, an in-memory index, and the public
//! read/append API. Writing happens on one thread (see `writer.rs`).

use arc_swap::ArcSwapOption;
use bytes::Bytes;
use std::fs::{File, OpenOptions, TryLockError};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};
use tokio::sync::oneshot;

use super::index::{FailureHook, Shared, create_segment, load};
use super::record::{self, Header, MAGIC, PREFIX, Prefix};
use super::time::from_unix_nanos;
use super::writer::{Request, Writer};
use super::{ArchiveError, ComponentMetrics, Filter, NewRecord, RecordId, RecordMeta};

/// Where "now" comes from; tests inject their own.
pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// How much the store keeps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    pub retention: Duration,
    pub max_size: u64,
    /// Size at which the active segment is closed and a new one started.
    pub segment_size: u64,
}

impl Limits {
    /// Segments of `max_size / 8`, at most 64 MiB.
    pub fn new(retention: Duration, max_size: u64) -> Self {
        Self {
            retention,
            max_size,
            segment_size: (max_size / 8).clamp(1, 64 << 20),
        }
    }
}

/// Optional parts of [`Store::open_with`].
#[derive(Clone, Default)]
pub struct StoreOptions {
    pub clock: Option<Clock>,
    pub metrics: Option<ComponentMetrics>,
    pub on_failure: Option<FailureHook>,
}

/// How much the store holds now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    pub profiles: usize,
    pub segments: usize,
    pub disk_bytes: u64,
}

/// An archive directory. Appends are durable (fsynced) when they return;
/// concurrent appends share one fsync.
pub struct Store {
    dir: PathBuf,
    shared: Arc<Shared>,
    tx: Option<Mutex<mpsc::Sender<Request>>>,
    writer: Option<JoinHandle<()>>,
    _lock: Option<File>,
}

impl Store {
    pub fn open(dir: &Path, limits: Limits) -> Result<Store, ArchiveError> {
        Self::open_with(dir, limits, StoreOptions::default())
    }

    /// Opens (creating) `dir` for writing: takes the writer lock, rebuilds
    /// the index, truncates a torn record at the end of the last segment,
    /// and starts the writer thread.
    pub fn open_with(
        dir: &Path,
        limits: Limits,
        options: StoreOptions,
    ) -> Result<Store, ArchiveError> {
        std::fs::create_dir_all(dir).map_err(|e| ArchiveError::io("creating", dir, e))?;
        let lock_path = dir.join("LOCK");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| ArchiveError::io("opening", &lock_path, e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(ArchiveError::Locked(dir.to_owned())),
            Err(TryLockError::Error(e)) => return Err(ArchiveError::io("locking", &lock_path, e)),
        }
        let (mut state, last) = load(dir, limits, true)?;
        let (active_id, active, active_size) = match last {
            Some((id, file)) => {
                let size = state.segments[&id].size;
                (id, file, size)
            }
            None => {
                let id = state.entries.back().map_or(1, |e| e.id + 1);
                let (file, seg) = create_segment(dir, id)?;
                state.disk_bytes += seg.size;
                state.segments.insert(id, seg);
                (id, file, MAGIC.len() as u64)
            }
        };
        let next_id = state
            .entries
            .back()
            .map_or(active_id, |e| e.id + 1)
            .max(active_id);
        let metrics = options.metrics.map(Arc::new);
        if let Some(m) = &metrics {
            m.set_usage(state.entries.len(), state.disk_bytes);
        }
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            metrics: ArcSwapOption::new(metrics),
            on_failure: options.on_failure,
            #[cfg(test)]
            fail_next_sync: Default::default(),
        });
        let clock = options.clock.unwrap_or_else(|| Arc::new(SystemTime::now));
        let (tx, rx) = mpsc::channel();
        let writer = Writer::new(
            Arc::clone(&shared),
            dir.to_owned(),
            clock,
            active,
            active_id,
            active_size,
            next_id,
        );
        let handle = std::thread::Builder::new()
            .name("archive-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| ArchiveError::io("starting the writer of", dir, e))?;
        let _ = tx.send(Request::Enforce(None));
        Ok(Store {
            dir: dir.to_owned(),
            shared,
            tx: Some(Mutex::new(tx)),
            writer: Some(handle),
            _lock: Some(lock),
        })
    }

    #[cfg(test)]
    pub(crate) fn shared_for_tests(&self) -> &Shared {
        &self.shared
    }

    /// Opens `dir` to read what it holds now, beside a running writer
    /// (another process): no lock, no truncation, no writes.
    pub fn open_read_only(dir: &Path) -> Result<Store, ArchiveError> {
        let limits = Limits::new(Duration::MAX, u64::MAX);
        let (state, _) = load(dir, limits, false)?;
        Ok(Store {
            dir: dir.to_owned(),
            shared: Arc::new(Shared {
                state: Mutex::new(state),
                metrics: ArcSwapOption::empty(),
                on_failure: None,
                #[cfg(test)]
                fail_next_sync: Default::default(),
            }),
            tx: None,
            writer: None,
            _lock: None,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stores `records` in order; returns their ids once they are on disk.
    pub async fn append(&self, records: Vec<NewRecord>) -> Result<Vec<RecordId>, ArchiveError> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, answer) = oneshot::channel();
        self.send(Request::Append { records, reply })?;
        answer.await.map_err(|_| ArchiveError::Closed)?
    }

    /// New limits, applied at once (eviction runs right away).
    pub fn set_limits(&self, limits: Limits) {
        self.shared.lock().limits = limits;
        let _ = self.send(Request::Enforce(None));
    }

    /// Runs retention and max_size now rather than at the next append or
    /// timer tick (every few seconds), and waits until it is done.
    pub async fn enforce(&self) {
        let (done, wait) = oneshot::channel();
        if self.send(Request::Enforce(Some(done))).is_ok() {
            let _ = wait.await;
        }
    }

    fn send(&self, request: Request) -> Result<(), ArchiveError> {
        let tx = self
            .tx
            .as_ref()
            .ok_or_else(|| ArchiveError::ReadOnly(self.dir.clone()))?;
        tx.lock()
            .unwrap_or_else(|e| e.into_inner())
            .send(request)
            .map_err(|_| ArchiveError::Closed)
    }

    /// Where this store reports its metrics; `None` detaches it.
    pub fn set_metrics(&self, metrics: Option<ComponentMetrics>) {
        if let Some(m) = &metrics {
            let s = self.stats();
            m.set_usage(s.profiles, s.disk_bytes);
        }
        self.shared.metrics.store(metrics.map(Arc::new));
    }

    pub fn stats(&self) -> Stats {
        self.shared.lock().stats()
    }

    /// The matching records, newest first.
    pub fn list(&self, filter: &Filter) -> Vec<RecordMeta> {
        let picked: Vec<(Arc<File>, u64, u64, Prefix, String, String)> = {
            let state = self.shared.lock();
            state
                .entries
                .iter()
                .rev()
                .filter(|e| filter.matches(&e.service, from_unix_nanos(e.arrival_nanos), &e.labels))
                .take(filter.limit.unwrap_or(usize::MAX))
                .filter_map(|e| {
                    let seg = state.segments.get(&e.segment)?;
                    Some((
                        Arc::clone(&seg.file),
                        e.id,
                        e.offset,
                        e.prefix,
                        e.service.to_string(),
                        e.profile_type.to_string(),
                    ))
                })
                .collect()
        };
        let mut out = Vec::with_capacity(picked.len());
        for (file, id, offset, prefix, service, profile_type) in picked {
            let mut buf = vec![0; prefix.header_len as usize];
            let header = file
                .read_exact_at(&mut buf, offset + PREFIX as u64)
                .map_err(|e| ArchiveError::Corrupt(e.to_string()))
                .and_then(|()| record::decode_header(&buf));
            match header {
                Ok(h) => out.push(meta(h, service, profile_type, prefix)),
                Err(e) => {
                    tracing::warn!(dir = %self.dir.display(), id, error = %e, "skipping unreadable record")
                }
            }
        }
        out
    }

    /// The record and its body, checked against its checksum.
    pub fn read(&self, id: RecordId) -> Result<Option<(RecordMeta, Bytes)>, ArchiveError> {
        let (file, offset, prefix, service, profile_type) = {
            let state = self.shared.lock();
            let Some(e) = state.find(id.0) else {
                return Ok(None);
            };
            let Some(seg) = state.segments.get(&e.segment) else {
                return Ok(None);
            };
            (
                Arc::clone(&seg.file),
                e.offset,
                e.prefix,
                e.service.to_string(),
                e.profile_type.to_string(),
            )
        };
        let mut buf = vec![0; prefix.record_len() as usize];
        file.read_exact_at(&mut buf, offset)
            .map_err(|e| ArchiveError::io(format!("reading record {id} of"), &self.dir, e))?;
        record::verify(&buf)?;
        let header_end = PREFIX + prefix.header_len as usize;
        let header = record::decode_header(&buf[PREFIX..header_end])?;
        let body = Bytes::from(buf).slice(header_end..);
        Ok(Some((meta(header, service, profile_type, prefix), body)))
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        // Closing the channel ends the writer after the requests queued.
        self.tx = None;
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
    }
}

fn meta(h: Header, service: String, profile_type: String, prefix: Prefix) -> RecordMeta {
    RecordMeta {
        id: RecordId(h.id),
        arrival: from_unix_nanos(h.arrival_nanos),
        service,
        profile_type,
        labels: h.labels,
        size: prefix.body_len(),
        origin: h.origin,
    }
}
