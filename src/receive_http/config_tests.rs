use std::collections::BTreeMap;
use std::time::Duration;

use crate::config::{Capsule, SourceMap, Stmt, Value, decode, parse};
use crate::pipeline::Receiver;

use super::super::arguments::{Arguments, ClientAuth, TlsVersion};

/// `pyroscope.write.<name>.receiver` exports, and one export of another
/// type.
fn scope() -> BTreeMap<String, Value> {
    let receiver = |id: &str| -> Value {
        let capsule = Capsule::new("ProfilesReceiver", id, Receiver::new(id));
        [("receiver".to_string(), Value::Capsule(capsule))]
            .into_iter()
            .collect()
    };
    let write: Value = [
        ("staging".to_string(), receiver("pyroscope.write.staging")),
        (
            "production".to_string(),
            receiver("pyroscope.write.production"),
        ),
    ]
    .into_iter()
    .collect();
    let other: Value = [(
        "rules".to_string(),
        Value::Capsule(Capsule::new("RelabelRules", "pyroscope.relabel.r", ())),
    )]
    .into_iter()
    .collect();
    let pyroscope: Value = [
        ("write".to_string(), write),
        (
            "relabel".to_string(),
            [("r".to_string(), other)].into_iter().collect(),
        ),
    ]
    .into_iter()
    .collect();
    BTreeMap::from([("pyroscope".to_string(), pyroscope)])
}

/// Decodes the component block in `body`; returns the arguments and the
/// diagnostics' messages.
fn decode_args(body: &str) -> (Arguments, Vec<String>) {
    let text = format!("pyroscope.receive_http \"default\" {{\n{body}\n}}");
    let mut map = SourceMap::new();
    let file = map.add("test.alloy", &text);
    let (parsed, syntax_errors) = parse(&map, file);
    assert!(syntax_errors.is_empty(), "{syntax_errors:?}");
    let Some(Stmt::Block(block)) = parsed.body.stmts.first() else {
        panic!("block expected")
    };
    let mut diags = Vec::new();
    let args = decode::<Arguments>(&block.body, block.header_span(), &scope(), &mut diags);
    (args, diags.into_iter().map(|d| d.message).collect())
}

fn errors_of(body: &str) -> String {
    decode_args(body).1.join("\n")
}

const FORWARD: &str = "forward_to = [pyroscope.write.staging.receiver]";

#[test]
fn documented_example_with_alloy_defaults() {
    let (args, errors) = decode_args(
        r#"  http {
    listen_address = "0.0.0.0"
    listen_port = 9999
  }
  forward_to = [pyroscope.write.staging.receiver, pyroscope.write.production.receiver]"#,
    );
    assert!(errors.is_empty(), "{errors:?}");
    let ids: Vec<_> = args.forward_to.iter().map(Receiver::component_id).collect();
    assert_eq!(
        ids,
        ["pyroscope.write.staging", "pyroscope.write.production"]
    );
    assert_eq!(args.http.listen_address, "0.0.0.0");
    assert_eq!(args.http.listen_port, 9999);
    assert_eq!(
        args.http.conn_limit, 16384,
        "a partial http block keeps defaults"
    );
    assert_eq!(args.http.server_idle_timeout, Duration::from_secs(120));
    assert_eq!(args.http.max_request_body_size, 256 * 1024 * 1024);
    assert!(args.http.tls.is_none());
    assert_eq!(args.graceful_shutdown_timeout, Duration::from_secs(30));

    let (defaults, errors) = decode_args(FORWARD);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(
        defaults,
        Arguments {
            forward_to: defaults.forward_to.clone(),
            ..Arguments::default()
        }
    );
}

