//! The web UI's JSON API, through the real binary: components in Alloy's
//! shape, the live tap over SSE (filters, errors, a reader that never
//! reads), flame graphs of archived agent profiles, and the security
//! headers on every UI answer.

mod support;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use support::{Backend, Relay, free_port, http_get, http_request};

const PY_CPU: &[u8] = include_bytes!("fixtures/py_cpu.pb");
const NODE_HEAP: &[u8] = include_bytes!("fixtures/node_heap.pb.gz");
const PY_FOLDED: &[u8] = include_bytes!("fixtures/py_folded.txt");

fn three_stages(port: u16, backend_url: &str) -> String {
    format!(
        r#"pyroscope.receive_http "default" {{
  http {{
    listen_address = "127.0.0.1"
    listen_port = {port}
  }}
  forward_to = [pyroscope.relabel.tag.receiver]
}}
pyroscope.relabel "tag" {{
  forward_to = [pyroscope.write.backend.receiver, pyroscope.archive.local.receiver]
  rule {{
    source_labels = ["service_name"]
    regex = "drop-me.*"
    action = "drop"
  }}
}}
pyroscope.write "backend" {{
  endpoint {{
    url = "{backend_url}"
    bearer_token = "s3cr3t-token"
  }}
}}
pyroscope.archive "local" {{
  retention = "1h"
}}
"#
    )
}

struct Setup {
    relay: Relay,
    port: u16,
    _backend: Backend,
}

fn setup() -> Setup {
    let backend = Backend::start(Duration::ZERO, 200);
    let port = free_port();
    let relay = Relay::start(&three_stages(port, &backend.url()));
    Setup {
        relay,
        port,
        _backend: backend,
    }
}

fn ingest(port: u16, name: &str, query: &str, body: &[u8]) -> u16 {
    let name = name
        .replace('{', "%7B")
        .replace('}', "%7D")
        .replace('=', "%3D")
        .replace(',', "%2C");
    let url = format!("http://127.0.0.1:{port}/ingest?name={name}&{query}");
    http_request(
        "POST",
        &url,
        &[("Content-Type", "binary/octet-stream")],
        body,
    )
    .unwrap()
    .0
}

fn json(url: &str) -> (u16, serde_json::Value) {
    let (status, body) = http_get(url).unwrap();
    let value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    (status, value)
}

/// The response head (status line and headers), lower-cased.
fn head_of(admin: &str, path: &str) -> String {
    let mut s = TcpStream::connect(admin).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).to_ascii_lowercase();
    text.split("\r\n\r\n").next().unwrap().to_owned()
}

/// An open tap stream; nothing is read until asked.
struct Tap(TcpStream, String);

impl Tap {
    fn open(admin: &str, query: &str) -> Tap {
        let mut s = TcpStream::connect(admin).unwrap();
        write!(s, "GET /api/v1/tap?{query} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut tap = Tap(s, String::new());
        tap.read_until(": watching", Duration::from_secs(5));
        tap
    }

    /// Reads until `needle` has arrived (panics after `timeout`).
    fn read_until(&mut self, needle: &str, timeout: Duration) -> &str {
        let deadline = Instant::now() + timeout;
        self.0
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let mut buf = [0u8; 64 * 1024];
        while !self.1.contains(needle) {
            assert!(
                Instant::now() < deadline,
                "no {needle:?} on the tap; got:\n{}",
                self.1
            );
            if let Ok(n) = self.0.read(&mut buf) {
                self.1.push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        }
        &self.1
    }

    /// Reads until `n` whole `profile` events have arrived.
    fn read_events(&mut self, n: usize, timeout: Duration) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let events = self.profiles();
            if events.len() >= n {
                return events;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {n} events:\n{}",
                events.len(),
                self.1
            );
            let more = self.1.len() + 1;
            self.read_more(more, deadline);
        }
    }

