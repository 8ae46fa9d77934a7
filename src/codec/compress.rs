//! Bounded gzip decompression and the compression names of the protocols.
//!
//! Request bodies and gRPC messages may be gzipped by the client; the size
//! limit applies to what they expand to, so a small "gzip bomb" is refused
//! after at most `limit + 1` bytes of output, never expanded in full. The
//! caller may also veto each growth of the output buffer (the request
//! memory budget does), which stops decompression at once.

use std::io::{self, Read, Write};

use flate2::Compression as Level;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;

use super::CodecError;

/// The first two bytes of every gzip member.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// How much decompressed output is produced per read.
const CHUNK_LEN: usize = 64 * 1024;

/// Upper bound of the first output allocation, so a large compressed body
/// does not reserve several times its size before any output is seen.
const MAX_INITIAL_CAPACITY: usize = 16 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum DecompressError {
    /// The output would be larger than the limit; decompression stopped.
    #[error("decompressed size exceeds the limit of {limit} bytes")]
    TooLarge { limit: usize },
    /// The caller refused to let the output grow to `capacity` bytes.
    #[error(
        "no room for {capacity} bytes of decompressed data in the request memory budget; \
         retry later"
    )]
    Refused { capacity: usize },
    /// The input is not valid gzip (bad header, checksum, truncation or
    /// trailing garbage).
    #[error("invalid gzip data: {0}")]
    Invalid(#[source] io::Error),
}

/// A body or message compression the relay understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Identity,
    Gzip,
}

impl Compression {
    /// Parses a `Content-Encoding`, `grpc-encoding` or
    /// `Connect-Content-Encoding` value. An empty value means identity.
    ///
    /// Names are compared case-insensitively (RFC 9110 §8.4.1) and `x-gzip`
    /// is taken as gzip, which is more lenient than connect-go's exact match.
    pub fn parse(value: &str) -> Result<Compression, CodecError> {
        let name = value.trim();
        if name.is_empty() || name.eq_ignore_ascii_case("identity") {
            Ok(Compression::Identity)
        } else if name.eq_ignore_ascii_case("gzip") || name.eq_ignore_ascii_case("x-gzip") {
            Ok(Compression::Gzip)
        } else {
            Err(CodecError::UnsupportedEncoding {
                encoding: name.to_owned(),
            })
        }
    }

    /// The name sent in headers.
    pub fn name(self) -> &'static str {
        match self {
            Compression::Identity => "identity",
            Compression::Gzip => "gzip",
        }
    }
}

/// Whether `data` starts with the gzip magic number.
pub fn is_gzip(data: &[u8]) -> bool {
    data.starts_with(&GZIP_MAGIC)
}

/// Gunzips `input`, which may hold several concatenated gzip members, and
/// refuses output longer than `limit` bytes.
///
/// Output is produced in chunks and the buffer never grows past `limit`, so
/// memory use is bounded by the limit whatever the compression ratio.
/// An empty input yields empty output: Connect forbids decompressing
/// zero-length bodies, and an empty message is valid protobuf.
pub fn gunzip_limited(input: &[u8], limit: usize) -> Result<Vec<u8>, DecompressError> {
    gunzip_within(input, limit, |_, _| true)
}

/// [`gunzip_limited`], asking `may_grow(from, to)` before the output
/// buffer is allocated (`from` 0) or grown from `from` to `to` bytes of
/// capacity; `false` stops with [`DecompressError::Refused`] before
/// anything more is produced. While a buffer grows both the old and the
/// new allocation may exist (realloc copies), so an accurate account
/// counts `from + to` until the next call or the end.
pub fn gunzip_within(
    input: &[u8],
    limit: usize,
    mut may_grow: impl FnMut(usize, usize) -> bool,
) -> Result<Vec<u8>, DecompressError> {
    if input.is_empty() {
        return Ok(Vec::new());
    }
    let mut decoder = MultiGzDecoder::new(input);
    // A guess that avoids the first few reallocations for typical ratios.
    let initial = input
        .len()
        .saturating_mul(4)
        .min(limit)
        .min(MAX_INITIAL_CAPACITY);
    if !may_grow(0, initial) {
        return Err(DecompressError::Refused { capacity: initial });
    }
    let mut output = Vec::with_capacity(initial);
    let mut chunk = vec![0u8; CHUNK_LEN];
    loop {
        let read = match decoder.read(&mut chunk) {
            Ok(0) => return Ok(output),
            Ok(read) => read,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(DecompressError::Invalid(err)),
        };
        let needed = output.len() + read;
        if needed > limit {
            return Err(DecompressError::TooLarge { limit });
        }
        if needed > output.capacity() {
            // Grow geometrically, but never past the limit.
            let target = needed.max(output.capacity().saturating_mul(2)).min(limit);
            if !may_grow(output.capacity(), target) {
                return Err(DecompressError::Refused { capacity: target });
            }
            output.reserve_exact(target - output.len());
        }
        output.extend_from_slice(&chunk[..read]);
    }
}

