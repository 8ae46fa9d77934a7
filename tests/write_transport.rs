//! `pyroscope.write` HTTP client settings against real backends:
//! authentication (incl. an OAuth2 token endpoint), TLS with a test CA and
//! client certificates, HTTP versions, and proxies.

mod write_support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::Version;
use pyroscope_relay::codec::Code;
use pyroscope_relay::write::{
    Authorization, BasicAuth, EndpointConfig, OAuth2Config, Secret, TlsConfig, TlsVersion,
    WriteError,
};
use write_support::*;

fn secret(s: &str) -> Option<Secret> {
    Some(Secret::new(s))
}

/// Pushes one profile through an endpoint; returns the backend's view.
async fn push_through(e: EndpointConfig, backend: &Backend) -> Recorded {
    let h = Harness::start(args(vec![e]));
    h.receiver.append(fanout_profile()).await.unwrap();
    backend.requests().pop().unwrap()
}

#[tokio::test]
async fn static_auth_methods() {
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, content: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, content).unwrap();
        p.to_str().unwrap().to_owned()
    };
    let backend = Backend::ok().await;
    type Configure = Box<dyn Fn(&mut EndpointConfig)>;
    let cases: Vec<(Configure, &str)> = vec![
        (
            Box::new(|e| {
                e.http_client.basic_auth = Some(BasicAuth {
                    username: "user".into(),
                    password: secret("pass"),
                    password_file: String::new(),
                })
            }),
            "Basic dXNlcjpwYXNz",
        ),
        (
            Box::new({
                let f = file("password", "pass\n");
                move |e| {
                    e.http_client.basic_auth = Some(BasicAuth {
                        username: "user".into(),
                        password: None,
                        password_file: f.clone(),
                    })
                }
            }),
            "Basic dXNlcjpwYXNz",
        ),
        (
            Box::new(|e| e.http_client.bearer_token = secret("tok")),
            "Bearer tok",
        ),
        (
            Box::new({
                let f = file("token", " filetok \n");
                move |e| e.http_client.bearer_token_file = f.clone()
            }),
            "Bearer filetok",
        ),
        (
            Box::new(|e| {
                e.http_client.authorization = Some(Authorization {
                    r#type: "Token".into(),
                    credentials: secret("abc"),
                    credentials_file: String::new(),
                })
            }),
            "Token abc",
        ),
        (
            Box::new({
                let f = file("creds", "fromfile");
                move |e| {
                    e.http_client.authorization = Some(Authorization {
                        credentials_file: f.clone(),
                        ..Default::default()
                    })
                }
            }),
            "Bearer fromfile",
        ),
    ];
    for (configure, expected) in cases {
        let mut e = endpoint(&backend.url, 1);
        configure(&mut e);
        let r = push_through(e, &backend).await;
        assert_eq!(r.header("authorization"), Some(expected));
    }
}

#[tokio::test]
async fn auth_precedence_and_http_headers() {
    let backend = Backend::ok().await;
    // Configured auth replaces a forwarded Authorization.
    let mut e = endpoint(&backend.url, 1);
    e.http_client.bearer_token = secret("configured");
    e.http_client
        .http_headers
        .insert("X-Multi".into(), vec![Secret::new("1"), Secret::new("2")]);
    let h = Harness::start(args(vec![e]));
    let mut profile = fanout_profile();
    profile.forwarded_headers = vec![(
        http::header::AUTHORIZATION,
        http::HeaderValue::from_static("Bearer client"),
    )]
    .into();
    h.receiver.append(profile).await.unwrap();
    let r = backend.requests().pop().unwrap();
    assert_eq!(r.header_all("authorization"), ["Bearer configured"]);
    assert_eq!(r.header_all("x-multi"), ["1", "2"]);
    // An Authorization in `headers` wins over configured auth (Prometheus).
    let mut e = endpoint(&backend.url, 1);
    e.http_client.bearer_token = secret("configured");
    e.headers.insert("Authorization".into(), "Custom x".into());
    let r = push_through(e, &backend).await;
    assert_eq!(r.header_all("authorization"), ["Custom x"]);
}

