//! TLS: Go's five client auth types, ALPN h2 / http/1.1, the lowest
//! version, certificate reloads and configuration errors. Certificates are
//! generated here with rcgen.

mod receive_support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use receive_support::*;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::TcpStream;

use pyroscope_relay::receive_http::{Arguments, ClientAuth, TlsConfig, TlsVersion};
use pyroscope_relay::runtime::HealthState;

/// A CA and what it signed.
struct Pki {
    ca_pem: String,
    server_cert: String,
    server_key: String,
    client_cert: String,
    client_key: String,
}

fn ca() -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

fn pki() -> Pki {
    let ca = ca();
    let server_key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&server_key, &ca)
        .unwrap();
    let client_key = KeyPair::generate().unwrap();
    let mut client_params = CertificateParams::new(vec!["client.example".to_owned()]).unwrap();
    client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client = client_params.signed_by(&client_key, &ca).unwrap();
    Pki {
        ca_pem: ca.pem(),
        server_cert: server.pem(),
        server_key: server_key.serialize_pem(),
        client_cert: client.pem(),
        client_key: client_key.serialize_pem(),
    }
}

fn tls_args(pki: &Pki, auth: ClientAuth) -> Arguments {
    let mut a = args(&[]);
    a.http.tls = Some(TlsConfig {
        cert_pem: pki.server_cert.clone(),
        key_pem: pki.server_key.clone(),
        client_ca_pem: if auth == ClientAuth::NoClientCert {
            String::new()
        } else {
            pki.ca_pem.clone()
        },
        client_auth_type: auth,
        ..TlsConfig::default()
    });
    a
}

/// How the test client connects.
struct Client<'a> {
    trust: &'a Pki,
    identity: Option<&'a Pki>,
    alpn: &'static [u8],
    tls12_only: bool,
}

impl Client<'_> {
    fn config(&self) -> rustls::ClientConfig {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let versions: &[&rustls::SupportedProtocolVersion] = if self.tls12_only {
            &[&rustls::version::TLS12]
        } else {
            &[&rustls::version::TLS13, &rustls::version::TLS12]
        };
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(self.trust.ca_pem.as_bytes()).unwrap())
            .unwrap();
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots);
        let mut config = match self.identity {
            None => builder.with_no_client_auth(),
            Some(id) => builder
                .with_client_auth_cert(
                    vec![CertificateDer::from_pem_slice(id.client_cert.as_bytes()).unwrap()],
                    PrivateKeyDer::from_pem_slice(id.client_key.as_bytes()).unwrap(),
                )
                .unwrap(),
        };
        config.alpn_protocols = vec![self.alpn.to_vec()];
        config
    }

    /// Handshakes and sends one `/ingest` request; `Err` if the server
    /// refused the connection at any point.
    async fn ingest(&self, addr: SocketAddr) -> Result<(StatusCode, Vec<u8>), String> {
        let connector = tokio_rustls::TlsConnector::from(Arc::new(self.config()));
        let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let name = ServerName::try_from("localhost").unwrap();
        let tls = connector
            .connect(name, tcp)
            .await
            .map_err(|e| e.to_string())?;
        let (_, session) = tls.get_ref();
        let alpn = session
            .alpn_protocol()
            .map(<[u8]>::to_vec)
            .unwrap_or_default();
        let server_cert = session.peer_certificates().unwrap()[0].to_vec();
        let io = TokioIo::new(tls);
        let request = post("/ingest?name=app", &[], full("profile"));
        let response = if alpn == b"h2" {
            let (mut sender, conn) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                    .await
                    .map_err(|e| e.to_string())?;
            tokio::spawn(conn);
            sender.send_request(request).await
        } else {
            let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
                .await
                .map_err(|e| e.to_string())?;
            tokio::spawn(conn);
            sender.send_request(request).await
        };
        let response = response.map_err(|e| e.to_string())?;
        assert_eq!(alpn, self.alpn, "negotiated protocol");
        Ok((read_reply(response).await.status, server_cert))
    }
}

