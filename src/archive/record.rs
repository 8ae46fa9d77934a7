//! The on-disk record format. See the module documentation of
//! [`archive`](super) for the layout.

use crate::pipeline::Labels;

use super::{ArchiveError, Origin};

/// The first bytes of every segment file: name and format version.
pub(crate) const MAGIC: &[u8; 8] = b"PYRARC\x00\x01";
/// `len u32 | crc u32 | header_len u32` before the header.
pub(crate) const PREFIX: usize = 12;
const HEADER_VERSION: u8 = 1;
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

/// The framing fields of a record.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Prefix {
    /// Bytes after the crc field: `4 + header_len + body_len`.
    pub len: u32,
    pub crc: u32,
    pub header_len: u32,
}

impl Prefix {
    pub fn parse(b: &[u8; PREFIX]) -> Result<Prefix, ArchiveError> {
        let word = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let p = Prefix {
            len: word(0),
            crc: word(4),
            header_len: word(8),
        };
        if u64::from(p.header_len) + 4 > u64::from(p.len) {
            return Err(ArchiveError::Corrupt(format!(
                "header length {} exceeds record length {}",
                p.header_len, p.len
            )));
        }
        Ok(p)
    }

    /// The whole record's size on disk.
    pub fn record_len(&self) -> u64 {
        u64::from(self.len) + 8
    }

    pub fn body_len(&self) -> u64 {
        u64::from(self.len) - 4 - u64::from(self.header_len)
    }
}

/// Appends one record to `out`; returns the header's length.
pub(crate) fn encode(header: &Header, body: &[u8], out: &mut Vec<u8>) -> Result<u32, ArchiveError> {
    let start = out.len();
    out.extend_from_slice(&[0; PREFIX]);
    encode_header(header, out);
    let header_len = out.len() - start - PREFIX;
    let len = 4 + header_len as u64 + body.len() as u64;
    let Ok(len) = u32::try_from(len) else {
        out.truncate(start);
        return Err(ArchiveError::TooLarge {
            size: body.len() as u64,
            max: u64::from(u32::MAX),
        });
    };
    out.extend_from_slice(body);
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 8..start + 12].copy_from_slice(&(header_len as u32).to_le_bytes());
    let crc = checksum(&out[start..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    Ok(header_len as u32)
}

/// CRC-32 (IEEE) of the `len` field and everything after the crc field.
fn checksum(record: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&record[0..4]);
    h.update(&record[8..]);
    h.finalize()
}

