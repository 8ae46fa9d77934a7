//! Wire formats: protobuf messages, Connect / gRPC / gRPC-Web framing,
//! the Pyroscope labelset grammar, URL query components, and bounded
//! decompression.
//!
//! Nothing here does I/O: receivers and senders hand in bytes and header
//! values and get typed messages or a [`CodecError`] carrying the status
//! [`Code`] to answer with.

pub mod compress;
pub mod connect_error;
pub mod envelope;
mod error;
pub mod labelset;
pub mod proto;
pub mod push;
pub mod push_encode;
mod push_json;
pub mod query;
pub mod rpc;
pub mod stacks;
mod status;
#[cfg(test)]
mod tests;
pub mod timeout;

pub use compress::{Compression, DecompressError};
pub use envelope::Envelope;
pub use error::CodecError;
pub use labelset::LabelsetError;
pub use push::{
    decode_push, decode_push_response, encode_push, encode_push_response, series_from_proto,
    series_to_proto,
};
pub use rpc::{Codec, Protocol, classify};
pub use status::Code;
