//! Segment files: naming, creation, and the scan that finds every intact
//! record again on open, skipping damaged ones.

use std::fs::File;
use std::io::{BufReader, Read, Seek};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::disk::Disk;
use super::record::{self, Head, PREFIX, Prefix};
use super::{StorageError, Written};

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

/// One intact record found by a scan.
#[derive(Debug)]
pub struct Scanned<'a> {
    pub offset: u64,
    pub prefix: Prefix,
    pub head: Head<'a>,
}

impl<'a> Scanned<'a> {
    /// The record as an owner's hooks see it, in segment `segment`.
    pub fn written(&self, segment: u64) -> Written<'a> {
        Written {
            id: self.head.id,
            arrival_nanos: self.head.arrival_nanos,
            segment,
            offset: self.offset,
            prefix: self.prefix,
            meta: self.head.meta,
        }
    }
}

/// What a scan found besides the records.
#[derive(Debug, Default)]
pub struct Scan {
    /// Whether the file starts with the log's magic.
    pub magic_ok: bool,
    /// Where the last intact record ends (the magic's end when none).
    pub valid_len: u64,
    pub file_len: u64,
    /// Damaged records skipped between intact ones.
    pub corrupt: u64,
    /// Where damage starts and the next intact record after it, so that
    /// readers can step over it.
    pub skips: Vec<(u64, u64)>,
    /// Why the bytes after `valid_len` hold no record, if there are any.
    pub stopped: Option<String>,
    /// Whether those bytes are the torn tail of an interrupted write (a
    /// record running past the end of the file, or zeros) rather than
    /// other damage.
    pub torn: bool,
}

