//! `push.v1.PusherService/Push` messages: decoding and encoding in either
//! codec, and conversion to and from the pipeline's [`Series`].

use bytes::Bytes;
use prost::Message as _;

use super::proto::{LabelPair, PushRequest, PushResponse, RawProfileSeries, RawSample};
use super::{Codec, CodecError, push_json};
use crate::pipeline::{Labels, Sample, Series};

/// What the JSON codec answers for an empty `PushResponse`.
const EMPTY_JSON_OBJECT: &[u8] = b"{}";

/// Turns a decoded request into pipeline series, as Alloy's receiver does:
/// labels are built pair by pair so the last duplicate wins and empty
/// values are dropped; annotations are dropped. Raw profiles move over
/// without copying.
pub fn series_from_proto(request: PushRequest) -> Vec<Series> {
    request
        .series
        .into_iter()
        .map(|series| Series {
            labels: Labels::from_pairs(series.labels.into_iter().map(|l| (l.name, l.value))),
            samples: series
                .samples
                .into_iter()
                .map(|s| Sample {
                    id: s.id,
                    raw_profile: s.raw_profile,
                })
                .collect(),
        })
        .collect()
}

/// Builds the request that sends `series` on. Labels go in name order;
/// raw profiles are shared, not copied.
pub fn series_to_proto(series: &[Series]) -> PushRequest {
    PushRequest {
        series: series
            .iter()
            .map(|s| RawProfileSeries {
                labels: s
                    .labels
                    .iter()
                    .map(|l| LabelPair {
                        name: l.name.clone(),
                        value: l.value.clone(),
                    })
                    .collect(),
                samples: s
                    .samples
                    .iter()
                    .map(|sample| RawSample {
                        raw_profile: sample.raw_profile.clone(),
                        id: sample.id.clone(),
                    })
                    .collect(),
                annotations: Vec::new(),
            })
            .collect(),
    }
}

/// Decodes a (decompressed, unframed) push request. With [`Codec::Proto`]
/// the raw profiles are slices of `body`. An empty body is an empty request
/// in protobuf but an error in JSON, as in connect-go.
pub fn decode_push(body: Bytes, codec: Codec) -> Result<PushRequest, CodecError> {
    match codec {
        Codec::Proto => PushRequest::decode(body).map_err(|source| CodecError::InvalidProto {
            message: "PushRequest",
            source,
        }),
        Codec::Json if body.is_empty() => Err(CodecError::EmptyJson),
        Codec::Json => push_json::decode_request(&body).map_err(|source| CodecError::InvalidJson {
            message: "PushRequest",
            source,
        }),
    }
}

/// Encodes a push request for sending.
pub fn encode_push(request: &PushRequest, codec: Codec) -> Bytes {
    match codec {
        Codec::Proto => Bytes::from(request.encode_to_vec()),
        Codec::Json => Bytes::from(push_json::encode_request(request)),
    }
}

/// The body of a successful push answer: the empty `PushResponse`, which is
/// zero bytes in protobuf and `{}` in JSON.
pub fn encode_push_response(codec: Codec) -> Bytes {
    match codec {
        Codec::Proto => Bytes::new(),
        Codec::Json => Bytes::from_static(EMPTY_JSON_OBJECT),
    }
}