#[tokio::test]
async fn client_auth_types_follow_go() {
    let trusted = pki();
    let untrusted = pki();
    // (auth, no cert, trusted cert, untrusted cert): whether each succeeds.
    let table = [
        (ClientAuth::NoClientCert, true, true, true),
        (ClientAuth::RequestClientCert, true, true, true),
        (ClientAuth::RequireAnyClientCert, false, true, true),
        (ClientAuth::VerifyClientCertIfGiven, true, true, false),
        (ClientAuth::RequireAndVerifyClientCert, false, true, false),
    ];
    for (auth, none_ok, trusted_ok, untrusted_ok) in table {
        let relay = Relay::start(tls_args(&trusted, auth)).await;
        assert!(relay.healthy(), "{auth:?}: {:?}", relay.health.state());
        for (identity, expected) in [
            (None, none_ok),
            (Some(&trusted), trusted_ok),
            (Some(&untrusted), untrusted_ok),
        ] {
            let client = Client {
                trust: &trusted,
                identity,
                alpn: b"http/1.1",
                tls12_only: false,
            };
            let result = client.ingest(relay.addr()).await;
            let which = identity.map_or("no cert", |p| {
                if std::ptr::eq(p, &trusted) {
                    "trusted cert"
                } else {
                    "untrusted cert"
                }
            });
            assert_eq!(
                result.as_ref().map(|(s, _)| *s).ok() == Some(StatusCode::OK),
                expected,
                "{auth:?} with {which}: {result:?}"
            );
        }
        relay.component.shutdown().await;
    }
}

#[tokio::test]
async fn alpn_offers_h2_and_http1_and_min_version_is_enforced() {
    let pki = pki();
    let mut a = tls_args(&pki, ClientAuth::NoClientCert);
    let relay = Relay::start(a.clone()).await;
    for alpn in [&b"h2"[..], b"http/1.1"] {
        let client = Client {
            trust: &pki,
            identity: None,
            alpn: if alpn == b"h2" { b"h2" } else { b"http/1.1" },
            tls12_only: false,
        };
        assert_eq!(client.ingest(relay.addr()).await.unwrap().0, StatusCode::OK);
    }
    let tls12 = Client {
        trust: &pki,
        identity: None,
        alpn: b"h2",
        tls12_only: true,
    };
    assert_eq!(tls12.ingest(relay.addr()).await.unwrap().0, StatusCode::OK);
    relay.component.shutdown().await;

    a.http.tls.as_mut().unwrap().min_version = TlsVersion::Tls13;
    let relay = Relay::start(a).await;
    assert!(tls12.ingest(relay.addr()).await.is_err(), "TLS 1.2 refused");
    let tls13 = Client {
        tls12_only: false,
        ..tls12
    };
    assert_eq!(tls13.ingest(relay.addr()).await.unwrap().0, StatusCode::OK);
}