    fn read_more(&mut self, at_least: usize, deadline: Instant) {
        let mut buf = [0u8; 64 * 1024];
        while self.1.len() < at_least && Instant::now() < deadline {
            if let Ok(n) = self.0.read(&mut buf) {
                self.1.push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        }
    }

    /// The whole `profile` events read so far, as JSON.
    fn profiles(&self) -> Vec<serde_json::Value> {
        self.1
            .split("event: profile\ndata: ")
            .skip(1)
            .filter_map(|e| e.split("\n\n").next())
            .filter_map(|data| serde_json::from_str(data).ok())
            .collect()
    }
}

#[test]
fn components_have_alloys_shape_and_hide_secrets() {
    let s = setup();
    let (status, list) = json(&s.relay.url("/api/v0/web/components"));
    assert_eq!(status, 200);
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 4);
    let relabel = list
        .iter()
        .find(|c| c["localID"] == "pyroscope.relabel.tag")
        .unwrap();
    assert_eq!(relabel["name"], "pyroscope.relabel");
    assert_eq!(relabel["label"], "tag");
    assert_eq!(relabel["moduleID"], "");
    assert_eq!(relabel["health"]["state"], "healthy");
    assert!(
        relabel["health"]["updatedTime"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    assert_eq!(
        relabel["referencesTo"],
        serde_json::json!(["pyroscope.archive.local", "pyroscope.write.backend"])
    );
    assert_eq!(
        relabel["referencedBy"],
        serde_json::json!(["pyroscope.receive_http.default"])
    );
    assert!(
        relabel.get("arguments").is_none(),
        "the list has no arguments"
    );

    let (status, write) = json(
        &s.relay
            .url("/api/v0/web/components/pyroscope.write.backend"),
    );
    assert_eq!(status, 200);
    let endpoint = statement(&write["arguments"], "endpoint");
    assert_eq!(
        (&endpoint["name"], &endpoint["type"]),
        (&"endpoint".into(), &"block".into())
    );
    let attr = |name: &str| {
        endpoint["body"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == name)
            .cloned()
            .unwrap()
    };
    assert_eq!(attr("url")["value"]["type"], "string");
    assert_eq!(
        attr("bearer_token")["value"],
        serde_json::json!({"type": "capsule", "value": "(secret)"})
    );
    assert!(!write.to_string().contains("s3cr3t-token"));
    assert_eq!(write["exports"][0]["name"], "receiver");
    assert_eq!(write["recentErrors"], serde_json::json!([]));

    let (status, missing) = json(&s.relay.url("/api/v0/web/components/pyroscope.write.nope"));
    assert_eq!(status, 404, "{missing}");
}

/// The statement `name` of an Alloy-shaped body (`arguments`).
fn statement<'a>(body: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    body.as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no {name:?} in {body}"))
}

#[test]
fn arguments_as_evaluated_include_the_defaults() {
    let s = setup();
    let component = |id: &str| json(&s.relay.url(&format!("/api/v0/web/components/{id}"))).1;

    let receive = component("pyroscope.receive_http.default");
    let args = &receive["arguments"];
    let http = &statement(args, "http")["body"];
    assert_eq!(
        statement(http, "listen_address")["value"],
        serde_json::json!({"type": "string", "value": "127.0.0.1"}),
        "as written"
    );
    assert_eq!(
        statement(http, "conn_limit")["value"],
        serde_json::json!({"type": "number", "value": 16384.0}),
        "Alloy's default"
    );
    assert_eq!(
        statement(http, "server_read_timeout")["value"],
        serde_json::json!({"type": "string", "value": "30s"})
    );
    let http2 = &statement(http, "http2")["body"];
    assert_eq!(statement(http2, "enabled")["value"]["value"], false);
    assert_eq!(
        statement(args, "graceful_shutdown_timeout")["value"]["type"],
        "string"
    );

    let relabel = component("pyroscope.relabel.tag");
    let args = &relabel["arguments"];
    assert_eq!(statement(args, "max_cache_size")["value"]["value"], 10000.0);
    let rule = &statement(args, "rule")["body"];
    assert_eq!(statement(rule, "action")["value"]["value"], "drop");
    assert_eq!(statement(rule, "separator")["value"]["value"], ";");

    let write = component("pyroscope.write.backend");
    let endpoint = &statement(&write["arguments"], "endpoint")["body"];
    assert_eq!(
        statement(endpoint, "remote_timeout")["value"]["type"],
        "string"
    );
    assert_eq!(
        statement(endpoint, "bearer_token")["value"],
        serde_json::json!({"type": "capsule", "value": "(secret)"})
    );
    // A secret left unset is still never shown as a value.
    let tls = &statement(endpoint, "tls_config")["body"];
    assert_eq!(
        statement(tls, "insecure_skip_verify")["value"]["value"],
        false
    );
    assert!(!write.to_string().contains("s3cr3t-token"));
}

#[test]
fn every_ui_answer_has_a_content_security_policy() {
    let s = setup();
    for path in [
        "/",
        "/ui/app.js",
        "/ui/flame.js",
        "/ui/metrics.js",
        "/ui/app.css",
        "/api/v0/web/components",
        "/api/v1/tap",
        "/api/v1/profiles/local-99/flamegraph",
    ] {
        let head = head_of(&s.relay.admin, path);
        assert!(
            head.contains("content-security-policy: default-src 'none'; script-src 'self'"),
            "{path}: {head}"
        );
        assert!(head.contains("x-content-type-options: nosniff"), "{path}");
    }
    let (status, index) = http_get(&s.relay.url("/")).unwrap();
    assert_eq!(status, 200);
    assert!(index.contains("<script src=\"/ui/app.js\""));
    assert!(
        !index.contains("<script>"),
        "no inline scripts: the CSP forbids them"
    );
    // The admin endpoints are as before.
    assert_eq!(http_get(&s.relay.url("/-/ready")).unwrap().0, 200);
    let (status, _) =
        http_request("POST", &s.relay.url("/api/v0/web/components"), &[], b"").unwrap();
    assert_eq!(status, 405);
}

#[test]
fn the_tap_streams_each_profile_with_its_outcome() {
    let s = setup();
    let admin = &s.relay.admin;
    let mut all = Tap::open(admin, "component=pyroscope.relabel.tag");
    let mut filtered = Tap::open(
        admin,
        "component=pyroscope.receive_http.default&match=%7Bservice_name%3D~%22keep.*%22%7D",
    );
    assert_eq!(
        ingest(s.port, "keep.cpu{env=prod}", "format=pprof", PY_CPU),
        200
    );
    assert_eq!(ingest(s.port, "drop-me.cpu{}", "format=pprof", PY_CPU), 200);
    assert_eq!(ingest(s.port, "other.cpu{}", "format=pprof", PY_CPU), 200);

    let events = all.read_events(3, Duration::from_secs(5));
    assert_eq!(events.len(), 3, "{events:?}");
    let keep = &events[0];
    assert_eq!(keep["component"], "pyroscope.relabel.tag");
    assert_eq!(keep["protocol"], "/ingest");
    assert_eq!(keep["labels"]["service_name"], "keep.cpu");
    assert_eq!(keep["profileType"], "cpu");
    assert_eq!(keep["size"], PY_CPU.len());
    assert_eq!(keep["outcome"], "ok");
    let notes = keep["notes"].to_string();
    assert!(
        notes.contains(&format!("{}: ok", s._backend.url())),
        "{notes}"
    );
    assert!(notes.contains("stored as local-1"), "{notes}");
    assert_eq!(keep["archived"], serde_json::json!(["local-1"]));
    assert_eq!(
        events[1]["notes"],
        serde_json::json!([
            r#"dropped by rule 1 (action = "drop", source_labels = ["service_name"], regex = "drop-me.*")"#
        ])
    );

    filtered.read_events(1, Duration::from_secs(5));
    // The other two went by meanwhile; give them a moment to show, if they would.
    std::thread::sleep(Duration::from_millis(300));
    filtered.read_more(usize::MAX, Instant::now() + Duration::from_millis(300));
    let seen: Vec<_> = filtered
        .profiles()
        .iter()
        .map(|e| e["labels"]["service_name"].clone())
        .collect();
    assert_eq!(seen, ["keep.cpu"]);
}

#[test]
fn tap_requests_with_problems_get_clear_errors() {
    let s = setup();
    let (status, body) = json(&s.relay.url("/api/v1/tap"));
    assert_eq!(status, 400);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("component parameter is required")
    );
    let (status, body) = json(&s.relay.url("/api/v1/tap?component=pyroscope.write.nope"));
    assert_eq!(status, 404);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("pyroscope.write.backend"),
        "{body}"
    );
    let (status, body) = json(
        &s.relay
            .url("/api/v1/tap?component=pyroscope.write.backend&match=%7Bservice_name%3Dx%7D"),
    );
    assert_eq!(status, 400);
    assert!(
        body["error"].as_str().unwrap().contains("quoted value"),
        "{body}"
    );
}

