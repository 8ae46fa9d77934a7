//! The gRPC and gRPC-Web Length-Prefixed-Message framing.
//!
//! Every message is preceded by a 5-byte prefix: one flag byte (bit 0 set =
//! compressed with the request's `grpc-encoding`) and the message length as
//! a big-endian `u32`. gRPC-Web also sends its trailers as a final frame
//! whose flag byte has bit 7 set and whose payload is an HTTP/1-style header
//! block (`grpc-status: 0\r\ngrpc-message: \r\n`).

use bytes::{BufMut, Bytes, BytesMut};

use super::connect_error::{percent_decode_grpc_message, percent_encode_grpc_message};
use super::{Code, CodecError};

/// Length of the flag byte plus the big-endian length.
pub const PREFIX_LEN: usize = 5;
/// Flag bit: the message is compressed.
pub const FLAG_COMPRESSED: u8 = 0x01;
/// Flag bit: the frame holds gRPC-Web trailers, not a message.
pub const FLAG_TRAILERS: u8 = 0x80;

/// Longest `grpc-message` this side sends, before percent-encoding. HTTP
/// stacks commonly refuse header blocks over 8 to 16 KiB, so a longer status
/// message would cost the client the status itself.
pub const MAX_GRPC_MESSAGE_LEN: usize = 4096;

/// One request message taken out of its frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// Whether the message is compressed with the request's `grpc-encoding`.
    pub compressed: bool,
    /// The message bytes, sharing the request body's buffer.
    pub message: Bytes,
}

/// A parsed 5-byte message prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prefix {
    pub flags: u8,
    pub length: u32,
}

/// Reads the 5-byte prefix at the start of `head`, without looking at what
/// follows. Lets a reader refuse an oversized message before buffering it.
/// Only data-frame flags (0 or 1) are accepted: clients never send anything
/// else.
pub fn parse_prefix(head: &[u8], max_len: usize) -> Result<Prefix, CodecError> {
    let Some(prefix) = head.first_chunk::<PREFIX_LEN>() else {
        return Err(CodecError::IncompletePrefix { got: head.len() });
    };
    let flags = prefix[0];
    if flags & !FLAG_COMPRESSED != 0 {
        return Err(CodecError::InvalidFlags { flags });
    }
    let length = u32::from_be_bytes([prefix[1], prefix[2], prefix[3], prefix[4]]);
    if u64::from(length) > max_len as u64 {
        return Err(CodecError::MessageTooLarge {
            length: u64::from(length),
            limit: max_len,
        });
    }
    Ok(Prefix { flags, length })
}

/// Takes the one message of a unary gRPC or gRPC-Web request body.
///
/// Refuses an empty body, a short prefix, flags other than 0 and 1, a
/// declared length over `max_len` (checked before anything else is read), a
/// body shorter than declared, and anything after the message.
pub fn parse_single_message(body: &Bytes, max_len: usize) -> Result<Envelope, CodecError> {
    if body.is_empty() {
        return Err(CodecError::NoMessage);
    }
    let prefix = parse_prefix(body, max_len)?;
    let available = body.len() - PREFIX_LEN;
    let length = prefix.length as usize;
    if available < length {
        return Err(CodecError::TruncatedMessage {
            declared: prefix.length,
            available,
        });
    }
    let end = PREFIX_LEN + length;
    match body.len() - end {
        0 => {}
        trailing if trailing >= PREFIX_LEN => return Err(CodecError::MultipleMessages),
        trailing => return Err(CodecError::TrailingBytes { trailing }),
    }
    Ok(Envelope {
        compressed: prefix.flags & FLAG_COMPRESSED != 0,
        message: body.slice(PREFIX_LEN..end),
    })
}

/// Frames `message` behind a prefix with the given flags.
pub fn encode(flags: u8, message: &[u8]) -> Result<Bytes, CodecError> {
    let length = u32::try_from(message.len()).map_err(|_| CodecError::MessageTooLongToFrame {
        length: message.len(),
    })?;
    let mut framed = BytesMut::with_capacity(PREFIX_LEN + message.len());
    framed.put_u8(flags);
    framed.put_u32(length);
    framed.put_slice(message);
    Ok(framed.freeze())
}

/// The gRPC-Web trailer frame ending a response: `code` `None` is OK
/// (status 0). The message is percent-encoded as `grpc-message` requires
/// and cut to [`MAX_GRPC_MESSAGE_LEN`] bytes.
pub fn encode_grpc_web_trailers(code: Option<Code>, message: &str) -> Bytes {
    let status = code.map_or(0, Code::grpc);
    let message = percent_encode_grpc_message(truncate_at_char(message, MAX_GRPC_MESSAGE_LEN));
    let block = format!("grpc-status: {status}\r\ngrpc-message: {message}\r\n");
    let mut framed = BytesMut::with_capacity(PREFIX_LEN + block.len());
    framed.put_u8(FLAG_TRAILERS);
    // The block is at most a few KiB (the message is capped above).
    framed.put_u32(block.len() as u32);
    framed.put_slice(block.as_bytes());
    framed.freeze()
}

