//! `/push.v1.PusherService/Push` through real sockets: every protocol,
//! codec and compression delivering byte-exact, and Alloy's table.

mod receive_support;

use bytes::Bytes;
use http::StatusCode;
use pyroscope_relay::codec::{Code, Codec, Protocol, decode_push, encode_push};
use receive_support::push::*;
use receive_support::*;

#[tokio::test]
async fn every_protocol_codec_and_compression_delivers_the_fixture_byte_exact() {
    let fixture_request = decode_push(fixture("push_request.bin"), Codec::Proto).unwrap();
    let expected_raw = fixture_request.series[0].samples[0].raw_profile.clone();
    let expected_id = fixture_request.series[0].samples[0].id.clone();
    let d = Downstream::new("recorder");
    let relay = Relay::start(args(&[&d])).await;
    let mut cases = 0;
    for protocol in [Protocol::Connect, Protocol::Grpc, Protocol::GrpcWeb] {
        let transports: &[Transport] = match protocol {
            Protocol::Grpc => &[Transport::H2],
            _ => &[Transport::H1, Transport::H2],
        };
        let compressions: &[Compression] = match protocol {
            Protocol::Connect => &[Compression::None, Compression::Gzip],
            _ => &[
                Compression::None,
                Compression::Gzip,
                Compression::DeclaredOnly,
            ],
        };
        for (content_type, codec) in content_types(protocol) {
            let message = match codec {
                Codec::Proto => fixture("push_request.bin"),
                Codec::Json => encode_push(&fixture_request, Codec::Json),
            };
            for &compression in compressions {
                let (headers, body) = encode_request(protocol, content_type, &message, compression);
                for &transport in transports {
                    for in_chunks in [false, true] {
                        let context = format!(
                            "{protocol:?} {content_type} {compression:?} {transport:?} chunked={in_chunks}"
                        );
                        let client_body = if in_chunks {
                            chunked(body.chunks(500).map(Bytes::copy_from_slice).collect())
                        } else {
                            full(body.clone())
                        };
                        let reply =
                            send(transport, relay.addr(), post(PUSH, &headers, client_body)).await;
                        assert_ok(protocol, codec, &reply, &context);
                        let profile = d.received().pop().unwrap();
                        let got = series(&profile);
                        assert_eq!(got.len(), 1, "{context}");
                        assert_eq!(got[0].samples[0].raw_profile, expected_raw, "{context}");
                        assert_eq!(got[0].samples[0].id, expected_id, "{context}");
                        assert_eq!(got[0].labels.get("__name__"), Some("process_cpu"));
                        cases += 1;
                    }
                }
            }
        }
    }
    assert_eq!(cases, 2 * (3 * 2 * 2) + 2 * (3 * 3) + 2 * 2 * (3 * 3));
    let text = relay.metrics_text();
    for protocol in ["connect", "grpc", "grpc_web"] {
        let needle = format!(r#"route="push",protocol="{protocol}",status="ok"}}"#);
        assert!(text.contains(&needle), "{needle} in {text}");
    }
}

#[tokio::test]
async fn fixture_with_service_name_gets_app_name_as_alloy_does() {
    let d = Downstream::new("recorder");
    let relay = Relay::start(args(&[&d])).await;
    let reply = h1(
        relay.addr(),
        post(
            PUSH,
            &[("content-type", "application/proto")],
            full(fixture("push_request.bin")),
        ),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    let profile = d.received().pop().unwrap();
    let labels = &series(&profile)[0].labels;
    assert!(labels.get("service_name").is_some());
    assert_eq!(labels.get("app_name"), Some("process_cpu"));
}

/// Alloy's `TestForwardsProfilesPushV1`.
#[tokio::test]
async fn alloy_forwards_profiles_push_v1_table() {
    let clients = [
        (Protocol::Connect, Codec::Proto),
        (Protocol::Connect, Codec::Json),
        (Protocol::Grpc, Codec::Proto),
        (Protocol::GrpcWeb, Codec::Proto),
    ];
    for (protocol, codec) in clients {
        let d = Downstream::new("r0");
        let relay = Relay::start(args(&[&d])).await;
        let request = alloy_request(1, 1);
        let reply = push_with(relay.addr(), protocol, codec, &request).await;
        assert_ok(protocol, codec, &reply, &format!("{protocol:?} {codec:?}"));
        assert_delivered(&d, &request);
        relay.component.shutdown().await;
    }
    for (series, samples, receivers) in [(2, 1, 1), (1, 2, 1), (1, 2, 2)] {
        let ds: Vec<_> = (0..receivers)
            .map(|i| Downstream::new(&format!("r{i}")))
            .collect();
        let relay = Relay::start(args(&ds.iter().collect::<Vec<_>>())).await;
        let request = alloy_request(series, samples);
        let reply = push_with(relay.addr(), Protocol::Connect, Codec::Proto, &request).await;
        assert_ok(Protocol::Connect, Codec::Proto, &reply, "table");
        for d in &ds {
            assert_delivered(d, &request);
        }
        relay.component.shutdown().await;
    }
    let ok = Downstream::new("r0");
    let wtf = Downstream::failing("r1", internal("wtf"));
    let relay = Relay::start(args(&[&ok, &wtf])).await;
    let request = alloy_request(1, 2);
    let reply = push_with(relay.addr(), Protocol::Connect, Codec::Proto, &request).await;
    let (code, message) = error_of(Protocol::Connect, &reply);
    assert_eq!(code, Code::Internal);
    let rendered = format!("{}: {message}", code.name());
    assert!(
        rendered
            .contains(r#"internal: unable to append series {app="app-0"} to appendable 1: wtf"#),
        "{rendered}"
    );
    assert_delivered(&ok, &request);
    assert_delivered(&wtf, &request);
}

#[tokio::test]
async fn forward_headers_and_empty_requests() {
    let d = Downstream::new("w");
    let mut a = args(&[&d]);
    a.forward_headers = vec!["x-scope-orgid".into()];
    let relay = Relay::start(a).await;
    let headers = [
        ("content-type", "application/proto"),
        ("X-Scope-OrgID", "tenant-r"),
    ];
    let body = encode_push(&alloy_request(1, 1), Codec::Proto);
    let reply = h1(relay.addr(), post(PUSH, &headers, full(body))).await;
    assert_eq!(reply.status, StatusCode::OK);
    let profile = d.received().pop().unwrap();
    assert_eq!(profile.forwarded_headers.len(), 1);
    assert_eq!(profile.forwarded_headers[0].1, "tenant-r");
    let reply = h1(
        relay.addr(),
        post(PUSH, &[("content-type", "application/proto")], full("")),
    )
    .await;
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "an empty PushRequest is valid"
    );
    assert_eq!(d.count(), 1, "and sends nothing");
}
