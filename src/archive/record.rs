//! The archive's record metadata: how a profile arrived and its labels,
//! stored after the log's own header fields (see [`crate::storage`]).

use crate::pipeline::Labels;
use crate::storage::{Magic, MetaReader, put_str, put_varint};

use super::{ArchiveError, Origin};

/// The first bytes of every archive segment: name and format version.
pub(crate) const MAGIC: Magic = *b"PYRARC\x00\x01";
const KIND_PUSH: u8 = 1;
const KIND_INGEST: u8 = 2;

/// A record's header: everything but the body.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Header {
    pub id: u64,
    pub arrival_nanos: i64,
    pub origin: Origin,
    pub labels: Labels,
}

/// The metadata bytes of a record:
/// `origin: 1 sample_id:str (push) | 2 n:varint content_type:str* path:str query:str (ingest)`,
/// then `n:varint (name:str value:str)*`, the labels as received.
pub(crate) fn encode_meta(origin: &Origin, labels: &Labels) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    match origin {
        Origin::Push { sample_id } => {
            out.push(KIND_PUSH);
            put_str(&mut out, sample_id);
        }
        Origin::Ingest {
            content_types,
            path,
            query,
        } => {
            out.push(KIND_INGEST);
            put_varint(&mut out, content_types.len() as u64);
            for ct in content_types {
                put_str(&mut out, ct);
            }
            put_str(&mut out, path);
            put_str(&mut out, query);
        }
    }
    put_varint(&mut out, labels.len() as u64);
    for l in labels.iter() {
        put_str(&mut out, &l.name);
        put_str(&mut out, &l.value);
    }
    out
}

pub(crate) fn decode_meta(b: &[u8]) -> Result<(Origin, Labels), ArchiveError> {
    let mut r = MetaReader(b);
    let origin = match r.u8()? {
        KIND_PUSH => Origin::Push {
            sample_id: r.string()?,
        },
        KIND_INGEST => {
            let n = r.count()?;
            let content_types = (0..n).map(|_| r.string()).collect::<Result<_, _>>()?;
            Origin::Ingest {
                content_types,
                path: r.string()?,
                query: r.string()?,
            }
        }
        k => return Err(ArchiveError::Corrupt(format!("unknown origin kind {k}"))),
    };
    let n = r.count()?;
    let pairs = (0..n)
        .map(|_| Ok((r.string()?, r.string()?)))
        .collect::<Result<Vec<_>, ArchiveError>>()?;
    r.finish()?;
    Ok((origin, Labels::from_pairs_unsorted(pairs)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_push_and_ingest_metadata() {
        let labels = Labels::from_pairs([("service_name", "api"), ("__name__", "process_cpu")]);
        for origin in [
            Origin::Push {
                sample_id: "b6f8a7d2".into(),
            },
            Origin::Ingest {
                content_types: vec!["application/octet-stream".into(), "x/y; a=b".into()],
                path: "/ingest".into(),
                query: "name=app.cpu%7Benv%3Dprod%7D&from=1&until=2".into(),
            },
        ] {
            let meta = encode_meta(&origin, &labels);
            assert_eq!(decode_meta(&meta).unwrap(), (origin, labels.clone()));
            assert!(decode_meta(&meta[..meta.len() - 1]).is_err());
        }
        assert!(decode_meta(&[9, 0, 0]).is_err());
        assert!(decode_meta(&[]).is_err());
    }
}
