use std::collections::BTreeMap;
use std::time::Duration;

use super::*;
use crate::config::convert::Secret;
use crate::config::source::SourceMap;
use crate::config::syntax::parse;
use crate::config::value::Capsule;

#[derive(Debug, PartialEq)]
struct Http {
    listen_address: String,
    listen_port: u16,
    idle_timeout: Duration,
    tls: Option<Tls>,
}

impl DecodeBlock for Http {
    fn decode(d: &mut BlockDecoder<'_>) -> Self {
        Http {
            listen_address: d.attr("listen_address", String::new()),
            listen_port: d.attr("listen_port", 8080),
            idle_timeout: d.attr("server_idle_timeout", Duration::from_secs(120)),
            tls: d.block("tls"),
        }
    }
}

#[derive(Debug, PartialEq)]
struct Tls {
    cert_file: Option<String>,
    key_pem: Option<Secret>,
}

impl DecodeBlock for Tls {
    fn decode(d: &mut BlockDecoder<'_>) -> Self {
        let tls = Tls {
            cert_file: d.optional("cert_file"),
            key_pem: d.optional("key_pem"),
        };
        if tls.cert_file.is_none() && tls.key_pem.is_none() {
            d.error("tls needs cert_file or key_pem");
        }
        tls
    }
}

#[derive(Debug, PartialEq)]
struct Receive {
    http: Option<Http>,
    forward_to: Vec<Capsule>,
}

impl DecodeBlock for Receive {
    fn decode(d: &mut BlockDecoder<'_>) -> Self {
        Receive {
            http: d.block("http"),
            forward_to: d.required("forward_to").unwrap_or_default(),
        }
    }
}

#[derive(Debug, PartialEq)]
struct Endpoint {
    url: String,
    headers: BTreeMap<String, String>,
    remote_timeout: Duration,
}

impl DecodeBlock for Endpoint {
    fn decode(d: &mut BlockDecoder<'_>) -> Self {
        Endpoint {
            url: d.required("url").unwrap_or_default(),
            headers: d.attr("headers", BTreeMap::new()),
            remote_timeout: d.attr("remote_timeout", Duration::from_secs(10)),
        }
    }
}

#[derive(Debug, PartialEq)]
struct Write {
    endpoints: Vec<Endpoint>,
    external_labels: BTreeMap<String, String>,
}

impl DecodeBlock for Write {
    fn decode(d: &mut BlockDecoder<'_>) -> Self {
        Write {
            endpoints: d.blocks("endpoint"),
            external_labels: d.attr("external_labels", BTreeMap::new()),
        }
    }
}

fn receiver(id: &str) -> Value {
    Value::Capsule(Capsule::new("ProfilesReceiver", id, ()))
}

fn component_scope() -> BTreeMap<String, Value> {
    let exports = |id: &str| -> Value {
        [("receiver".to_string(), receiver(id))]
            .into_iter()
            .collect()
    };
    let write: Value = [
        ("staging".to_string(), exports("pyroscope.write.staging")),
        (
            "production".to_string(),
            exports("pyroscope.write.production"),
        ),
    ]
    .into_iter()
    .collect();
    let pyroscope: Value = [("write".to_string(), write)].into_iter().collect();
    BTreeMap::from([("pyroscope".to_string(), pyroscope)])
}

/// A diagnostic as `(line, column, message, help)`.
type Located = (usize, usize, String, Option<String>);

/// Decodes the first block of `text` as `T`.
fn decode_text<T: DecodeBlock>(text: &str) -> (T, Vec<Located>) {
    let mut map = SourceMap::new();
    let file = map.add("test.alloy", text);
    let (parsed, syntax_errors) = parse(&map, file);
    assert!(syntax_errors.is_empty(), "{syntax_errors:?}");
    let Some(Stmt::Block(block)) = parsed.body.stmts.first() else {
        panic!("block expected")
    };
    let mut diags = Vec::new();
    let decoded = decode::<T>(
        &block.body,
        block.header_span(),
        &component_scope(),
        &mut diags,
    );
    diags.sort_by_key(|d| d.span.start);
    let located = diags
        .into_iter()
        .map(|d| {
            let (_, line, col) = map.line_col(d.span);
            (line, col, d.message, d.help)
        })
        .collect();
    (decoded, located)
}