#[test]
fn every_attribute_alloy_accepts_and_the_extensions() {
    let (args, errors) = decode_args(
        r#"  forward_to = [pyroscope.write.staging.receiver]
  graceful_shutdown_timeout = "5s"
  debug_info_upload_timeout = "1m"
  forward_headers = ["X-Scope-OrgID"]
  http {
    listen_port = "4041"
    conn_limit = 0
    server_read_timeout = "10s"
    server_write_timeout = "20s"
    server_idle_timeout = "1m"
    max_request_body_size = "10MiB"
    max_decompressed_body_size = "1GiB"
    tls {
      cert_file = "/c.pem"
      key_pem = "KEY"
      client_ca = "CA"
      client_auth_type = "RequireAndVerifyClientCert"
      min_version = "TLS13"
      cipher_suites = "TLS_AES_128_GCM_SHA256, TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
    }
    http2 {
      enabled = true
      max_concurrent_streams = 250
      max_handlers = 10
      max_decoder_header_table_size = 4096
      max_encoder_header_table_size = 4096
      max_read_frame_size = 32768
      permit_prohibited_ciphers = false
      idle_timeout = "30s"
      read_idle_timeout = "15s"
      ping_timeout = "5s"
      write_byte_timeout = "1s"
      max_upload_buffer_per_connection = 1048576
      max_upload_buffer_per_stream = 65536
    }
  }
  grpc {
    listen_address = "127.0.0.1"
    listen_port = 0
    conn_limit = 10
    max_connection_age = "1h"
    max_connection_age_grace = "1m"
    max_connection_idle = "5m"
    server_max_recv_msg_size = 4194304
    server_max_send_msg_size = 4194304
    server_max_concurrent_streams = 100
    tls {
      cert_pem = "x"
    }
  }"#,
    );
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(args.graceful_shutdown_timeout, Duration::from_secs(5));
    assert_eq!(args.debug_info_upload_timeout, Duration::from_secs(60));
    assert_eq!(args.forward_headers, ["X-Scope-OrgID"]);
    let http = &args.http;
    assert_eq!((http.listen_port, http.conn_limit), (4041, 0));
    assert_eq!(http.server_read_timeout, Duration::from_secs(10));
    assert_eq!(http.max_request_body_size, 10 * 1024 * 1024);
    assert_eq!(http.max_decompressed_body_size, Some(1024 * 1024 * 1024));
    let tls = http.tls.as_ref().unwrap();
    assert_eq!(tls.cert_file, "/c.pem");
    assert_eq!(tls.key_pem, "KEY");
    assert_eq!(tls.client_ca_pem, "CA");
    assert_eq!(tls.client_auth_type, ClientAuth::RequireAndVerifyClientCert);
    assert_eq!(tls.min_version, TlsVersion::Tls13);
    assert_eq!(
        tls.cipher_suites,
        [
            "TLS_AES_128_GCM_SHA256",
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
        ]
    );
    assert!(http.http2.enabled);
    assert_eq!(http.http2.max_concurrent_streams, 250);
    assert_eq!(http.http2.max_upload_buffer_per_stream, 65536);
    assert_eq!(http.http2.read_idle_timeout, Duration::from_secs(15));
}

#[test]
fn configuration_errors_are_clear() {
    let cases = [
        ("", "forward_to"),
        (
            "forward_to = [pyroscope.relabel.r.rules]",
            "is not a profiles receiver",
        ),
        (
            "http {\n tls {\n cert_pem = \"a\"\n cert_file = \"b\"\n key_pem = \"k\"\n }\n }",
            "at most one of cert_pem and cert_file must be set",
        ),
        (
            "http {\n tls {\n cert_pem = \"a\"\n }\n }",
            "a server key is required: set key_pem or key_file",
        ),
        (
            "http {\n tls {\n cert_pem = \"a\"\n key_pem = \"k\"\n client_auth_type = \"Always\"\n }\n }",
            "invalid client_auth_type \"Always\"",
        ),
        (
            "http {\n tls {\n cert_pem = \"a\"\n key_pem = \"k\"\n min_version = \"SSL3\"\n }\n }",
            "invalid min_version \"SSL3\"",
        ),
        (
            "http {\n tls {\n cert_pem = \"a\"\n key_pem = \"k\"\n client_auth_type = \"VerifyClientCertIfGiven\"\n }\n }",
            "needs client_ca_pem or client_ca_file",
        ),
        (
            "forward_headers = [\"Connection\"]",
            "\"Connection\" cannot be forwarded",
        ),
        (
            "forward_headers = [\"bad header\"]",
            "not a valid header name",
        ),
        ("http {\n listen_port = 70000\n }", "out of range"),
        ("http {\n listen_prot = 1\n }", "listen_prot"),
        ("http {\n max_request_body_size = \"lots\"\n }", "lots"),
    ];
    for (body, expected) in cases {
        let body = if body.contains("forward_to") || body.is_empty() {
            body.to_owned()
        } else {
            format!("{FORWARD}\n{body}")
        };
        let errors = errors_of(&body);
        assert!(
            errors.contains(expected),
            "{body}: expected {expected:?} in {errors:?}"
        );
    }
}
