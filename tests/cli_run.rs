//! `pyroscope-relay run`: admin endpoints, reloads, signals and shutdown,
//! driven through the real binary and real sockets.

mod support;
use std::time::Duration;
use support::{Backend, Relay, free_port, http_get, http_request};

fn receive_and_write(port: u16, backend_url: &str) -> String {
    format!(
        r#"pyroscope.receive_http "in" {{
  http {{
    listen_address = "127.0.0.1"
    listen_port = {port}
  }}
  forward_to = [pyroscope.write.out.receiver]
}}
pyroscope.write "out" {{
  endpoint {{
    url = "{backend_url}"
    max_backoff_retries = 1
  }}
}}
"#
    )
}

fn ingest(port: u16, body: &[u8]) -> (u16, String) {
    http_request(
        "POST",
        &format!("http://127.0.0.1:{port}/ingest?name=app.cpu%7Benv%3Dtest%7D&from=1&until=2"),
        &[("Content-Type", "binary/octet-stream")],
        body,
    )
    .unwrap()
}

#[test]
fn serves_ready_healthy_and_metrics() {
    let backend = Backend::start(Duration::ZERO, 200);
    let port = free_port();
    let relay = Relay::start(&receive_and_write(port, &backend.url()));

    assert_eq!(http_get(&relay.url("/-/ready")).unwrap().0, 200);
    let (status, body) = http_get(&relay.url("/-/healthy")).unwrap();
    assert_eq!(
        (status, body.as_str()),
        (200, "All pyroscope-relay components are healthy.\n")
    );

    assert_eq!(ingest(port, b"a;b 1").0, 200);
    assert_eq!(backend.count(), 1);

    let (status, metrics) = http_get(&relay.url("/metrics")).unwrap();
    assert_eq!(status, 200);
    assert!(
        metrics.contains("process_resident_memory_bytes"),
        "{metrics}"
    );
    assert!(metrics.contains("pyroscope_relay_build_info{"), "{metrics}");
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("pyroscope_write_sent_profiles_total{")
                && l.contains("component_id=\"pyroscope.write.out\"")
                && l.contains("component_path=\"/\"")
                && l.ends_with(" 1")),
        "{metrics}"
    );
    assert!(
        metrics.contains("pyroscope_receive_http_tcp_connections_limit{")
            && metrics.contains("component_id=\"pyroscope.receive_http.in\""),
        "{metrics}"
    );

    assert_eq!(http_get(&relay.url("/nope")).unwrap().0, 404);
    assert_eq!(
        http_request("DELETE", &relay.url("/-/reload"), &[], b"")
            .unwrap()
            .0,
        405
    );
}

#[test]
fn a_good_reload_applies_and_a_bad_one_changes_nothing() {
    let backend_a = Backend::start(Duration::ZERO, 200);
    let backend_b = Backend::start(Duration::ZERO, 200);
    let port = free_port();
    let relay = Relay::start(&receive_and_write(port, &backend_a.url()));
    assert_eq!(ingest(port, b"x 1").0, 200);

    // Point the write at backend B; the listener keeps its port.
    relay.write_config(&receive_and_write(port, &backend_b.url()));
    let (status, body) = http_request("POST", &relay.url("/-/reload"), &[], b"").unwrap();
    assert_eq!((status, body.as_str()), (200, "config reloaded\n"));
    assert_eq!(ingest(port, b"x 1").0, 200);
    assert_eq!((backend_a.count(), backend_b.count()), (1, 1));

    // A broken config is refused with its diagnostics; B keeps receiving.
    relay.write_config("pyroscope.write \"out\" {\n  endpoint {\n    ur = \"x\"\n  }\n}\n");
    let (status, body) = http_get(&relay.url("/-/reload")).unwrap();
    assert_eq!(status, 400);
    assert!(
        body.contains(":3:5:"),
        "diagnostic with line and column:\n{body}"
    );
    assert_eq!(ingest(port, b"x 1").0, 200);
    assert_eq!(backend_b.count(), 2);
}