/// Gzips `input` as one member at the default level.
pub fn gzip(input: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::with_capacity(input.len() / 2 + 64), Level::default());
    // Writing into a Vec cannot fail: the only errors GzEncoder reports are
    // those of the writer it wraps.
    encoder
        .write_all(input)
        .expect("gzip into a Vec cannot fail");
    encoder.finish().expect("gzip into a Vec cannot fail")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn round_trips_and_detects_magic() {
        let data = b"frame1;frame2 10\n".repeat(100);
        let zipped = gzip(&data);
        assert!(is_gzip(&zipped));
        assert!(!is_gzip(&data));
        assert!(!is_gzip(&[0x1f]));
        assert_eq!(gunzip_limited(&zipped, data.len()).unwrap(), data);
    }

    #[test]
    fn exact_limit_passes_one_more_byte_fails() {
        let data = vec![7u8; 1000];
        let zipped = gzip(&data);
        assert_eq!(gunzip_limited(&zipped, 1000).unwrap().len(), 1000);
        assert!(matches!(
            gunzip_limited(&zipped, 999),
            Err(DecompressError::TooLarge { limit: 999 })
        ));
    }

    #[test]
    fn gzip_bomb_is_refused_quickly_without_expanding() {
        let bomb = gzip(&vec![0u8; 10 * 1024 * 1024]);
        assert!(bomb.len() < 100 * 1024, "bomb is {} bytes", bomb.len());
        let started = Instant::now();
        let result = gunzip_limited(&bomb, 1024 * 1024);
        assert!(matches!(
            result,
            Err(DecompressError::TooLarge { limit: 1048576 })
        ));
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn a_refused_growth_stops_decompression_before_the_buffer_grows() {
        let bomb = gzip(&vec![0u8; 8 * 1024 * 1024]);
        let mut asked = Vec::new();
        let result = gunzip_within(&bomb, usize::MAX, |from, to| {
            assert!(from < to && asked.last().is_none_or(|&last| last == from));
            asked.push(to);
            to <= 1024 * 1024
        });
        let Err(DecompressError::Refused { capacity }) = result else {
            panic!("expected a refusal, got {result:?}");
        };
        // Every step was asked for before it was taken; the refused one
        // is the first past what was allowed, at most double the last.
        assert_eq!(capacity, *asked.last().unwrap());
        assert!(capacity > 1024 * 1024 && capacity <= 2 * 1024 * 1024);
        assert!(asked.windows(2).all(|w| w[0] < w[1]), "{asked:?}");
        let small = gzip(b"fits");
        assert_eq!(
            gunzip_within(&small, 100, |_, c| c <= 100).unwrap(),
            b"fits"
        );
        assert!(matches!(
            gunzip_within(&small, 100, |_, _| false),
            Err(DecompressError::Refused { .. })
        ));
    }

    #[test]
    fn multi_member_gzip_is_concatenated() {
        let mut both = gzip(b"hello ");
        both.extend_from_slice(&gzip(b"world"));
        assert_eq!(gunzip_limited(&both, 100).unwrap(), b"hello world");
        // The limit covers all members together.
        assert!(matches!(
            gunzip_limited(&both, 8),
            Err(DecompressError::TooLarge { .. })
        ));
    }

    #[test]
    fn invalid_input_is_distinguished_from_too_large() {
        assert!(matches!(
            gunzip_limited(b"not gzip at all", 100),
            Err(DecompressError::Invalid(_))
        ));
        let zipped = gzip(b"some profile bytes");
        let truncated = &zipped[..zipped.len() - 4];
        assert!(matches!(
            gunzip_limited(truncated, 100),
            Err(DecompressError::Invalid(_))
        ));
        let mut corrupted = zipped.clone();
        let last = corrupted.len() - 5;
        corrupted[last] ^= 0xff; // the CRC32
        assert!(matches!(
            gunzip_limited(&corrupted, 100),
            Err(DecompressError::Invalid(_))
        ));
        let mut trailing = zipped;
        trailing.extend_from_slice(b"xx");
        assert!(matches!(
            gunzip_limited(&trailing, 100),
            Err(DecompressError::Invalid(_))
        ));
        assert_eq!(gunzip_limited(b"", 0).unwrap(), b"");
    }

    #[test]
    fn compression_names() {
        assert_eq!(Compression::parse("").unwrap(), Compression::Identity);
        assert_eq!(
            Compression::parse("identity").unwrap(),
            Compression::Identity
        );
        assert_eq!(Compression::parse(" GZIP ").unwrap(), Compression::Gzip);
        assert_eq!(Compression::parse("x-gzip").unwrap(), Compression::Gzip);
        let err = Compression::parse("br").unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"unknown compression "br": supported encodings are gzip, identity"#
        );
        assert_eq!(err.code(), super::super::Code::Unimplemented);
        assert_eq!(Compression::Gzip.name(), "gzip");
    }
}