#[tokio::test]
async fn unreadable_credentials_file_fails_without_retry() {
    let backend = Backend::ok().await;
    let mut e = endpoint(&backend.url, 3);
    e.http_client.bearer_token_file = "/nonexistent/token".into();
    let h = Harness::start(args(vec![e]));
    let err = h.receiver.append(fanout_profile()).await.unwrap_err();
    assert!(
        err.message.contains("unable to read credentials file"),
        "{}",
        err.message
    );
    assert_eq!(err.code, Code::Internal);
    assert_eq!(backend.count(), 0);
}

fn oauth_endpoint(backend: &Backend, token_url: &str) -> EndpointConfig {
    let mut e = endpoint(&backend.url, 1);
    e.http_client.oauth2 = Some(OAuth2Config {
        client_id: "my client".into(),
        client_secret: secret("s3cret"),
        token_url: token_url.to_owned(),
        scopes: vec!["a".into(), "b".into()],
        endpoint_params: [("audience".to_owned(), "pyro".to_owned())].into(),
        ..Default::default()
    });
    e
}

#[tokio::test]
async fn oauth2_token_is_cached_and_refreshed_after_expiry() {
    let tokens = Backend::start(|i, _| {
        let body = format!(r#"{{"access_token":"t{i}","token_type":"bearer","expires_in":11}}"#);
        Reply::status(200, &body).header("content-type", "application/json")
    })
    .await;
    let backend = Backend::ok().await;
    let h = Harness::start(args(vec![oauth_endpoint(
        &backend,
        &format!("{}/token", tokens.url),
    )]));
    h.receiver.append(fanout_profile()).await.unwrap();
    h.receiver.append(fanout_profile()).await.unwrap();
    assert_eq!(tokens.count(), 1);
    // expires_in 11s minus the 10s safety margin: stale after 1s.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    h.receiver.append(fanout_profile()).await.unwrap();
    assert_eq!(tokens.count(), 2);
    let seen: Vec<_> = backend
        .requests()
        .iter()
        .map(|r| r.header("authorization").unwrap().to_owned())
        .collect();
    assert_eq!(seen, ["Bearer t0", "Bearer t0", "Bearer t1"]);

    let t = &tokens.requests()[0];
    assert_eq!((t.method.as_str(), t.path.as_str()), ("POST", "/token"));
    assert_eq!(
        t.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        std::str::from_utf8(&t.body).unwrap(),
        "audience=pyro&grant_type=client_credentials&scope=a+b"
    );
    // Basic base64("my+client:s3cret"), the id query-escaped as x/oauth2 does.
    assert_eq!(
        t.header("authorization"),
        Some("Basic bXkrY2xpZW50OnMzY3JldA==")
    );
}

#[tokio::test]
async fn oauth2_falls_back_to_credentials_in_the_body() {
    let tokens = Backend::start(|_, r| {
        if r.header("authorization").is_some() {
            return Reply::status(401, r#"{"error":"invalid_client"}"#);
        }
        Reply::status(200, r#"{"access_token":"body-tok"}"#)
    })
    .await;
    let backend = Backend::start(|i, _| {
        if i == 1 {
            Reply::status(401, "")
        } else {
            Reply::ok()
        }
    })
    .await;
    let h = Harness::start(args(vec![oauth_endpoint(&backend, &tokens.url)]));
    h.receiver.append(fanout_profile()).await.unwrap();
    let body = std::str::from_utf8(&tokens.requests()[1].body)
        .unwrap()
        .to_owned();
    assert!(
        body.contains("client_id=my+client") && body.contains("client_secret=s3cret"),
        "{body}"
    );
    assert_eq!(
        backend.requests()[0].header("authorization"),
        Some("Bearer body-tok")
    );
    // A 401 from the backend drops the cached token; the next fetch goes
    // straight to body credentials.
    let err = h.receiver.append(fanout_profile()).await.unwrap_err();
    assert_eq!(err.http_status, Some(401));
    h.receiver.append(fanout_profile()).await.unwrap();
    assert_eq!(tokens.count(), 3);
    assert!(tokens.requests()[2].header("authorization").is_none());
}

#[tokio::test]
async fn oauth2_token_endpoint_failure_is_retried() {
    let tokens = Backend::start(|i, _| match i {
        0 => Reply::status(500, "oops"),
        _ => Reply::status(200, r#"{"access_token":"x"}"#),
    })
    .await;
    let backend = Backend::ok().await;
    let mut e = oauth_endpoint(&backend, &tokens.url);
    e.max_backoff_retries = 2;
    let h = Harness::start(args(vec![e]));
    h.receiver.append(fanout_profile()).await.unwrap();
    assert_eq!(tokens.count(), 2);
    assert_eq!(backend.count(), 1);
}

fn tls_endpoint(url: &str, tls: TlsConfig) -> EndpointConfig {
    let mut e = endpoint(url, 1);
    e.http_client.tls_config = tls;
    e
}

#[tokio::test]
async fn tls_with_a_test_ca_negotiates_http2() {
    let pki = Pki::new();
    let backend = Backend::start_tls(pki.server_config(false), |_, _| Reply::ok()).await;
    let ca = TlsConfig {
        ca_pem: pki.ca_pem.clone(),
        ..Default::default()
    };
    let r = push_through(tls_endpoint(&backend.url, ca.clone()), &backend).await;
    assert_eq!(r.version, Version::HTTP_2);
    assert!(
        r.header("user-agent")
            .unwrap()
            .starts_with("pyroscope-relay/")
    );
    // enable_http2 = false stays on HTTP/1.1.
    let mut e = tls_endpoint(&backend.url, ca.clone());
    e.http_client.enable_http2 = false;
    assert_eq!(push_through(e, &backend).await.version, Version::HTTP_11);
    // TLS 1.3 only, and the CA from a file.
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &pki.ca_pem).unwrap();
    let tls = TlsConfig {
        ca_file: ca_file.to_str().unwrap().into(),
        min_version: Some(TlsVersion::Tls13),
        ..Default::default()
    };
    push_through(tls_endpoint(&backend.url, tls), &backend).await;
    // Plain http stays HTTP/1.1 even with enable_http2.
    let plain = Backend::ok().await;
    assert_eq!(
        push_through(endpoint(&plain.url, 1), &plain).await.version,
        Version::HTTP_11
    );
}

#[tokio::test]
async fn tls_verification_failures_and_overrides() {
    let pki = Pki::new();
    let backend = Backend::start_tls(pki.server_config(false), |_, _| Reply::ok()).await;
    // Unknown issuer without the CA.
    let h = Harness::start(args(vec![endpoint(&backend.url, 1)]));
    let err = h.receiver.append(fanout_profile()).await.unwrap_err();
    assert_eq!(err.code, Code::Unavailable);
    assert!(
        err.message.to_lowercase().contains("certificate"),
        "{}",
        err.message
    );
    assert_eq!(backend.count(), 0);
    // insecure_skip_verify accepts it.
    let insecure = TlsConfig {
        insecure_skip_verify: true,
        ..Default::default()
    };
    push_through(tls_endpoint(&backend.url, insecure), &backend).await;
    // By IP the name does not match, unless server_name says which to expect.
    let by_ip = format!("https://127.0.0.1:{}", backend.addr.port());
    let h = Harness::start(args(vec![tls_endpoint(
        &by_ip,
        TlsConfig {
            ca_pem: pki.ca_pem.clone(),
            ..Default::default()
        },
    )]));
    assert!(h.receiver.append(fanout_profile()).await.is_err());
    let named = TlsConfig {
        ca_pem: pki.ca_pem.clone(),
        server_name: "backend.test".into(),
        ..Default::default()
    };
    push_through(tls_endpoint(&by_ip, named), &backend).await;
}

#[tokio::test]
async fn tls_client_certificate() {
    let pki = Pki::new();
    let backend = Backend::start_tls(pki.server_config(true), |_, _| Reply::ok()).await;
    let without = TlsConfig {
        ca_pem: pki.ca_pem.clone(),
        ..Default::default()
    };
    let h = Harness::start(args(vec![tls_endpoint(&backend.url, without.clone())]));
    assert!(h.receiver.append(fanout_profile()).await.is_err());
    assert_eq!(backend.count(), 0);
    let inline = TlsConfig {
        cert_pem: pki.client_cert_pem.clone(),
        key_pem: secret(&pki.client_key_pem),
        ..without.clone()
    };
    push_through(tls_endpoint(&backend.url, inline), &backend).await;
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
    std::fs::write(&cert, &pki.client_cert_pem).unwrap();
    std::fs::write(&key, &pki.client_key_pem).unwrap();
    let files = TlsConfig {
        cert_file: cert.to_str().unwrap().into(),
        key_file: key.to_str().unwrap().into(),
        ..without
    };
    push_through(tls_endpoint(&backend.url, files), &backend).await;
    assert_eq!(backend.count(), 2);
}

#[test]
fn build_errors_are_actionable() {
    let start = |tls: TlsConfig| {
        Harness::try_start(args(vec![tls_endpoint("https://h", tls)]))
            .err()
            .unwrap()
    };
    let err = start(TlsConfig {
        ca_file: "/nonexistent/ca.pem".into(),
        ..Default::default()
    });
    assert!(matches!(err, WriteError::ReadFile { .. }));
    assert_eq!(
        err.to_string(),
        "endpoint https://h: cannot read tls_config.ca_file \"/nonexistent/ca.pem\": No such file or directory (os error 2)"
    );
    let err = start(TlsConfig {
        ca_pem: "not a pem".into(),
        ..Default::default()
    });
    assert!(
        err.to_string()
            .contains("tls_config.ca_pem: no PEM \"CERTIFICATE\" block found"),
        "{err}"
    );
    let pki = Pki::new();
    let err = start(TlsConfig {
        cert_pem: pki.client_cert_pem.clone(),
        key_pem: secret("garbage"),
        ..Default::default()
    });
    assert!(
        err.to_string()
            .contains("tls_config.key_pem: no usable private key"),
        "{err}"
    );
    let mut e = endpoint("http://h", 1);
    e.http_client.proxy.proxy_url = "::not a url".into();
    let err = Harness::try_start(args(vec![e])).err().unwrap();
    assert!(matches!(err, WriteError::BadProxy { .. }), "{err}");
    let mut e = endpoint("http://h", 1);
    e.http_client.bearer_token = secret("a");
    e.http_client.basic_auth = Some(BasicAuth::default());
    let err = Harness::try_start(args(vec![e])).err().unwrap();
    assert_eq!(
        err.to_string(),
        "endpoint http://h: at most one of basic_auth, authorization, oauth2, bearer_token & bearer_token_file must be configured"
    );
}

#[tokio::test]
async fn proxy_url_for_http_and_https() {
    let proxy = Proxy::start().await;
    let backend = Backend::ok().await;
    let mut e = endpoint(&backend.url, 1);
    e.http_client.proxy.proxy_url = proxy.url.clone();
    e.http_client
        .proxy
        .proxy_connect_header
        .insert("X-Proxy-Token".into(), vec![Secret::new("abc")]);
    push_through(e, &backend).await;
    let heads = proxy.heads();
    assert_eq!(heads.len(), 1);
    let expected = format!(
        "POST {}/push.v1.PusherService/Push HTTP/1.1\r\n",
        backend.url
    );
    assert!(heads[0].starts_with(&expected), "{}", heads[0]);
    assert!(
        heads[0].to_lowercase().contains("x-proxy-token: abc"),
        "{}",
        heads[0]
    );

    let pki = Pki::new();
    let tls_backend = Backend::start_tls(pki.server_config(false), |_, _| Reply::ok()).await;
    let mut e = tls_endpoint(
        &tls_backend.url,
        TlsConfig {
            ca_pem: pki.ca_pem.clone(),
            ..Default::default()
        },
    );
    e.http_client.proxy.proxy_url = proxy.url.clone();
    e.http_client
        .proxy
        .proxy_connect_header
        .insert("X-Proxy-Token".into(), vec![Secret::new("abc")]);
    let r = push_through(e, &tls_backend).await;
    assert_eq!(r.version, Version::HTTP_2);
    let heads = proxy.heads();
    let connect = format!("CONNECT localhost:{} HTTP/1.1\r\n", tls_backend.addr.port());
    assert!(heads[1].starts_with(&connect), "{}", heads[1]);
    assert!(
        heads[1].to_lowercase().contains("x-proxy-token: abc"),
        "{}",
        heads[1]
    );
}

#[tokio::test]
async fn no_proxy_bypasses_the_proxy() {
    let proxy = Proxy::start().await;
    let backend = Backend::ok().await;
    let mut e = endpoint(&backend.url, 1);
    e.http_client.proxy.proxy_url = proxy.url.clone();
    e.http_client.proxy.no_proxy = "127.0.0.1".into();
    push_through(e, &backend).await;
    assert!(proxy.heads().is_empty());
    assert_eq!(backend.count(), 1);
}

#[tokio::test]
async fn redirects_follow_or_fail() {
    let target = Backend::ok().await;
    let location = format!("{}/push.v1.PusherService/Push", target.url);
    let seen = Arc::new(Mutex::new(0));
    let s = seen.clone();
    let redirecting = Backend::start(move |_, _| {
        *s.lock().unwrap() += 1;
        Reply::status(307, "").header("location", &location)
    })
    .await;
    push_through(endpoint(&redirecting.url, 1), &target).await;
    assert_eq!(
        &target.requests()[0].body[..],
        &redirecting.requests()[0].body[..]
    );
    let mut e = endpoint(&redirecting.url, 3);
    e.http_client.follow_redirects = false;
    let h = Harness::start(args(vec![e]));
    let err = h.receiver.append(fanout_profile()).await.unwrap_err();
    assert_eq!(err.http_status, Some(307));
    assert_eq!(*seen.lock().unwrap(), 2);
}

#[tokio::test]
async fn url_credentials_become_basic_auth_unless_auth_is_configured() {
    let backend = Backend::ok().await;
    let with_user = backend.url.replacen("http://", "http://us%65r:p%40ss@", 1);
    let r = push_through(endpoint(&with_user, 1), &backend).await;
    // base64("user:p@ss"): percent-decoded, as Go's client sends it.
    assert_eq!(r.header("authorization"), Some("Basic dXNlcjpwQHNz"));
    assert!(r.header("host").unwrap().starts_with("127.0.0.1:"));
    let mut e = endpoint(&with_user, 1);
    e.http_client.bearer_token = secret("tok");
    let r = push_through(e, &backend).await;
    assert_eq!(r.header("authorization"), Some("Bearer tok"));
}

#[tokio::test]
async fn oauth2_token_requests_use_the_oauth2_proxy_and_tls() {
    let pki = Pki::new();
    let tokens = Backend::start_tls(pki.server_config(false), |_, _| {
        Reply::status(200, r#"{"access_token":"via-proxy"}"#)
    })
    .await;
    let proxy = Proxy::start().await;
    let backend = Backend::ok().await;
    let mut e = oauth_endpoint(&backend, &format!("{}/token", tokens.url));
    let oauth2 = e.http_client.oauth2.as_mut().unwrap();
    oauth2.tls_config.ca_pem = pki.ca_pem.clone();
    oauth2.proxy.proxy_url = proxy.url.clone();
    oauth2
        .proxy
        .proxy_connect_header
        .insert("X-Token-Proxy".into(), vec![Secret::new("yes")]);
    let r = push_through(e, &backend).await;
    assert_eq!(r.header("authorization"), Some("Bearer via-proxy"));
    let heads = proxy.heads();
    assert_eq!(heads.len(), 1, "only the token request is proxied");
    let connect = format!("CONNECT localhost:{} HTTP/1.1\r\n", tokens.addr.port());
    assert!(heads[0].starts_with(&connect), "{}", heads[0]);
    assert!(heads[0].to_lowercase().contains("x-token-proxy: yes"));
}

#[tokio::test]
async fn redirect_to_another_host_drops_credentials() {
    let target = Backend::ok().await;
    // Same port, another host name: only the name decides.
    let location = target.url.replacen("127.0.0.1", "localhost", 1);
    let location = format!("{location}/push.v1.PusherService/Push");
    let redirecting =
        Backend::start(move |_, _| Reply::status(308, "").header("location", &location)).await;
    let mut e = endpoint(&redirecting.url, 1);
    e.http_client.bearer_token = secret("tok");
    push_through(e, &target).await;
    assert_eq!(
        redirecting.requests()[0].header("authorization"),
        Some("Bearer tok")
    );
    let followed = &target.requests()[0];
    assert_eq!(followed.header("authorization"), None);
    assert_eq!(followed.body, redirecting.requests()[0].body);
}

#[tokio::test]
async fn redirect_loops_stop_after_ten_hops() {
    let own = Arc::new(Mutex::new(String::new()));
    let url = own.clone();
    let looping = Backend::start(move |_, _| {
        let location = format!("{}/push.v1.PusherService/Push", url.lock().unwrap());
        Reply::status(307, "").header("location", &location)
    })
    .await;
    *own.lock().unwrap() = looping.url.clone();
    let h = Harness::start(args(vec![endpoint(&looping.url, 1)]));
    let err = h.receiver.append(fanout_profile()).await.unwrap_err();
    assert!(
        err.message.contains("stopped after 10 redirects"),
        "{}",
        err.message
    );
    assert_eq!(looping.count(), 11);
}