#[test]
fn sighup_reloads() {
    let backend_a = Backend::start(Duration::ZERO, 200);
    let backend_b = Backend::start(Duration::ZERO, 200);
    let port = free_port();
    let relay = Relay::start(&receive_and_write(port, &backend_a.url()));
    relay.write_config(&receive_and_write(port, &backend_b.url()));
    relay.signal("HUP");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        assert_eq!(ingest(port, b"x 1").0, 200);
        if backend_b.count() > 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "SIGHUP did not reload"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn sigterm_finishes_in_flight_requests_then_exits_zero() {
    let backend = Backend::start(Duration::from_millis(1500), 200);
    let port = free_port();
    let mut relay = Relay::start(&receive_and_write(port, &backend.url()));
    let in_flight = std::thread::spawn(move || ingest(port, b"slow 1"));
    std::thread::sleep(Duration::from_millis(400));
    relay.signal("TERM");
    assert_eq!(
        in_flight.join().unwrap().0,
        200,
        "the in-flight request completes"
    );
    let (status, _) = relay.wait_exit(Duration::from_secs(20));
    assert!(status.success(), "exit status {status}");
    assert_eq!(backend.count(), 1);
}

#[test]
fn a_failed_first_load_exits_non_zero_with_diagnostics() {
    let mut relay = Relay::spawn("pyroscope.write \"a\" {\n  bogus = 1\n}\n");
    let (status, stderr) = relay.wait_exit(Duration::from_secs(20));
    assert!(!status.success());
    assert!(
        stderr.contains(":2:3:") && stderr.contains("bogus"),
        "{stderr}"
    );
}

#[test]
fn not_ready_and_unhealthy_are_reported() {
    // Occupy the port the receiver wants, so it is unhealthy.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let relay = Relay::start(&format!(
        "pyroscope.receive_http \"in\" {{\n  http {{\n    listen_address = \"127.0.0.1\"\n    listen_port = {port}\n  }}\n  forward_to = []\n}}\n"
    ));
    let (status, body) = http_get(&relay.url("/-/healthy")).unwrap();
    assert_eq!(status, 500);
    assert!(
        body.starts_with("unhealthy components: pyroscope.receive_http.in ("),
        "{body}"
    );
}

/// Sends one /ingest request on an open keep-alive connection and returns
/// the status code.
fn ingest_on(stream: &mut std::net::TcpStream) -> u16 {
    use std::io::{BufRead, BufReader, Read, Write};
    let body = b"a;b 1";
    write!(
        stream,
        "POST /ingest?name=app.cpu HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(body).unwrap();
    let mut reader = BufReader::new(stream);
    let mut status_line = String::new();
    reader.read_line(&mut status_line).unwrap();
    let mut length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap();
        }
    }
    let mut rest = vec![0; length];
    reader.read_exact(&mut rest).unwrap();
    status_line
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn a_reload_that_leaves_the_listener_unchanged_keeps_its_connections() {
    let backend_a = Backend::start(Duration::ZERO, 200);
    let backend_b = Backend::start(Duration::ZERO, 200);
    let port = free_port();
    let relay = Relay::start(&receive_and_write(port, &backend_a.url()));
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    assert_eq!(ingest_on(&mut conn), 200);

    relay.write_config(&receive_and_write(port, &backend_b.url()));
    assert_eq!(http_get(&relay.url("/-/reload")).unwrap().0, 200);

    // The same TCP connection still works, and now reaches backend B.
    assert_eq!(ingest_on(&mut conn), 200);
    assert_eq!((backend_a.count(), backend_b.count()), (1, 1));
}

#[test]
fn the_admin_api_lists_and_returns_archived_profiles() {
    let port = free_port();
    let relay = Relay::start(&format!(
        r#"pyroscope.receive_http "in" {{
  http {{
    listen_address = "127.0.0.1"
    listen_port = {port}
  }}
  forward_to = [pyroscope.archive.keep.receiver]
}}
pyroscope.archive "keep" {{
}}
"#
    ));
    let body = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/node_heap.pb.gz"
    ))
    .unwrap();
    let (status, _) = http_request(
        "POST",
        &format!("http://127.0.0.1:{port}/ingest?name=heapapp%7Bregion%3Deu%7D&spyName=nodespy"),
        &[("Content-Type", "application/octet-stream")],
        &body,
    )
    .unwrap();
    assert_eq!(status, 200);

    let (status, listing) = http_get(&relay.url("/api/v1/profiles?service=heapapp")).unwrap();
    assert_eq!(status, 200, "{listing}");
    let listing: serde_json::Value = serde_json::from_str(&listing).unwrap();
    let profiles = listing["profiles"].as_array().unwrap();
    assert_eq!(profiles.len(), 1, "{listing}");
    assert_eq!(profiles[0]["labels"]["region"], "eu");
    let id = profiles[0]["id"].as_str().unwrap();

    // The stored bytes come back unchanged; read them raw off the socket.
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(&relay.admin).unwrap();
    write!(
        stream,
        "GET /api/v1/profiles/{id} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(
        head.contains("content-type: application/octet-stream"),
        "{head}"
    );
    assert_eq!(&raw[split..], &body[..]);

    assert_eq!(
        http_get(&relay.url("/api/v1/profiles/keep-999")).unwrap().0,
        404
    );
}