#[tokio::test]
async fn certificate_files_are_reread_on_update() {
    let dir = tempfile::tempdir().unwrap();
    let cert_file = dir.path().join("cert.pem");
    let key_file = dir.path().join("key.pem");
    let first = pki();
    std::fs::write(&cert_file, &first.server_cert).unwrap();
    std::fs::write(&key_file, &first.server_key).unwrap();
    let mut a = args(&[]);
    a.http.tls = Some(TlsConfig {
        cert_file: cert_file.to_string_lossy().into_owned(),
        key_file: key_file.to_string_lossy().into_owned(),
        ..TlsConfig::default()
    });
    let mut relay = Relay::start(a.clone()).await;
    let client = |trust| Client {
        trust,
        identity: None,
        alpn: b"http/1.1",
        tls12_only: false,
    };
    let (_, seen) = client(&first).ingest(relay.addr()).await.unwrap();
    assert_eq!(
        seen,
        CertificateDer::from_pem_slice(first.server_cert.as_bytes())
            .unwrap()
            .to_vec()
    );

    let second = pki();
    std::fs::write(&cert_file, &second.server_cert).unwrap();
    std::fs::write(&key_file, &second.server_key).unwrap();
    let addr = relay.addr();
    relay.component.update(a.clone()).await;
    assert_eq!(relay.component.local_addr(), Some(addr), "same listener");
    let (_, seen) = client(&second).ingest(addr).await.unwrap();
    assert_eq!(
        seen,
        CertificateDer::from_pem_slice(second.server_cert.as_bytes())
            .unwrap()
            .to_vec()
    );

    // An unreadable file on update: unhealthy, still serving the old one.
    std::fs::remove_file(&key_file).unwrap();
    relay.component.update(a).await;
    let HealthState::Unhealthy(reason) = relay.health.state() else {
        panic!("expected unhealthy");
    };
    assert!(reason.contains("failed to read key_file"), "{reason}");
    assert!(client(&second).ingest(addr).await.is_ok());
}

#[tokio::test]
async fn invalid_tls_configuration_is_unhealthy_with_the_reason() {
    let other = pki();
    let pki = pki();
    let cases = [
        (
            TlsConfig {
                cert_pem: pki.server_cert.clone(),
                cert_file: "/etc/hosts".into(),
                key_pem: pki.server_key.clone(),
                ..TlsConfig::default()
            },
            "at most one of cert_pem and cert_file",
        ),
        (
            TlsConfig {
                cert_file: "/nonexistent/cert.pem".into(),
                key_pem: pki.server_key.clone(),
                ..TlsConfig::default()
            },
            "failed to read cert_file",
        ),
        (
            TlsConfig {
                cert_pem: pki.server_cert.clone(),
                key_pem: other.server_key.clone(),
                ..TlsConfig::default()
            },
            "do not fit",
        ),
        (
            TlsConfig {
                cert_pem: pki.server_cert.clone(),
                key_pem: pki.server_key.clone(),
                client_auth_type: ClientAuth::RequireAndVerifyClientCert,
                ..TlsConfig::default()
            },
            "needs client_ca_pem or client_ca_file",
        ),
    ];
    for (tls, expected) in cases {
        let mut a = args(&[]);
        a.http.tls = Some(tls);
        let relay = Relay::start(a).await;
        let HealthState::Unhealthy(reason) = relay.health.state() else {
            panic!("expected unhealthy for {expected}");
        };
        assert!(reason.contains(expected), "{reason}");
        assert!(relay.component.local_addr().is_none());
    }
}

#[tokio::test]
async fn a_stalled_handshake_is_cut_within_the_read_timeout_and_counted() {
    let pki = pki();
    let mut a = tls_args(&pki, ClientAuth::NoClientCert);
    a.http.server_read_timeout = Duration::from_millis(300);
    let relay = Relay::start(a).await;
    // The start of a ClientHello record, and then nothing: the server
    // waits for the rest until the handshake deadline.
    let hello_start = [
        0x16, 0x03, 0x01, 0x00, 0xc8, 0x01, 0x00, 0x00, 0xc4, 0x03, 0x03,
    ];
    for bytes in [&[][..], &hello_start[..]] {
        let started = std::time::Instant::now();
        let out = raw_exchange(relay.addr(), bytes, Duration::from_secs(5)).await;
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_millis(250), "{elapsed:?}");
        assert!(elapsed < Duration::from_secs(3), "cut in time: {elapsed:?}");
        assert!(out.is_empty(), "{out:?}");
    }
    let cut = r#"pyroscope_receive_http_connections_timed_out_total{component_id="pyroscope.receive_http.test",component_path="/",reason="tls_handshake"}"#;
    assert_eq!(relay.metric(cut), Some(2.0), "{}", relay.metrics_text());
}
