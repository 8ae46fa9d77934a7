//! `pyroscope.archive`: keeps every profile it receives on local disk, where
//! `pyroscope-relay profiles list/get` and the admin API find it again.
//!
//! ```alloy
//! pyroscope.archive "local" { path = "", retention = "24h", max_size = "1GiB" }
//! ```
//!
//! # Design
//!
//! Plain append-only segment files with an in-memory index; the same log is
//! meant to become the relay's durable queue (at-least-once between receive
//! and send, surviving `kill -9`).
//!
//! **Directory.** `<path>/LOCK` (an advisory `flock`, held by the one
//! process that writes) and `<path>/segment-<first id, 16 hex>.dat`. A
//! segment starts with the 8-byte magic `PYRARC\0\x01` (format version 1)
//! followed by records. The segment with the highest first id is the
//! active one; only it is written to. It is closed when the next record
//! would take it past `segment_size` (`max_size / 8`, at most 64 MiB), and
//! a new one is started, named by the next id. A record bigger than that
//! gets a segment of its own.
//!
//! **Record.** All integers little-endian:
//! ```text
//! len u32       bytes after the crc field: 4 + header_len + body_len
//! crc u32       CRC-32 (IEEE) of the len field and everything after crc
//! header_len u32
//! header        version u8 = 1 | id u64 | arrival unix nanos i64 |
//!               origin: 1 sample_id:str (push)
//!                     | 2 n:varint content_type:str* path:str query:str (ingest) |
//!               n:varint (name:str value:str)*      labels, as received
//! body          the raw_profile (push) or request body (ingest), verbatim
//! ```
//! `str` is a LEB128 length and UTF-8 bytes. Service and profile type are
//! not stored: they are derived from labels and origin when indexing
//! ([`service_of`], [`profile_type_of`]), so the rule can change without a
//! format change. The CRC is `crc32fast` (already built for `flate2`;
//! SIMD, well kept), checked on every read and on recovery.
//!
//! **Ids** are `u64`, assigned in append order and never reused: an empty
//! active segment's name keeps the next id across restarts even when
//! eviction has deleted every record. The admin API and the CLI show them
//! qualified by the component label, `local-42` (a label is an Alloy
//! identifier, so it contains no `-`), which keeps them unique across
//! archives.
//!
//! **Durability: group commit.** Appends are sent to one writer thread.
//! It takes every request queued, encodes their records into one buffer,
//! writes it with one `pwrite` and makes it durable with one `fdatasync`,
//! then indexes the records and answers each request. Requests arriving
//! during the sync form the next batch, so 32 concurrent writers share one
//! sync instead of queueing for 32. A profile is acknowledged to the
//! sender only after its sync returned, so it survives `kill -9` and power
//! loss. A new segment is `fsync`ed together with its directory before
//! records go into it. A failed `pwrite` (disk full) is cut off again with
//! `ftruncate` and fails only that batch; a failed `fdatasync` leaves the
//! page cache in an unknown state, so the store then refuses writes until
//! it is reopened (which re-reads what is really on disk). A request
//! whose batch was split across a segment change can fail after part of
//! it became durable: delivery is at-least-once.
//!
//! **Recovery.** Opening scans the segments in order and rebuilds the
//! index. Sealed segments were synced whole before the next one was
//! started, so only their headers are read; the last segment is read
//! whole and every checksum checked, and it is truncated at the first
//! short or mismatching record (the torn tail of a write that was never
//! acknowledged). [`Store::open_read_only`] (the CLI while the relay
//! runs) scans the same way without the lock and without truncating.
//!
//! **Index.** Per record: id, arrival, segment, offset, lengths, and the
//! interned label set, service and profile type (~100 bytes; label sets
//! repeat, so they are shared). Listing filters in memory and reads the
//! headers of the matches from disk; reading a record is one `pread` and a
//! checksum check.
//!
//! **Eviction.** Whole segments are deleted, oldest first, while the
//! archive takes more than `max_size` on disk or the newest record of the
//! oldest segment is older than `retention` (the active segment is closed
//! first when it must go). This runs after every batch, every 5 s, and on
//! [`Store::set_limits`]. Disk use therefore stays between about
//! `max_size - segment_size` and `max_size`, and records live at most
//! `retention` plus a segment's time span. A single profile that cannot
//! fit `max_size` with its header is refused (`resource_exhausted`).
//!
//! **Measured** (`cargo bench --bench archive`, 2 shared cores, ext4 on a
//! virtual disk, every append fsynced): 1 writer 3.5k profiles/s (2 KB)
//! and 4.0k/s (20 KB), bound by one `fdatasync` per append (~0.25 ms);
//! 32 concurrent writers 45k/s (2 KB) and 15.5k/s (20 KB, ~310 MB/s).
//! On disk: the body plus 129 bytes (4 labels, a 16-character sample id).
//! redb 2.6 on the same machine, one durable transaction per profile:
//! 3.7k/s (2 KB) and 2.4k/s (20 KB) with 1 writer, 3.4k/s and 2.3k/s
//! with 32 (its single writer lock serialises commits, no group commit),
//! and 2.3 KB and 55 KB on disk per 2 KB and 20 KB profile.

