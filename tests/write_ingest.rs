//! `pyroscope.write` ingest path against real HTTP backends: Alloy's
//! Test_Write_AppendIngest suite (adapted), query and header handling.

mod write_support;

use std::collections::BTreeMap;
use std::time::Duration;

use pyroscope_relay::codec::{Code, labelset};
use pyroscope_relay::pipeline::Labels;
use pyroscope_relay::write::{Arguments, EndpointConfig};
use write_support::*;

const BODY: &[u8] = b"test-profile-data";

/// Endpoints as in the suite: 3 retries, 1ms backoff.
fn suite_endpoint(url: &str) -> EndpointConfig {
    let mut e = endpoint(url, 3);
    e.min_backoff_period = Duration::from_millis(1);
    e.max_backoff_period = Duration::from_millis(1);
    e
}

fn suite_profile(labels: Labels) -> pyroscope_relay::pipeline::Profile {
    ingest_profile(labels, "key=value", &["ct1", "ct2"], BODY)
}

/// The decoded `name` parameter, parsed back into labels.
fn name_labels(r: &Recorded) -> Labels {
    let url = url::Url::parse(&format!("http://x/?{}", r.query)).unwrap();
    let name = url
        .query_pairs()
        .find(|(k, _)| k == "name")
        .map(|(_, v)| v.into_owned())
        .expect("a name parameter");
    labelset::parse(&name).unwrap()
}

fn path_must_be_ingest(r: &Recorded) {
    assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/ingest"));
}

#[tokio::test]
async fn basic_functionality() {
    let backend = Backend::start(|_, r| {
        path_must_be_ingest(r);
        Reply::ok()
    })
    .await;
    let mut e = suite_endpoint(&backend.url);
    e.headers
        .insert("Content-Type".into(), "evil-content-type".into());
    e.headers
        .insert("X-Good-Header".into(), "i-am-so-good".into());
    let h = Harness::start(Arguments {
        external_labels: BTreeMap::from([
            ("env".to_owned(), "prod".to_owned()),
            ("cluster".to_owned(), "cluster-1".to_owned()),
        ]),
        endpoints: vec![e],
        queue: None,
    });
    let input = Labels::from_pairs([
        ("__name__", "my.awesome.app.cpu"),
        ("env", "staging"),
        ("region", "us-west-1"),
    ]);
    h.receiver.append(suite_profile(input)).await.unwrap();
    let reqs = backend.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(r.header("x-good-header"), Some("i-am-so-good"));
    assert_eq!(r.header_all("content-type"), ["ct1", "ct2"]);
    assert!(r.header("user-agent").unwrap().contains("pyroscope-relay/"));
    let expected = Labels::from_pairs([
        ("__name__", "my.awesome.app.cpu"),
        ("env", "prod"),
        ("cluster", "cluster-1"),
        ("region", "us-west-1"),
    ]);
    assert_eq!(name_labels(r), expected);
    assert!(r.params().contains(&("key".to_owned(), "value".to_owned())));
    assert_eq!(&r.body[..], BODY);
    assert_eq!(
        h.counter("pyroscope_write_sent_bytes_total", &backend.url),
        BODY.len() as f64
    );
    assert_eq!(
        h.counter("pyroscope_write_sent_profiles_total", &backend.url),
        1.0
    );
}

#[tokio::test]
async fn error_handling_echoes_the_status() {
    let mut backends = Vec::new();
    let mut endpoints = Vec::new();
    for i in 0..3 {
        let b = Backend::start(|_, r| match r.header("x-server-id") {
            Some("1") => Reply::status(400, "I don't like your profile"),
            _ => Reply::ok(),
        })
        .await;
        let mut e = suite_endpoint(&b.url);
        e.headers.insert("X-Server-ID".into(), i.to_string());
        endpoints.push(e);
        backends.push(b);
    }
    let h = Harness::start(args(endpoints));
    let err = h
        .receiver
        .append(suite_profile(Labels::from_pairs([("__name__", "svc")])))
        .await
        .unwrap_err();
    assert!(
        err.message.contains(
            "remote error: pyroscope write error: status=400 msg=I don't like your profile"
        ),
        "{}",
        err.message
    );
    assert!(err.message.starts_with(&format!(
        "failed to ingest to endpoint {} (0 retries)",
        backends[1].url
    )));
    assert_eq!(err.http_status, Some(400));
    assert_eq!(err.code, Code::InvalidArgument);
    assert_eq!(
        backends.iter().map(Backend::count).collect::<Vec<_>>(),
        [1, 1, 1]
    );
}

#[tokio::test]
async fn retry_logic() {
    let backend = Backend::start(|i, _| match i {
        0 => Reply::status(503, "try again"),
        _ => Reply::ok(),
    })
    .await;
    let h = Harness::start(args(vec![suite_endpoint(&backend.url)]));
    h.receiver
        .append(suite_profile(Labels::from_pairs([("__name__", "svc")])))
        .await
        .unwrap();
    assert_eq!(backend.count(), 2);
}

#[tokio::test]
async fn retry_exhaustion() {
    let backend = Backend::start(|_, _| Reply::status(503, "service always unavailable")).await;
    let h = Harness::start(args(vec![suite_endpoint(&backend.url)]));
    let err = h
        .receiver
        .append(suite_profile(Labels::from_pairs([("__name__", "svc")])))
        .await
        .unwrap_err();
    assert!(
        err.message
            .contains("status=503 msg=service always unavailable"),
        "{}",
        err.message
    );
    assert_eq!(err.http_status, Some(503));
    assert_eq!(backend.count(), 3);
    assert_eq!(
        h.counter("pyroscope_write_dropped_bytes_total", &backend.url),
        BODY.len() as f64
    );
    assert_eq!(
        h.counter("pyroscope_write_retries_total", &backend.url),
        2.0
    );
}

