//! Segment files: naming, creation, reuse, and the scan that finds every
//! intact record again on open, skipping damaged ones.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::StorageError;
use super::disk::Disk;
use super::record;

mod scan;

pub use scan::{Scan, Scanned, scan};

/// The first bytes of every segment file: which log it belongs to and the
/// format version.
pub type Magic = [u8; 8];

pub fn file_name(first_id: u64) -> String {
    format!("segment-{first_id:016x}.dat")
}

fn parse_file_name(name: &str) -> Option<u64> {
    let hex = name.strip_prefix("segment-")?.strip_suffix(".dat")?;
    if hex.len() != 16 {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

/// The segment files in `dir`, oldest first.
pub fn list(dir: &Path) -> Result<Vec<(u64, PathBuf)>, StorageError> {
    let entries = std::fs::read_dir(dir).map_err(|e| StorageError::io("reading", dir, e))?;
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| StorageError::io("reading", dir, e))?;
        if let Some(id) = entry.file_name().to_str().and_then(parse_file_name) {
            out.push((id, entry.path()));
        }
    }
    out.sort_unstable_by_key(|(id, _)| *id);
    Ok(out)
}

pub(crate) fn sync_dir(disk: &Disk, dir: &Path) -> Result<(), StorageError> {
    disk.sync_dir(dir)
        .map_err(|e| StorageError::io("syncing", dir, e))
}

/// Creates an empty segment durably (file and directory entry); returns
/// it opened for reading and writing.
pub(crate) fn create(
    disk: &Disk,
    dir: &Path,
    first_id: u64,
    magic: &Magic,
) -> Result<(PathBuf, File), StorageError> {
    let path = dir.join(file_name(first_id));
    let err = |e| StorageError::io("creating", &path, e);
    let f = disk.create(&path).map_err(err)?;
    disk.write_at(&f, magic, 0)
        .and_then(|()| disk.sync_all(&f))
        .map_err(err)?;
    sync_dir(disk, dir)?;
    Ok((path, f))
}

/// The name a delivered segment's file waits under to become a later
/// segment. Not a segment's name, so scans and readers pass it by.
const SPARE: &str = "spare.dat";

/// A file kept to become the next segment. Its blocks were written
/// before, so writing into them again neither allocates blocks nor grows
/// the file, and `fdatasync` writes back only the data: no inode, no
/// journal commit (docs/performance.md, "Segment files reused").
#[derive(Debug)]
pub(crate) struct Spare {
    pub file: File,
    pub len: u64,
}

/// Deletes a segment's file, or, with `keep`, renames it to be the spare,
/// with `magic` and a sentinel record written after its `data_len` bytes
/// of records, durably; `Some` when it was kept. The caller syncs the
/// directory.
///
/// What the file holds stays past the magic of the segment it becomes
/// until written over. A scan stops at the first intact record there (no
/// record of a segment has an id below the segment's name), and the
/// sentinel, id 0, is such a record after every byte of it, so wherever
/// the new records end there is one after them. The file is not cut back
/// to the sentinel: what an earlier, longer use left past it is older
/// still, and the file ends with that use's sentinel. Cutting freed those
/// blocks (and the ones reserved ahead) in the writer's path: 2-11 ms on
/// ext4 for a file two thirds as long, every acknowledgement waiting
/// (docs/performance.md, "Reused files not cut back").
pub(crate) fn retire(
    disk: &Disk,
    dir: &Path,
    path: &Path,
    keep: Option<u64>,
    magic: &Magic,
) -> io::Result<Option<Spare>> {
    if let Some(data_len) = keep {
        let spare = dir.join(SPARE);
        match disk.rename(path, &spare) {
            Ok(()) => {
                let sentinel = record::sentinel();
                let kept = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(&spare)
                    .and_then(|file| {
                        let len = file.metadata()?.len();
                        disk.write_at(&file, &sentinel, data_len)?;
                        disk.write_at(&file, magic, 0)?;
                        disk.sync_data(&file)?;
                        Ok((file, len.max(data_len + sentinel.len() as u64)))
                    });
                return match kept {
                    Ok((file, len)) => Ok(Some(Spare { file, len })),
                    Err(e) => {
                        tracing::debug!(file = %spare.display(), error = %e, "cannot keep a delivered segment's file for reuse; deleting it");
                        disk.remove(&spare).map(|()| None)
                    }
                };
            }
            Err(e) => {
                tracing::debug!(segment = %path.display(), error = %e, "cannot keep a delivered segment's file for reuse; deleting it");
            }
        }
    }
    disk.remove(path).map(|()| None)
}

