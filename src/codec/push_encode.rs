//! Encodes a `PushRequest` in protobuf straight from borrowed label pairs
//! and samples. The writer rewrites the labels of every push it forwards;
//! building an owned message first would copy every label string and
//! sample id once more per endpoint request. The output is byte for byte
//! what prost gives for the same message (tested below).

use bytes::Bytes;

use crate::pipeline::Sample;

/// One series to encode: label pairs in the order to send, and samples.
pub struct SeriesRef<'a> {
    pub labels: Vec<(&'a str, &'a str)>,
    pub samples: Vec<&'a Sample>,
}

/// `PushRequest { series }` in protobuf.
pub fn encode_push_request(series: &[SeriesRef<'_>]) -> Bytes {
    let lens: Vec<usize> = series.iter().map(series_len).collect();
    let total: usize = lens.iter().map(|&len| nested_len(len)).sum();
    let mut out = Vec::with_capacity(total);
    for (s, &len) in series.iter().zip(&lens) {
        put_header(&mut out, 1, len);
        for &(name, value) in &s.labels {
            put_header(&mut out, 1, pair_len(name, value));
            put_bytes(&mut out, 1, name.as_bytes());
            put_bytes(&mut out, 2, value.as_bytes());
        }
        for sample in &s.samples {
            put_header(&mut out, 2, sample_len(sample));
            put_bytes(&mut out, 1, &sample.raw_profile);
            put_bytes(&mut out, 2, sample.id.as_bytes());
        }
    }
    debug_assert_eq!(out.len(), total);
    Bytes::from(out)
}

fn series_len(s: &SeriesRef<'_>) -> usize {
    let labels: usize = s
        .labels
        .iter()
        .map(|(n, v)| nested_len(pair_len(n, v)))
        .sum();
    let samples: usize = s.samples.iter().map(|x| nested_len(sample_len(x))).sum();
    labels + samples
}

fn pair_len(name: &str, value: &str) -> usize {
    field_len(name.len()) + field_len(value.len())
}

fn sample_len(sample: &Sample) -> usize {
    field_len(sample.raw_profile.len()) + field_len(sample.id.len())
}

/// An embedded message is written even when empty.
fn nested_len(len: usize) -> usize {
    1 + varint_len(len as u64) + len
}

/// proto3 leaves out an empty string or bytes field.
fn field_len(len: usize) -> usize {
    if len == 0 { 0 } else { nested_len(len) }
}

/// The key (field numbers here are all below 16: one byte) and length.
fn put_header(out: &mut Vec<u8>, field: u8, len: usize) {
    out.push(field << 3 | 2);
    put_varint(out, len as u64);
}

fn put_bytes(out: &mut Vec<u8>, field: u8, bytes: &[u8]) {
    if !bytes.is_empty() {
        put_header(out, field, bytes.len());
        out.extend_from_slice(bytes);
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::proto::{LabelPair, PushRequest, RawProfileSeries, RawSample};
    use prost::Message;

    #[test]
    fn matches_prost_byte_for_byte() {
        let big = Sample {
            id: "0e8f1c3a".into(),
            raw_profile: Bytes::from(vec![7u8; 300]),
        };
        let empty = Sample {
            id: String::new(),
            raw_profile: Bytes::new(),
        };
        let series = [
            SeriesRef {
                labels: vec![
                    ("__name__", "process_cpu"),
                    ("service_name", "app"),
                    ("e", ""),
                ],
                samples: vec![&big, &empty],
            },
            SeriesRef {
                labels: vec![],
                samples: vec![],
            },
        ];
        let owned = PushRequest {
            series: series
                .iter()
                .map(|s| RawProfileSeries {
                    labels: s
                        .labels
                        .iter()
                        .map(|(n, v)| LabelPair {
                            name: (*n).into(),
                            value: (*v).into(),
                        })
                        .collect(),
                    samples: s
                        .samples
                        .iter()
                        .map(|x| RawSample {
                            raw_profile: x.raw_profile.clone(),
                            id: x.id.clone(),
                        })
                        .collect(),
                    annotations: vec![],
                })
                .collect(),
        };
        assert_eq!(encode_push_request(&series)[..], owned.encode_to_vec()[..]);
        assert_eq!(encode_push_request(&[]).len(), 0);
    }

    #[test]
    fn varint_lengths() {
        for (v, len) in [
            (0u64, 1),
            (127, 1),
            (128, 2),
            (16_383, 2),
            (16_384, 3),
            (u64::MAX, 10),
        ] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!((out.len(), varint_len(v)), (len, len), "{v}");
        }
    }
}