/// Reads as much of `buf` as the file has; returns the bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Walks a segment and calls `each` for every intact record, in order.
///
/// With `verify`, every record's checksum is checked (a segment a crash
/// may have torn); without, only prefixes and headers are read (sealed
/// segments, synced whole before the next one started; readers still
/// check each record they read), except for a record whose id is not the
/// one expected: the segment's `first_id`, then each one above the last. A record that fails is skipped: when its
/// length is plausible the scan first looks for the next intact record
/// right after it, otherwise byte by byte, so damage costs only the
/// records it touches. Ids must increase, starting above `after` (the
/// last id of the segments before this one), and `u64::MAX` is never an
/// id (the next id would overflow); a record that breaks either rule
/// counts as damaged.
pub fn scan(
    path: &Path,
    magic: &Magic,
    verify: bool,
    first_id: u64,
    after: Option<u64>,
    mut each: impl FnMut(Scanned<'_>),
) -> Result<Scan, StorageError> {
    let io_err = |e| StorageError::io("reading", path, e);
    let file = File::open(path).map_err(io_err)?;
    let file_len = file.metadata().map_err(io_err)?.len();
    let mut scan = Scan {
        file_len,
        ..Scan::default()
    };
    let mut r = BufReader::with_capacity(1 << 20, &file);
    let mut m = [0u8; 8];
    if read_full(&mut r, &mut m).map_err(io_err)? < m.len() || &m != magic {
        scan.stopped = Some("missing segment header".into());
        return Ok(scan);
    }
    scan.magic_ok = true;
    let mut pos = magic.len() as u64;
    scan.valid_len = pos;
    let mut last_id = after;
    // The id before the next one expected in this segment: a segment's
    // first record has the id the segment is named by.
    let mut last_here = first_id.checked_sub(1);
    let mut buf = Vec::new();
    loop {
        let mut p = [0u8; PREFIX];
        let got = read_full(&mut r, &mut p).map_err(io_err)?;
        if got == 0 {
            break;
        }
        let parsed = (got == PREFIX)
            .then(|| Prefix::parse(&p).ok())
            .flatten()
            .filter(|prefix| pos + prefix.record_len() <= file_len);
        let good = match parsed {
            Some(prefix) if verify => {
                buf.resize(prefix.record_len() as usize, 0);
                buf[..PREFIX].copy_from_slice(&p);
                r.read_exact(&mut buf[PREFIX..]).map_err(io_err)?;
                record::verify(&buf).ok().map(|_| prefix)
            }
            Some(prefix) => {
                buf.resize(PREFIX + prefix.header_len as usize, 0);
                buf[..PREFIX].copy_from_slice(&p);
                r.read_exact(&mut buf[PREFIX..]).map_err(io_err)?;
                // With only headers read, a damaged id would be trusted
                // (and every record after it refused as out of order): a
                // record whose id does not follow the one before it in the
                // segment is checked whole.
                let follows = record::decode_head(&buf[PREFIX..])
                    .is_ok_and(|h| last_here.and_then(|l| l.checked_add(1)) == Some(h.id));
                if follows {
                    r.seek_relative(prefix.body_len() as i64).map_err(io_err)?;
                    Some(prefix)
                } else {
                    buf.resize(prefix.record_len() as usize, 0);
                    let body = PREFIX + prefix.header_len as usize;
                    r.read_exact(&mut buf[body..]).map_err(io_err)?;
                    record::verify(&buf).ok().map(|_| prefix)
                }
            }
            None => None,
        };
        let head = good.and_then(|prefix| {
            let head = record::decode_head(&buf[PREFIX..prefix.body_start()]).ok()?;
            in_order(head.id, last_id).then_some((prefix, head))
        });
        if let Some((prefix, head)) = head {
            last_id = Some(head.id);
            last_here = Some(head.id);
            each(Scanned {
                offset: pos,
                prefix,
                head,
            });
            pos += prefix.record_len();
            scan.valid_len = pos;
            continue;
        }
        // Damage: find the next intact record after it, if there is one.
        let hint = parsed.map(|prefix| pos + prefix.record_len());
        match resync(&file, pos, hint, file_len, last_id).map_err(io_err)? {
            Some(next) => {
                scan.corrupt += 1;
                scan.skips.push((pos, next));
                pos = next;
                r.seek(std::io::SeekFrom::Start(pos)).map_err(io_err)?;
            }
            None => {
                // A write cut short leaves a partial prefix, a record that
                // runs past the end, or (when the size grew before the
                // data arrived) zeros.
                let runs_past_end = got < PREFIX
                    || Prefix::parse(&p).is_ok_and(|q| pos + q.record_len() > file_len);
                let torn = runs_past_end || all_zero(&file, pos, file_len).map_err(io_err)?;
                scan.torn = torn;
                scan.stopped = Some(if torn {
                    "torn record at the end".into()
                } else {
                    format!("damaged data at offset {pos} with no intact record after it")
                });
                break;
            }
        }
    }
    Ok(scan)
}

/// The offset of the first intact record after damage at `from`: first at
/// `hint` (the end the damaged record claims), then at every byte.
fn resync(
    file: &File,
    from: u64,
    hint: Option<u64>,
    file_len: u64,
    last_id: Option<u64>,
) -> std::io::Result<Option<u64>> {
    let rest_len = (file_len - from) as usize;
    let mut rest = vec![0u8; rest_len];
    file.read_exact_at(&mut rest, from)?;
    let intact_at = |at: usize| -> bool {
        let Some(p) = rest.get(at..at + PREFIX) else {
            return false;
        };
        let Ok(prefix) = Prefix::parse(p.try_into().expect("12 bytes")) else {
            return false;
        };
        let Some(rec) = rest.get(at..at + prefix.record_len() as usize) else {
            return false;
        };
        record::verify(rec).is_ok()
            && record::decode_head(&rec[PREFIX..prefix.body_start()])
                .is_ok_and(|h| in_order(h.id, last_id))
    };
    if let Some(h) = hint.filter(|&h| h < file_len)
        && intact_at((h - from) as usize)
    {
        return Ok(Some(h));
    }
    Ok((1..rest_len)
        .find(|&at| intact_at(at))
        .map(|at| from + at as u64))
}

/// Whether `id` may follow `last`: above it, and not `u64::MAX`.
fn in_order(id: u64, last: Option<u64>) -> bool {
    id != u64::MAX && last.is_none_or(|last| id > last)
}

fn all_zero(file: &File, from: u64, to: u64) -> std::io::Result<bool> {
    let mut rest = vec![0u8; (to - from) as usize];
    file.read_exact_at(&mut rest, from)?;
    Ok(rest.iter().all(|&b| b == 0))
}

/// Cuts a segment back to its intact part and returns it opened for
/// writing, with its new length. A torn tail (a write that was
/// interrupted, so never acknowledged) is dropped; other damage at the end
/// is first saved beside the segment as `<segment>.dat.damaged-<offset>`.
pub(crate) fn repair_tail(
    disk: &Disk,
    path: &Path,
    scan: &Scan,
    magic: &Magic,
) -> Result<(File, u64), StorageError> {
    let err = |e| StorageError::io("repairing", path, e);
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(err)?;
    let keep = if scan.magic_ok { scan.valid_len } else { 0 };
    if keep < scan.file_len {
        let reason = scan.stopped.as_deref().unwrap_or("");
        if scan.torn || !scan.magic_ok && scan.file_len < magic.len() as u64 {
            tracing::warn!(segment = %path.display(), reason, bytes = scan.file_len - keep, "cutting a torn record off the end of a log segment");
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
