//! `pyroscope.archive`: keeps every profile it receives on local disk, where
//! `pyroscope-relay profiles list/get` and the admin API find it again.
//!
//! ```alloy
//! pyroscope.archive "local" { path = "", retention = "24h", max_size = "1GiB" }
//! ```
//!
//! # Design
//!
//! The archive is one owner of the durable segment log in
//! [`crate::storage`] (record format, group commit, recovery); the write
//! queue is the other. Its segments start with the magic `PYRARC\0\x01`,
//! and a record's metadata is how the profile arrived and its labels:
//! ```text
//! origin: 1 sample_id:str (push)
//!       | 2 n:varint content_type:str* path:str query:str (ingest)
//! n:varint (name:str value:str)*      labels, as received
//! ```
//! and its body the raw_profile (push) or request body (ingest), verbatim.
//! Service and profile type are not stored: they are derived from labels
//! and origin when indexing ([`service_of`], [`profile_type_of`]), so the
//! rule can change without a format change.
//!
//! **Ids** are the log's: assigned in append order, never reused. The admin
//! API and the CLI show them qualified by the component label, `local-42`
//! (a label is an Alloy identifier, so it contains no `-`), which keeps
//! them unique across archives.
//!
//! **Durability.** Every append is fsynced before it is acknowledged
//! (group commit), so an acknowledged profile survives `kill -9` and power
//! loss. A failed fsync fails its batch, turns the component unhealthy,
//! and writing resumes in a new segment.
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
//! first when it must go). This runs after every batch, every second, and on
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
pub(crate) mod record;
pub mod store;
mod time;
mod view;

#[cfg(test)]
mod tests;

pub use error::ArchiveError;
pub use meta::{Filter, NewRecord, Origin, RecordId, RecordMeta, profile_type_of, service_of};
pub use metrics::{ComponentMetrics, Metrics};
pub use store::{Clock, Limits, Stats, Store, StoreOptions};
pub use time::{format_rfc3339, parse_duration, parse_rfc3339, parse_since};
pub(crate) use view::find as find_record;
pub use view::{Listed, archive_label, parse_id, qualified_id};

use futures_util::future::BoxFuture;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::codec::Code;
use crate::pipeline::{AppendError, Appender, Payload, Profile, Receiver, tap};
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
        receiver.install(ArchiveAppender(
            Arc::clone(&store),
            archive_label(component_id).into(),
        ));
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
            let label = archive_label(&self.component_id).into();
            self.receiver
                .install(ArchiveAppender(Arc::clone(&store), label));
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
        on_failure: Some(Arc::new(move |failure: Option<&str>| match failure {
            Some(reason) => health.set_unhealthy(format!(
                "writes to the archive are failing ({reason}); check the disk"
            )),
            None => health.set_healthy(),
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

/// The store and the archive's label (for the ids a live tap shows).
struct ArchiveAppender(Arc<Store>, Arc<str>);

impl Appender for ArchiveAppender {
    fn append(&self, profile: Profile) -> BoxFuture<'_, Result<(), AppendError>> {
        Box::pin(async move {
            let records = records_of(profile);
            let stored = self.0.append(records).await;
            if let Ok(ids) = &stored {
                tap::note(|| tap::Note::Stored {
                    archive: self.1.clone(),
                    ids: ids.iter().map(|id| id.0).collect(),
                });
            }
            stored.map(drop).map_err(|e| {
                let code = match e {
                    ArchiveError::TooLarge { .. } => Code::ResourceExhausted,
                    _ => Code::Unavailable,
                };
                AppendError::new(code, format!("archive: {e}"))
            })
        })
    }
}
