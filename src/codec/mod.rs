//! Wire formats: protobuf messages, Connect / gRPC / gRPC-Web framing,
//! the Pyroscope labelset grammar, and bounded decompression.

mod status;

pub use status::Code;