fn messages<T: DecodeBlock>(text: &str) -> Vec<(usize, usize, String)> {
    decode_text::<T>(text)
        .1
        .into_iter()
        .map(|(line, col, message, _)| (line, col, message))
        .collect()
}

fn at(line: usize, col: usize, message: &str) -> (usize, usize, String) {
    (line, col, message.to_string())
}

#[test]
fn decodes_the_documented_example() {
    let text = r#"pyroscope.receive_http "default" {
  http {
    listen_address = "0.0.0.0"
    listen_port = 9999
  }
  forward_to = [pyroscope.write.staging.receiver, pyroscope.write.production.receiver]
}"#;
    let (receive, diags) = decode_text::<Receive>(text);
    assert!(diags.is_empty(), "{diags:?}");
    let http = receive.http.expect("http block");
    assert_eq!(
        (http.listen_address.as_str(), http.listen_port),
        ("0.0.0.0", 9999)
    );
    assert_eq!(http.idle_timeout, Duration::from_secs(120));
    let ids: Vec<&str> = receive.forward_to.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(
        ids,
        ["pyroscope.write.staging", "pyroscope.write.production"]
    );
}

#[test]
fn repeatable_blocks_each_get_their_own_defaults() {
    let text = r#"pyroscope.write "w" {
  endpoint {
    url = "http://a:4040"
    remote_timeout = "3s"
    headers = { "X-Scope-OrgID" = "squad-1", }
  }
  endpoint {
    url = "http://b:4040"
  }
  external_labels = { env = "prod", port = 1 }
}"#;
    let (write, diags) = decode_text::<Write>(text);
    assert!(diags.is_empty(), "{diags:?}");
    assert_eq!(write.endpoints.len(), 2);
    assert_eq!(write.endpoints[0].remote_timeout, Duration::from_secs(3));
    assert_eq!(write.endpoints[0].headers["X-Scope-OrgID"], "squad-1");
    assert_eq!(write.endpoints[1].remote_timeout, Duration::from_secs(10));
    assert!(write.endpoints[1].headers.is_empty());
    assert_eq!(
        write.external_labels["port"], "1",
        "numbers convert to strings"
    );
}

#[test]
fn strings_convert_to_numbers_and_absent_or_null_means_default() {
    let (receive, diags) = decode_text::<Receive>(
        "r {\n  http {\n    listen_port = \"9999\"\n    listen_address = null\n  }\n  forward_to = []\n}",
    );
    assert!(diags.is_empty(), "{diags:?}");
    let http = receive.http.expect("http block");
    assert_eq!((http.listen_port, http.listen_address.as_str()), (9999, ""));
}

#[test]
fn missing_required_attribute_points_at_the_block_header() {
    assert_eq!(
        messages::<Receive>("pyroscope.receive_http \"x\" {\n}\n"),
        [at(1, 1, "missing required attribute \"forward_to\"")]
    );
    let text = "pyroscope.write \"w\" {\n  endpoint {\n  }\n}\n";
    assert_eq!(
        messages::<Write>(text),
        [at(2, 3, "missing required attribute \"url\"")]
    );
}

#[test]
fn wrong_types_name_the_attribute_and_point_at_the_value() {
    let text = "r {\n  forward_to = []\n  http {\n    listen_port = \"abc\"\n  }\n}\n";
    let (receive, diags) = decode_text::<Receive>(text);
    assert_eq!(
        receive.http.map(|h| h.listen_port),
        Some(8080),
        "falls back to the default"
    );
    assert_eq!(
        diags[0].2,
        "attribute \"listen_port\": expected number, got string \"abc\""
    );
    assert_eq!((diags[0].0, diags[0].1), (4, 19));
    let text = "r {\n  forward_to = [\"not a receiver\"]\n}\n";
    assert_eq!(
        messages::<Receive>(text),
        [at(
            2,
            16,
            "attribute \"forward_to\": element 0: expected capsule, got string \"not a receiver\""
        )]
    );
}

#[test]
fn invalid_values_out_of_range_and_bad_durations() {
    let text = "r {\n  forward_to = []\n  http {\n    listen_port = 70000\n    server_idle_timeout = \"5 minutes\"\n  }\n}\n";
    assert_eq!(
        messages::<Receive>(text),
        [
            at(
                4,
                19,
                "attribute \"listen_port\": value 70000 is out of range (0 to 65535)"
            ),
            at(
                5,
                27,
                "attribute \"server_idle_timeout\": invalid duration \"5 minutes\": unknown unit \" minutes\" (use ns, us, ms, s, m or h)"
            ),
        ]
    );
}

