//! `/ingest` through real sockets: Alloy's table, real agents' bodies
//! arriving byte-exact, status codes, limits and forwarded headers.

mod receive_support;

use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use pyroscope_relay::pipeline::{AppendError, IngestProfile, Payload, Profile};
use receive_support::*;

const BASE_QUERY: &str = "name=test_app&from=1700000000&until=1700000010";

fn ingest(profile: &Profile) -> &IngestProfile {
    match &profile.payload {
        Payload::Ingest(p) => p,
        Payload::Push(_) => panic!("expected an ingest profile"),
    }
}

fn labels(profile: &Profile) -> Vec<(String, String)> {
    ingest(profile)
        .labels
        .iter()
        .map(|l| (l.name.clone(), l.value.clone()))
        .collect()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<_> = expected
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    v.sort();
    v
}

fn random_body(len: usize) -> Bytes {
    (0..len)
        .map(|_| fastrand::u8(..))
        .collect::<Vec<_>>()
        .into()
}

struct Row {
    name: &'static str,
    method: &'static str,
    path: String,
    content_types: Vec<&'static str>,
    body_len: usize,
    failures: Vec<bool>,
    status: u16,
    forwards: usize,
    labels: Vec<(&'static str, &'static str)>,
}

fn row(name: &'static str, path: String, failures: Vec<bool>, status: u16) -> Row {
    let forwards = if status == 405 || status == 404 {
        0
    } else {
        failures.len()
    };
    Row {
        name,
        method: "POST",
        path,
        content_types: vec!["application/octet-stream"],
        body_len: 1024,
        failures,
        status,
        forwards,
        labels: vec![("__name__", "test_app"), ("service_name", "test_app")],
    }
}

/// Alloy's `TestForwardsProfilesIngest`, row by row.
#[tokio::test]
async fn alloy_forwards_profiles_ingest_table() {
    let base = format!("/ingest?{BASE_QUERY}");
    let mut rows = vec![
        row("small profile", base.clone(), vec![false, false], 200),
        Row {
            content_types: vec!["my-content", "is", "multiple"],
            body_len: 1024 * 1024,
            ..row(
                "large profile",
                format!("{base}&custom=param1"),
                vec![false],
                200,
            )
        },
        Row {
            method: "GET",
            ..row("invalid method", base.clone(), vec![false], 405)
        },
        Row {
            method: "GET",
            ..row(
                "invalid query params",
                "/ingest?test=test_app".into(),
                vec![false],
                405,
            )
        },
        row("invalid path", "/invalid".into(), vec![false], 404),
        row("all appendables fail", base.clone(), vec![true, true], 500),
        row("one fails", base.clone(), vec![true, false], 500),
        Row {
            labels: vec![
                ("__name__", "test.app"),
                ("service_name", "test.app"),
                ("env", "prod"),
                ("region", "us-east"),
            ],
            ..row(
                "valid labels",
                "/ingest?name=test.app%7Benv%3Dprod%2Cregion%3Dus-east%7D&from=1&until=2".into(),
                vec![false, false],
                200,
            )
        },
        Row {
            labels: vec![("__name__", "test.app"), ("service_name", "test.app")],
            ..row(
                "invalid labels",
                "/ingest?name=test.app%7Binvalid-label-syntax%7D&from=1&until=2".into(),
                vec![false, false],
                200,
            )
        },
        Row {
            labels: vec![
                ("__name__", "test.app"),
                ("service_name", "my-service"),
                ("app_name", "test.app"),
            ],
            ..row(
                "existing service_name",
                "/ingest?name=test.app%7Bservice_name%3Dmy-service%7D&from=1&until=2".into(),
                vec![false],
                200,
            )
        },
    ];
    for row in rows.drain(..) {
        let downstreams: Vec<_> = row
            .failures
            .iter()
            .enumerate()
            .map(|(i, fails)| {
                let d = Downstream::new(&format!("recorder.{i}"));
                if *fails {
                    d.fail_with(internal("test error"));
                }
                d
            })
            .collect();
        let relay = Relay::start(args(&downstreams.iter().collect::<Vec<_>>())).await;
        let body = random_body(row.body_len);
        let mut builder = Request::builder()
            .method(row.method)
            .uri(format!("http://relay{}", row.path));
        for ct in &row.content_types {
            builder = builder.header("content-type", *ct);
        }
        let reply = h1(relay.addr(), builder.body(full(body.clone())).unwrap()).await;
        assert_eq!(reply.status.as_u16(), row.status, "{}", row.name);
        let forwarded: usize = downstreams.iter().map(Downstream::count).sum();
        assert_eq!(forwarded, row.forwards, "{}", row.name);
        let query = row.path.split_once('?').map(|(_, q)| q).unwrap_or_default();
        for d in &downstreams {
            for profile in d.received() {
                let p = ingest(&profile);
                assert_eq!(p.body, body, "{}: body", row.name);
                let cts: Vec<_> = p
                    .content_types
                    .iter()
                    .map(|v| v.to_str().unwrap())
                    .collect();
                assert_eq!(cts, row.content_types, "{}", row.name);
                assert_eq!(p.path, "/ingest");
                assert_eq!(p.query, query, "{}: query kept raw", row.name);
                let mut got = labels(&profile);
                got.sort();
                assert_eq!(got, pairs(&row.labels), "{}", row.name);
            }
        }
        if row.status == 500 {
            assert_eq!(reply.text(), "Failed to process request\n");
        }
        relay.component.shutdown().await;
    }
}

