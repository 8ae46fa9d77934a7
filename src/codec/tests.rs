//! Shared test helpers, and properties that hold across the codec: no
//! input, however malformed, makes a decoder panic.

use bytes::Bytes;

use super::{Codec, classify, compress, decode_push, envelope, labelset, timeout};

/// A captured agent payload from `tests/fixtures` (see its README).
pub(super) fn fixture(name: &str) -> Bytes {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    match std::fs::read(&path) {
        Ok(data) => Bytes::from(data),
        Err(err) => panic!("fixture {path}: {err}"),
    }
}

/// Feeds every decoder mutated copies of real payloads and random text.
#[test]
fn decoders_never_panic_on_mangled_input() {
    let mut rng = fastrand::Rng::with_seed(0x5eed);
    let seeds = [
        fixture("push_request.bin"),
        fixture("push_request.grpc"),
        Bytes::from(compress::gzip(&fixture("push_request.bin"))),
        Bytes::from_static(br#"{"series":[{"labels":[{"name":"a","value":"b"}],"samples":[{"rawProfile":"AA==","ID":"x"}]}]}"#),
        Bytes::from_static(b"app.cpu{env=prod,region=us-east}"),
    ];
    for round in 0..3000 {
        let seed = &seeds[round % seeds.len()];
        let mut data = seed.to_vec();
        for _ in 0..rng.usize(1..8) {
            match rng.u8(0..3) {
                0 if !data.is_empty() => {
                    let at = rng.usize(..data.len());
                    data[at] = rng.u8(..);
                }
                1 if !data.is_empty() => data.truncate(rng.usize(..data.len())),
                _ => data.push(rng.u8(..)),
            }
        }
        let data = Bytes::from(data);
        let _ = envelope::parse_single_message(&data, 1 << 20);
        let _ = envelope::split_frames(&data, 1 << 20);
        let _ = envelope::parse_grpc_web_trailers(&data);
        let _ = decode_push(data.clone(), Codec::Proto);
        let _ = decode_push(data.clone(), Codec::Json);
        let _ = compress::gunzip_limited(&data, 1 << 20);
        let text = String::from_utf8_lossy(&data);
        let _ = labelset::parse(&text);
        let _ = classify(&text);
        let _ = timeout::parse_grpc_timeout(&text);
        let _ = timeout::parse_connect_timeout_ms(&text);
        let _ = super::connect_error::decode(&data);
        let _ = super::connect_error::percent_decode_grpc_message(&text);
    }
}