#[test]
fn duplicate_attributes_are_reported_on_the_repeat() {
    let text = "r {\n  forward_to = []\n  forward_to = []\n}\n";
    assert_eq!(
        messages::<Receive>(text),
        [at(3, 3, "attribute \"forward_to\" may only be given once")]
    );
}

#[test]
fn single_blocks_may_only_be_given_once() {
    let text = "r {\n  forward_to = []\n  http {\n  }\n  http {\n  }\n}\n";
    assert_eq!(
        messages::<Receive>(text),
        [at(5, 3, "block \"http\" may only be given once")]
    );
}

#[test]
fn unknown_names_get_did_you_mean_help() {
    let text = "r {\n  forward_to = []\n  forwardto = []\n  htp {\n  }\n  zzz = 1\n}\n";
    let (_, diags) = decode_text::<Receive>(text);
    let expected = [
        (
            3,
            3,
            "unknown attribute \"forwardto\"".to_string(),
            Some("did you mean \"forward_to\"?".to_string()),
        ),
        (
            4,
            3,
            "unknown block \"htp\"".to_string(),
            Some("did you mean \"http\"?".to_string()),
        ),
        (6, 3, "unknown attribute \"zzz\"".to_string(), None),
    ];
    assert_eq!(diags, expected);
}

#[test]
fn attributes_and_blocks_are_not_interchangeable() {
    let text = "r {\n  http = {}\n  forward_to {\n  }\n}\n";
    let (_, diags) = decode_text::<Receive>(text);
    // The missing-attribute error at the header comes from the same mistake.
    assert_eq!(diags[0].2, "missing required attribute \"forward_to\"");
    assert_eq!(diags[1].2, "\"http\" is a block, not an attribute");
    assert_eq!(diags[1].3.as_deref(), Some("write it as `http { … }`"));
    assert_eq!(diags[2].2, "\"forward_to\" is an attribute, not a block");
}

#[test]
fn nested_blocks_take_no_labels() {
    let text = "r {\n  forward_to = []\n  http \"x\" {\n  }\n}\n";
    assert_eq!(
        messages::<Receive>(text),
        [at(3, 8, "block \"http\" does not take a label")]
    );
}

#[test]
fn custom_errors_and_nested_validation() {
    let text = "r {\n  forward_to = []\n  http {\n    tls {\n    }\n  }\n}\n";
    assert_eq!(
        messages::<Receive>(text),
        [at(4, 5, "tls needs cert_file or key_pem")]
    );
    let text = "r {\n  forward_to = []\n  http {\n    tls {\n      key_pem = \"-----BEGIN\"\n    }\n  }\n}\n";
    let (receive, diags) = decode_text::<Receive>(text);
    assert!(diags.is_empty(), "{diags:?}");
    let key = receive
        .http
        .and_then(|h| h.tls)
        .and_then(|t| t.key_pem)
        .expect("key");
    assert_eq!(key.expose(), "-----BEGIN");
}

#[test]
fn evaluation_errors_are_reported() {
    let text = "r {\n  forward_to = [pyroscope.write.nope.receiver]\n}\n";
    assert_eq!(
        messages::<Receive>(text),
        [at(
            2,
            33,
            "field \"nope\" does not exist in \"pyroscope.write\""
        )]
    );
}

#[test]
fn attr_span_and_error_at() {
    struct Pair;
    impl DecodeBlock for Pair {
        fn decode(d: &mut BlockDecoder<'_>) -> Self {
            let a: Option<String> = d.optional("a");
            let b: Option<String> = d.optional("b");
            if let (Some(_), Some(_), Some(span)) = (a, b, d.attr_span("b")) {
                d.error_at(span, "a and b are mutually exclusive");
            }
            assert_eq!(d.attr_span("missing"), None);
            assert_eq!(d.header_span().start, 0);
            Pair
        }
    }
    assert_eq!(
        messages::<Pair>("p {\n  a = \"1\"\n  b = \"2\"\n}\n"),
        [at(3, 7, "a and b are mutually exclusive")]
    );
}
