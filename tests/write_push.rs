//! `pyroscope.write` push path against real HTTP backends: Alloy's
//! write_test.go rows (adapted), batching, headers, retries, deadlines and
//! metrics.

mod write_support;

use std::collections::BTreeMap;
use std::time::Duration;

use pyroscope_relay::codec::Code;
use pyroscope_relay::write::Arguments;
use tokio::time::Instant;
use write_support::*;

fn fanout_args(urls: &[String], retries: u32) -> Arguments {
    let endpoints = urls
        .iter()
        .map(|u| {
            let mut e = endpoint(u, retries);
            e.min_backoff_period = Duration::from_millis(100);
            e.max_backoff_period = Duration::from_millis(200);
            e.headers.insert("X-Test-Header".into(), "test".into());
            e
        })
        .collect();
    Arguments {
        external_labels: BTreeMap::from([("foo".to_owned(), "buzz".to_owned())]),
        endpoints,
        queue: None,
    }
}

/// What every Test_Write_FanOut server checks.
fn check_fanout_request(r: &Recorded) {
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/push.v1.PusherService/Push");
    assert_eq!(r.header("x-test-header"), Some("test"));
    assert!(r.header("user-agent").unwrap().contains("pyroscope-relay/"));
    assert_eq!(r.header("content-type"), Some("application/proto"));
    let req = r.push();
    assert_eq!(req.series.len(), 1);
    assert_eq!(req.series[0].samples.len(), 1);
    assert_eq!(&req.series[0].samples[0].raw_profile[..], b"pprofraw");
    assert_eq!(req.series[0].samples[0].id, "test-request-id");
    let expected = [("__name__", "test"), ("foo", "buzz"), ("job", "foo")]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
    assert_eq!(pairs(&req.series[0]), expected);
}

async fn fanout_backends(n: usize, failing: Option<usize>) -> Vec<Backend> {
    let mut out = Vec::new();
    for i in 0..n {
        let fail = failing == Some(i);
        out.push(
            Backend::start(move |_, r| {
                check_fanout_request(r);
                if fail {
                    Reply::connect_error(500, "unknown", "test")
                } else {
                    Reply::ok()
                }
            })
            .await,
        );
    }
    out
}

#[tokio::test]
async fn fanout_with_failure() {
    let backends = fanout_backends(10, Some(0)).await;
    let urls: Vec<_> = backends.iter().map(|b| b.url.clone()).collect();
    let h = Harness::start(fanout_args(&urls, 1));
    let err = h.receiver.append(fanout_profile()).await.unwrap_err();
    assert!(err.message.contains("unknown: test"), "{}", err.message);
    assert!(err.message.starts_with(&format!(
        "failed to push to endpoint {} (0 retries)",
        urls[0]
    )));
    assert_eq!(err.code, Code::Unknown);
    assert_eq!(err.http_status, Some(500));
    for b in &backends {
        assert_eq!(b.count(), 1);
    }
}

#[tokio::test]
async fn fanout_all_success() {
    let backends = fanout_backends(9, None).await;
    let urls: Vec<_> = backends.iter().map(|b| b.url.clone()).collect();
    let h = Harness::start(fanout_args(&urls, 1));
    h.receiver.append(fanout_profile()).await.unwrap();
    assert_eq!(backends.iter().map(Backend::count).sum::<usize>(), 9);
}

#[tokio::test]
async fn fanout_with_backoff() {
    let backends = fanout_backends(1, Some(0)).await;
    let h = Harness::start(fanout_args(&[backends[0].url.clone()], 3));
    let started = Instant::now();
    let err = h.receiver.append(fanout_profile()).await.unwrap_err();
    assert!(
        err.message.contains("(2 retries): unknown: test"),
        "{}",
        err.message
    );
    assert_eq!(backends[0].count(), 3);
    // Two waits of [100ms, 200ms) each (the range is capped at 200ms).
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(
        h.counter("pyroscope_write_retries_total", &backends[0].url),
        2.0
    );
}

#[tokio::test]
async fn update_from_no_endpoints_to_one() {
    let h = Harness::start(Arguments::default());
    h.receiver.append(fanout_profile()).await.unwrap();
    let backend = Backend::ok().await;
    h.write
        .update(args(vec![endpoint(&backend.url, 1)]))
        .await
        .unwrap();
    h.receiver.append(fanout_profile()).await.unwrap();
    assert_eq!(backend.count(), 1);
    // A failing update keeps the previous endpoints.
    let mut bad = endpoint("http://127.0.0.1:1", 1);
    bad.http_client.bearer_token = Some(pyroscope_relay::write::Secret::new("a"));
    bad.http_client.bearer_token_file = "/x".into();
    assert!(h.write.update(args(vec![bad])).await.is_err());
    h.receiver.append(fanout_profile()).await.unwrap();
    assert_eq!(backend.count(), 2);
}