/// A reader that never reads: its queue fills, the overflow is counted, and
/// ingest goes on at the rate it has with nobody watching.
#[test]
fn a_tap_that_is_never_read_does_not_slow_ingest() {
    // No archive here: its fsync per append would make the rate the disk's.
    let backend = Backend::start(Duration::ZERO, 200);
    let port = free_port();
    let config = three_stages(port, &backend.url()).replace(
        "pyroscope.write.backend.receiver, pyroscope.archive.local.receiver",
        "pyroscope.write.backend.receiver",
    );
    let relay = Relay::start(&config);
    // Big events (a 4 KiB label), so the socket buffers fill and the
    // watcher's queue does too.
    let name = format!("slow.cpu{{pad={}}}", "x".repeat(4096));
    let run = |n: usize| {
        let started = Instant::now();
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    for _ in 0..n / 4 {
                        assert_eq!(ingest(port, &name, "format=folded", b"a;b 1"), 200);
                    }
                });
            }
        });
        n as f64 / started.elapsed().as_secs_f64()
    };
    run(200); // warm up
    let before = run(500);
    let mut stalled = Tap::open(&relay.admin, "component=pyroscope.receive_http.default");
    let watched = run(3000);
    let text = stalled.read_until("event: stats", Duration::from_secs(30));
    let dropped: u64 = text
        .split("event: stats\ndata: {\"dropped\":")
        .nth(1)
        .and_then(|t| t.split('}').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    drop(stalled);
    let after = run(500);
    eprintln!(
        "ingest: {before:.0}/s and {after:.0}/s unwatched, {watched:.0}/s with a stalled tap"
    );
    // Lenient: this guards against blocking, not a benchmark (bench/tap.sh).
    assert!(
        watched >= 0.5 * before.max(after),
        "ingest fell to {watched:.0}/s with a stalled tap"
    );
    assert!(dropped > 0, "the stalled reader's overflow is counted");
}

