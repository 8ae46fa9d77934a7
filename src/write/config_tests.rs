//! Decoding `pyroscope.write` blocks: Alloy's Test_Unmarshal_Config and
//! TestBadAlloyConfig, and the HTTP client settings.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::config::{SourceMap, Stmt, Value, decode, parse};

use super::{Arguments, TlsVersion};

/// Decodes a component body; returns the arguments and the diagnostics.
fn decode_args(body: &str) -> (Arguments, Vec<String>) {
    let text = format!("pyroscope.write \"default\" {{\n{body}\n}}");
    let mut map = SourceMap::new();
    let file = map.add("test.alloy", &text);
    let (parsed, syntax_errors) = parse(&map, file);
    assert!(syntax_errors.is_empty(), "{syntax_errors:?}");
    let Some(Stmt::Block(block)) = parsed.body.stmts.first() else {
        panic!("block expected")
    };
    let mut diags = Vec::new();
    let scope: BTreeMap<String, Value> = BTreeMap::new();
    let args = decode::<Arguments>(&block.body, block.header_span(), &scope, &mut diags);
    (args, diags.into_iter().map(|d| d.message).collect())
}

#[test]
fn unmarshal_config() {
    let (args, errors) = decode_args(
        r#"
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
    "foo" = "bar",
  }"#,
    );
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(
        args.external_labels,
        BTreeMap::from([("foo".into(), "bar".into())])
    );
    assert_eq!(args.endpoints.len(), 2);
    let (a, b) = (&args.endpoints[0], &args.endpoints[1]);
    assert_eq!(a.url, "http://localhost:4100");
    assert_eq!(a.remote_timeout, Duration::from_secs(10));
    assert_eq!(a.min_backoff_period, Duration::from_millis(500));
    assert_eq!(a.max_backoff_period, Duration::from_secs(300));
    assert_eq!(a.max_backoff_retries, 10);
    assert!(a.retry_on_http_429);
    assert!(a.http_client.follow_redirects && a.http_client.enable_http2);
    assert_eq!(b.remote_timeout, Duration::from_secs(5));
    assert_eq!(b.min_backoff_period, Duration::from_secs(1));
    assert_eq!(b.max_backoff_period, Duration::from_secs(10));
    assert_eq!(b.max_backoff_retries, 10);
}

#[test]
fn bad_alloy_config() {
    let (_, errors) = decode_args(
        r#"
  endpoint {
    url = "http://localhost:4100"
    remote_timeout = "10s"
    bearer_token = "token"
    bearer_token_file = "/path/to/file.token"
  }
  external_labels = {
    "foo" = "bar",
  }"#,
    );
    assert_eq!(
        errors,
        [
            "at most one of basic_auth, authorization, oauth2, bearer_token & bearer_token_file must be configured"
        ]
    );
}

#[test]
fn no_endpoints_and_tracing_block() {
    let (args, errors) = decode_args("tracing {\n jaeger_propagator = false\n}");
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(args, Arguments::default());
}

#[test]
fn http_client_settings() {
    let (args, errors) = decode_args(
        r#"
  endpoint {
    url = "https://pyro:4040/prefix"
    name = "primary"
    headers = { "X-Scope-OrgID" = "squad-1" }
    retry_on_http_429 = false
    follow_redirects = false
    enable_http2 = false
    proxy_url = "http://proxy:3128"
    no_proxy = "10.0.0.0/8"
    proxy_connect_header = { "X-Proxy" = ["a", "b"] }
    http_headers = { "X-Key" = ["k"] }
    oauth2 {
      client_id = "id"
      client_secret = "s"
      token_url = "https://auth/token"
      scopes = ["a", "b"]
      endpoint_params = { audience = "pyro" }
    }
    tls_config {
      ca_pem = "CA"
      cert_file = "/c.pem"
      key_file = "/k.pem"
      server_name = "pyro.internal"
      insecure_skip_verify = true
      min_version = "TLS13"
    }
  }"#,
    );
    assert!(errors.is_empty(), "{errors:?}");
    let e = &args.endpoints[0];
    assert_eq!(e.name, "primary");
    assert_eq!(e.headers["X-Scope-OrgID"], "squad-1");
    assert!(!e.retry_on_http_429);
    let c = &e.http_client;
    assert!(!c.follow_redirects && !c.enable_http2);
    assert_eq!(c.proxy.proxy_url, "http://proxy:3128");
    assert_eq!(c.proxy.no_proxy, "10.0.0.0/8");
    assert_eq!(c.proxy.proxy_connect_header["X-Proxy"].len(), 2);
    assert_eq!(c.http_headers["X-Key"][0].expose(), "k");
    let o = c.oauth2.as_ref().unwrap();
    assert_eq!(o.client_secret.as_ref().unwrap().expose(), "s");
    assert_eq!(o.scopes, ["a", "b"]);
    assert_eq!(o.endpoint_params["audience"], "pyro");
    let t = &c.tls_config;
    assert_eq!(
        (t.ca_pem.as_str(), t.cert_file.as_str(), t.key_file.as_str()),
        ("CA", "/c.pem", "/k.pem")
    );
    assert_eq!(t.server_name, "pyro.internal");
    assert!(t.insecure_skip_verify);
    assert_eq!(t.min_version, Some(TlsVersion::Tls13));
    // Secrets stay out of Debug output.
    assert!(!format!("{args:?}").contains("\"s\""));
}

