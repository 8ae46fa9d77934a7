//! A `push.v1` request body as the receiver takes it apart: the gRPC /
//! gRPC-Web envelope or the bare Connect body, bounded gzip, then the
//! protobuf or JSON `PushRequest`, and the series the pipeline gets.
//!
//! The first input byte picks the protocol (bits 0-1), the JSON codec
//! (bit 2) and gzip (bit 3); the rest is the body.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use pyroscope_relay::codec::compress::gunzip_limited;
use pyroscope_relay::codec::decode_push;
use pyroscope_relay::codec::push_encode::{SeriesRef, encode_push_request};
use pyroscope_relay::codec::{Codec, encode_push, envelope, series_from_proto, series_to_proto};

/// The receiver's default body limit is far larger; a small one keeps each
/// run fast and is what limits are for.
const LIMIT: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let enveloped = selector & 3 != 0;
    let codec = if selector & 4 != 0 {
        Codec::Json
    } else {
        Codec::Proto
    };
    let gzipped = selector & 8 != 0;
    let body = Bytes::copy_from_slice(body);

    let (compressed, message) = if enveloped {
        let Ok(envelope) = envelope::parse_single_message(&body, LIMIT) else {
            return;
        };
        if envelope.compressed && !gzipped {
            return;
        }
        (envelope.compressed, envelope.message)
    } else {
        (gzipped, body)
    };
    let message = if compressed && !message.is_empty() {
        match gunzip_limited(&message, LIMIT) {
            Ok(out) => Bytes::from(out),
            Err(_) => return,
        }
    } else {
        message
    };
    let Ok(request) = decode_push(message, codec) else {
        return;
    };

    // Whatever was accepted goes out again in JSON and comes back the same.
    let json = encode_push(&request, Codec::Json);
    let again = decode_push(json, Codec::Json).expect("our own JSON decodes");
    assert_eq!(again, request, "JSON round trip");

    // The writer's borrowed encoder gives prost's bytes for the same series.
    let series = series_from_proto(request);
    let refs: Vec<SeriesRef<'_>> = series
        .iter()
        .map(|s| SeriesRef {
            labels: s
                .labels
                .iter()
                .map(|l| (l.name.as_str(), l.value.as_str()))
                .collect(),
            samples: s.samples.iter().collect(),
        })
        .collect();
    let ours = encode_push_request(&refs);
    let prost = encode_push(&series_to_proto(&series), Codec::Proto);
    assert_eq!(ours, prost, "push encoder and prost differ");
});
