//! The record framing shared by every log: length, checksum, the log's own
//! header fields, the owner's metadata and the body. See [`super`] for the
//! layout.

use super::StorageError;

/// `len u32 | crc u32 | header_len u32` before the header.
pub const PREFIX: usize = 12;
const HEADER_VERSION: u8 = 1;
/// `version u8 | id u64 | arrival i64` at the start of every header.
const HEAD: usize = 17;

/// The framing fields of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prefix {
    /// Bytes after the crc field: `4 + header_len + body_len`.
    pub len: u32,
    pub crc: u32,
    pub header_len: u32,
}

impl Prefix {
    pub fn parse(b: &[u8; PREFIX]) -> Result<Prefix, StorageError> {
        let word = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let p = Prefix {
            len: word(0),
            crc: word(4),
            header_len: word(8),
        };
        if (p.header_len as usize) < HEAD || u64::from(p.header_len) + 4 > u64::from(p.len) {
            return Err(StorageError::Corrupt(format!(
                "header length {} does not fit record length {}",
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

    /// Where the body starts, from the start of the record.
    pub fn body_start(&self) -> usize {
        PREFIX + self.header_len as usize
    }
}

/// The log's fields of a record header, and the owner's metadata after them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head<'a> {
    pub id: u64,
    pub arrival_nanos: i64,
    pub meta: &'a [u8],
}

/// Appends one record to `out`.
pub fn encode(
    id: u64,
    arrival_nanos: i64,
    meta: &[u8],
    body: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), StorageError> {
    let header_len = HEAD + meta.len();
    let len = 4 + header_len as u64 + body.len() as u64;
    let Ok(len) = u32::try_from(len) else {
        return Err(StorageError::TooLarge {
            size: body.len() as u64,
            max: u64::from(u32::MAX) - 4 - header_len as u64,
        });
    };
    let start = out.len();
    // Exactly what the writer sizes its batch buffer by: reserving more
    // made that buffer reallocate (and copy everything) on its last record.
    out.reserve(encoded_len(meta.len(), body.len()) as usize);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&(header_len as u32).to_le_bytes());
    out.push(HEADER_VERSION);
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(&arrival_nanos.to_le_bytes());
    out.extend_from_slice(meta);
    out.extend_from_slice(body);
    let crc = checksum(&out[start..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

/// The size [`encode`] gives a record.
pub fn encoded_len(meta_len: usize, body_len: usize) -> u64 {
    (PREFIX + HEAD + meta_len + body_len) as u64
}

/// CRC-32 (IEEE) of the `len` field and everything after the crc field.
pub fn checksum(record: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&record[0..4]);
    h.update(&record[8..]);
    h.finalize()
}

/// Checks a whole record (prefix included) against its checksum.
pub fn verify(record: &[u8]) -> Result<Prefix, StorageError> {
    let prefix: &[u8; PREFIX] = record
        .get(..PREFIX)
        .and_then(|p| p.try_into().ok())
        .ok_or_else(|| StorageError::Corrupt("short record".into()))?;
    let p = Prefix::parse(prefix)?;
    if record.len() as u64 != p.record_len() {
        return Err(StorageError::Corrupt("short record".into()));
    }
    let crc = checksum(record);
    if crc != p.crc {
        return Err(StorageError::Corrupt(format!(
            "checksum mismatch: stored {:08x}, computed {crc:08x}",
            p.crc
        )));
    }
    Ok(p)
}

/// The size of the smallest record (no metadata, no body), the sentinel's.
pub(super) const MIN_RECORD: u64 = (PREFIX + HEAD) as u64;

/// The record a reused segment file ends with (see `segment::retire`): id
/// 0, which no record of a log has, with nothing in it.
pub(super) fn sentinel() -> Vec<u8> {
    let mut out = Vec::new();
    encode(0, 0, &[], &[], &mut out).expect("an empty record");
    out
}

/// Bytes from a record's start to its id's end: what [`peek`] needs.
pub(super) const PEEK: usize = PREFIX + 1 + 8;

/// The framing and id of what may be a record starting at `b[0]` (at
/// least [`PEEK`] bytes), checked only as far as those bytes allow: a cheap
/// filter before a checksum over the whole record.
pub(super) fn peek(b: &[u8]) -> Option<(Prefix, u64)> {
    let prefix = Prefix::parse(b.get(..PREFIX)?.try_into().ok()?).ok()?;
    if *b.get(PREFIX)? != HEADER_VERSION {
        return None;
    }
    let id = u64::from_le_bytes(b.get(PREFIX + 1..PEEK)?.try_into().ok()?);
    Some((prefix, id))
}

/// Splits a header (the `header_len` bytes after the prefix).
pub fn decode_head(header: &[u8]) -> Result<Head<'_>, StorageError> {
    if header.len() < HEAD {
        return Err(StorageError::Corrupt("truncated header".into()));
    }
    if header[0] != HEADER_VERSION {
        return Err(StorageError::Corrupt(format!(
            "unknown header version {}",
            header[0]
        )));
    }
    let word = |i: usize| u64::from_le_bytes(header[i..i + 8].try_into().expect("8 bytes"));
    Ok(Head {
        id: word(1),
        arrival_nanos: word(9) as i64,
        meta: &header[HEAD..],
    })
}

/// Writes LEB128 lengths and strings into a metadata buffer.
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub fn put_str(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// Reads what [`put_varint`] and [`put_str`] wrote; every error is
/// [`StorageError::Corrupt`].
pub struct MetaReader<'a>(pub &'a [u8]);

impl<'a> MetaReader<'a> {
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], StorageError> {
        if self.0.len() < n {
            return Err(StorageError::Corrupt("truncated header".into()));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    pub fn u8(&mut self) -> Result<u8, StorageError> {
        Ok(self.bytes(1)?[0])
    }

    pub fn varint(&mut self) -> Result<u64, StorageError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(StorageError::Corrupt("varint overflow".into()))
    }

    /// A count of items that take at least one byte each.
    pub fn count(&mut self) -> Result<usize, StorageError> {
        let n = self.varint()?;
        if n > self.0.len() as u64 {
            return Err(StorageError::Corrupt("count exceeds header".into()));
        }
        Ok(n as usize)
    }

    pub fn string(&mut self) -> Result<String, StorageError> {
        let n = self.count()?;
        String::from_utf8(self.bytes(n)?.to_vec())
            .map_err(|_| StorageError::Corrupt("string is not UTF-8".into()))
    }

    pub fn finish(self) -> Result<(), StorageError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(StorageError::Corrupt("trailing header bytes".into()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reused files are recognised by their sentinel, which scans take to
    /// be the smallest record there is, id 0.
    #[test]
    fn the_sentinel_is_the_smallest_record_with_id_0() {
        let sentinel = sentinel();
        assert_eq!(sentinel.len() as u64, MIN_RECORD);
        let prefix = verify(&sentinel).unwrap();
        let head = decode_head(&sentinel[PREFIX..prefix.body_start()]).unwrap();
        assert_eq!((head.id, head.meta, prefix.body_len()), (0, &[][..], 0));
    }

    #[test]
    fn crc32_matches_known_vectors() {
        assert_eq!(crc32fast::hash(b"123456789"), 0xcbf4_3926);
        assert_eq!(crc32fast::hash(b""), 0);
    }

    #[test]
    fn round_trips_and_detects_every_flipped_byte() {
        let mut out = b"junk".to_vec();
        encode(42, -7, b"meta", b"body bytes", &mut out).unwrap();
        let rec = &out[4..];
        assert_eq!(rec.len() as u64, encoded_len(4, 10));
        let p = verify(rec).unwrap();
        assert_eq!(p.body_len(), 10);
        let head = decode_head(&rec[PREFIX..p.body_start()]).unwrap();
        assert_eq!(
            head,
            Head {
                id: 42,
                arrival_nanos: -7,
                meta: b"meta"
            }
        );
        assert_eq!(&rec[p.body_start()..], b"body bytes");
        for i in 0..rec.len() {
            let mut bad = rec.to_vec();
            bad[i] ^= 0x10;
            assert!(verify(&bad).is_err(), "flipped byte {i}");
        }
        assert!(verify(&rec[..rec.len() - 1]).is_err());
        assert!(decode_head(&[9; 20]).is_err());
        assert!(decode_head(&[1; 3]).is_err());
    }

    #[test]
    fn a_buffer_sized_by_encoded_len_is_not_reallocated() {
        let cap = (encoded_len(4, 10) * 2) as usize;
        let mut out = Vec::with_capacity(cap);
        let at = out.as_ptr();
        for id in 0..2 {
            encode(id, 0, b"meta", b"body bytes", &mut out).unwrap();
        }
        assert_eq!((out.len(), out.capacity(), out.as_ptr()), (cap, cap, at));
    }

    #[test]
    fn meta_reader_rejects_lies() {
        let mut m = Vec::new();
        put_str(&mut m, "héllo");
        put_varint(&mut m, 300);
        let mut r = MetaReader(&m);
        assert_eq!(r.string().unwrap(), "héllo");
        assert_eq!(r.varint().unwrap(), 300);
        r.finish().unwrap();
        assert!(MetaReader(&[5, b'a']).string().is_err());
        assert!(MetaReader(&[0xff; 11]).varint().is_err());
        assert!(MetaReader(&[1, 0xff]).string().is_err());
    }
}
