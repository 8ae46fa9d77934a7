//! Whole pipelines through the real binary: the seed's two-write example
//! and a receive_http → relabel → write chain, with real HTTP backends.

mod support;
use bytes::Bytes;
use pyroscope_relay::codec::{Codec, decode_push, labelset, series_from_proto};
use std::time::Duration;
use support::{Backend, Recorded, Relay, free_port, http_request};

const PUSH_FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/push_request.bin"
);
const NODE_FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/node_wall_cpu.pb.gz"
);

fn push(port: u16, body: &[u8]) -> (u16, String) {
    http_request(
        "POST",
        &format!("http://127.0.0.1:{port}/push.v1.PusherService/Push"),
        &[("Content-Type", "application/proto")],
        body,
    )
    .unwrap()
}

fn ingest(port: u16, name: &str, body: &[u8]) -> (u16, String) {
    http_request(
        "POST",
        &format!("http://127.0.0.1:{port}/ingest?name={name}&from=1700000000&until=1700000010&spyName=nodespy"),
        &[("Content-Type", "application/octet-stream")],
        body,
    )
    .unwrap()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// The labels the backend got in `name=` of a recorded /ingest request.
fn ingest_labels(recorded: &Recorded) -> Vec<(String, String)> {
    let query = recorded.1.split_once('?').unwrap().1;
    let name = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("name="))
        .expect("name= forwarded");
    let labels = labelset::parse(&percent_decode(name)).unwrap();
    labels
        .iter()
        .map(|l| (l.name.clone(), l.value.clone()))
        .collect()
}

/// The label sets of every series of a recorded push request.
fn pushed_series(recorded: &Recorded) -> Vec<Vec<(String, String)>> {
    let request = decode_push(Bytes::from(recorded.2.clone()), Codec::Proto).unwrap();
    series_from_proto(request)
        .into_iter()
        .map(|s| {
            s.labels
                .iter()
                .map(|l| (l.name.clone(), l.value.clone()))
                .collect()
        })
        .collect()
}

fn pair(k: &str, v: &str) -> (String, String) {
    (k.to_string(), v.to_string())
}

#[test]
fn the_seed_example_sends_every_profile_to_both_backends() {
    let staging = Backend::start(Duration::ZERO, 200);
    let production = Backend::start(Duration::ZERO, 200);
    let port = free_port();
    let _relay = Relay::start(&format!(
        r#"pyroscope.receive_http "default" {{
  http {{
    listen_address = "127.0.0.1"
    listen_port = {port}
  }}
  forward_to = [pyroscope.write.staging.receiver, pyroscope.write.production.receiver]
}}
pyroscope.write "staging" {{
  endpoint {{
    url = "{}"
  }}
}}
pyroscope.write "production" {{
  endpoint {{
    url = "{}"
  }}
}}
"#,
        staging.url(),
        production.url()
    ));
    let node_body = std::fs::read(NODE_FIXTURE).unwrap();
    let push_body = std::fs::read(PUSH_FIXTURE).unwrap();
    for _ in 0..3 {
        assert_eq!(ingest(port, "nodeapp%7Benv%3Dtest%7D", &node_body).0, 200);
        assert_eq!(push(port, &push_body).0, 200);
    }
    for backend in [&staging, &production] {
        let requests = backend.requests.lock().unwrap().clone();
        assert_eq!(requests.len(), 6, "each profile exactly once per backend");
        let ingests: Vec<_> = requests
            .iter()
            .filter(|r| r.1.starts_with("/ingest?"))
            .collect();
        let pushes: Vec<_> = requests
            .iter()
            .filter(|r| r.1 == "/push.v1.PusherService/Push")
            .collect();
        assert_eq!((ingests.len(), pushes.len()), (3, 3));
        for r in ingests {
            assert_eq!(r.2, node_body, "/ingest body forwarded byte for byte");
        }
        let original =
            series_from_proto(decode_push(Bytes::from(push_body.clone()), Codec::Proto).unwrap());
        for r in pushes {
            let sent =
                series_from_proto(decode_push(Bytes::from(r.2.clone()), Codec::Proto).unwrap());
            assert_eq!(sent.len(), original.len());
            assert_eq!(
                sent[0].samples[0].raw_profile, original[0].samples[0].raw_profile,
                "raw_profile forwarded byte for byte"
            );
        }
    }
}

