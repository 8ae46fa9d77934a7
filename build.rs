//! Compiles the Pyroscope protobuf schemas in `proto/` into Rust types.
//!
//! `protox` parses the `.proto` files in pure Rust, so building needs no
//! `protoc` on the machine.

use std::error::Error;

const PROTO_ROOT: &str = "proto";
const PROTO_FILES: [&str; 4] = [
    "push/v1/push.proto",
    "types/v1/types.proto",
    "google/v1/profile.proto",
    "debuginfo/v1alpha1/debuginfo.proto",
];

fn main() -> Result<(), Box<dyn Error>> {
    println!("cargo:rerun-if-changed={PROTO_ROOT}");
    let descriptors = protox::compile(PROTO_FILES, [PROTO_ROOT])?;
    prost_build::Config::new()
        // `bytes` fields become `bytes::Bytes`: decoding a message held in a
        // `Bytes` buffer then slices the raw profiles out of it instead of
        // copying them.
        .bytes(["."])
        .compile_fds(descriptors)?;
    Ok(())
}
