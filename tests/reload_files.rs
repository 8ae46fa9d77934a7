//! A reload re-applies a component whose referenced files changed even
//! when the config text did not: certificates rotated at the same path
//! are served after SIGHUP or `/-/reload`, through the real binary.

mod support;

use std::io::Write;
use std::net::TcpStream;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::ServerName;
use support::{Relay, free_port, http_request, tls_client_config};

struct Issued {
    cert_pem: String,
    key_pem: String,
    der: Vec<u8>,
}

fn issue(ca: &CertifiedIssuer<'static, KeyPair>) -> Issued {
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&key, ca)
        .unwrap();
    Issued {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        der: cert.der().to_vec(),
    }
}

/// The certificate the server presents, after a full handshake.
fn served_certificate(port: u16, ca_der: &[u8]) -> Vec<u8> {
    let name = ServerName::try_from("localhost").unwrap();
    let mut conn = rustls::ClientConnection::new(tls_client_config(ca_der), name).unwrap();
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp).unwrap();
    }
    let _ = conn.writer().flush();
    conn.peer_certificates().unwrap()[0].to_vec()
}

#[test]
fn a_certificate_rotated_at_the_same_path_is_served_after_a_reload() {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
    let ca_der = ca.der().to_vec();
    let dir = tempfile::tempdir().unwrap();
    let cert_file = dir.path().join("server.crt");
    let key_file = dir.path().join("server.key");
    let install = |issued: &Issued| {
        std::fs::write(&cert_file, &issued.cert_pem).unwrap();
        std::fs::write(&key_file, &issued.key_pem).unwrap();
    };
    let first = issue(&ca);
    install(&first);

    let port = free_port();
    let relay = Relay::start(&format!(
        r#"pyroscope.receive_http "in" {{
  http {{
    listen_address = "127.0.0.1"
    listen_port = {port}
    tls {{
      cert_file = "{}"
      key_file  = "{}"
    }}
  }}
  forward_to = []
}}
"#,
        cert_file.display(),
        key_file.display()
    ));
    assert_eq!(served_certificate(port, &ca_der), first.der);

    let second = issue(&ca);
    install(&second);
    let (status, body) = http_request("POST", &relay.url("/-/reload"), &[], b"").unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(served_certificate(port, &ca_der), second.der);

    let third = issue(&ca);
    install(&third);
    relay.signal("HUP");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while served_certificate(port, &ca_der) != third.der {
        assert!(
            std::time::Instant::now() < deadline,
            "SIGHUP did not rotate"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
