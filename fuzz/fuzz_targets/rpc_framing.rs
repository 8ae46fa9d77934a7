//! Connect / gRPC / gRPC-Web framing and the headers that steer it: the
//! 5-byte envelope, gRPC-Web trailer blocks, Connect error bodies,
//! `Content-Type`, the timeout headers and the compression names.
//!
//! The first two input bytes are the length limit; the rest is the body,
//! and also (as text) a header value.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use pyroscope_relay::codec::{Compression, classify, connect_error, envelope, timeout};

fuzz_target!(|data: &[u8]| {
    let Some((limit, body)) = data.split_first_chunk::<2>() else {
        return;
    };
    let max_len = usize::from(u16::from_le_bytes(*limit));
    let body = Bytes::copy_from_slice(body);

    let _ = envelope::parse_prefix(&body, max_len);
    if let Ok(single) = envelope::parse_single_message(&body, max_len) {
        let flags = u8::from(single.compressed);
        let framed = envelope::encode(flags, &single.message).expect("a parsed message fits");
        assert_eq!(framed, body, "re-framing a parsed message");
    }
    if let Ok(frames) = envelope::split_frames(&body, max_len) {
        let total: usize = frames
            .iter()
            .map(|(_, f)| envelope::PREFIX_LEN + f.len())
            .sum();
        assert_eq!(total, body.len(), "frames cover the body");
        for (flags, payload) in frames {
            if flags & envelope::FLAG_TRAILERS != 0 {
                let _ = envelope::parse_grpc_web_trailers(&payload);
            }
        }
    }
    let _ = envelope::parse_grpc_web_trailers(&body);
    let _ = connect_error::decode(&body);

    let Ok(text) = std::str::from_utf8(&body) else {
        return;
    };
    let _ = classify(text);
    let _ = Compression::parse(text);
    let _ = connect_error::percent_decode_grpc_message(text);
    if let Ok(t) = timeout::parse_grpc_timeout(text) {
        let _ = timeout::encode_grpc_timeout(t);
    }
    if let Ok(t) = timeout::parse_connect_timeout_ms(text) {
        let _ = timeout::encode_connect_timeout_ms(t);
    }
});
