//! `pyroscope-relay queue status`: what every queue under a storage path
//! holds for each endpoint, read from disk without the lock, so it works
//! while the relay runs and while it is stopped.

use std::path::Path;
use std::time::SystemTime;

use serde::Serialize;

use super::{MARKER_FILE, entry};
use crate::storage::{Log, StorageError, load_positions};
use crate::telemetry::civil_time::unix_nanos;

/// One endpoint of one queue.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EndpointStatus {
    pub component: String,
    pub endpoint: String,
    pub pending_profiles: u64,
    pub pending_bytes: u64,
    /// Seconds since the oldest pending profile arrived; 0 when none.
    pub oldest_age_seconds: f64,
}

/// Every queue directory directly under `storage_path`, by component.
pub fn read(storage_path: &Path) -> Result<Vec<EndpointStatus>, StorageError> {
    let entries = std::fs::read_dir(storage_path)
        .map_err(|e| StorageError::io("reading", storage_path, e))?;
    let mut dirs: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.join(MARKER_FILE).is_file())
        .collect();
    dirs.sort();
    let mut out = Vec::new();
    for dir in dirs {
        out.extend(read_queue(&dir)?);
    }
    Ok(out)
}

fn read_queue(dir: &Path) -> Result<Vec<EndpointStatus>, StorageError> {
    let component = std::fs::read_to_string(dir.join(MARKER_FILE))
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    let positions: Vec<(String, u64)> = load_positions(dir).into_iter().collect();
    // Per endpoint: profiles, bytes, oldest arrival.
    let mut found = vec![(0u64, 0u64, i64::MAX); positions.len()];
    let (_log, _) = Log::open_read_only(dir, entry::MAGIC, |w| {
        let (profiles, bytes) = entry::counts(w.meta).unwrap_or((1, 0));
        for (i, (_, position)) in positions.iter().enumerate() {
            if w.id >= *position {
                found[i].0 += profiles;
                found[i].1 += bytes;
                found[i].2 = found[i].2.min(w.arrival_nanos);
            }
        }
    })?;
    let now = unix_nanos(SystemTime::now());
    Ok(positions
        .into_iter()
        .zip(found)
        .map(
            |((endpoint, _), (profiles, bytes, oldest))| EndpointStatus {
                component: component.clone(),
                endpoint,
                pending_profiles: profiles,
                pending_bytes: bytes,
                oldest_age_seconds: if oldest == i64::MAX {
                    0.0
                } else {
                    now.saturating_sub(oldest).max(0) as f64 / 1e9
                },
            },
        )
        .collect())
}