/// What a gRPC-Web trailer frame reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrpcTrailers {
    /// The numeric `grpc-status`; 0 is OK. Kept as a number because a peer
    /// may send codes this side does not know.
    pub status: u32,
    /// The percent-decoded `grpc-message`, empty if absent.
    pub message: String,
    /// Every trailer, names lowercased, values as sent.
    pub all: Vec<(String, String)>,
}

impl GrpcTrailers {
    /// The status as a [`Code`]; `None` for OK or an unknown number.
    pub fn code(&self) -> Option<Code> {
        Code::from_grpc(self.status)
    }
}

/// Parses the payload of a gRPC-Web trailer frame (the bytes after its
/// 5-byte prefix). Names are case-insensitive; lines may end in `\r\n` or
/// `\n`. A missing or non-numeric `grpc-status` is an error.
pub fn parse_grpc_web_trailers(block: &[u8]) -> Result<GrpcTrailers, CodecError> {
    let text = std::str::from_utf8(block).map_err(|err| CodecError::InvalidTrailers {
        reason: format!("not UTF-8: {err}"),
    })?;
    let mut all = Vec::new();
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(CodecError::InvalidTrailers {
                reason: format!("line without a colon: {line:?}"),
            });
        };
        all.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    let find = |name: &str| all.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
    let status = find("grpc-status").ok_or_else(|| CodecError::InvalidTrailers {
        reason: "no grpc-status".to_owned(),
    })?;
    let status = status.parse().map_err(|_| CodecError::InvalidTrailers {
        reason: format!("grpc-status {status:?} is not a number"),
    })?;
    let message = find("grpc-message")
        .map(percent_decode_grpc_message)
        .unwrap_or_default();
    Ok(GrpcTrailers {
        status,
        message,
        all,
    })
}

/// Splits a gRPC-Web response body into its frames (flags and payload),
/// any flags allowed. Each payload is limited to `max_len` bytes. Meant for
/// clients and tests that read our own replies.
pub fn split_frames(body: &Bytes, max_len: usize) -> Result<Vec<(u8, Bytes)>, CodecError> {
    let mut frames = Vec::new();
    let mut offset = 0;
    while offset < body.len() {
        let rest = &body[offset..];
        let Some(prefix) = rest.first_chunk::<PREFIX_LEN>() else {
            return Err(CodecError::IncompletePrefix { got: rest.len() });
        };
        let declared = u32::from_be_bytes([prefix[1], prefix[2], prefix[3], prefix[4]]);
        if u64::from(declared) > max_len as u64 {
            return Err(CodecError::MessageTooLarge {
                length: u64::from(declared),
                limit: max_len,
            });
        }
        let available = rest.len() - PREFIX_LEN;
        if available < declared as usize {
            return Err(CodecError::TruncatedMessage {
                declared,
                available,
            });
        }
        let start = offset + PREFIX_LEN;
        let end = start + declared as usize;
        frames.push((prefix[0], body.slice(start..end)));
        offset = end;
    }
    Ok(frames)
}

