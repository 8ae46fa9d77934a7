//! Segment files: naming and the scan that rebuilds the index on open.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use super::ArchiveError;
use super::record::{self, Header, MAGIC, PREFIX, Prefix};

pub(crate) fn file_name(first_id: u64) -> String {
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
pub(crate) fn list(dir: &Path) -> Result<Vec<(u64, PathBuf)>, ArchiveError> {
    let entries = std::fs::read_dir(dir).map_err(|e| ArchiveError::io("reading", dir, e))?;
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| ArchiveError::io("reading", dir, e))?;
        if let Some(id) = entry.file_name().to_str().and_then(parse_file_name) {
            out.push((id, entry.path()));
        }
    }
    out.sort_unstable_by_key(|(id, _)| *id);
    Ok(out)
}

/// One record found by a scan.
#[derive(Debug)]
pub(crate) struct Scanned {
    pub offset: u64,
    pub prefix: Prefix,
    pub header: Header,
}

#[derive(Debug)]
pub(crate) struct Scan {
    pub records: Vec<Scanned>,
    /// Whether the file starts with [`MAGIC`].
    pub magic_ok: bool,
    /// The length of the intact part: magic and whole records.
    pub valid_len: u64,
    pub file_len: u64,
    /// Why the scan stopped before the end of the file.
    pub stopped: Option<String>,
    /// Whether it stopped at a record that runs to or past the end of the
    /// file: the torn tail of an interrupted write, not damage in the middle.
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

/// Walks a segment record by record. With `verify`, every record's
/// checksum is checked (the last segment, where a crash can leave a torn
/// record); without, only headers are read and bodies skipped (sealed
/// segments, fsynced whole before the next one was started). The scan
/// stops at the first record that is short, fails its checksum or has an
/// undecodable header.
pub(crate) fn scan(path: &Path, verify: bool) -> Result<Scan, ArchiveError> {
    let io_err = |e| ArchiveError::io("reading", path, e);
    let file = File::open(path).map_err(io_err)?;
    let file_len = file.metadata().map_err(io_err)?.len();
    let mut r = BufReader::with_capacity(1 << 20, file);
    let mut scan = Scan {
        records: Vec::new(),
        magic_ok: false,
        valid_len: 0,
        file_len,
        stopped: None,
        torn: false,
    };
    let mut magic = [0u8; MAGIC.len()];
    if read_full(&mut r, &mut magic).map_err(io_err)? < MAGIC.len() || &magic != MAGIC {
        scan.stopped = Some("missing segment header".into());
        return Ok(scan);
    }
    scan.magic_ok = true;
    let mut pos = MAGIC.len() as u64;
    let mut buf = Vec::new();
    let stop = loop {
        let mut p = [0u8; PREFIX];
        match read_full(&mut r, &mut p).map_err(io_err)? {
            0 => break None,
            PREFIX => {}
            _ => break Some(("torn record at the end".to_string(), true)),
        }
        let prefix = match Prefix::parse(&p) {
            Ok(prefix) => prefix,
            Err(e) => break Some((e.to_string(), false)),
        };
        let end = pos + prefix.record_len();
        if end > file_len {
            break Some(("torn record at the end".to_string(), true));
        }
        let header_bytes = if verify {
            buf.resize(prefix.record_len() as usize, 0);
            buf[..PREFIX].copy_from_slice(&p);
            r.read_exact(&mut buf[PREFIX..]).map_err(io_err)?;
            if let Err(e) = record::verify(&buf) {
                break Some((e.to_string(), end == file_len));
            }
            &buf[PREFIX..PREFIX + prefix.header_len as usize]
        } else {
            buf.resize(prefix.header_len as usize, 0);
            r.read_exact(&mut buf).map_err(io_err)?;
            r.seek_relative(prefix.body_len() as i64).map_err(io_err)?;
            &buf[..]
        };
        match record::decode_header(header_bytes) {
            Ok(header) => scan.records.push(Scanned {
                offset: pos,
                prefix,
                header,
            }),
            Err(e) => break Some((e.to_string(), false)),
        }
        pos = end;
    };
    scan.valid_len = pos;
    if let Some((why, torn)) = stop {
        scan.stopped = Some(why);
        scan.torn = torn;
    }
    Ok(scan)
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
