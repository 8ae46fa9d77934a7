//! The top-level `http` block through the real binary: HTTPS on the admin
//! server with a test CA, basic authentication (no credentials, a wrong
//! password, the right ones), the filter letting `/-/ready` through, and
//! a reload switching all of it on and off.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine as _;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::ServerName;
use support::{Relay, check, tls_client_config};

/// A component, so the config is a realistic one; it sends nothing.
const WRITER: &str = "pyroscope.write \"w\" {\n  endpoint { url = \"http://127.0.0.1:9\" }\n}\n";

const AUTH_EXCEPT_READY: &str = r#"http {
  auth {
    basic {
      username = "admin"
      password = "s3cret"
    }
    filter {
      paths                       = ["/-/ready"]
      authenticate_matching_paths = false
    }
  }
}
"#;

/// A response: status, header block (lower-cased) and body.
struct Answer {
    status: u16,
    headers: String,
    body: String,
}

fn exchange(mut stream: impl Read + Write, method: &str, path: &str, auth: Option<&str>) -> Answer {
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: 0\r\n"
    );
    if let Some(credentials) = auth {
        let encoded = base64::engine::general_purpose::STANDARD.encode(credentials);
        request.push_str(&format!("Authorization: Basic {encoded}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    // A TLS peer may close without close_notify once the answer is sent.
    let _ = stream.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP answer: {text:?}"));
    Answer {
        status,
        headers: head.to_ascii_lowercase(),
        body: body.to_owned(),
    }
}

fn plain(relay: &Relay, method: &str, path: &str, auth: Option<&str>) -> Answer {
    let tcp = TcpStream::connect(&relay.admin).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    exchange(tcp, method, path, auth)
}

fn tls(relay: &Relay, ca: &[u8], method: &str, path: &str, auth: Option<&str>) -> Answer {
    let tcp = TcpStream::connect(&relay.admin).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let conn = rustls::ClientConnection::new(tls_client_config(ca), localhost()).unwrap();
    exchange(rustls::StreamOwned::new(conn, tcp), method, path, auth)
}

fn localhost() -> ServerName<'static> {
    ServerName::try_from("localhost").unwrap()
}

/// A CA and a `localhost` certificate it signed, written to `dir`; returns
/// the CA's DER and the `tls` block naming the files.
fn certificates(dir: &Path) -> (Vec<u8>, String) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let cert_file = dir.join("admin.crt");
    let key_file = dir.join("admin.key");
    std::fs::write(&cert_file, cert.pem()).unwrap();
    std::fs::write(&key_file, key.serialize_pem()).unwrap();
    let block = format!(
        "  tls {{\n    cert_file = \"{}\"\n    key_file  = \"{}\"\n  }}\n",
        cert_file.display(),
        key_file.display()
    );
    (ca.der().to_vec(), block)
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn assert_challenged(answer: &Answer) {
    assert_eq!(answer.status, 401, "{}", answer.body);
    assert!(
        answer
            .headers
            .contains("www-authenticate: basic realm=\"restricted\""),
        "{}",
        answer.headers
    );
}

#[test]
fn basic_auth_guards_every_path_but_the_filtered_ready() {
    let relay = Relay::start(&format!("{AUTH_EXCEPT_READY}{WRITER}"));

    let ready = plain(&relay, "GET", "/-/ready", None);
    assert_eq!(ready.status, 200, "{}", ready.body);

    for (method, path) in [
        ("GET", "/metrics"),
        ("GET", "/-/healthy"),
        ("POST", "/-/reload"),
    ] {
        assert_challenged(&plain(&relay, method, path, None));
        assert_challenged(&plain(&relay, method, path, Some("admin:wrong")));
        assert_challenged(&plain(&relay, method, path, Some("Admin:s3cret")));
    }
    // Routes that do not exist are guarded too: auth wraps the router.
    assert_challenged(&plain(&relay, "GET", "/api/v1/anything", None));

    let metrics = plain(&relay, "GET", "/metrics", Some("admin:s3cret"));
    assert_eq!(metrics.status, 200);
    assert!(metrics.body.contains("# TYPE"), "{}", metrics.body);
    let reload = plain(&relay, "POST", "/-/reload", Some("admin:s3cret"));
    assert_eq!(reload.status, 200, "{}", reload.body);
}

#[test]
fn https_with_a_test_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, tls_block) = certificates(dir.path());
    let relay = Relay::spawn(&format!("http {{\n{tls_block}}}\n{WRITER}"));
    wait_until("the admin server over TLS", || {
        TcpStream::connect(&relay.admin).is_ok()
            && tls(&relay, &ca, "GET", "/-/ready", None).status == 200
    });

    let metrics = tls(&relay, &ca, "GET", "/metrics", None);
    assert_eq!(metrics.status, 200);
    assert!(metrics.body.contains("# TYPE"));

    // Plain HTTP on the TLS port gets no HTTP answer.
    let mut tcp = TcpStream::connect(&relay.admin).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    tcp.write_all(b"GET /-/ready HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut raw = Vec::new();
    let _ = tcp.read_to_end(&mut raw);
    assert!(
        !raw.starts_with(b"HTTP/"),
        "{:?}",
        String::from_utf8_lossy(&raw)
    );
}