/// Deletes the spare file, if there is one; the caller syncs the
/// directory. A spare a previous run left is not reused: it may not have
/// its sentinel yet.
pub(crate) fn discard_spare(disk: &Disk, dir: &Path) -> io::Result<()> {
    match disk.remove(&dir.join(SPARE)) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        r => r,
    }
}

/// Makes the spare the segment named by `first_id`, durably (its name and
/// the directory); returns its path.
pub(crate) fn reuse(disk: &Disk, dir: &Path, first_id: u64) -> Result<PathBuf, StorageError> {
    let path = dir.join(file_name(first_id));
    disk.rename(&dir.join(SPARE), &path)
        .map_err(|e| StorageError::io("renaming the spare segment file to", &path, e))?;
    sync_dir(disk, dir)?;
    Ok(path)
}

/// Cuts a segment back to its intact part and returns it opened for
/// writing, with its new length. A torn tail (a write that was
/// interrupted, so never acknowledged) is dropped, and so is what a reused
/// file held before; other damage at the end is first saved beside the
/// segment as `<segment>.dat.damaged-<offset>`.
pub(crate) fn repair_tail(
    disk: &Disk,
    path: &Path,
    scan: &Scan,
    magic: &Magic,
) -> Result<(File, u64), StorageError> {
    let err = |e| StorageError::io("repairing", path, e);
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(err)?;
    let keep = if scan.magic_ok { scan.valid_len } else { 0 };
    if keep < scan.file_len {
        let reason = scan.stopped.as_deref().unwrap_or("");
        if scan.leftover_at.is_some() && scan.torn_bytes() == 0 {
            tracing::debug!(segment = %path.display(), bytes = scan.file_len - keep, "cutting what a reused segment file held before off its end");
        } else if scan.torn || !scan.magic_ok && scan.file_len < magic.len() as u64 {
            tracing::warn!(segment = %path.display(), reason, bytes = scan.torn_bytes(), "cutting a torn record off the end of a log segment");
        } else {
            let mut tail = vec![0; (scan.file_len - keep) as usize];
            f.read_exact_at(&mut tail, keep).map_err(err)?;
            let aside = path.with_extension(format!("dat.damaged-{keep}"));
            disk.create(&aside)
                .and_then(|a| disk.write_at(&a, &tail, 0).and_then(|()| disk.sync_all(&a)))
                .map_err(|e| {
                    StorageError::io("saving the damaged part of a segment to", &aside, e)
                })?;
            tracing::warn!(segment = %path.display(), reason, bytes = tail.len(), saved_to = %aside.display(), "log segment is damaged at its end; cut off the damaged part and saved it aside");
        }
        disk.set_len(&f, keep).map_err(err)?;
    }
    if !scan.magic_ok {
        disk.write_at(&f, magic, 0).map_err(err)?;
    }
    disk.sync_all(&f).map_err(err)?;
    Ok((f, keep.max(magic.len() as u64)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_by_first_id() {
        assert_eq!(file_name(42), "segment-000000000000002a.dat");
        assert_eq!(parse_file_name("segment-000000000000002a.dat"), Some(42));
        assert_eq!(parse_file_name("segment-2a.dat"), None);
        assert_eq!(parse_file_name("LOCK"), None);
    }
}