#[test]
fn a_component_whose_update_failed_is_healthy_again_after_a_good_reload() {
    let backend = Backend::start(Duration::ZERO, 200);
    let port = free_port();
    let good = receive_and_write(port, &backend.url());
    let relay = Relay::start(&good);
    // Valid config, but the CA file cannot be read when the client is built.
    let broken = good.replace(
        "max_backoff_retries = 1",
        "max_backoff_retries = 1\n    tls_config {\n      ca_file = \"/nonexistent/ca.pem\"\n    }",
    );
    relay.write_config(&broken);
    assert_eq!(http_get(&relay.url("/-/reload")).unwrap().0, 400);
    let (status, body) = http_get(&relay.url("/-/healthy")).unwrap();
    assert_eq!(status, 500);
    assert!(body.contains("pyroscope.write.out ("), "{body}");

    relay.write_config(&good);
    assert_eq!(http_get(&relay.url("/-/reload")).unwrap().0, 200);
    assert_eq!(http_get(&relay.url("/-/healthy")).unwrap().0, 200);
}

#[test]
fn the_request_memory_limit_flag_sets_the_budget_and_a_bad_one_is_refused() {
    let backend = Backend::start(Duration::ZERO, 200);
    let port = free_port();
    let config = receive_and_write(port, &backend.url());
    let relay = Relay::spawn_with(&config, &["--request-memory-limit=512MiB"]);
    relay.wait_ready(Duration::from_secs(20));
    assert_eq!(ingest(port, b"a;b 1").0, 200);
    // The body's reservation is given back when the writer drops it.
    let mut metrics = String::new();
    for _ in 0..100 {
        metrics = http_get(&relay.url("/metrics")).unwrap().1;
        if metrics.contains("\npyroscope_relay_request_memory_in_use_bytes 0\n") {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    for line in [
        "pyroscope_relay_request_memory_limit_bytes 536870912",
        "pyroscope_relay_request_memory_in_use_bytes 0",
        "pyroscope_relay_request_memory_refusals_total 0",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in {metrics}");
    }
    drop(relay);

    for bad in ["0", "lots", "12XB"] {
        let flag = format!("--request-memory-limit={bad}");
        let mut relay = Relay::spawn_with(&config, &[&flag]);
        let (status, stderr) = relay.wait_exit(Duration::from_secs(20));
        assert!(!status.success(), "{bad}");
        assert!(stderr.contains("--request-memory-limit"), "{stderr}");
    }
}

#[test]
fn the_receive_threads_flag_sets_the_serving_threads_and_zero_is_refused() {
    let backend = Backend::start(Duration::ZERO, 200);
    let port = free_port();
    let config = receive_and_write(port, &backend.url());
    let relay = Relay::spawn_with(&config, &["--receive-threads=3"]);
    relay.wait_ready(Duration::from_secs(20));
    for _ in 0..12 {
        assert_eq!(ingest(port, b"a;b 1").0, 200);
    }
    let tasks = format!("/proc/{}/task", relay.child.id());
    let mut names: Vec<String> = std::fs::read_dir(tasks)
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| name.starts_with("receive-http-"))
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["receive-http-0", "receive-http-1", "receive-http-2"]
    );
    drop(relay);

    for bad in ["0", "many"] {
        let flag = format!("--receive-threads={bad}");
        let mut relay = Relay::spawn_with(&config, &[&flag]);
        let (status, stderr) = relay.wait_exit(Duration::from_secs(20));
        assert!(!status.success(), "{bad}");
        assert!(stderr.contains("--receive-threads"), "{stderr}");
    }
}