#[test]
fn relabel_rules_change_the_downstream_name_and_push_labels() {
    let backend = Backend::start(Duration::ZERO, 200);
    let port = free_port();
    let _relay = Relay::start(&format!(
        r#"pyroscope.receive_http "in" {{
  http {{
    listen_address = "127.0.0.1"
    listen_port = {port}
  }}
  forward_to = [pyroscope.relabel.tidy.receiver]
}}
pyroscope.relabel "tidy" {{
  forward_to = [pyroscope.write.out.receiver]
  rule {{
    source_labels = ["env"]
    target_label  = "environment"
  }}
  rule {{
    action = "labeldrop"
    regex  = "env"
  }}
  rule {{
    source_labels = ["environment"]
    regex         = "dev"
    action        = "drop"
  }}
}}
pyroscope.write "out" {{
  external_labels = {{ cluster = "c1" }}
  endpoint {{
    url = "{}"
  }}
}}
"#,
        backend.url()
    ));
    let node_body = std::fs::read(NODE_FIXTURE).unwrap();
    assert_eq!(
        ingest(port, "nodeapp%7Benv%3Dprod%2Cregion%3Deu%7D", &node_body).0,
        200
    );
    // Dropped by the third rule: the agent still gets 200, nothing is sent.
    assert_eq!(ingest(port, "nodeapp%7Benv%3Ddev%7D", &node_body).0, 200);
    assert_eq!(push(port, &std::fs::read(PUSH_FIXTURE).unwrap()).0, 200);

    let requests = backend.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 2, "{requests:?}");
    let ingested = requests
        .iter()
        .find(|r| r.1.starts_with("/ingest?"))
        .unwrap();
    assert_eq!(
        ingest_labels(ingested),
        vec![
            pair("__name__", "nodeapp"),
            pair("cluster", "c1"),
            pair("environment", "prod"),
            pair("region", "eu"),
            pair("service_name", "nodeapp"),
        ]
    );
    let pushed = requests
        .iter()
        .find(|r| r.1 == "/push.v1.PusherService/Push")
        .unwrap();
    let series = pushed_series(pushed);
    assert!(!series.is_empty());
    for labels in series {
        // The fixture's series carries env=test.
        assert!(labels.contains(&pair("environment", "test")), "{labels:?}");
        assert!(labels.contains(&pair("cluster", "c1")), "{labels:?}");
        assert!(labels.iter().all(|(k, _)| k != "env"), "{labels:?}");
    }
}

#[test]
fn an_ingest_agent_is_told_the_backends_503_when_retries_run_out_of_time() {
    let backend = Backend::start(Duration::ZERO, 503);
    let port = free_port();
    let _relay = Relay::start(&format!(
        r#"pyroscope.receive_http "in" {{
  http {{
    listen_address = "127.0.0.1"
    listen_port = {port}
    server_write_timeout = "1s"
  }}
  forward_to = [pyroscope.write.out.receiver]
}}
pyroscope.write "out" {{
  endpoint {{
    url = "{}"
    min_backoff_period = "100ms"
    max_backoff_period = "200ms"
    max_backoff_retries = 0
  }}
}}
"#,
        backend.url()
    ));
    let body = std::fs::read(NODE_FIXTURE).unwrap();
    let (status, text) = ingest(port, "nodeapp", &body);
    assert_eq!(status, 503, "{text}");
    assert!(backend.count() >= 2, "retried until the deadline");
}