#[tokio::test]
async fn label_transformation() {
    let backend = Backend::ok().await;
    let h = Harness::start(args(vec![suite_endpoint(&backend.url)]));
    let input = Labels::from_pairs([
        ("__name__", "original-name"),
        ("service_name", "my-service-grafana"),
    ]);
    h.receiver.append(suite_profile(input)).await.unwrap();
    let got = name_labels(&backend.requests()[0]);
    assert_eq!(got.get("__name__"), Some("my-service-grafana"));
    assert_eq!(got.get("service_name"), Some("my-service-grafana"));
}

#[tokio::test]
async fn invalid_labels() {
    let backend = Backend::ok().await;
    let h = Harness::start(args(vec![suite_endpoint(&backend.url)]));
    let valid = Labels::from_pairs([("__name__", "svc"), ("env", "prod")]);
    h.receiver.append(suite_profile(valid)).await.unwrap();
    for (input, reason) in [
        (
            labels(&[("__name__", "svc"), ("env", "a"), ("env", "b")]),
            "duplicate label name",
        ),
        (
            labels(&[("__name__", "svc"), ("invalid-label", "a")]),
            "invalid label name",
        ),
    ] {
        let err = h.receiver.append(suite_profile(input)).await.unwrap_err();
        assert!(
            err.message.starts_with("invalid labels in profile: "),
            "{}",
            err.message
        );
        assert!(err.message.contains(reason), "{}", err.message);
        assert_eq!(err.http_status, None);
    }
    assert_eq!(backend.count(), 1);
}

#[tokio::test]
async fn retry_on_http_429_flag() {
    for (flag, calls) in [(false, 1), (true, 3)] {
        let backend = Backend::start(|_, _| Reply::status(429, "too many")).await;
        let mut e = suite_endpoint(&backend.url);
        e.retry_on_http_429 = flag;
        let h = Harness::start(args(vec![e]));
        let err = h
            .receiver
            .append(suite_profile(Labels::from_pairs([("__name__", "svc")])))
            .await
            .unwrap_err();
        assert!(err.message.contains("status=429"), "{}", err.message);
        assert_eq!(err.code, Code::ResourceExhausted);
        assert_eq!(backend.count(), calls);
    }
}

#[tokio::test]
async fn path_prefix_query_and_name_encoding() {
    let backend = Backend::ok().await;
    let mut a = args(vec![suite_endpoint(&format!("{}/prefix/", backend.url))]);
    a.external_labels.insert("cluster".into(), "c1".into());
    a.external_labels.insert("drop".into(), String::new());
    let h = Harness::start(a);
    let input = Labels::from_pairs([
        ("__name__", "app.cpu"),
        ("service_name", "app.cpu"),
        ("drop", "x"),
        ("env", "prod"),
    ]);
    let query = "until=2&name=app.cpu%7Benv%3Dprod%7D&spyName=go%20spy&custom=a+b&from=1";
    let profile = ingest_profile(input, query, &["binary/octet-stream"], BODY);
    h.receiver.append(profile).await.unwrap();
    let r = &backend.requests()[0];
    assert_eq!(r.path, "/prefix/ingest");
    assert_eq!(
        r.query,
        "custom=a+b&from=1&name=app.cpu%7Bcluster%3Dc1%2Cenv%3Dprod%2Cservice_name%3Dapp.cpu%7D&spyName=go%20spy&until=2"
    );
}

#[tokio::test]
async fn forwarded_headers_on_ingest() {
    let backend = Backend::ok().await;
    let mut e = suite_endpoint(&backend.url);
    e.headers
        .insert("X-Scope-OrgID".into(), "endpoint-tenant".into());
    e.headers.insert("Content-Type".into(), "configured".into());
    let h = Harness::start(args(vec![e]));
    let mut profile = suite_profile(Labels::from_pairs([("__name__", "svc")]));
    let hv = |n: &'static str, v: &'static str| {
        (
            http::HeaderName::from_static(n),
            http::HeaderValue::from_static(v),
        )
    };
    profile.forwarded_headers = vec![
        hv("x-scope-orgid", "client-tenant"),
        hv("x-custom", "kept"),
        hv("upgrade", "websocket"),
        hv("proxy-connection", "keep-alive"),
        hv("te", "trailers"),
        hv("trailer", "x"),
    ]
    .into();
    h.receiver.append(profile).await.unwrap();
    let r = &backend.requests()[0];
    assert_eq!(r.header_all("x-scope-orgid"), ["endpoint-tenant"]);
    assert_eq!(r.header("x-custom"), Some("kept"));
    assert_eq!(r.header_all("content-type"), ["ct1", "ct2"]);
    for hop in ["upgrade", "proxy-connection", "te", "trailer"] {
        assert_eq!(r.header(hop), None, "{hop}");
    }
}

#[tokio::test]
async fn no_endpoints_is_a_successful_no_op() {
    let h = Harness::start(Arguments::default());
    h.receiver
        .append(suite_profile(Labels::from_pairs([("__name__", "svc")])))
        .await
        .unwrap();
    let text = h.metrics_text();
    assert!(text.contains(
        "pyroscope_write_latency_count{endpoint=\"-\",type=\"ingest_total\",component_id=\"pyroscope.write.test\",component_path=\"/\"} 1"
    ), "{text}");
}