/// The longest prefix of `s` of at most `max` bytes that ends on a char
/// boundary.
fn truncate_at_char(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::tests::fixture;

    const LIMIT: usize = 1024;

    #[test]
    fn fixture_envelope_holds_exactly_the_binary_request() {
        let grpc = fixture("push_request.grpc");
        let bin = fixture("push_request.bin");
        let envelope = parse_single_message(&grpc, 1 << 20).unwrap();
        assert!(!envelope.compressed);
        assert_eq!(envelope.message, bin);
        // The message shares the body's buffer.
        assert_eq!(envelope.message.as_ptr(), grpc[PREFIX_LEN..].as_ptr());
    }

    #[test]
    fn round_trip_with_compressed_flag() {
        let framed = encode(FLAG_COMPRESSED, b"abc").unwrap();
        assert_eq!(&framed[..], b"\x01\x00\x00\x00\x03abc");
        let envelope = parse_single_message(&framed, LIMIT).unwrap();
        assert!(envelope.compressed);
        assert_eq!(&envelope.message[..], b"abc");
        let empty = parse_single_message(&encode(0, b"").unwrap(), LIMIT).unwrap();
        assert!(empty.message.is_empty());
    }

    #[test]
    fn malformed_bodies_are_refused() {
        let parse = |body: &'static [u8]| parse_single_message(&Bytes::from_static(body), LIMIT);
        assert!(matches!(parse(b""), Err(CodecError::NoMessage)));
        assert!(matches!(
            parse(b"\x00\x00\x00\x00"),
            Err(CodecError::IncompletePrefix { got: 4 })
        ));
        assert!(matches!(
            parse(b"\x00\x00\x00\x00\x05abc"),
            Err(CodecError::TruncatedMessage {
                declared: 5,
                available: 3
            })
        ));
        assert!(matches!(
            parse(b"\x00\x00\x00\x00\x01a\x00\x00\x00\x00\x01b"),
            Err(CodecError::MultipleMessages)
        ));
        assert!(matches!(
            parse(b"\x00\x00\x00\x00\x01ab"),
            Err(CodecError::TrailingBytes { trailing: 1 })
        ));
        assert!(matches!(
            parse(b"\x02\x00\x00\x00\x01a"),
            Err(CodecError::InvalidFlags { flags: 2 })
        ));
        assert!(matches!(
            parse(b"\x80\x00\x00\x00\x01a"),
            Err(CodecError::InvalidFlags { flags: 0x80 })
        ));
    }

    #[test]
    fn oversized_declared_length_is_refused_before_reading() {
        let body = Bytes::from_static(b"\x00\xff\xff\xff\xff");
        let err = parse_single_message(&body, 268_435_456).unwrap_err();
        assert_eq!(
            err.to_string(),
            "gRPC message length 4294967295 exceeds the limit of 268435456 bytes"
        );
        assert_eq!(err.code(), Code::ResourceExhausted);
        assert!(parse_prefix(b"\x00\x00\x00\x04\x01", LIMIT).is_err());
        assert_eq!(
            parse_prefix(b"\x01\x00\x00\x04\x00", LIMIT).unwrap(),
            Prefix {
                flags: 1,
                length: 1024
            }
        );
    }

    #[test]
    fn grpc_web_ok_trailers_match_what_clients_accept() {
        let frame = encode_grpc_web_trailers(None, "");
        assert_eq!(
            &frame[..],
            b"\x80\x00\x00\x00\x20grpc-status: 0\r\ngrpc-message: \r\n"
        );
        let frames = split_frames(&frame, LIMIT).unwrap();
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].0, FLAG_TRAILERS);
        let trailers = parse_grpc_web_trailers(&frames[0].1).unwrap();
        assert_eq!(trailers.status, 0);
        assert_eq!(trailers.code(), None);
        assert_eq!(trailers.message, "");
    }

    #[test]
    fn grpc_web_error_trailers_round_trip() {
        let mut body = BytesMut::new();
        body.extend_from_slice(&encode(0, b"").unwrap());
        let message = "bad label: 100% wrong\r\nnaïve";
        body.extend_from_slice(&encode_grpc_web_trailers(
            Some(Code::InvalidArgument),
            message,
        ));
        let frames = split_frames(&body.freeze(), LIMIT).unwrap();
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0], (0, Bytes::new()));
        let trailers = parse_grpc_web_trailers(&frames[1].1).unwrap();
        assert_eq!(trailers.code(), Some(Code::InvalidArgument));
        assert_eq!(trailers.status, 3);
        assert_eq!(trailers.message, message);
    }

    #[test]
    fn long_status_messages_are_capped() {
        let long = "é".repeat(MAX_GRPC_MESSAGE_LEN);
        let frame = encode_grpc_web_trailers(Some(Code::Internal), &long);
        let frames = split_frames(&frame, 1 << 20).unwrap();
        let trailers = parse_grpc_web_trailers(&frames[0].1).unwrap();
        assert_eq!(trailers.message.len(), MAX_GRPC_MESSAGE_LEN);
    }

    #[test]
    fn trailer_parsing_is_lenient_on_case_and_line_ends_strict_on_status() {
        let trailers =
            parse_grpc_web_trailers(b"Grpc-Status: 14\nGRPC-MESSAGE: down%21\nx-extra: 1\n")
                .unwrap();
        assert_eq!(trailers.code(), Some(Code::Unavailable));
        assert_eq!(trailers.message, "down!");
        assert_eq!(trailers.all[2], ("x-extra".to_owned(), "1".to_owned()));
        assert!(parse_grpc_web_trailers(b"grpc-message: x\r\n").is_err());
        assert!(parse_grpc_web_trailers(b"grpc-status: ok\r\n").is_err());
        assert!(parse_grpc_web_trailers(b"garbage\r\n").is_err());
        assert!(split_frames(&Bytes::from_static(b"\x80\x00\x00"), LIMIT).is_err());
        assert!(split_frames(&Bytes::from_static(b"\x80\x00\x00\x00\x09ab"), LIMIT).is_err());
    }
}