/// Checks a whole record (prefix included) against its checksum.
pub(crate) fn verify(record: &[u8]) -> Result<Prefix, ArchiveError> {
    let prefix: &[u8; PREFIX] = record
        .get(..PREFIX)
        .and_then(|p| p.try_into().ok())
        .ok_or_else(|| ArchiveError::Corrupt("short record".into()))?;
    let p = Prefix::parse(prefix)?;
    if record.len() as u64 != p.record_len() {
        return Err(ArchiveError::Corrupt("short record".into()));
    }
    let crc = checksum(record);
    if crc != p.crc {
        return Err(ArchiveError::Corrupt(format!(
            "checksum mismatch: stored {:08x}, computed {crc:08x}",
            p.crc
        )));
    }
    Ok(p)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

fn encode_header(h: &Header, out: &mut Vec<u8>) {
    out.push(HEADER_VERSION);
    out.extend_from_slice(&h.id.to_le_bytes());
    out.extend_from_slice(&h.arrival_nanos.to_le_bytes());
    match &h.origin {
        Origin::Push { sample_id } => {
            out.push(KIND_PUSH);
            put_str(out, sample_id);
        }
        Origin::Ingest {
            content_types,
            path,
            query,
        } => {
            out.push(KIND_INGEST);
            put_varint(out, content_types.len() as u64);
            for ct in content_types {
                put_str(out, ct);
            }
            put_str(out, path);
            put_str(out, query);
        }
    }
    put_varint(out, h.labels.len() as u64);
    for l in h.labels.iter() {
        put_str(out, &l.name);
        put_str(out, &l.value);
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn bytes(&mut self, n: usize) -> Result<&'a [u8], ArchiveError> {
        if self.0.len() < n {
            return Err(ArchiveError::Corrupt("truncated header".into()));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, ArchiveError> {
        Ok(self.bytes(1)?[0])
    }

    fn u64(&mut self) -> Result<u64, ArchiveError> {
        let b = self.bytes(8)?;
        Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }

    fn varint(&mut self) -> Result<u64, ArchiveError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(ArchiveError::Corrupt("varint overflow".into()))
    }

    fn count(&mut self) -> Result<usize, ArchiveError> {
        let n = self.varint()?;
        // Every counted item takes at least one byte.
        if n > self.0.len() as u64 {
            return Err(ArchiveError::Corrupt("count exceeds header".into()));
        }
        Ok(n as usize)
    }

    fn string(&mut self) -> Result<String, ArchiveError> {
        let n = self.count()?;
        String::from_utf8(self.bytes(n)?.to_vec())
            .map_err(|_| ArchiveError::Corrupt("string is not UTF-8".into()))
    }
}

pub(crate) fn decode_header(b: &[u8]) -> Result<Header, ArchiveError> {
    let mut r = Reader(b);
    let version = r.u8()?;
    if version != HEADER_VERSION {
        return Err(ArchiveError::Corrupt(format!(
            "unknown header version {version}"
        )));
    }
    let id = r.u64()?;
    let arrival_nanos = r.u64()? as i64;
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
    if !r.0.is_empty() {
        return Err(ArchiveError::Corrupt("trailing header bytes".into()));
    }
    Ok(Header {
        id,
        arrival_nanos,
        origin,
        labels: Labels::from_pairs_unsorted(pairs),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(origin: Origin) -> Header {
        Header {
            id: 0x0102_0304_0506_0708,
            arrival_nanos: 1_700_000_000_123_456_789,
            origin,
            labels: Labels::from_pairs([("service_name", "api"), ("__name__", "process_cpu")]),
        }
    }

    #[test]
    fn crc32_matches_known_vectors() {
        assert_eq!(crc32fast::hash(b"123456789"), 0xcbf4_3926);
        assert_eq!(crc32fast::hash(b""), 0);
        assert_eq!(
            crc32fast::hash(b"The quick brown fox jumps over the lazy dog"),
            0x414f_a339
        );
    }

    #[test]
    fn round_trips_push_and_ingest_records() {
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
            let h = header(origin);
            let body = b"\x1f\x8b profile bytes";
            let mut out = b"junk".to_vec();
            let hlen = encode(&h, body, &mut out).unwrap();
            let rec = &out[4..];
            let p = verify(rec).unwrap();
            assert_eq!(p.header_len, hlen);
            assert_eq!(p.record_len(), rec.len() as u64);
            assert_eq!(p.body_len(), body.len() as u64);
            let decoded = decode_header(&rec[PREFIX..PREFIX + hlen as usize]).unwrap();
            assert_eq!(decoded, h);
            assert_eq!(&rec[PREFIX + hlen as usize..], body);
        }
    }

    #[test]
    fn detects_corruption_and_short_records() {
        let mut out = Vec::new();
        encode(
            &header(Origin::Push {
                sample_id: "s".into(),
            }),
            b"body",
            &mut out,
        )
        .unwrap();
        for i in 0..out.len() {
            let mut bad = out.clone();
            bad[i] ^= 0x40;
            assert!(verify(&bad).is_err(), "flipped byte {i}");
        }
        assert!(verify(&out[..out.len() - 1]).is_err());
        assert!(verify(&out[..5]).is_err());
        assert!(decode_header(&[9, 0, 0]).is_err());
        assert!(decode_header(&[]).is_err());
    }
}