/// An agent's request: name, path and query, headers, body.
type AgentRequest = (&'static str, String, Vec<(&'static str, String)>, Bytes);

/// How each real agent sends, and the body that must arrive unchanged.
fn agent_requests() -> Vec<AgentRequest> {
    let node_gz = fixture("node_wall_cpu.pb.gz");
    let boundary = "----formdata-undici-080614991941";
    let mut multipart = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"profile\"; filename=\"profile\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    multipart.extend_from_slice(&fixture("node_heap.pb.gz"));
    multipart.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let jfr_like: Bytes = Bytes::from_static(b"FLR\0\x00\x02\x00\x00jfr chunk bytes \xff\xfe");
    vec![
        (
            "python 0.8 gzip pprof with Content-Encoding",
            "/ingest?name=pyapp.cpu&from=1795577990&until=1795578000&format=pprof&sampleRate=100&spyName=pyspy".into(),
            vec![
                ("content-type", "binary/octet-stream".into()),
                ("content-encoding", "gzip".into()),
            ],
            Bytes::from(pyroscope_relay::codec::compress::gzip(&fixture("py_cpu.pb"))),
        ),
        (
            "node 0.6 gzip pprof without Content-Encoding",
            "/ingest?format=pprof&from=1795578233&name=nodeapp%7Botel.scope.name%3Dcom.grafana.pyroscope%2Fnodejs%2Cenv%3Dtest%7D&spyName=nodespy&until=1795578238&sampleRate=200".into(),
            vec![("content-type", "application/octet-stream".into())],
            node_gz,
        ),
        (
            "node 0.4 multipart",
            "/ingest?from=1795578255&name=nodeapp%7Benv%3Dtest%2Cregion%3Deu%7D&spyName=nodespy&until=1795578260&sampleRate=200".into(),
            vec![("content-type", format!("multipart/form-data; boundary={boundary}"))],
            Bytes::from(multipart),
        ),
        (
            "python 0.7 folded",
            "/ingest?name=pyapp.cpu.cpu%7Benv%3Dtest%2Cregion%3Dus-east%7D&from=1795578150&until=1795578160&format=folded&sampleRate=100&spyName=pyspy".into(),
            vec![("content-type", "binary/octet-stream".into())],
            fixture("py_folded.txt"),
        ),
        (
            "java jfr",
            "/ingest?name=javaapp%7Benv%3Dtest%7D&format=jfr&spyName=javaspy&units=samples&aggregationType=sum".into(),
            vec![("content-type", "application/octet-stream".into())],
            jfr_like,
        ),
    ]
}