pub mod api;
pub mod cli;
mod config;
mod error;
mod index;
mod meta;
mod metrics;
mod record;
mod segment;
pub mod store;
mod time;
mod view;
mod writer;

#[cfg(test)]
mod tests;

pub use error::ArchiveError;
pub use meta::{Filter, NewRecord, Origin, RecordId, RecordMeta, profile_type_of, service_of};
pub use metrics::{ComponentMetrics, Metrics};
pub use store::{Clock, Limits, Stats, Store, StoreOptions};
pub use time::{format_rfc3339, parse_duration, parse_rfc3339, parse_since};
pub use view::{Listed, parse_id, qualified_id};

use futures_util::future::BoxFuture;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::codec::Code;
use crate::pipeline::{AppendError, Appender, Payload, Profile, Receiver};
use crate::runtime::Health;

/// `pyroscope.archive` arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct Arguments {
    /// The archive directory; `None` (or `""` in the config) means
    /// `<storage.path>/<component id>`.
    pub path: Option<PathBuf>,
    pub retention: Duration,
    pub max_size: u64,
}

impl Default for Arguments {
    fn default() -> Self {
        Self {
            path: None,
            retention: Duration::from_secs(24 * 3600),
            max_size: 1 << 30,
        }
    }
}

impl Arguments {
    fn limits(&self) -> Limits {
        Limits::new(self.retention, self.max_size)
    }

    fn dir(&self, data_dir: &std::path::Path) -> PathBuf {
        match &self.path {
            Some(p) if !p.as_os_str().is_empty() => p.clone(),
            _ => data_dir.to_owned(),
        }
    }
}

/// A running `pyroscope.archive` component.
pub struct Archive {
    component_id: String,
    data_dir: PathBuf,
    health: Health,
    receiver: Receiver,
    metrics: Arc<Metrics>,
    current: Mutex<Current>,
}

struct Current {
    args: Arguments,
    dir: PathBuf,
    store: Arc<Store>,
}

impl Archive {
    /// Opens (recovering) the store and routes `receiver` to it.
    /// A write failure that stops the store marks `health` unhealthy.
    pub fn start(
        component_id: &str,
        data_dir: PathBuf,
        receiver: Receiver,
        args: Arguments,
        metrics: Arc<Metrics>,
        health: Health,
    ) -> Result<Archive, ArchiveError> {
        let dir = args.dir(&data_dir);
        let store = Arc::new(open(&dir, &args, &metrics, component_id, &health)?);
        receiver.install(ArchiveAppender(Arc::clone(&store)));
        Ok(Archive {
            component_id: component_id.to_owned(),
            data_dir,
            health,
            receiver,
            metrics,
            current: Mutex::new(Current { args, dir, store }),
        })
    }