#[tokio::test]
async fn resource_exhausted_follows_retry_on_http_429() {
    for (flag, calls) in [(false, 1), (true, 3)] {
        let backend =
            Backend::start(|_, _| Reply::connect_error(429, "resource_exhausted", "slow down"))
                .await;
        let mut e = endpoint(&backend.url, 3);
        e.retry_on_http_429 = flag;
        let h = Harness::start(args(vec![e]));
        let err = h.receiver.append(fanout_profile()).await.unwrap_err();
        assert!(
            err.message.contains("resource_exhausted: slow down"),
            "{}",
            err.message
        );
        assert_eq!(err.code, Code::ResourceExhausted);
        assert_eq!(backend.count(), calls, "retry_on_http_429={flag}");
    }
}

#[tokio::test]
async fn bare_http_statuses_on_push() {
    // 429 without a Connect body follows the flag; 400 is never retried;
    // 503 is. The status is kept; the code is what a Connect client infers.
    for (status, flag, calls, code) in [
        (429, false, 1, Code::Unavailable),
        (429, true, 3, Code::Unavailable),
        (400, true, 1, Code::Internal),
        (503, false, 3, Code::Unavailable),
    ] {
        let backend = Backend::start(move |_, _| Reply::status(status, "plain text")).await;
        let mut e = endpoint(&backend.url, 3);
        e.retry_on_http_429 = flag;
        let h = Harness::start(args(vec![e]));
        let err = h.receiver.append(fanout_profile()).await.unwrap_err();
        let expected =
            format!("remote error: pyroscope write error: status={status} msg=plain text");
        assert!(err.message.ends_with(&expected), "{}", err.message);
        assert_eq!((err.http_status, err.code), (Some(status), code));
        assert_eq!(backend.count(), calls, "status {status} flag {flag}");
    }
}

#[tokio::test]
async fn validate_labels_before_sending() {
    let backend = Backend::ok().await;
    let h = Harness::start(args(vec![endpoint(&backend.url, 1)]));
    let valid = labels(&[("__name__", "cpu"), ("service_name", "svc"), ("a.b_c", "1")]);
    h.receiver
        .append(push_profile(vec![(valid, vec![("1", b"x")])]))
        .await
        .unwrap();
    for (input, reason) in [
        (
            labels(&[("__name__", "a"), ("foo", "1"), ("foo", "2")]),
            "duplicate label name: foo",
        ),
        (
            labels(&[("__name__", "a"), ("invalid-label-name", "1")]),
            "invalid label name: invalid-label-name",
        ),
        (
            labels(&[("__name__", "a"), ("__name__", "b")]),
            "duplicate label name: __name__",
        ),
        (labels(&[]), "service name is required"),
    ] {
        let err = h
            .receiver
            .append(push_profile(vec![(input, vec![("1", b"x")])]))
            .await
            .unwrap_err();
        assert_eq!(err.message, format!("invalid labels in profile: {reason}"));
        assert_eq!(err.code, Code::InvalidArgument);
    }
    assert_eq!(backend.count(), 1);
}

