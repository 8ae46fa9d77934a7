//! Named reader positions, checkpointed beside the segments so that a
//! restart resumes where each reader was instead of replaying everything.
//!
//! The file `POSITIONS` holds one `<next id> <name>` line per reader. It is
//! replaced atomically (written to a temporary file, synced, renamed, and
//! the directory synced), so it is always either the old or the new
//! version. A position may lag behind what was really delivered (delivery
//! is at least once) but never runs ahead of it.

use std::collections::BTreeMap;
use std::path::Path;

use super::StorageError;
use super::disk::Disk;
use super::segment::sync_dir;

const FILE: &str = "POSITIONS";

/// The checkpointed positions in `dir`; empty when there are none. A line
/// that cannot be read is skipped with a warning (that reader then starts
/// from the oldest record).
pub fn load_positions(dir: &Path) -> BTreeMap<String, u64> {
    let path = dir.join(FILE);
    let Ok(bytes) = std::fs::read(&path) else {
        return BTreeMap::new();
    };
    // Damage to one line (bytes that are not UTF-8) loses only that line.
    let text = String::from_utf8_lossy(&bytes);
    let mut out = BTreeMap::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        match line
            .split_once(' ')
            .map(|(id, name)| (id.parse::<u64>(), name))
        {
            Some((Ok(id), name)) if !name.is_empty() => {
                out.insert(name.to_owned(), id);
            }
            _ => tracing::warn!(file = %path.display(), line, "unreadable position line skipped"),
        }
    }
    out
}

/// Replaces the checkpoint with `positions`.
pub fn save_positions(dir: &Path, positions: &BTreeMap<String, u64>) -> Result<(), StorageError> {
    write(&Disk::default(), dir, positions)
}

pub(crate) fn write(
    disk: &Disk,
    dir: &Path,
    positions: &BTreeMap<String, u64>,
) -> Result<(), StorageError> {
    let path = dir.join(FILE);
    let tmp = dir.join(format!("{FILE}.tmp"));
    let mut text = String::new();
    for (name, id) in positions {
        // A name is one line; a newline in it would split it.
        text.push_str(&format!("{id} {}\n", name.replace('\n', " ")));
    }
    disk.create(&tmp)
        .and_then(|f| {
            disk.write_at(&f, text.as_bytes(), 0)
                .and_then(|()| disk.sync_all(&f))
        })
        .map_err(|e| StorageError::io("writing", &tmp, e))?;
    disk.rename(&tmp, &path)
        .map_err(|e| StorageError::io("replacing", &path, e))?;
    sync_dir(disk, dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_skips_damaged_lines() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load_positions(dir.path()).is_empty());
        let mut p = BTreeMap::new();
        p.insert("http://a:4040".to_owned(), 17);
        p.insert("http://b:4040/x y".to_owned(), 3);
        save_positions(dir.path(), &p).unwrap();
        assert_eq!(load_positions(dir.path()), p);
        std::fs::write(dir.path().join(FILE), "x http://a\n5 http://b\n9\n").unwrap();
        let loaded = load_positions(dir.path());
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded["http://b"], 5);
    }
}