    /// A changed directory opens the store there (the old one closes when
    /// its in-flight appends are done); changed limits apply at once.
    pub fn update(&self, args: Arguments) -> Result<(), ArchiveError> {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        let dir = args.dir(&self.data_dir);
        if dir != current.dir {
            let store = Arc::new(open(
                &dir,
                &args,
                &self.metrics,
                &self.component_id,
                &self.health,
            )?);
            // A store that failed is left behind with its directory.
            self.health.set_healthy();
            current.store.set_metrics(None);
            self.receiver.install(ArchiveAppender(Arc::clone(&store)));
            tracing::info!(component_id = %self.component_id, path = %dir.display(), "archive moved");
            *current = Current { args, dir, store };
        } else if args != current.args {
            current.store.set_limits(args.limits());
            current.args = args;
        }
        Ok(())
    }

    /// The store, for the admin API.
    pub fn store(&self) -> Arc<Store> {
        Arc::clone(&self.current.lock().unwrap_or_else(|e| e.into_inner()).store)
    }

    /// The `receiver` export.
    pub fn receiver(&self) -> &Receiver {
        &self.receiver
    }

    pub fn component_id(&self) -> &str {
        &self.component_id
    }

    /// Takes the component down: appends to its receiver fail from now on,
    /// its metrics leave the output, and the store closes once the last
    /// in-flight append and API reader let go of it.
    pub fn stop(self) {
        self.receiver.uninstall();
        self.store().set_metrics(None);
        self.metrics.remove(&self.component_id);
    }
}

fn open(
    dir: &std::path::Path,
    args: &Arguments,
    metrics: &Metrics,
    component_id: &str,
    health: &Health,
) -> Result<Store, ArchiveError> {
    let health = health.clone();
    let options = StoreOptions {
        clock: None,
        metrics: Some(metrics.component(component_id)),
        on_failure: Some(Arc::new(move |reason: &str| {
            health.set_unhealthy(format!(
                "writes to the archive stopped ({reason}); check the disk, then restart or move `path`"
            ));
        })),
    };
    let store = Store::open_with(dir, args.limits(), options)?;
    // The CLI reads the directory without the config; this file lets it
    // name records as the admin API does, also for a custom `path`.
    let file = dir.join(COMPONENT_FILE);
    std::fs::write(&file, component_id).map_err(|e| ArchiveError::io("writing", &file, e))?;
    Ok(store)
}

/// Holds the id of the component that last wrote the directory.
const COMPONENT_FILE: &str = "COMPONENT";

/// The component id recorded in an archive directory, if any.
pub(crate) fn recorded_component(dir: &std::path::Path) -> Option<String> {
    let id = std::fs::read_to_string(dir.join(COMPONENT_FILE)).ok()?;
    Some(id.trim().to_owned()).filter(|id| !id.is_empty())
}

/// The records a profile is stored as: one per push sample, one per
/// `/ingest` request.
pub fn records_of(profile: Profile) -> Vec<NewRecord> {
    match profile.payload {
        Payload::Push(series) => series
            .into_iter()
            .flat_map(|s| {
                let labels = s.labels;
                s.samples.into_iter().map(move |sample| NewRecord {
                    origin: Origin::Push {
                        sample_id: sample.id,
                    },
                    labels: labels.clone(),
                    body: sample.raw_profile,
                })
            })
            .collect(),
        Payload::Ingest(p) => vec![NewRecord {
            origin: Origin::Ingest {
                content_types: p
                    .content_types
                    .iter()
                    .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                    .collect(),
                path: p.path,
                query: p.query,
            },
            labels: p.labels,
            body: p.body,
        }],
    }
}

struct ArchiveAppender(Arc<Store>);

impl Appender for ArchiveAppender {
    fn append(&self, profile: Profile) -> BoxFuture<'_, Result<(), AppendError>> {
        Box::pin(async move {
            let records = records_of(profile);
            self.0.append(records).await.map(drop).map_err(|e| {
                let code = match e {
                    ArchiveError::TooLarge { .. } => Code::ResourceExhausted,
                    _ => Code::Unavailable,
                };
                AppendError::new(code, format!("archive: {e}"))
            })
        })
    }
}
