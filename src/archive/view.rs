//! What the admin API and the CLI share: ids qualified by archive, the
//! merged listing of several archives, and the lookup of one record.

use bytes::Bytes;
use serde::Serialize;
use std::sync::Arc;

use super::{ArchiveError, Filter, Origin, RecordId, RecordMeta, Store};

/// The part of a component id that names the archive in ids:
/// `pyroscope.archive.local` → `local`.
pub fn archive_label(component_id: &str) -> &str {
    component_id
        .strip_prefix("pyroscope.archive.")
        .unwrap_or(component_id)
}

/// `local-42`: unique across the archives of one relay.
pub fn qualified_id(component_id: &str, id: RecordId) -> String {
    format!("{}-{id}", archive_label(component_id))
}

/// Parses `local-42` (archive label and id) or a bare `42`.
pub fn parse_id(s: &str) -> Option<(Option<&str>, RecordId)> {
    let (label, n) = match s.rsplit_once('-') {
        Some((label, n)) if !label.is_empty() => (Some(label), n),
        Some(_) => return None,
        None => (None, s),
    };
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((label, RecordId(n.parse().ok()?)))
}

/// One listed profile, as the API and `profiles list --json` show it.
#[derive(Debug, Serialize)]
pub struct Listed {
    pub id: String,
    pub component_id: String,
    #[serde(flatten)]
    pub meta: RecordMeta,
}

/// The matches of every archive, newest first, at most `filter.limit`.
pub(crate) fn list_all(stores: &[(String, Arc<Store>)], filter: &Filter) -> Vec<Listed> {
    let mut all: Vec<Listed> = stores
        .iter()
        .flat_map(|(component_id, store)| {
            store.list(filter).into_iter().map(|meta| Listed {
                id: qualified_id(component_id, meta.id),
                component_id: component_id.clone(),
                meta,
            })
        })
        .collect();
    all.sort_by_key(|l| std::cmp::Reverse(l.meta.arrival));
    all.truncate(filter.limit.unwrap_or(usize::MAX));
    all
}

/// Finds a record by qualified or bare id. A bare id must name a record
/// in exactly one archive.
pub(crate) fn find(
    stores: &[(String, Arc<Store>)],
    id: &str,
) -> Result<(String, RecordMeta, Bytes), ArchiveError> {
    let (label, n) = parse_id(id).ok_or_else(|| {
        ArchiveError::InvalidArgument(format!("invalid profile id {id:?}: want e.g. local-42"))
    })?;
    let mut found = Vec::new();
    for (component_id, store) in stores {
        if label.is_some_and(|l| l != archive_label(component_id)) {
            continue;
        }
        if let Some((meta, body)) = store.read(n)? {
            found.push((component_id.clone(), meta, body));
        }
    }
    match found.len() {
        0 => Err(ArchiveError::NotFound(id.to_owned())),
        1 => Ok(found.pop().expect("one")),
        _ => Err(ArchiveError::InvalidArgument(format!(
            "profile id {id} is in several archives; use one of {}",
            found
                .iter()
                .map(|(c, m, _)| qualified_id(c, m.id))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

pub(crate) fn is_gzip(body: &[u8]) -> bool {
    body.starts_with(&[0x1f, 0x8b])
}

/// The Content-Type a record is served with: the first one it arrived
/// with (ingest), else `application/octet-stream` (a pprof).
pub(crate) fn content_type(meta: &RecordMeta) -> &str {
    match &meta.origin {
        Origin::Ingest { content_types, .. } => content_types
            .first()
            .map(String::as_str)
            .filter(|c| !c.is_empty())
            .unwrap_or("application/octet-stream"),
        Origin::Push { .. } => "application/octet-stream",
    }
}

/// A file name for a downloaded record.
pub(crate) fn file_name(id: &str, meta: &RecordMeta, body: &[u8]) -> String {
    let ext = match (&meta.origin, is_gzip(body)) {
        (_, true) => "pb.gz",
        (Origin::Push { .. }, false) => "pb",
        (Origin::Ingest { .. }, false) => "bin",
    };
    format!("{id}.{ext}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_qualified_by_archive_label() {
        assert_eq!(
            qualified_id("pyroscope.archive.local", RecordId(42)),
            "local-42"
        );
        assert_eq!(parse_id("local-42"), Some((Some("local"), RecordId(42))));
        assert_eq!(parse_id("my-dir-7"), Some((Some("my-dir"), RecordId(7))));
        assert_eq!(parse_id("42"), Some((None, RecordId(42))));
        for bad in ["", "-1", "local-", "local-x", "local-+1", "local"] {
            assert_eq!(parse_id(bad), None, "{bad}");
        }
    }
}
