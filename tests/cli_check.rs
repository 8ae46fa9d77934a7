//! `pyroscope-relay check`: accepts the reference configs, rejects broken
//! ones with the right line and column.

mod support;
use support::check;

const SEED_EXAMPLE: &str = r#"// Receives profiles over HTTP
pyroscope.receive_http "default" {
  http {
    listen_address = "0.0.0.0"
    listen_port = 9999
  }
  forward_to = [pyroscope.write.staging.receiver, pyroscope.write.production.receiver]
}

// Send profiles to a staging Pyroscope instance
pyroscope.write "staging" {
  endpoint {
    url = "http://pyroscope-staging:4040"
  }
}

// Send profiles to a production Pyroscope instance
pyroscope.write "production" {
  endpoint {
    url = "http://pyroscope-production:4040"
  }
}
"#;

fn assert_valid(config: &str) {
    let (ok, out) = check(config);
    assert!(ok, "expected a valid config, got:\n{out}");
}

/// Asserts the config is rejected with a diagnostic at `line:col` whose
/// message contains `needle`.
fn assert_rejected(config: &str, line_col: &str, needle: &str) -> String {
    let (ok, out) = check(config);
    assert!(!ok, "expected a rejection, got success:\n{out}");
    let located = format!("config.alloy:{line_col}: ");
    assert!(
        out.lines()
            .any(|l| l.starts_with(&located) && l.contains(needle)),
        "expected `{located}...{needle}...` in:\n{out}"
    );
    out
}

#[test]
fn accepts_the_seed_example() {
    assert_valid(SEED_EXAMPLE);
}

#[test]
fn accepts_the_reference_snippets() {
    // The usage snippet, with its placeholders filled in.
    assert_valid(
        r#"pyroscope.receive_http "example" {
  http {
    listen_address = "127.0.0.1"
    listen_port = "9999"
  }
  forward_to = [pyroscope.write.w1.receiver]
}
pyroscope.write "w1" {
  endpoint {
    url = "http://pyroscope-receiver:8080"
    remote_timeout = "30s"  // Increased from default 10s
  }
}
pyroscope.write "w2" {
  endpoint {
    url = "http://pyroscope-backend:4040"
    remote_timeout = "3s"  // Reduced from default 10s
  }
}
"#,
    );
    // The conn_limit troubleshooting snippet; forward_to is required, so
    // the snippet's "rest of configuration" is an empty list here.
    assert_valid(
        r#"pyroscope.receive_http "example" {
  http {
    conn_limit = 32768  // Increase from default 16384
  }
  forward_to = []
}
"#,
    );
    // Alloy's write unmarshal test: two endpoints and external labels.
    assert_valid(
        r#"pyroscope.write "test" {
  endpoint {
    url = "http://localhost:4100"
    remote_timeout = "10s"
  }
  endpoint {
    url = "http://localhost:4200"
    remote_timeout = "5s"
    min_backoff_period = "1s"
    max_backoff_period = "10s"
    max_backoff_retries = 10
  }
  external_labels = {
    "label1" = "value1",
    "label2" = "value2",
  }
}
"#,
    );
    // Tenant header and a relabel chain, as the Alloy docs show them.
    assert_valid(
        r#"pyroscope.write "tenant" {
  endpoint {
    url = "https://profiles.example.com"
    headers = { "X-Scope-OrgID" = "squad-1" }
    basic_auth {
      username = "user"
      password = sys.env("PYROSCOPE_PASSWORD")
    }
  }
}
pyroscope.relabel "filter" {
  forward_to = [pyroscope.write.tenant.receiver]
  rule {
    source_labels = ["env"]
    regex = "dev"
    action = "drop"
  }
  rule {
    target_label = "region"
    replacement = "eu-1"
  }
}
logging {
  level = "debug"
  format = "json"
}
"#,
    );
}

