//! The one error type of the wire-format layer, with the status code each
//! failure should be answered with.

use super::Code;
use super::compress::DecompressError;

/// Why a request or response could not be framed, decoded or encoded.
///
/// Messages are meant for the client that sent the bytes: they say what was
/// wrong and, where it helps, what the limit or the accepted form is.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The body carried no length-prefixed message at all.
    #[error("unary request has zero messages")]
    NoMessage,

    /// The body ended inside the 5-byte message prefix.
    #[error("incomplete gRPC message prefix: got {got} of 5 bytes")]
    IncompletePrefix { got: usize },

    /// The flag byte of a message prefix was neither 0 (uncompressed) nor 1
    /// (compressed).
    #[error(
        "invalid gRPC message flags 0x{flags:02x}: only 0 (uncompressed) and 1 (compressed) are allowed"
    )]
    InvalidFlags { flags: u8 },

    /// A message, declared or decompressed, is larger than allowed.
    #[error("gRPC message length {length} exceeds the limit of {limit} bytes")]
    MessageTooLarge { length: u64, limit: usize },

    /// The prefix promised more bytes than the body holds.
    #[error(
        "gRPC message truncated: the prefix declares {declared} bytes but only {available} follow"
    )]
    TruncatedMessage { declared: u32, available: usize },

    /// A complete second message followed the first in a unary request.
    #[error("unary request has multiple messages")]
    MultipleMessages,

    /// Bytes too few to be a message followed the first message.
    #[error("{trailing} unexpected bytes after the gRPC message")]
    TrailingBytes { trailing: usize },

    /// A message this side must frame is longer than the 4-byte length
    /// prefix can express.
    #[error("message of {length} bytes is too long for a gRPC length prefix (at most 4294967295)")]
    MessageTooLongToFrame { length: usize },

    /// The compressed flag was set but the request named no compression.
    #[error("protocol error: message is flagged compressed but no grpc-encoding was sent")]
    CompressedWithoutEncoding,

    /// The request named a compression this relay does not support.
    #[error("unknown compression {encoding:?}: supported encodings are gzip, identity")]
    UnsupportedEncoding { encoding: String },

    /// Gunzipping failed or exceeded the size limit.
    #[error(transparent)]
    Decompress(#[from] DecompressError),

    /// The protobuf bytes are not a valid message of the expected type.
    #[error("invalid protobuf {message}: {source}")]
    InvalidProto {
        message: &'static str,
        #[source]
        source: prost::DecodeError,
    },

    /// The JSON text is not a valid message of the expected type.
    #[error("invalid JSON {message}: {source}")]
    InvalidJson {
        message: &'static str,
        #[source]
        source: serde_json::Error,
    },

    /// An empty body is a valid protobuf message but not a JSON object.
    #[error("zero-length payload is not a valid JSON object")]
    EmptyJson,

    /// A timeout header could not be parsed.
    #[error("invalid {header} header {value:?}: {expected}")]
    InvalidTimeout {
        header: &'static str,
        value: String,
        expected: &'static str,
    },

    /// A gRPC-Web trailer block was malformed.
    #[error("invalid gRPC-Web trailers: {reason}")]
    InvalidTrailers { reason: String },
}

impl CodecError {
    /// The status code to answer with, following what connect-go and
    /// grpc-go answer for the same failure.
    pub fn code(&self) -> Code {
        match self {
            // connect-go treats unary cardinality violations as an
            // unimplemented streaming shape, not as bad input.
            CodecError::NoMessage | CodecError::MultipleMessages => Code::Unimplemented,
            CodecError::UnsupportedEncoding { .. } => Code::Unimplemented,
            CodecError::MessageTooLarge { .. } => Code::ResourceExhausted,
            CodecError::Decompress(
                DecompressError::TooLarge { .. } | DecompressError::Refused { .. },
            ) => Code::ResourceExhausted,
            // Both connect-go and grpc-go call this a protocol error.
            CodecError::CompressedWithoutEncoding => Code::Internal,
            // Only ever raised on our own outgoing messages.
            CodecError::MessageTooLongToFrame { .. } => Code::Internal,
            CodecError::InvalidTrailers { .. } => Code::Internal,
            CodecError::IncompletePrefix { .. }
            | CodecError::InvalidFlags { .. }
            | CodecError::TruncatedMessage { .. }
            | CodecError::TrailingBytes { .. }
            | CodecError::Decompress(DecompressError::Invalid(_))
            | CodecError::InvalidProto { .. }
            | CodecError::InvalidJson { .. }
            | CodecError::EmptyJson
            | CodecError::InvalidTimeout { .. } => Code::InvalidArgument,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_numbers_and_codes_follow_connect() {
        let err = CodecError::MessageTooLarge {
            length: u64::from(u32::MAX),
            limit: 268_435_456,
        };
        assert_eq!(
            err.to_string(),
            "gRPC message length 4294967295 exceeds the limit of 268435456 bytes"
        );
        assert_eq!(err.code(), Code::ResourceExhausted);
        assert_eq!(CodecError::NoMessage.code(), Code::Unimplemented);
        assert_eq!(CodecError::EmptyJson.code(), Code::InvalidArgument);
        let too_big = CodecError::from(DecompressError::TooLarge { limit: 10 });
        assert_eq!(too_big.code(), Code::ResourceExhausted);
        assert_eq!(
            too_big.to_string(),
            "decompressed size exceeds the limit of 10 bytes"
        );
    }
}