#[tokio::test]
async fn series_of_one_request_go_in_one_push() {
    let backend = Backend::ok().await;
    let mut a = args(vec![endpoint(&backend.url, 1)]);
    a.external_labels.insert("env".into(), "prod".into());
    let h = Harness::start(a);
    let profile = push_profile(vec![
        (
            labels(&[("service_name", "a"), ("env", "dev")]),
            vec![("1", b"p1")],
        ),
        (
            labels(&[("service_name", "b")]),
            vec![("2", b"p2"), ("3", b"p3")],
        ),
        (labels(&[("service_name", "a")]), vec![("4", b"p4")]),
    ]);
    h.receiver.append(profile).await.unwrap();
    let reqs = backend.requests();
    assert_eq!(reqs.len(), 1);
    let push = reqs[0].push();
    assert_eq!(push.series.len(), 2);
    let ids = |i: usize| {
        push.series[i]
            .samples
            .iter()
            .map(|s| s.id.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(0), ["1", "4"]);
    assert_eq!(ids(1), ["2", "3"]);
    assert_eq!(
        pairs(&push.series[0])[0],
        ("env".to_owned(), "prod".to_owned())
    );
    assert_eq!(
        h.counter("pyroscope_write_sent_profiles_total", &backend.url),
        4.0
    );
    assert_eq!(
        h.counter("pyroscope_write_sent_bytes_total", &backend.url),
        8.0
    );
}

#[tokio::test]
async fn forwarded_headers_on_push() {
    let backend = Backend::ok().await;
    let mut e = endpoint(&backend.url, 1);
    e.headers
        .insert("X-Scope-OrgID".into(), "endpoint-tenant".into());
    let h = Harness::start(args(vec![e]));
    let mut profile = fanout_profile();
    let hv = |n: &'static str, v: &'static str| {
        (
            http::HeaderName::from_static(n),
            http::HeaderValue::from_static(v),
        )
    };
    profile.forwarded_headers = vec![
        hv("x-scope-orgid", "client-tenant"),
        hv("x-request-id", "r-1"),
        hv("connection", "close"),
        hv("transfer-encoding", "chunked"),
        hv("keep-alive", "timeout=1"),
        hv("content-type", "application/json"),
        hv("content-length", "99"),
        hv("host", "client.example"),
    ]
    .into();
    h.receiver.append(profile).await.unwrap();
    let r = &backend.requests()[0];
    assert_eq!(r.header_all("x-scope-orgid"), ["endpoint-tenant"]);
    assert_eq!(r.header("x-request-id"), Some("r-1"));
    assert_eq!(r.header_all("content-type"), ["application/proto"]);
    assert_eq!(r.header("connect-protocol-version"), Some("1"));
    assert!(
        r.header("connect-timeout-ms")
            .unwrap()
            .parse::<u64>()
            .unwrap()
            <= 10_000
    );
    assert_eq!(r.header("keep-alive"), None);
    assert_eq!(r.header("transfer-encoding"), None);
    assert_ne!(r.header("connection"), Some("close"));
    assert_ne!(r.header("host"), Some("client.example"));
    assert_eq!(
        r.header("content-length"),
        Some(r.body.len().to_string().as_str())
    );
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let date = |secs| {
        let at = std::time::SystemTime::now() + Duration::from_secs(secs);
        pyroscope_relay::telemetry::civil_time::format_imf_fixdate(at)
    };
    for as_date in [false, true] {
        let value = if as_date { date(2) } else { "1".to_owned() };
        let v = value.clone();
        let backend = Backend::start(move |i, _| match i {
            0 => Reply::status(429, "busy").header("retry-after", &v),
            _ => Reply::ok(),
        })
        .await;
        // Without a caller deadline, max_backoff_period bounds the wait.
        let mut e = endpoint(&backend.url, 3);
        e.max_backoff_period = Duration::from_secs(10);
        let h = Harness::start(args(vec![e]));
        let started = Instant::now();
        h.receiver.append(fanout_profile()).await.unwrap();
        assert!(
            started.elapsed() >= Duration::from_millis(900),
            "{value}: {:?}",
            started.elapsed()
        );
        assert_eq!(backend.count(), 2);
    }
    // Beyond max_backoff_period without a deadline: given up at once.
    let backend =
        Backend::start(|_, _| Reply::status(429, "busy").header("retry-after", "60")).await;
    let h = Harness::start(args(vec![endpoint(&backend.url, 3)]));
    let err = h.receiver.append(fanout_profile()).await.unwrap_err();
    assert!(err.message.contains("retry after 60s"), "{}", err.message);
    assert_eq!(backend.count(), 1);
}

#[tokio::test]
async fn retry_after_beyond_the_deadline_gives_up_at_once() {
    let backend =
        Backend::start(|_, _| Reply::status(503, "later").header("retry-after", "30")).await;
    let h = Harness::start(args(vec![endpoint(&backend.url, 5)]));
    let mut profile = fanout_profile();
    profile.deadline = Some(Instant::now() + Duration::from_secs(2));
    let started = Instant::now();
    let err = h.receiver.append(profile).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_millis(500));
    assert_eq!(backend.count(), 1);
    assert!(err.message.contains("retry after 30s"), "{}", err.message);
    assert_eq!(err.http_status, Some(503));
}