#[test]
fn the_embedded_quickstart_is_valid() {
    let out = std::process::Command::new(support::BIN)
        .arg("check")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn reports_a_syntax_error_with_line_column_and_caret() {
    let out = assert_rejected(
        "pyroscope.write \"a\" {\n  endpoint {\n    url = \n  }\n}\n",
        "3:9",
        "",
    );
    assert!(out.contains("    url = "), "source line shown:\n{out}");
    assert!(out.contains('^'), "caret shown:\n{out}");
}

#[test]
fn reports_an_unknown_component_with_a_suggestion() {
    let out = assert_rejected(
        "pyroscope.wrte \"a\" {\n}\n",
        "1:1",
        "unknown component pyroscope.wrte",
    );
    assert!(out.contains("did you mean pyroscope.write"), "{out}");
}

#[test]
fn reports_an_alloy_component_as_not_supported() {
    assert_rejected(
        "prometheus.scrape \"a\" {\n  targets = []\n}\n",
        "1:1",
        "component prometheus.scrape is not supported by pyroscope-relay",
    );
}

#[test]
fn reports_an_unknown_attribute_with_a_suggestion() {
    let out = assert_rejected(
        "pyroscope.write \"a\" {\n  endpoint {\n    url = \"http://x\"\n    remote_timout = \"1s\"\n  }\n}\n",
        "4:5",
        "remote_timout",
    );
    assert!(
        out.contains("did you mean \"remote_timeout\"")
            || out.contains("did you mean remote_timeout"),
        "{out}"
    );
}

#[test]
fn reports_an_unknown_block() {
    assert_rejected(
        "pyroscope.write \"a\" {\n  endpoints {\n    url = \"http://x\"\n  }\n}\n",
        "2:3",
        "endpoints",
    );
}

#[test]
fn reports_a_wrong_type() {
    assert_rejected(
        "pyroscope.write \"a\" {\n  endpoint {\n    url = \"http://x\"\n    retry_on_http_429 = \"maybe\"\n  }\n}\n",
        "4:25",
        "bool",
    );
}

#[test]
fn reports_a_missing_required_attribute() {
    assert_rejected(
        "pyroscope.write \"a\" {\n  endpoint {\n    name = \"x\"\n  }\n}\n",
        "2:3",
        "url",
    );
}

#[test]
fn reports_a_duplicate_attribute() {
    assert_rejected(
        "pyroscope.write \"a\" {\n  endpoint {\n    url = \"http://x\"\n    url = \"http://y\"\n  }\n}\n",
        "4:5",
        "url",
    );
}

#[test]
fn reports_a_block_given_twice() {
    assert_rejected(
        "pyroscope.receive_http \"a\" {\n  http {\n  }\n  http {\n  }\n  forward_to = []\n}\n",
        "4:3",
        "http",
    );
}

#[test]
fn reports_a_duplicate_component_label() {
    assert_rejected(
        "pyroscope.write \"a\" {\n}\npyroscope.write \"a\" {\n}\n",
        "3:17",
        "pyroscope.write.a is declared more than once",
    );
}

#[test]
fn reports_an_unresolved_reference() {
    assert_rejected(
        "pyroscope.receive_http \"a\" {\n  forward_to = [pyroscope.write.nope.receiver]\n}\n",
        "2:17",
        "pyroscope.write.nope",
    );
}

#[test]
fn reports_a_reference_cycle() {
    assert_rejected(
        "pyroscope.relabel \"a\" {\n  forward_to = [pyroscope.relabel.b.receiver]\n}\npyroscope.relabel \"b\" {\n  forward_to = [pyroscope.relabel.a.receiver]\n}\n",
        "1:19",
        "cycle detected: pyroscope.relabel.a -> pyroscope.relabel.b -> pyroscope.relabel.a",
    );
}

#[test]
fn reports_invalid_values() {
    assert_rejected(
        "pyroscope.write \"a\" {\n  endpoint {\n    url = \"http://x\"\n    remote_timeout = \"5 minutes\"\n  }\n}\n",
        "4:22",
        "duration",
    );
    assert_rejected(
        "pyroscope.receive_http \"a\" {\n  http {\n    listen_port = 70000\n  }\n  forward_to = []\n}\n",
        "3:19",
        "70000",
    );
}

#[test]
fn reports_every_error_in_a_file() {
    let (ok, out) = check(
        "pyroscope.wrte \"a\" {\n}\nprometheus.scrape \"b\" {\n}\npyroscope.write \"c\" {\n  endpoint {\n  }\n}\n",
    );
    assert!(!ok);
    for located in [
        "config.alloy:1:1:",
        "config.alloy:3:1:",
        "config.alloy:6:3:",
    ] {
        assert!(out.contains(located), "missing {located} in:\n{out}");
    }
}

#[test]
fn merges_a_directory_of_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a.alloy"),
        "pyroscope.receive_http \"r\" {\n  forward_to = [pyroscope.write.w.receiver]\n}\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("b.alloy"), "pyroscope.write \"w\" {\n}\n").unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a config").unwrap();
    let out = std::process::Command::new(support::BIN)
        .arg("check")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn prints_the_version() {
    let out = std::process::Command::new(support::BIN)
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("pyroscope-relay {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn the_relabel_rules_export_is_a_rules_capsule() {
    let relabel = "pyroscope.relabel \"tidy\" {\n  forward_to = []\n  rule {\n    action = \"labeldrop\"\n    regex = \"tmp_.*\"\n  }\n}\n";
    // Referencing the export resolves; it has Alloy's type, so it is
    // refused where a receiver is expected, naming that type.
    let config = format!(
        "{relabel}pyroscope.receive_http \"in\" {{\n  forward_to = [pyroscope.relabel.tidy.rules]\n}}\n"
    );
    assert_rejected(
        &config,
        "9:16",
        "RelabelRules \"pyroscope.relabel.tidy\" is not a profiles receiver",
    );
}
