//! The scan that finds every intact record of a segment again on open:
//! damaged records are skipped, and in a reused file (see
//! [`super::retire`]) the scan ends where the file's earlier content
//! begins.

use std::fs::File;
use std::io::{BufReader, Read, Seek};
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::Magic;
use crate::storage::record::{self, Head, PEEK, PREFIX, Prefix};
use crate::storage::{StorageError, Written};

/// How much of a file the search for the next intact record after damage
/// reads at a time.
const WINDOW: usize = 1 << 20;
/// Ids within a segment follow each other, so the next intact record after
/// damage is at most this far above the last one: a bound that lets the
/// search skip nearly every offset before computing a checksum.
const MAX_ID_GAP: u64 = 1 << 32;

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
    /// record running past the end of the file, or zeros), or what a reused
    /// file held before, rather than other damage.
    pub torn: bool,
    /// Where a record of the file's earlier use starts (a segment made from
    /// a reused file): from there on the file holds nothing of this
    /// segment, and that is not damage.
    pub leftover_at: Option<u64>,
}

impl Scan {
    /// Bytes past the intact records that are neither damage nor a reused
    /// file's earlier content: what a torn write left.
    pub fn torn_bytes(&self) -> u64 {
        self.leftover_at
            .unwrap_or(self.file_len)
            .saturating_sub(self.valid_len)
    }
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
/// counts as damaged. An intact record whose id is below `first_id` was
/// written before the file was reused under this segment's name (no
/// segment holds ids below its name): the segment's records end there.
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
    // In a reused file a torn record need not run past the end of the
    // file (the file's earlier content follows it), so only its checksum
    // tells: such a file is checked whole while it still ends with its
    // sentinel. (Once the new records outgrow it, the file ends where they
    // do, as a new file does.)
    let verify =
        verify || ends_with_sentinel(&file, file_len, magic.len() as u64).map_err(io_err)?;
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
            Some((prefix, head))
        });
        if head.is_some_and(|(_, h)| h.id < first_id) {
            scan.left_over_from(pos);
            break;
        }
        if let Some((prefix, head)) = head.filter(|(_, h)| in_order(h.id, last_id)) {
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
        let ids = Ids { first_id, last_id };
        match resync(&file, pos, hint, file_len, ids).map_err(io_err)? {
            After::Record(next) => {
                scan.corrupt += 1;
                scan.skips.push((pos, next));
                pos = next;
                r.seek(std::io::SeekFrom::Start(pos)).map_err(io_err)?;
            }
            After::Leftover(at) => {
                // The last write into a reused file was cut short.
                scan.left_over_from(at);
                break;
            }
            After::Nothing if sentinel_rest(&file, pos, file_len).map_err(io_err)? => {
                // New records ended inside a reused file's sentinel.
                scan.left_over_from(pos);
                break;
            }
            After::Nothing => {
                // A write cut short leaves a partial prefix, a record that
                // runs past the end, less than the smallest record (also
                // what is left of a reused file's sentinel when the new
                // records end inside it), or (when the size grew before
                // the data arrived) zeros.
                let runs_past_end = got < PREFIX
                    || file_len - pos < record::MIN_RECORD
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

impl Scan {
    fn left_over_from(&mut self, at: u64) {
        self.leftover_at = Some(at);
        self.torn = true;
        self.stopped = Some("the rest is what the reused file held before".into());
    }
}

/// The ids a record after damage may have.
#[derive(Clone, Copy)]
struct Ids {
    first_id: u64,
    last_id: Option<u64>,
}

impl Ids {
    /// Whether a record with this id is worth a checksum: one that may
    /// follow the last, or one of a reused file's earlier records.
    fn plausible(&self, id: u64) -> bool {
        let lo = self
            .last_id
            .map_or(self.first_id, |l| l.saturating_add(1).max(self.first_id));
        id < self.first_id || id.checked_sub(lo).is_some_and(|gap| gap < MAX_ID_GAP)
    }
}

/// What a search after damage found.
enum After {
    /// The next intact record of the segment starts here.
    Record(u64),
    /// An intact record of a reused file's earlier content starts here.
    Leftover(u64),
    Nothing,
}

/// The first intact record after damage at `from`: first at `hint` (the
/// end the damaged record claims), then at every byte, a window at a
/// time.
fn resync(
    file: &File,
    from: u64,
    hint: Option<u64>,
    file_len: u64,
    ids: Ids,
) -> std::io::Result<After> {
    let classify = |at: u64, prefix: Prefix| -> std::io::Result<Option<After>> {
        if at + prefix.record_len() > file_len {
            return Ok(None);
        }
        let mut rec = vec![0u8; prefix.record_len() as usize];
        file.read_exact_at(&mut rec, at)?;
        if record::verify(&rec).is_err() {
            return Ok(None);
        }
        let Ok(head) = record::decode_head(&rec[PREFIX..prefix.body_start()]) else {
            return Ok(None);
        };
        Ok(if head.id < ids.first_id {
            Some(After::Leftover(at))
        } else if in_order(head.id, ids.last_id) {
            Some(After::Record(at))
        } else {
            None
        })
    };
    let mut window = vec![0u8; (WINDOW + PEEK).min((file_len - from) as usize)];
    if let Some(h) = hint.filter(|&h| h + PEEK as u64 <= file_len) {
        file.read_exact_at(&mut window[..PEEK], h)?;
        if let Some((prefix, _)) = record::peek(&window[..PEEK])
            && let Some(found) = classify(h, prefix)?
        {
            return Ok(found);
        }
    }
    let mut at = from + 1;
    while at + PEEK as u64 <= file_len {
        let n = window.len().min((file_len - at) as usize);
        file.read_exact_at(&mut window[..n], at)?;
        let starts = n - PEEK + 1;
        for i in 0..starts {
            let Some((prefix, id)) = record::peek(&window[i..i + PEEK]) else {
                continue;
            };
            if ids.plausible(id)
                && let Some(found) = classify(at + i as u64, prefix)?
            {
                return Ok(found);
            }
        }
        at += starts as u64;
    }
    Ok(After::Nothing)
}

/// Whether the file ends with the sentinel record of a reused file (see
/// [`super::retire`]), whole, after the segment's `header`.
fn ends_with_sentinel(file: &File, file_len: u64, header: u64) -> std::io::Result<bool> {
    let len = record::MIN_RECORD;
    if file_len < header + len {
        return Ok(false);
    }
    sentinel_tail_from(file, file_len - len, file_len)
}

/// Whether the bytes from `pos` to the end are the last bytes of a reused
/// file's sentinel, fewer than a whole one.
fn sentinel_rest(file: &File, pos: u64, file_len: u64) -> std::io::Result<bool> {
    let rest = file_len - pos;
    if rest == 0 || rest >= record::MIN_RECORD {
        return Ok(false);
    }
    sentinel_tail_from(file, pos, file_len)
}

/// Whether the bytes from `from` to the end of the file (no more than a
/// sentinel's length) are the sentinel's last bytes.
fn sentinel_tail_from(file: &File, from: u64, file_len: u64) -> std::io::Result<bool> {
    let mut bytes = vec![0u8; (file_len - from) as usize];
    file.read_exact_at(&mut bytes, from)?;
    Ok(record::sentinel().ends_with(&bytes))
}

/// Whether `id` may follow `last`: above it, and not `u64::MAX`.
fn in_order(id: u64, last: Option<u64>) -> bool {
    id != u64::MAX && last.is_none_or(|last| id > last)
}

fn all_zero(file: &File, from: u64, to: u64) -> std::io::Result<bool> {
    let mut buf = vec![0u8; WINDOW.min((to - from) as usize)];
    let mut at = from;
    while at < to {
        let n = buf.len().min((to - at) as usize);
        file.read_exact_at(&mut buf[..n], at)?;
        if buf[..n].iter().any(|&b| b != 0) {
            return Ok(false);
        }
        at += n as u64;
    }
    Ok(true)
}
