//! `/push.v1.PusherService/Push` failures through real sockets: receiver
//! errors keeping their meaning, deadlines, routing, malformed input,
//! limits and gzip bombs.

mod receive_support;

use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use pyroscope_relay::codec::envelope::{self, FLAG_COMPRESSED};
use pyroscope_relay::codec::{Code, Codec, Protocol, encode_push};
use pyroscope_relay::pipeline::AppendError;
use receive_support::push::*;
use receive_support::*;

#[tokio::test]
async fn receiver_failures_keep_their_meaning_in_every_protocol() {
    let cases = [
        (
            AppendError::invalid_argument("invalid labels in profile: service name is required"),
            Code::InvalidArgument,
        ),
        (
            AppendError::from_http_status(429, "rate limited"),
            Code::ResourceExhausted,
        ),
        (
            AppendError::unavailable("connection refused"),
            Code::Unavailable,
        ),
        (
            AppendError::new(Code::Unauthenticated, "no tenant"),
            Code::Unauthenticated,
        ),
    ];
    for (err, expected) in cases {
        let d = Downstream::failing("w", err.clone());
        let relay = Relay::start(args(&[&d])).await;
        for protocol in [Protocol::Connect, Protocol::Grpc, Protocol::GrpcWeb] {
            let reply = push_with(relay.addr(), protocol, Codec::Proto, &alloy_request(1, 1)).await;
            let (code, message) = error_of(protocol, &reply);
            assert_eq!(code, expected, "{protocol:?}");
            assert!(message.contains(&err.message), "{message}");
            assert!(
                message.starts_with(r#"unable to append series {app="app-0"} to appendable 0: "#)
            );
        }
        relay.component.shutdown().await;
    }
}

#[tokio::test]
async fn several_failures_answer_the_most_meaningful_code_and_list_all() {
    let bad = Downstream::failing("a", AppendError::invalid_argument("bad labels"));
    let ok = Downstream::new("b");
    let down = Downstream::failing("c", AppendError::unavailable("down"));
    let relay = Relay::start(args(&[&bad, &ok, &down])).await;
    let reply = push_with(
        relay.addr(),
        Protocol::Connect,
        Codec::Proto,
        &alloy_request(2, 1),
    )
    .await;
    let (code, message) = error_of(Protocol::Connect, &reply);
    assert_eq!(code, Code::Unavailable);
    let lines: Vec<_> = message.lines().collect();
    assert_eq!(
        lines,
        [
            r#"unable to append series {app="app-0"}, {app="app-1"} to appendable 0: bad labels"#,
            r#"unable to append series {app="app-0"}, {app="app-1"} to appendable 2: down"#,
        ]
    );
}

#[tokio::test]
async fn caller_deadline_bounds_downstream_work() {
    let d = Downstream::new("slow");
    d.delay(Duration::from_secs(10));
    let relay = Relay::start(args(&[&d])).await;
    let request = encode_push(&alloy_request(1, 1), Codec::Proto);
    let started = std::time::Instant::now();
    let headers = [
        ("content-type", "application/proto"),
        ("connect-timeout-ms", "300"),
    ];
    let reply = h1(relay.addr(), post(PUSH, &headers, full(request.clone()))).await;
    assert_eq!(
        error_of(Protocol::Connect, &reply).0,
        Code::DeadlineExceeded
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    let deadline = d.received()[0]
        .deadline
        .expect("deadline passed downstream");
    assert!(deadline <= tokio::time::Instant::now());

    let framed = envelope::encode(0, &request).unwrap();
    let headers = [
        ("content-type", "application/grpc"),
        ("grpc-timeout", "300m"),
        ("te", "trailers"),
    ];
    let reply = h2(relay.addr(), post(PUSH, &headers, full(framed))).await;
    assert_eq!(error_of(Protocol::Grpc, &reply).0, Code::DeadlineExceeded);

    let headers = [
        ("content-type", "application/proto"),
        ("connect-timeout-ms", "0"),
    ];
    let before = d.count();
    let reply = h1(relay.addr(), post(PUSH, &headers, full(request))).await;
    assert_eq!(
        error_of(Protocol::Connect, &reply).0,
        Code::DeadlineExceeded
    );
    assert_eq!(d.count(), before, "an expired deadline sends nothing");
}

#[tokio::test]
async fn routing_and_content_type_errors() {
    let relay = Relay::start(args(&[])).await;
    let addr = relay.addr();
    let reply = h1(
        addr,
        post(PUSH, &[("content-type", "text/plain")], full("x")),
    )
    .await;
    assert_eq!(reply.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(
        reply
            .header("accept-post")
            .unwrap()
            .contains("application/grpc-web+json")
    );
    let reply = h1(addr, post(PUSH, &[], full("x"))).await;
    assert_eq!(reply.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let get = Request::get(format!("http://relay{PUSH}"))
        .body(full(""))
        .unwrap();
    let reply = h1(addr, get).await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(reply.header("allow"), Some("POST"));
    let reply = h1(
        addr,
        post(
            "/push.v1.PusherService/Other",
            &[("content-type", "application/proto")],
            full(""),
        ),
    )
    .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    let get = Request::get("http://relay/push.v1.PusherService/Other")
        .body(full(""))
        .unwrap();
    assert_eq!(h1(addr, get).await.status, StatusCode::METHOD_NOT_ALLOWED);
    let get = Request::get("http://relay/").body(full("")).unwrap();
    let reply = h2(addr, get).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.text(), "404 page not found\n");
    let get = Request::get("http://relay/ingest").body(full("")).unwrap();
    assert_eq!(h2(addr, get).await.status, StatusCode::METHOD_NOT_ALLOWED);
}

/// One malformed request per row: the code each protocol answers with.
#[tokio::test]
async fn malformed_requests_get_the_right_code() {
    let d = Downstream::new("w");
    let relay = Relay::start(args(&[&d])).await;
    let addr = relay.addr();
    let good = encode_push(&alloy_request(1, 1), Codec::Proto);
    let connect = |headers: Vec<(&'static str, &'static str)>, body: Bytes| {
        let mut all = vec![("content-type", "application/proto")];
        all.extend(headers);
        post(PUSH, &all, full(body))
    };
    let cases: Vec<(&str, Request<ClientBody>, Code)> = vec![
        (
            "bad timeout",
            connect(vec![("connect-timeout-ms", "soon")], good.clone()),
            Code::InvalidArgument,
        ),
        (
            "brotli",
            connect(vec![("content-encoding", "br")], good.clone()),
            Code::Unimplemented,
        ),
        (
            "bad gzip",
            connect(vec![("content-encoding", "gzip")], good.clone()),
            Code::InvalidArgument,
        ),
        (
            "bad protobuf",
            connect(vec![], Bytes::from_static(b"\xff\xff\xff\xff")),
            Code::InvalidArgument,
        ),
        (
            "bad json",
            post(
                PUSH,
                &[("content-type", "application/json")],
                full("{\"series\": 5"),
            ),
            Code::InvalidArgument,
        ),
        (
            "empty json",
            post(PUSH, &[("content-type", "application/json")], full("")),
            Code::InvalidArgument,
        ),
    ];
    for (name, request, code) in cases {
        let reply = h1(addr, request).await;
        assert_eq!(error_of(Protocol::Connect, &reply).0, code, "{name}");
    }
    let grpc = |body: Bytes, extra: Option<(&'static str, &'static str)>| {
        let mut headers = vec![("content-type", "application/grpc"), ("te", "trailers")];
        headers.extend(extra);
        post(PUSH, &headers, full(body))
    };
    let truncated = envelope::encode(0, &good).unwrap().slice(..20);
    let mut two = envelope::encode(0, &good).unwrap().to_vec();
    two.extend_from_slice(&envelope::encode(0, &good).unwrap());
    let cases: Vec<(&str, Request<ClientBody>, Code)> = vec![
        (
            "truncated envelope",
            grpc(truncated, None),
            Code::InvalidArgument,
        ),
        (
            "short prefix",
            grpc(Bytes::from_static(b"\x00\x00"), None),
            Code::InvalidArgument,
        ),
        ("no message", grpc(Bytes::new(), None), Code::Unimplemented),
        ("two messages", grpc(two.into(), None), Code::Unimplemented),
        (
            "flag without encoding",
            grpc(
                envelope::encode(FLAG_COMPRESSED, &gzip(&good)).unwrap(),
                None,
            ),
            Code::Internal,
        ),
        (
            "huge declared length",
            grpc(Bytes::from_static(b"\x00\xff\xff\xff\xff"), None),
            Code::ResourceExhausted,
        ),
        (
            "bad gzip message",
            grpc(
                envelope::encode(FLAG_COMPRESSED, b"not gzip").unwrap(),
                Some(("grpc-encoding", "gzip")),
            ),
            Code::InvalidArgument,
        ),
        (
            "unknown encoding",
            grpc(
                envelope::encode(0, &good).unwrap(),
                Some(("grpc-encoding", "snappy")),
            ),
            Code::Unimplemented,
        ),
        (
            "bad grpc-timeout",
            grpc(
                envelope::encode(0, &good).unwrap(),
                Some(("grpc-timeout", "5 seconds")),
            ),
            Code::InvalidArgument,
        ),
    ];
    for (name, request, code) in cases {
        let reply = h2(addr, request).await;
        assert_eq!(error_of(Protocol::Grpc, &reply).0, code, "{name}");
    }
    assert_eq!(d.count(), 0);
    let text = relay.metrics_text();
    assert!(
        text.contains(r#"protocol="grpc",status="unimplemented"}"#),
        "{text}"
    );
}

#[tokio::test]
async fn body_limit_gives_resource_exhausted() {
    let d = Downstream::new("w");
    let mut a = args(&[&d]);
    a.http.max_request_body_size = 2000;
    let relay = Relay::start(a).await;
    let big = encode_push(&alloy_request(3, 1), Codec::Proto);
    assert!(big.len() > 2000);
    let headers = [("content-type", "application/proto")];
    let reply = h1(relay.addr(), post(PUSH, &headers, full(big.clone()))).await;
    let (code, message) = error_of(Protocol::Connect, &reply);
    assert_eq!(code, Code::ResourceExhausted);
    assert!(message.contains("the limit is 2000 bytes"), "{message}");
    let parts = big.chunks(300).map(Bytes::copy_from_slice).collect();
    let reply = h1(relay.addr(), post(PUSH, &headers, chunked(parts))).await;
    assert_eq!(
        error_of(Protocol::Connect, &reply).0,
        Code::ResourceExhausted
    );
    let framed = envelope::encode(0, &big).unwrap();
    let headers = [("content-type", "application/grpc"), ("te", "trailers")];
    let reply = h2(relay.addr(), post(PUSH, &headers, full(framed))).await;
    assert_eq!(error_of(Protocol::Grpc, &reply).0, Code::ResourceExhausted);
    let small = encode_push(&alloy_request(1, 1), Codec::Proto);
    let reply = h1(
        relay.addr(),
        post(PUSH, &[("content-type", "application/proto")], full(small)),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(d.count(), 1);
}

#[tokio::test]
async fn gzip_bomb_is_refused_not_expanded() {
    let d = Downstream::new("w");
    let mut a = args(&[&d]);
    a.http.max_request_body_size = 1024 * 1024;
    let relay = Relay::start(a).await;
    let bomb = gzip(&vec![0u8; 64 * 1024 * 1024]);
    assert!(bomb.len() < 1024 * 1024);
    let started = std::time::Instant::now();
    let headers = [
        ("content-type", "application/proto"),
        ("content-encoding", "gzip"),
    ];
    let reply = h1(relay.addr(), post(PUSH, &headers, full(bomb.clone()))).await;
    let (code, message) = error_of(Protocol::Connect, &reply);
    assert_eq!(code, Code::ResourceExhausted);
    assert!(message.contains("4194304"), "4 × the body limit: {message}");
    let framed = envelope::encode(FLAG_COMPRESSED, &bomb).unwrap();
    let headers = [
        ("content-type", "application/grpc-web"),
        ("grpc-encoding", "gzip"),
    ];
    let reply = h1(relay.addr(), post(PUSH, &headers, full(framed))).await;
    assert_eq!(
        error_of(Protocol::GrpcWeb, &reply).0,
        Code::ResourceExhausted
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(d.count(), 0);
}