/// Checks a backend's push answer. `PushResponse` has no fields, so any
/// valid protobuf, or any JSON object, is accepted (unknown fields are
/// ignored as connect-go ignores them).
pub fn decode_push_response(body: &[u8], codec: Codec) -> Result<PushResponse, CodecError> {
    match codec {
        Codec::Proto => PushResponse::decode(body).map_err(|source| CodecError::InvalidProto {
            message: "PushResponse",
            source,
        }),
        Codec::Json if body.is_empty() => Err(CodecError::EmptyJson),
        Codec::Json => serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(body)
            .map(|_| PushResponse {})
            .map_err(|source| CodecError::InvalidJson {
                message: "PushResponse",
                source,
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Code;
    use crate::codec::proto::ProfileAnnotation;
    use crate::codec::tests::fixture;

    fn sample_request() -> PushRequest {
        PushRequest {
            series: vec![RawProfileSeries {
                labels: vec![
                    LabelPair {
                        name: "__name__".into(),
                        value: "process_cpu".into(),
                    },
                    LabelPair {
                        name: "service_name".into(),
                        value: "app".into(),
                    },
                ],
                samples: vec![RawSample {
                    raw_profile: Bytes::from_static(b"\x1f\x8b\x08\x00\xff\xfe binary"),
                    id: "9c6c7b1e-3f2a-4d5e-8f90-1234567890ab".into(),
                }],
                annotations: vec![],
            }],
        }
    }

    #[test]
    fn fixture_decodes_to_one_series_with_a_name_and_shares_the_buffer() {
        let body = fixture("push_request.bin");
        let request = decode_push(body.clone(), Codec::Proto).unwrap();
        let raw = &request.series[0].samples[0].raw_profile;
        let body_range = body.as_ptr() as usize..body.as_ptr() as usize + body.len();
        assert!(
            body_range.contains(&(raw.as_ptr() as usize)),
            "raw profile was copied"
        );

        let series = series_from_proto(request);
        assert_eq!(series.len(), 1);
        assert_eq!(series[0].labels.get("__name__"), Some("process_cpu"));
        assert_eq!(series[0].labels.get("service_name"), Some("connect-app"));
        assert_eq!(series[0].samples.len(), 1);
        assert!(!series[0].samples[0].raw_profile.is_empty());
        // Re-encoding gives a request that decodes to the same series.
        let again = encode_push(&series_to_proto(&series), Codec::Proto);
        assert_eq!(
            series_from_proto(decode_push(again, Codec::Proto).unwrap()),
            series
        );
    }

    #[test]
    fn series_conversion_follows_alloy() {
        let mut request = sample_request();
        let first = &mut request.series[0];
        first.labels.push(LabelPair {
            name: "service_name".into(),
            value: "later".into(),
        });
        first.labels.push(LabelPair {
            name: "empty".into(),
            value: String::new(),
        });
        first.annotations.push(ProfileAnnotation {
            key: "k".into(),
            value: "v".into(),
        });
        let series = series_from_proto(request);
        assert_eq!(
            series[0].labels,
            Labels::from_pairs([("__name__", "process_cpu"), ("service_name", "later")])
        );
        assert_eq!(
            series[0].samples[0].id,
            "9c6c7b1e-3f2a-4d5e-8f90-1234567890ab"
        );
        assert!(series_from_proto(PushRequest::default()).is_empty());
    }

    #[test]
    fn json_round_trip_with_base64_and_id() {
        let request = sample_request();
        let json = encode_push(&request, Codec::Json);
        let text = std::str::from_utf8(&json).unwrap();
        assert!(
            text.contains(r#""rawProfile":"H4sIAP/+IGJpbmFyeQ==""#),
            "{text}"
        );
        assert!(text.contains(r#""ID":"9c6c7b1e-"#), "{text}");
        assert!(
            !text.contains("annotations"),
            "empty lists are omitted: {text}"
        );
        assert_eq!(decode_push(json, Codec::Json).unwrap(), request);
        assert_eq!(encode_push(&PushRequest::default(), Codec::Json), "{}");
    }

    #[test]
    fn json_accepts_what_protojson_accepts() {
        let json = br#"{
            "series": [{
                "labels": [{"name": "__name__", "value": "memory"}, {"name": "x", "value": null}],
                "samples": [
                    {"raw_profile": "H4sIAP_-IGJpbmFyeQ", "ID": "a"},
                    {"rawProfile": "AQID\nBA==", "id": "ignored", "extra": {"nested": [1, 2]}},
                    {"rawProfile": null, "ID": null}
                ],
                "annotations": [{"key": "k", "value": "v"}],
                "futureField": 1
            }, {"labels": null}],
            "unknown": true
        }"#;
        let request = decode_push(Bytes::from_static(json), Codec::Json).unwrap();
        let samples = &request.series[0].samples;
        assert_eq!(
            &samples[0].raw_profile[..],
            b"\x1f\x8b\x08\x00\xff\xfe binary"
        );
        assert_eq!(samples[0].id, "a");
        assert_eq!(&samples[1].raw_profile[..], b"\x01\x02\x03\x04");
        assert_eq!(samples[1].id, "", "lowercase id is an unknown field");
        assert!(samples[2].raw_profile.is_empty());
        assert_eq!(request.series[0].annotations.len(), 1);
        assert_eq!(request.series[1], RawProfileSeries::default());
        assert_eq!(
            decode_push(Bytes::from_static(b"{}"), Codec::Json).unwrap(),
            PushRequest::default()
        );
    }

    #[test]
    fn json_errors() {
        let decode =
            |json: &'static str| decode_push(Bytes::from_static(json.as_bytes()), Codec::Json);
        let empty = decode("").unwrap_err();
        assert!(matches!(empty, CodecError::EmptyJson));
        assert_eq!(empty.code(), Code::InvalidArgument);
        for bad in [
            "null",
            "[]",
            "{",
            r#"{"series": {}}"#,
            r#"{"series": [null]}"#,
            r#"{"series": [[]]}"#,
            r#"{"series": [{"samples": [["AA==", "id"]]}]}"#,
            r#"{"series": [{"samples": [{"rawProfile": "!!!"}]}]}"#,
            r#"{"series": [{"samples": [{"rawProfile": 5}]}]}"#,
            r#"{"series": [{"samples": [{"rawProfile": "AA==", "raw_profile": "AA=="}]}]}"#,
            r#"{"series": [{"labels": [{"name": 1}]}]}"#,
            r#"{} trailing"#,
        ] {
            let err = decode(bad).unwrap_err();
            assert!(
                matches!(err, CodecError::InvalidJson { .. }),
                "{bad}: {err}"
            );
            assert_eq!(err.code(), Code::InvalidArgument);
        }
        let message = decode(r#"{"series": [{"samples": [{"rawProfile": "!!!"}]}]}"#)
            .unwrap_err()
            .to_string();
        assert!(
            message.starts_with("invalid JSON PushRequest: invalid base64 in rawProfile"),
            "{message}"
        );
    }

    #[test]
    fn proto_errors_and_empty_body() {
        assert_eq!(
            decode_push(Bytes::new(), Codec::Proto).unwrap(),
            PushRequest::default()
        );
        let err = decode_push(Bytes::from_static(b"\x0a\xff"), Codec::Proto).unwrap_err();
        assert!(
            err.to_string().starts_with("invalid protobuf PushRequest:"),
            "{err}"
        );
        assert_eq!(err.code(), Code::InvalidArgument);
        let truncated = fixture("push_request.bin").slice(..100);
        assert!(decode_push(truncated, Codec::Proto).is_err());
    }

    #[test]
    fn push_responses() {
        assert!(encode_push_response(Codec::Proto).is_empty());
        assert_eq!(encode_push_response(Codec::Json), "{}");
        assert!(decode_push_response(b"", Codec::Proto).is_ok());
        assert!(decode_push_response(b"{}", Codec::Json).is_ok());
        assert!(decode_push_response(br#"{"future": 1}"#, Codec::Json).is_ok());
        assert!(decode_push_response(b"", Codec::Json).is_err());
        assert!(decode_push_response(b"[]", Codec::Json).is_err());
        assert!(decode_push_response(b"\xff", Codec::Proto).is_err());
    }
}
