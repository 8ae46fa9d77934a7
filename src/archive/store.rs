//! The store: segment files on disk, an in-memory index, and the public
//! read/append API. Writing happens on one thread (see `writer.rs`).

use arc_swap::ArcSwapOption;
use bytes::Bytes;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::index::{ArchiveOwner, FailureHook, Shared, State};
use super::record::{Header, MAGIC, decode_meta, encode_meta};
use super::time::from_unix_nanos;
use super::{ArchiveError, ComponentMetrics, Filter, NewRecord, RecordId, RecordMeta};
use crate::storage::{self, Entry, Log, LogOptions, PREFIX, Prefix};

/// Where "now" comes from; tests inject their own.
pub type Clock = storage::Clock;

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
    shared: Arc<Shared>,
    log: Log,
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
        let metrics = options.metrics.map(Arc::new);
        let shared = Arc::new(Shared {
            state: Mutex::new(State::new(limits)),
            metrics: ArcSwapOption::new(metrics),
            on_failure: options.on_failure,
        });
        let mut log_options = LogOptions::new(MAGIC, limits.segment_size);
        log_options.thread_name = "archive-writer";
        if let Some(clock) = options.clock {
            log_options.clock = clock;
        }
        let mut state = State::new(limits);
        let (log, recovery) = Log::open(
            dir,
            log_options,
            |w| state.add(&w),
            Box::new(ArchiveOwner(Arc::clone(&shared))),
        )?;
        if recovery.corrupt > 0 {
            tracing::warn!(dir = %dir.display(), records = recovery.corrupt, "archive skipped damaged records");
        }
        *shared.lock() = state;
        log.request_maintenance();
        Ok(Store { shared, log })
    }

    #[cfg(test)]
    pub(crate) fn fail_next_sync(&self) {
        self.log.fail_next_sync();
    }

    /// Opens `dir` to read what it holds now, beside a running writer
    /// (another process): no lock, no truncation, no writes.
    pub fn open_read_only(dir: &Path) -> Result<Store, ArchiveError> {
        let limits = Limits::new(Duration::MAX, u64::MAX);
        let mut state = State::new(limits);
        let (log, _) = Log::open_read_only(dir, MAGIC, |w| state.add(&w))?;
        Ok(Store {
            shared: Arc::new(Shared {
                state: Mutex::new(state),
                metrics: ArcSwapOption::empty(),
                on_failure: None,
            }),
            log,
        })
    }

    pub fn dir(&self) -> &Path {
        self.log.dir()
    }

    /// Stores `records` in order; returns their ids once they are on disk.
    pub async fn append(&self, records: Vec<NewRecord>) -> Result<Vec<RecordId>, ArchiveError> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let max_size = self.shared.lock().limits.max_size;
        let mut entries = Vec::with_capacity(records.len());
        for r in records {
            let meta = encode_meta(&r.origin, &r.labels);
            let len = storage::encoded_len(meta.len(), r.body.len()) + MAGIC.len() as u64;
            if len > max_size {
                return Err(ArchiveError::TooLarge {
                    size: r.body.len() as u64,
                    max: max_size,
                });
            }
            entries.push(Entry { meta, body: r.body });
        }
        let ids = self.log.append(entries).await?;
        Ok(ids.map(RecordId).collect())
    }

    /// New limits, applied at once (eviction runs right away).
    pub fn set_limits(&self, limits: Limits) {
        self.shared.lock().limits = limits;
        self.log.request_maintenance();
    }

    /// Runs retention and max_size now rather than at the next append or
    /// timer tick (every second), and waits until it is done.
    pub async fn enforce(&self) {
        self.log.maintain().await;
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
        self.shared
            .stats(self.log.disk_bytes(), self.log.segments().len())
    }

    /// The matching records, newest first.
    pub fn list(&self, filter: &Filter) -> Vec<RecordMeta> {
        let picked: Vec<(u64, u64, u64, Prefix, String, String)> = {
            let state = self.shared.lock();
            state
                .entries
                .iter()
                .rev()
                .filter(|e| filter.matches(&e.service, from_unix_nanos(e.arrival_nanos), &e.labels))
                .take(filter.limit.unwrap_or(usize::MAX))
                .map(|e| {
                    (
                        e.id,
                        e.segment,
                        e.offset,
                        e.prefix,
                        e.service.to_string(),
                        e.profile_type.to_string(),
                    )
                })
                .collect()
        };
        let mut out = Vec::with_capacity(picked.len());
        for (id, segment, offset, prefix, service, profile_type) in picked {
            let header = self
                .log
                .read_at(
                    segment,
                    offset + PREFIX as u64,
                    u64::from(prefix.header_len),
                )
                .map_err(ArchiveError::from)
                .and_then(|buf| header_of(&buf));
            match header {
                Ok(h) => out.push(meta(h, service, profile_type, prefix)),
                Err(e) => {
                    tracing::warn!(dir = %self.dir().display(), id, error = %e, "skipping unreadable record")
                }
            }
        }
        out
    }

    /// The record and its body, checked against its checksum.
    pub fn read(&self, id: RecordId) -> Result<Option<(RecordMeta, Bytes)>, ArchiveError> {
        let (segment, offset, service, profile_type) = {
            let state = self.shared.lock();
            let Some(e) = state.find(id.0) else {
                return Ok(None);
            };
            (
                e.segment,
                e.offset,
                e.service.to_string(),
                e.profile_type.to_string(),
            )
        };
        let record = match self.log.read_record(segment, offset) {
            Ok(r) => r,
            // Evicted since the index was read.
            Err(storage::StorageError::Corrupt(_)) if self.shared.lock().find(id.0).is_none() => {
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        };
        let head = record.head();
        let (origin, labels) = decode_meta(head.meta)?;
        let header = Header {
            id: head.id,
            arrival_nanos: head.arrival_nanos,
            origin,
            labels,
        };
        Ok(Some((
            meta(header, service, profile_type, record.prefix),
            record.body(),
        )))
    }
}

/// Decodes the header bytes of a record (after its prefix).
fn header_of(buf: &[u8]) -> Result<Header, ArchiveError> {
    let head = storage::decode_head(buf)?;
    let (origin, labels) = decode_meta(head.meta)?;
    Ok(Header {
        id: head.id,
        arrival_nanos: head.arrival_nanos,
        origin,
        labels,
    })
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
