//! `pyroscope-relay profiles list|get`: reads the archives under a storage
//! path, read-only, also while the relay runs.

use flate2::read::MultiGzDecoder;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;

use super::time::format_rfc3339;
use super::view::{self, Listed};
use super::{ArchiveError, Filter, Store};

/// `get --gunzip` refuses profiles that inflate beyond this.
const MAX_GUNZIPPED: u64 = 1 << 30;

pub use super::time::parse_since;

/// Parses `--label name=value`.
pub fn parse_label(s: &str) -> Result<(String, String), ArchiveError> {
    match s.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_owned(), value.to_owned())),
        _ => Err(ArchiveError::InvalidArgument(format!(
            "invalid label {s:?}: want name=value"
        ))),
    }
}

/// Opens every archive under `storage_path` (directories named
/// `pyroscope.archive.*`), or `storage_path` itself when it is an archive
/// (a custom `path`).
pub fn open_all(storage_path: &Path) -> Result<Vec<(String, Arc<Store>)>, ArchiveError> {
    let name_of = |p: &Path| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    if !crate::storage::list_segments(storage_path)?.is_empty() {
        let store = Store::open_read_only(storage_path)?;
        let component =
            super::recorded_component(storage_path).unwrap_or_else(|| name_of(storage_path));
        return Ok(vec![(component, Arc::new(store))]);
    }
    let entries = std::fs::read_dir(storage_path)
        .map_err(|e| ArchiveError::io("reading", storage_path, e))?;
    let mut dirs: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir() && name_of(p).starts_with("pyroscope.archive."))
        .collect();
    dirs.sort();
    dirs.into_iter()
        .map(|d| {
            let component = super::recorded_component(&d).unwrap_or_else(|| name_of(&d));
            Ok((component, Arc::new(Store::open_read_only(&d)?)))
        })
        .collect()
}

/// Prints the matching profiles, newest first: a table, or with `json`
/// the admin API's `{"profiles": [...]}`.
pub fn list(
    storage_path: &Path,
    filter: Filter,
    json: bool,
    out: &mut dyn Write,
) -> Result<(), ArchiveError> {
    let stores = open_all(storage_path)?;
    let listed = view::list_all(&stores, &filter);
    let io = |e| ArchiveError::io("writing", Path::new("<output>"), e);
    if json {
        let body = serde_json::json!({ "profiles": listed });
        serde_json::to_writer_pretty(&mut *out, &body).map_err(|e| io(e.into()))?;
        writeln!(out).map_err(io)?;
        return Ok(());
    }
    write_table(&listed, out).map_err(io)
}

fn write_table(listed: &[Listed], out: &mut dyn Write) -> std::io::Result<()> {
    let mut rows = vec![["ID", "TIME", "SERVICE", "TYPE", "LABELS", "SIZE"].map(String::from)];
    for l in listed {
        let mut labels = l.meta.labels.clone();
        labels.remove("service_name");
        labels.remove("__name__");
        rows.push([
            l.id.clone(),
            format_rfc3339(l.meta.arrival, false),
            l.meta.service.clone(),
            l.meta.profile_type.clone(),
            labels.to_string(),
            l.meta.size.to_string(),
        ]);
    }
    let mut widths = [0usize; 6];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in &rows {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.extend(std::iter::repeat_n(' ', w - cell.chars().count() + 2));
            }
        }
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// Writes profile `id` (`local-42`, or `42` when unambiguous) to `out`
/// (`-` for stdout): the body as received, or with `gunzip` a gzipped
/// body inflated (a body that is not gzipped is written as is).
pub fn get(storage_path: &Path, id: &str, gunzip: bool, out: &Path) -> Result<(), ArchiveError> {
    let stores = open_all(storage_path)?;
    let (_, _, body) = view::find(&stores, id)?;
    let data = if gunzip && view::is_gzip(&body) {
        let mut inflated = Vec::new();
        MultiGzDecoder::new(&body[..])
            .take(MAX_GUNZIPPED + 1)
            .read_to_end(&mut inflated)
            .map_err(|e| ArchiveError::Corrupt(format!("profile {id} does not gunzip: {e}")))?;
        if inflated.len() as u64 > MAX_GUNZIPPED {
            return Err(ArchiveError::InvalidArgument(format!(
                "profile {id} inflates beyond {MAX_GUNZIPPED} bytes"
            )));
        }
        inflated.into()
    } else {
        body
    };
    if out == Path::new("-") {
        let mut stdout = std::io::stdout().lock();
        return stdout
            .write_all(&data)
            .and_then(|()| stdout.flush())
            .map_err(|e| ArchiveError::io("writing", out, e));
    }
    std::fs::write(out, &data).map_err(|e| ArchiveError::io("writing", out, e))
}
