//! Push-specific helpers: building requests in each protocol and reading
//! each protocol's answers.

use bytes::Bytes;
use http::StatusCode;
use pyroscope_relay::codec::envelope::{self, FLAG_COMPRESSED, FLAG_TRAILERS};
use pyroscope_relay::codec::proto::{LabelPair, PushRequest, RawProfileSeries, RawSample};
use pyroscope_relay::codec::{Code, Codec, Protocol, encode_push};
use pyroscope_relay::pipeline::{Payload, Profile, Series};
use serde_json::Value;

use super::{Downstream, Reply, Transport, full, post, send};

pub const PUSH: &str = "/push.v1.PusherService/Push";

pub fn series(profile: &Profile) -> &[Series] {
    match &profile.payload {
        Payload::Push(series) => series,
        Payload::Ingest(_) => panic!("expected a push profile"),
    }
}

pub fn gzip(data: &[u8]) -> Bytes {
    Bytes::from(pyroscope_relay::codec::compress::gzip(data))
}

/// How a client frames and compresses one request.
#[derive(Debug, Clone, Copy)]
pub enum Compression {
    None,
    /// Connect: Content-Encoding; gRPC: `grpc-encoding: gzip` and flag 1.
    Gzip,
    /// gRPC only: `grpc-encoding: gzip` but the message sent with flag 0.
    DeclaredOnly,
}

/// The body and headers a client of `protocol` sends for `message`.
pub fn encode_request(
    protocol: Protocol,
    content_type: &'static str,
    message: &[u8],
    compression: Compression,
) -> (Vec<(&'static str, &'static str)>, Bytes) {
    let mut headers = vec![("content-type", content_type)];
    let body = match (protocol, compression) {
        (Protocol::Connect, Compression::Gzip) => {
            headers.push(("content-encoding", "gzip"));
            gzip(message)
        }
        (Protocol::Connect, _) => Bytes::copy_from_slice(message),
        (_, Compression::None) => envelope::encode(0, message).unwrap(),
        (_, Compression::Gzip) => {
            headers.push(("grpc-encoding", "gzip"));
            envelope::encode(FLAG_COMPRESSED, &gzip(message)).unwrap()
        }
        (_, Compression::DeclaredOnly) => {
            headers.push(("grpc-encoding", "gzip"));
            envelope::encode(0, message).unwrap()
        }
    };
    if protocol == Protocol::Grpc {
        headers.push(("te", "trailers"));
    }
    (headers, body)
}

/// Checks a successful answer in the protocol's own form.
pub fn assert_ok(protocol: Protocol, codec: Codec, reply: &Reply, context: &str) {
    assert_eq!(reply.status, StatusCode::OK, "{context}: {}", reply.text());
    let empty: &[u8] = match codec {
        Codec::Proto => b"",
        Codec::Json => b"{}",
    };
    match protocol {
        Protocol::Connect => {
            assert_eq!(
                reply.header("content-type"),
                Some(protocol.content_type(codec))
            );
            assert_eq!(&reply.body[..], empty, "{context}");
        }
        Protocol::Grpc => {
            assert_eq!(reply.grpc_status(), Some(0), "{context}");
            assert_eq!(reply.body, envelope::encode(0, empty).unwrap(), "{context}");
        }
        Protocol::GrpcWeb => {
            let frames = envelope::split_frames(&reply.body, 1 << 20).unwrap();
            assert_eq!(frames.len(), 2, "{context}");
            assert_eq!(frames[0], (0, Bytes::copy_from_slice(empty)), "{context}");
            assert_eq!(frames[1].0, FLAG_TRAILERS);
            assert_eq!(&frames[1].1[..], b"grpc-status: 0\r\ngrpc-message: \r\n");
        }
    }
}

/// The code and message of a failed answer, whatever the protocol.
pub fn error_of(protocol: Protocol, reply: &Reply) -> (Code, String) {
    match protocol {
        Protocol::Connect => {
            let json: Value = serde_json::from_slice(&reply.body).expect("Connect error JSON");
            let code = Code::from_name(json["code"].as_str().unwrap()).unwrap();
            assert_eq!(reply.status.as_u16(), code.http_status());
            assert_eq!(reply.header("content-type"), Some("application/json"));
            (
                code,
                json["message"].as_str().unwrap_or_default().to_owned(),
            )
        }
        Protocol::Grpc => {
            assert_eq!(reply.status, StatusCode::OK);
            assert!(reply.body.is_empty(), "Trailers-Only");
            (
                Code::from_grpc(reply.grpc_status().unwrap()).unwrap(),
                reply.grpc_message(),
            )
        }
        Protocol::GrpcWeb => {
            let frames = envelope::split_frames(&reply.body, 1 << 20).unwrap();
            let (flags, block) = frames.last().unwrap();
            assert_eq!(*flags, FLAG_TRAILERS);
            let trailers = envelope::parse_grpc_web_trailers(block).unwrap();
            (trailers.code().unwrap(), trailers.message)
        }
    }
}

pub fn content_types(protocol: Protocol) -> Vec<(&'static str, Codec)> {
    match protocol {
        Protocol::Connect => vec![
            ("application/proto", Codec::Proto),
            ("application/json", Codec::Json),
            ("application/json; charset=utf-8", Codec::Json),
        ],
        Protocol::Grpc => vec![
            ("application/grpc", Codec::Proto),
            ("application/grpc+proto", Codec::Proto),
            ("application/grpc+json", Codec::Json),
        ],
        Protocol::GrpcWeb => vec![
            ("application/grpc-web", Codec::Proto),
            ("application/grpc-web+proto", Codec::Proto),
            ("application/grpc-web+json", Codec::Json),
        ],
    }
}

/// Series `{app="app-<i>"}` with `samples` samples of 1 KiB each.
pub fn alloy_request(series: usize, samples: usize) -> PushRequest {
    PushRequest {
        series: (0..series)
            .map(|s| RawProfileSeries {
                labels: vec![LabelPair {
                    name: "app".into(),
                    value: format!("app-{s}"),
                }],
                samples: (0..samples)
                    .map(|n| RawSample {
                        raw_profile: (0..1024)
                            .map(|_| fastrand::u8(..))
                            .collect::<Vec<_>>()
                            .into(),
                        id: format!("request-id-{s}-{n}"),
                    })
                    .collect(),
                annotations: vec![],
            })
            .collect(),
    }
}

pub async fn push_with(
    addr: std::net::SocketAddr,
    protocol: Protocol,
    codec: Codec,
    request: &PushRequest,
) -> Reply {
    let content_type = protocol.content_type(codec);
    let (headers, body) = encode_request(
        protocol,
        content_type,
        &encode_push(request, codec),
        Compression::None,
    );
    let transport = if protocol == Protocol::Grpc {
        Transport::H2
    } else {
        Transport::H1
    };
    send(transport, addr, post(PUSH, &headers, full(body))).await
}

pub fn assert_delivered(d: &Downstream, request: &PushRequest) {
    let profile = d.received().pop().expect("delivered");
    let got = series(&profile);
    assert_eq!(got.len(), request.series.len());
    for (i, (g, want)) in got.iter().zip(&request.series).enumerate() {
        assert_eq!(g.labels.to_string(), format!(r#"{{app="app-{i}"}}"#));
        assert_eq!(g.samples.len(), want.samples.len());
        for (gs, ws) in g.samples.iter().zip(&want.samples) {
            assert_eq!(gs.raw_profile.len(), 1024);
            assert_eq!(gs.raw_profile, ws.raw_profile);
            assert_eq!(gs.id, ws.id);
        }
    }
}