#[test]
fn a_reload_switches_auth_and_tls_on_and_off() {
    let relay = Relay::start(WRITER);
    assert_eq!(plain(&relay, "GET", "/metrics", None).status, 200);

    // Authentication on.
    relay.write_config(&format!("{AUTH_EXCEPT_READY}{WRITER}"));
    let reload = plain(&relay, "POST", "/-/reload", None);
    assert_eq!(reload.status, 200, "{}", reload.body);
    assert_challenged(&plain(&relay, "GET", "/metrics", None));
    assert_eq!(plain(&relay, "GET", "/-/ready", None).status, 200);

    // TLS on as well; the reload's own connection was plain.
    let dir = tempfile::tempdir().unwrap();
    let (ca, tls_block) = certificates(dir.path());
    let with_tls = AUTH_EXCEPT_READY.replacen("http {\n", &format!("http {{\n{tls_block}"), 1);
    relay.write_config(&format!("{with_tls}{WRITER}"));
    let reload = plain(&relay, "POST", "/-/reload", Some("admin:s3cret"));
    assert_eq!(reload.status, 200, "{}", reload.body);
    assert_challenged(&tls(&relay, &ca, "GET", "/metrics", Some("admin:wrong")));
    assert_eq!(
        tls(&relay, &ca, "GET", "/metrics", Some("admin:s3cret")).status,
        200
    );

    // A certificate that cannot be read fails the reload and changes nothing.
    let broken = with_tls.replace("admin.crt", "missing.crt");
    relay.write_config(&format!("{broken}{WRITER}"));
    let reload = tls(&relay, &ca, "POST", "/-/reload", Some("admin:s3cret"));
    assert_eq!(reload.status, 400, "{}", reload.body);
    assert!(reload.body.contains("missing.crt"), "{}", reload.body);
    assert_eq!(
        tls(&relay, &ca, "GET", "/metrics", Some("admin:s3cret")).status,
        200
    );

    // And both off again.
    relay.write_config(WRITER);
    let reload = tls(&relay, &ca, "POST", "/-/reload", Some("admin:s3cret"));
    assert_eq!(reload.status, 200, "{}", reload.body);
    assert_eq!(plain(&relay, "GET", "/metrics", None).status, 200);
}

#[test]
fn check_explains_an_invalid_http_block() {
    let (ok, text) = check("http {\n  tls {\n    cert_file = \"/c.pem\"\n  }\n}\n");
    assert!(!ok);
    assert!(text.contains("key_pem or key_file"), "{text}");

    let (ok, text) =
        check("http {\n  auth {\n    basic {\n      username = \"u\"\n    }\n  }\n}\n");
    assert!(!ok);
    assert!(text.contains("password"), "{text}");

    let (ok, text) = check("http \"admin\" {}\n");
    assert!(!ok);
    assert!(text.contains("block \"http\" takes no label"), "{text}");

    let (ok, text) = check("http {}\nhttp {}\n");
    assert!(!ok);
    assert!(
        text.contains("block \"http\" may only be given once"),
        "{text}"
    );

    let (ok, text) = check(
        "http {\n  tls {\n    cert_pem = \"x\"\n    key_pem = \"y\"\n    min_version = \"TLS13\"\n    max_version = \"TLS12\"\n  }\n}\n",
    );
    assert!(!ok);
    assert!(text.contains("max_version"), "{text}");
}