#[test]
fn auth_blocks() {
    let (args, errors) = decode_args(
        r#"
  endpoint {
    url = "http://a"
    basic_auth {
      username = "u"
      password_file = "/pw"
    }
  }
  endpoint {
    url = "http://b"
    authorization {
      credentials = "c"
    }
  }"#,
    );
    assert!(errors.is_empty(), "{errors:?}");
    let b = args.endpoints[0].http_client.basic_auth.as_ref().unwrap();
    assert_eq!(
        (b.username.as_str(), b.password_file.as_str()),
        ("u", "/pw")
    );
    let a = args.endpoints[1]
        .http_client
        .authorization
        .as_ref()
        .unwrap();
    assert_eq!(a.r#type, "Bearer");
    assert_eq!(a.credentials.as_ref().unwrap().expose(), "c");
}

#[test]
fn validation_diagnostics() {
    let errors = |body: &str| decode_args(&format!("endpoint {{\n{body}\n}}")).1;
    assert_eq!(
        errors(r#"remote_timeout = "1s""#),
        [r#"missing required attribute "url""#]
    );
    assert_eq!(
        errors("url = \"http://a\"\nmin_backoff_period = \"10s\"\nmax_backoff_period = \"1s\""),
        ["min_backoff_period (10s) must not be greater than max_backoff_period (1s)"]
    );
    assert_eq!(
        errors("url = \"ftp://a\""),
        [r#"url "ftp://a" must be http:// or https:// with a host"#]
    );
    assert_eq!(
        errors("url = \"http://a\"\ntls_config {\n min_version = \"TLS99\"\n}"),
        ["unknown TLS version: TLS99"]
    );
    assert_eq!(
        errors("url = \"http://a\"\ntls_config {\n cert_pem = \"x\"\n}"),
        [
            "exactly one of key_pem or key_file must be configured when a client certificate is configured"
        ]
    );
    assert_eq!(
        errors("url = \"http://a\"\nno_proxy = \"x\""),
        ["if no_proxy is configured, proxy_url must also be configured"]
    );
    let unknown = errors("url = \"http://a\"\nbogus = 1");
    assert_eq!(unknown.len(), 1);
    assert!(unknown[0].contains("bogus"), "{unknown:?}");
}

#[test]
fn oauth2_has_its_own_tls_and_proxy() {
    let (args, errors) = decode_args(
        r#"
  endpoint {
    url = "https://pyroscope:4040"
    oauth2 {
      client_id = "id"
      client_secret = "s"
      token_url = "https://idp/token"
      proxy_url = "http://proxy:3128"
      proxy_connect_header = { "X-A" = ["b"] }
      tls_config {
        ca_file = "/etc/idp-ca.pem"
        insecure_skip_verify = true
      }
    }
  }"#,
    );
    assert!(errors.is_empty(), "{errors:?}");
    let oauth2 = args.endpoints[0].http_client.oauth2.as_ref().unwrap();
    assert_eq!(oauth2.proxy.proxy_url, "http://proxy:3128");
    assert_eq!(oauth2.proxy.proxy_connect_header["X-A"][0].expose(), "b");
    assert_eq!(oauth2.tls_config.ca_file, "/etc/idp-ca.pem");
    assert!(oauth2.tls_config.insecure_skip_verify);
    // The endpoint's own proxy is untouched.
    assert!(args.endpoints[0].http_client.proxy.proxy_url.is_empty());

    let (args, _) = decode_args(
        r#"
  endpoint {
    url = "https://pyroscope:4040"
    oauth2 {
      client_id = "id"
      client_secret = "s"
      token_url = "https://idp/token"
      no_proxy = "idp"
    }
  }"#,
    );
    assert_eq!(
        args.endpoints[0].problems()[0],
        "oauth2: if no_proxy is configured, proxy_url must also be configured"
    );
}

#[test]
fn queue_block_defaults_and_settings() {
    use crate::storage::SyncPolicy;
    use crate::write::queue::{QueueArguments, WhenFull};

    let (args, errors) = decode_args("endpoint { url = \"http://h\" }\nqueue {}");
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(args.queue, Some(QueueArguments::default()));
    let (args, errors) = decode_args("endpoint { url = \"http://h\" }");
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(args.queue, None, "no block: synchronous, as Alloy");

    let (args, errors) = decode_args(
        r#"
  endpoint { url = "http://h" }
  queue {
    max_size        = "512MiB"
    max_age         = "2h"
    when_full       = "drop_oldest"
    sync            = "200ms"
    max_in_flight   = 2
    max_batch_bytes = "1MB"
    drain_timeout   = "45s"
  }"#,
    );
    assert!(errors.is_empty(), "{errors:?}");
    let q = args.queue.unwrap();
    assert_eq!(q.max_size, 512 << 20);
    assert_eq!(q.max_age, Duration::from_secs(7200));
    assert_eq!(q.when_full, WhenFull::DropOldest);
    assert_eq!(q.sync, SyncPolicy::Every(Duration::from_millis(200)));
    assert_eq!(q.max_in_flight, 2);
    assert_eq!(q.max_batch_bytes, 1_000_000);
    assert_eq!(q.drain_timeout, Duration::from_secs(45));

    let (_, errors) = decode_args(
        r#"
  endpoint { url = "http://h" }
  queue {
    max_size = 0
    when_full = "block"
    sync = "never"
    max_in_flight = 0
  }"#,
    );
    for wanted in ["max_size", "when_full", "sync must be", "max_in_flight"] {
        assert!(
            errors.iter().any(|e| e.contains(wanted)),
            "{wanted}: {errors:?}"
        );
    }
}
