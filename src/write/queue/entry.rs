//! How a downstream request is stored in the queue: everything needed to
//! send it again after a restart exactly as it would have been sent.
//!
//! Metadata (after the log's own header fields):
//! ```text
//! kind u8 (1 push, 2 ingest) | profiles varint | profile bytes varint
//! n varint (name str, value bytes)*            forwarded client headers
//! ingest only: path str | query str | n varint (content type bytes)*
//! ```
//! The body is the encoded `PushRequest` or the `/ingest` body.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderName, HeaderValue};

use crate::storage::{Entry, MetaReader, StorageError, put_str, put_varint};
use crate::write::outgoing::{Request, Target};

/// The first bytes of every queue segment: name and format version.
pub(super) const MAGIC: [u8; 8] = *b"PYRQUE\x00\x01";
const KIND_PUSH: u8 = 1;
const KIND_INGEST: u8 = 2;

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// Room for everything [`encode`] writes (a varint takes at most 10
/// bytes), so its buffer is allocated once.
fn meta_capacity(r: &Request) -> usize {
    let headers: usize = r
        .forwarded
        .iter()
        .map(|(name, value)| 20 + name.as_str().len() + value.len())
        .sum();
    let ingest = match &r.target {
        Target::Push => 0,
        Target::Ingest {
            path,
            query,
            content_types,
        } => {
            30 + path.len()
                + query.len()
                + content_types.iter().map(|ct| 10 + ct.len()).sum::<usize>()
        }
    };
    1 + 30 + headers + ingest
}

pub(super) fn encode(r: &Request) -> Entry {
    let mut meta = Vec::with_capacity(meta_capacity(r));
    meta.push(match r.target {
        Target::Push => KIND_PUSH,
        Target::Ingest { .. } => KIND_INGEST,
    });
    put_varint(&mut meta, r.profiles as u64);
    put_varint(&mut meta, r.bytes as u64);
    put_varint(&mut meta, r.forwarded.len() as u64);
    for (name, value) in r.forwarded.iter() {
        put_str(&mut meta, name.as_str());
        put_bytes(&mut meta, value.as_bytes());
    }
    if let Target::Ingest {
        path,
        query,
        content_types,
    } = &r.target
    {
        put_str(&mut meta, path);
        put_str(&mut meta, query);
        put_varint(&mut meta, content_types.len() as u64);
        for ct in content_types {
            put_bytes(&mut meta, ct.as_bytes());
        }
    }
    Entry {
        meta,
        body: r.body.clone(),
    }
}

/// Profiles and profile bytes of a stored request, from the start of its
/// metadata only.
pub(super) fn counts(meta: &[u8]) -> Result<(u64, u64), StorageError> {
    let mut r = MetaReader(meta);
    r.u8()?;
    Ok((r.varint()?, r.varint()?))
}

pub(super) fn decode(meta: &[u8], body: Bytes) -> Result<Request, StorageError> {
    let corrupt = |what: &str| StorageError::Corrupt(format!("invalid {what} in a queued request"));
    let mut r = MetaReader(meta);
    let kind = r.u8()?;
    let profiles = r.varint()? as usize;
    let bytes = r.varint()? as usize;
    let n = r.count()?;
    let mut forwarded = Vec::with_capacity(n);
    for _ in 0..n {
        let name = HeaderName::try_from(r.string()?).map_err(|_| corrupt("header name"))?;
        let len = r.count()?;
        let value = HeaderValue::from_bytes(r.bytes(len)?).map_err(|_| corrupt("header value"))?;
        forwarded.push((name, value));
    }
    let target = match kind {
        KIND_PUSH => Target::Push,
        KIND_INGEST => {
            let path = r.string()?;
            let query = r.string()?;
            let n = r.count()?;
            let mut content_types = Vec::with_capacity(n);
            for _ in 0..n {
                let len = r.count()?;
                content_types.push(
                    HeaderValue::from_bytes(r.bytes(len)?).map_err(|_| corrupt("content type"))?,
                );
            }
            Target::Ingest {
                path,
                query,
                content_types,
            }
        }
        k => return Err(StorageError::Corrupt(format!("unknown request kind {k}"))),
    };
    r.finish()?;
    Ok(Request {
        target,
        forwarded: Arc::from(forwarded),
        body,
        profiles,
        bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_push_and_ingest_requests() {
        let forwarded: Arc<[(HeaderName, HeaderValue)]> = Arc::from(vec![
            (
                HeaderName::from_static("x-scope-orgid"),
                HeaderValue::from_static("tenant-a"),
            ),
            (
                HeaderName::from_static("x-raw"),
                HeaderValue::from_bytes(b"\xfe\xff").unwrap(),
            ),
        ]);
        for target in [
            Target::Push,
            Target::Ingest {
                path: "/ingest".into(),
                query: "name=app.cpu%7Benv%3Dprod%7D&from=1".into(),
                content_types: vec![HeaderValue::from_static("binary/octet-stream")],
            },
        ] {
            let r = Request {
                target,
                forwarded: forwarded.clone(),
                body: Bytes::from_static(b"profile"),
                profiles: u32::MAX as usize,
                bytes: usize::MAX,
            };
            let e = encode(&r);
            assert!(e.meta.len() <= meta_capacity(&r), "allocated once");
            assert_eq!(
                counts(&e.meta).unwrap(),
                (u64::from(u32::MAX), usize::MAX as u64)
            );
            assert_eq!(decode(&e.meta, e.body.clone()).unwrap(), r);
            assert!(decode(&e.meta[..e.meta.len() - 1], e.body).is_err());
        }
    }
}