#[tokio::test]
async fn the_callers_deadline_cuts_retries_short() {
    let backend = Backend::start(|_, _| Reply::status(503, "down")).await;
    let mut e = endpoint(&backend.url, 0); // 0 = until the deadline
    e.min_backoff_period = Duration::from_millis(50);
    e.max_backoff_period = Duration::from_millis(100);
    let h = Harness::start(args(vec![e]));
    let mut profile = fanout_profile();
    profile.deadline = Some(Instant::now() + Duration::from_millis(600));
    let started = Instant::now();
    let err = h.receiver.append(profile).await.unwrap_err();
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_millis(700), "{elapsed:?}");
    assert_eq!(err.code, Code::DeadlineExceeded);
    // Kept so that an /ingest agent is answered 503, not 500.
    assert_eq!(err.http_status, Some(503));
    assert!(err.message.contains("deadline exceeded"), "{}", err.message);
    assert!(
        err.message.contains("status=503 msg=down"),
        "{}",
        err.message
    );
    assert!((3..=12).contains(&backend.count()), "{}", backend.count());
}

#[tokio::test]
async fn each_attempt_is_bounded_by_remote_timeout_and_the_deadline() {
    let backend = Backend::start(|_, _| Reply::ok().delayed(Duration::from_secs(5))).await;
    let mut e = endpoint(&backend.url, 2);
    e.remote_timeout = Duration::from_millis(200);
    let h = Harness::start(args(vec![e]));
    let started = Instant::now();
    let err = h.receiver.append(fanout_profile()).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(backend.count(), 2);
    assert!(
        err.message.contains("timed out after 200ms"),
        "{}",
        err.message
    );
    assert_eq!(err.code, Code::DeadlineExceeded);
    // The caller's deadline is shorter than remote_timeout.
    let mut e = endpoint(&backend.url, 2);
    e.remote_timeout = Duration::from_secs(10);
    h.write.update(args(vec![e])).await.unwrap();
    let mut profile = fanout_profile();
    profile.deadline = Some(Instant::now() + Duration::from_millis(300));
    let started = Instant::now();
    let err = h.receiver.append(profile).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(err.code, Code::DeadlineExceeded);
}

#[tokio::test]
async fn transport_errors_are_retried_then_dropped_with_metrics() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let ok = Backend::ok().await;
    let h = Harness::start(args(vec![endpoint(&url, 3), endpoint(&ok.url, 3)]));
    let err = h.receiver.append(fanout_profile()).await.unwrap_err();
    assert_eq!(err.code, Code::Unavailable);
    assert!(
        err.message
            .starts_with(&format!("failed to push to endpoint {url} (2 retries): "))
    );
    assert_eq!(h.counter("pyroscope_write_retries_total", &url), 2.0);
    assert_eq!(
        h.counter("pyroscope_write_dropped_profiles_total", &url),
        1.0
    );
    assert_eq!(h.counter("pyroscope_write_dropped_bytes_total", &url), 8.0);
    assert_eq!(
        h.counter("pyroscope_write_sent_profiles_total", &ok.url),
        1.0
    );
    assert_eq!(h.counter("pyroscope_write_sent_bytes_total", &ok.url), 8.0);
    assert_eq!(
        h.counter("pyroscope_write_dropped_profiles_total", &ok.url),
        0.0
    );
    let text = h.metrics_text();
    let count = |ty: &str, ep: &str| {
        let prefix = format!(
            "pyroscope_write_latency_count{{endpoint=\"{ep}\",type=\"{ty}\",component_id=\"pyroscope.write.test\",component_path=\"/\"}} "
        );
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap()
            .to_owned()
    };
    assert_eq!(count("push_total", "-"), "1");
    assert_eq!(count("push_endpoint", &url), "1");
    assert_eq!(count("push_downstream", &url), "3");
    assert_eq!(count("push_downstream", &ok.url), "1");
    assert_eq!(count("ingest_total", "-"), "0");
}

#[tokio::test]
async fn stop_uninstalls_and_drops_metric_series() {
    let backend = Backend::ok().await;
    let h = Harness::start(args(vec![endpoint(&backend.url, 1)]));
    h.receiver.append(fanout_profile()).await.unwrap();
    assert!(h.metrics_text().contains("pyroscope.write.test"));
    let Harness {
        write,
        receiver,
        registry,
    } = h;
    write.stop(false).await;
    let err = receiver.append(fanout_profile()).await.unwrap_err();
    assert!(err.message.contains("is not running"), "{}", err.message);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    assert!(!text.contains("pyroscope.write.test"), "{text}");
}
