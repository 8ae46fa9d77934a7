//! Thin entry points for the cargo-fuzz targets in `fuzz/` (see
//! `docs/fuzzing.md`). Public parsers (`codec`, `config`, `storage`) are
//! called by the targets directly or through here; this module exposes
//! only what they cannot reach (the archive's record metadata), without
//! making the internals themselves public. Not a stable interface.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::storage::{
    Control, Log, LogOptions, Magic, Owner, PREFIX, StorageError, SyncPolicy, Written, checksum,
};

/// Options the segment-log target reads from the first byte of its input.
const FIX_CHECKSUMS: u8 = 1;
const READ_ONLY: u8 = 2;
const TWO_SEGMENTS: u8 = 4;

/// The first id in the active segment's name (the sealed one's is 1).
const ACTIVE_SEGMENT: u64 = 1 << 20;

/// The archive's segment magic, so that real archive segments are seeds.
const MAGIC: Magic = crate::archive::record::MAGIC;

/// Decodes an archive record's metadata (origin and labels), and checks
/// that what decodes encodes back to the same metadata.
pub fn archive_meta(data: &[u8]) {
    use crate::archive::record::{decode_meta, encode_meta};
    let Ok((origin, labels)) = decode_meta(data) else {
        return;
    };
    let again = decode_meta(&encode_meta(&origin, &labels)).expect("encoded metadata decodes");
    assert_eq!(again, (origin, labels), "metadata round trip");
}

/// Opens a segment log whose directory holds `data` as segment files, the
/// way the relay recovers after a crash, then reads back every record the
/// recovery reported.
///
/// The first byte of `data` selects: bit 0, recompute every record's
/// checksum (so mutations reach the header and id checks instead of
/// stopping at the CRC); bit 1, open read-only (the CLI's scan, no repair)
/// instead of for writing; bit 2, split the rest at the offset in the next
/// two bytes into a sealed segment and an active one.
///
/// Panics (a finding) when a recovered record cannot be read back, when
/// recovered ids do not increase (readers find records by id), or when a
/// second open recovers different records.
pub fn segment_log_recovery(data: &[u8]) {
    let Some((&options, rest)) = data.split_first() else {
        return;
    };
    let dir = ScratchDir::new();
    let (sealed, active) = if options & TWO_SEGMENTS != 0 && rest.len() >= 2 {
        let at = usize::from(u16::from_le_bytes([rest[0], rest[1]]));
        let rest = &rest[2..];
        let (sealed, active) = rest.split_at(at.min(rest.len()));
        (Some(sealed), active)
    } else {
        (None, rest)
    };
    let files = sealed
        .map(|s| (1, s))
        .into_iter()
        .chain([(1 << 20, active)]);
    for (first_id, bytes) in files {
        let mut bytes = bytes.to_vec();
        if options & FIX_CHECKSUMS != 0 {
            fix_checksums(&mut bytes);
        }
        let path = dir.0.join(crate::storage::segment_file_name(first_id));
        std::fs::write(&path, &bytes).expect("writing a scratch segment");
    }

    if options & READ_ONLY != 0 {
        let mut found = Vec::new();
        if let Ok((log, _)) = Log::open_read_only(&dir.0, MAGIC, |w| found.push(place(&w))) {
            read_back(&log, &found);
        }
        return;
    }
    let mut first = Vec::new();
    let opened = Log::open(
        &dir.0,
        log_options(),
        |w| first.push(place(&w)),
        Box::new(Inert),
    );
    let Ok((log, _)) = opened else { return };
    read_back(&log, &first);
    drop(log);
    // What recovery kept must be what the next open finds.
    let mut second = Vec::new();
    let (log, _) = Log::open(
        &dir.0,
        log_options(),
        |w| second.push(place(&w)),
        Box::new(Inert),
    )
    .expect("a recovered log opens again");
    read_back(&log, &second);
    assert_eq!(first, second, "a second open recovers the same records");
}

/// A recovered record: id, segment and offset.
type Place = (u64, u64, u64);

fn place(w: &Written<'_>) -> Place {
    (w.id, w.segment, w.offset)
}

fn log_options() -> LogOptions {
    LogOptions {
        sync: SyncPolicy::Every(std::time::Duration::from_secs(3600)),
        thread_name: "fuzz-log-writer",
        ..LogOptions::new(MAGIC, 64 << 20)
    }
}

/// Reads every recovered record back and checks ids increase.
fn read_back(log: &Log, recovered: &[Place]) {
    let mut last = None;
    for &(id, segment, offset) in recovered {
        assert!(
            last.is_none_or(|l| id > l),
            "recovered id {id} after {last:?}"
        );
        last = Some(id);
        // Sealed segments are synced whole before the next one starts, so
        // recovery reads only their headers and a reader checks the
        // checksum: there a damaged record is an error, not a finding.
        let record = match log.read_record(segment, offset) {
            Ok(record) => record,
            Err(StorageError::Corrupt(_)) if segment != ACTIVE_SEGMENT => continue,
            Err(e) => panic!("recovered record {id} does not read back: {e}"),
        };
        assert_eq!(record.head().id, id, "record at {segment}:{offset}");
        assert_eq!(record.body().len() as u64, record.prefix.body_len());
    }
}

/// An owner that keeps everything and writes nothing.
struct Inert;

impl Owner for Inert {
    fn written(&mut self, _: &[Written<'_>]) {}
    fn maintain(&mut self, _: &mut Control<'_>) {}
    fn health(&mut self, _: Option<&str>) {}
}

/// Walks `bytes` as a segment (magic, then records by their length
/// fields) and writes the right checksum into every whole record.
fn fix_checksums(bytes: &mut [u8]) {
    let mut pos = MAGIC.len();
    while pos + PREFIX <= bytes.len() {
        let len = u32::from_le_bytes(bytes[pos..pos + 4].try_into().expect("4 bytes")) as usize;
        let end = pos.saturating_add(len).saturating_add(8);
        if end > bytes.len() {
            return;
        }
        let crc = checksum(&bytes[pos..end]);
        bytes[pos + 4..pos + 8].copy_from_slice(&crc.to_le_bytes());
        pos = end;
    }
}

/// A fresh directory under the temporary directory, removed on drop.
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("pyroscope-relay-fuzz-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("creating a scratch directory");
        Self(path)
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(Path::new(&self.0));
    }
}