#[test]
fn archived_profiles_are_flame_graphs() {
    let s = setup();
    assert_eq!(ingest(s.port, "py.cpu{}", "format=pprof", PY_CPU), 200);
    assert_eq!(
        ingest(s.port, "node.inuse_space{}", "format=pprof", NODE_HEAP),
        200
    );
    assert_eq!(
        ingest(s.port, "legacy.cpu{}", "format=folded", PY_FOLDED),
        200
    );
    assert_eq!(ingest(s.port, "jfr.cpu{}", "format=jfr", b"not shown"), 200);

    let (status, fb) = json(&s.relay.url("/api/v1/profiles/local-1/flamegraph"));
    assert_eq!(status, 200, "{fb}");
    assert_eq!(fb["sampleType"], "cpu");
    assert_eq!(fb["unit"], "nanoseconds");
    assert_eq!(fb["names"][0], "total");
    let names: Vec<&str> = fb["names"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n.as_str())
        .collect();
    assert!(
        names.contains(&"fib") && names.contains(&"work_b"),
        "{names:?}"
    );
    let root = &fb["levels"][0];
    assert_eq!(root[1], fb["numTicks"]);

    let (status, heap) = json(
        &s.relay
            .url("/api/v1/profiles/local-2/flamegraph?sample_type=inuse_objects"),
    );
    assert_eq!(status, 200, "{heap}");
    assert_eq!(heap["sampleType"], "inuse_objects");
    let types: Vec<_> = heap["sampleTypes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["type"].clone())
        .collect();
    assert_eq!(types, ["inuse_objects", "inuse_space"]);
    let (status, err) = json(
        &s.relay
            .url("/api/v1/profiles/local-2/flamegraph?sample_type=cpu"),
    );
    assert_eq!(status, 400);
    assert!(
        err["error"].as_str().unwrap().contains("inuse_space"),
        "{err}"
    );

    let (status, folded) = json(&s.relay.url("/api/v1/profiles/local-3/flamegraph"));
    assert_eq!(status, 200, "{folded}");
    assert_eq!(folded["format"], "folded");
    assert!(folded.to_string().contains("py_agent.py:40 - fib"));

    let (status, jfr) = json(&s.relay.url("/api/v1/profiles/local-4/flamegraph"));
    assert_eq!(status, 422);
    assert!(jfr["error"].as_str().unwrap().contains("\"jfr\""), "{jfr}");
    assert_eq!(
        json(&s.relay.url("/api/v1/profiles/local-99/flamegraph")).0,
        404
    );
    assert_eq!(
        json(&s.relay.url("/api/v1/profiles/nonsense!/flamegraph")).0,
        400
    );
    // The archive's own API is unchanged beside it.
    assert_eq!(
        http_get(&s.relay.url("/api/v1/profiles/local-1"))
            .unwrap()
            .0,
        200
    );
}

#[test]
fn the_tap_names_the_push_protocol() {
    let s = setup();
    let mut tap = Tap::open(&s.relay.admin, "component=pyroscope.receive_http.default");
    let (status, _) = http_request(
        "POST",
        &format!("http://127.0.0.1:{}/push.v1.PusherService/Push", s.port),
        &[("Content-Type", "application/proto")],
        include_bytes!("fixtures/push_request.bin"),
    )
    .unwrap();
    assert_eq!(status, 200);
    let events = tap.read_events(1, Duration::from_secs(5));
    assert_eq!(events[0]["protocol"], "connect", "{events:?}");
    assert_eq!(events[0]["outcome"], "ok");
    assert!(
        events[0]["labels"]["service_name"].is_string(),
        "{events:?}"
    );
}