#[tokio::test]
async fn real_agent_bodies_arrive_byte_exact_on_every_transport() {
    let d = Downstream::new("recorder");
    let relay = Relay::start(args(&[&d])).await;
    for (agent, path, headers, body) in agent_requests() {
        for variant in ["h1 content-length", "h1 chunked", "h2"] {
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
            let client_body = match variant {
                "h1 chunked" => {
                    let parts = body.chunks(700).map(Bytes::copy_from_slice).collect();
                    chunked(parts)
                }
                _ => full(body.clone()),
            };
            let request = post(&path, &headers, client_body);
            let reply = match variant {
                "h2" => h2(relay.addr(), request).await,
                _ => h1(relay.addr(), request).await,
            };
            assert_eq!(
                reply.status,
                StatusCode::OK,
                "{agent} {variant}: {}",
                reply.text()
            );
            assert!(reply.body.is_empty());
            let got = d.received().pop().unwrap();
            let p = ingest(&got);
            assert_eq!(p.body, body, "{agent} {variant}");
            assert_eq!(
                p.query,
                path.split_once('?').unwrap().1,
                "{agent} {variant}"
            );
            assert_eq!(p.content_types[0].to_str().unwrap(), headers[0].1);
        }
    }
    let node = d.received()[3].clone();
    let mut got = labels(&node);
    got.sort();
    assert_eq!(
        got,
        pairs(&[
            ("__name__", "nodeapp"),
            ("service_name", "nodeapp"),
            ("otel.scope.name", "com.grafana.pyroscope/nodejs"),
            ("env", "test"),
        ])
    );
    let text = relay.metrics_text();
    assert!(
        text.contains(r#"pyroscope_receive_http_received_profiles_total{component_id="pyroscope.receive_http.test",component_path="/",route="ingest"} 15"#),
        "{text}"
    );
    assert!(
        text.contains(r#"route="ingest",protocol="http",status="200"}"#),
        "{text}"
    );
}

#[tokio::test]
async fn downstream_statuses_are_passed_through() {
    for status in [400u16, 401, 413, 429, 503] {
        let d = Downstream::failing(
            "w",
            AppendError::from_http_status(status, format!("backend said {status}")),
        );
        let relay = Relay::start(args(&[&d])).await;
        let reply = h1(
            relay.addr(),
            post(&format!("/ingest?{BASE_QUERY}"), &[], full("x")),
        )
        .await;
        assert_eq!(reply.status.as_u16(), status);
        assert_eq!(reply.text(), format!("backend said {status}\n"));
        relay.component.shutdown().await;
    }
}

#[tokio::test]
async fn several_failures_pick_the_most_meaningful_status() {
    let bad = Downstream::failing("a", AppendError::from_http_status(400, "bad"));
    let down = Downstream::failing("b", AppendError::from_http_status(503, "down"));
    let plain = Downstream::failing("c", internal("no status"));
    let limited = Downstream::failing("d", AppendError::from_http_status(429, "slow down"));
    let relay = Relay::start(args(&[&bad, &plain, &down])).await;
    let reply = h1(relay.addr(), post("/ingest?name=a", &[], full("x"))).await;
    assert_eq!(reply.status.as_u16(), 503, "retryable wins over permanent");
    relay.component.shutdown().await;

    let relay = Relay::start(args(&[&down, &limited, &bad])).await;
    let reply = h1(relay.addr(), post("/ingest?name=a", &[], full("x"))).await;
    assert_eq!(reply.status.as_u16(), 429);
    assert_eq!(reply.text(), "slow down\n");
    relay.component.shutdown().await;
}

#[tokio::test]
async fn zero_receivers_answer_200() {
    let relay = Relay::start(args(&[])).await;
    let reply = h1(relay.addr(), post("/ingest?name=a", &[], full("x"))).await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test]
async fn body_limit_on_content_length_and_chunked() {
    let d = Downstream::new("w");
    let mut a = args(&[&d]);
    a.http.max_request_body_size = 1000;
    let relay = Relay::start(a).await;
    let at_limit = h1(
        relay.addr(),
        post("/ingest?name=a", &[], full(vec![1u8; 1000])),
    )
    .await;
    assert_eq!(at_limit.status, StatusCode::OK);
    let over = h1(
        relay.addr(),
        post("/ingest?name=a", &[], full(vec![1u8; 1001])),
    )
    .await;
    assert_eq!(over.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        over.text().contains("request body too large"),
        "{}",
        over.text()
    );
    assert_eq!(over.header("connection"), Some("close"));
    let parts = (0..20).map(|_| Bytes::from(vec![2u8; 100])).collect();
    let over = h1(relay.addr(), post("/ingest?name=a", &[], chunked(parts))).await;
    assert_eq!(over.status, StatusCode::PAYLOAD_TOO_LARGE);
    let over = h2(
        relay.addr(),
        post("/ingest?name=a", &[], full(vec![1u8; 5000])),
    )
    .await;
    assert_eq!(over.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(d.count(), 1);
}

#[tokio::test]
async fn declared_length_far_over_the_limit_is_refused_before_the_body() {
    let d = Downstream::new("w");
    let relay = Relay::start(args(&[&d])).await;
    let head = "POST /ingest?name=a HTTP/1.1\r\nhost: x\r\ncontent-length: 99999999999\r\n\r\n";
    let out = raw_exchange(relay.addr(), head.as_bytes(), Duration::from_secs(5)).await;
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert_eq!(d.count(), 0);
}

#[tokio::test]
async fn forward_headers_are_copied_and_others_are_not() {
    let d = Downstream::new("w");
    let mut a = args(&[&d]);
    a.forward_headers = vec!["X-Scope-OrgID".into(), "Connection".into()];
    let relay = Relay::start(a).await;
    let request = Request::post("http://relay/ingest?name=a")
        .header("x-scope-orgid", "tenant-a")
        .header("X-Scope-OrgID", "tenant-b")
        .header("authorization", "Basic dXNlcjE6cGFzczE=")
        .body(full("x"))
        .unwrap();
    assert_eq!(h1(relay.addr(), request).await.status, StatusCode::OK);
    let profile = d.received().pop().unwrap();
    let forwarded: Vec<_> = profile
        .forwarded_headers
        .iter()
        .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap().to_owned()))
        .collect();
    assert_eq!(
        forwarded,
        [
            ("x-scope-orgid".to_owned(), "tenant-a".to_owned()),
            ("x-scope-orgid".to_owned(), "tenant-b".to_owned())
        ]
    );

    let d2 = Downstream::new("w2");
    let relay = Relay::start(args(&[&d2])).await;
    let request = post("/ingest?name=a", &[("x-scope-orgid", "t")], full("x"));
    assert_eq!(h1(relay.addr(), request).await.status, StatusCode::OK);
    assert!(
        d2.received()[0].forwarded_headers.is_empty(),
        "Alloy forwards none by default"
    );
}

#[tokio::test]
async fn slow_receivers_are_bounded_by_the_write_timeout() {
    let d = Downstream::new("slow");
    d.delay(Duration::from_secs(10));
    let mut a = args(&[&d]);
    a.http.server_write_timeout = Duration::from_millis(300);
    let relay = Relay::start(a).await;
    let started = std::time::Instant::now();
    let reply = h1(relay.addr(), post("/ingest?name=a", &[], full("x"))).await;
    assert_eq!(reply.status, StatusCode::GATEWAY_TIMEOUT);
    assert!(started.elapsed() < Duration::from_secs(3));
    let deadline = d.received()[0]
        .deadline
        .expect("the downstream gets the deadline");
    assert!(deadline <= tokio::time::Instant::now());
}

#[tokio::test]
async fn malformed_chunked_body_is_a_bad_request() {
    let d = Downstream::new("w");
    let relay = Relay::start(args(&[&d])).await;
    let request = "POST /ingest?name=a HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n5\r\nabcde\r\nzz\r\n";
    let out = raw_exchange(relay.addr(), request.as_bytes(), Duration::from_secs(5)).await;
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    assert!(text.contains("failed to read the request body"), "{text}");
    assert_eq!(d.count(), 0);
}
