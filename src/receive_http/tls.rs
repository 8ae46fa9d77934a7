//! Builds the server's rustls configuration from the `tls` block: the
//! certificate and key (inline PEM or files), the client CA, Go's client
//! auth types, the lowest version and the TLS 1.2 cipher suites. ALPN
//! offers h2 and http/1.1.

use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::version::{TLS12, TLS13};
use rustls::{
    DigitallySignedStruct, DistinguishedName, NamedGroup, RootCertStore, ServerConfig,
    SignatureScheme,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, UnixTime};

use super::arguments::{ClientAuth, TlsConfig, TlsVersion};

/// Loads certificates and keys and builds the server configuration. The
/// error says which attribute or file is at fault.
pub(super) fn server_config(tls: &TlsConfig) -> Result<Arc<ServerConfig>, String> {
    server_config_with(tls, None, &[])
}

/// [`server_config`] with the two settings only the admin server's `tls`
/// block has: the newest version offered and the key exchange curves, by
/// Go name, in preference order (empty keeps the defaults).
pub(crate) fn server_config_with(
    tls: &TlsConfig,
    max_version: Option<TlsVersion>,
    curves: &[String],
) -> Result<Arc<ServerConfig>, String> {
    if let Some(problem) = tls.problems().into_iter().next() {
        return Err(format!("invalid tls block: {problem}"));
    }
    let versions: &[&rustls::SupportedProtocolVersion] = match (tls.min_version, max_version) {
        (TlsVersion::Tls13, Some(TlsVersion::Tls12)) => {
            return Err("max_version TLS12 is older than min_version TLS13".into());
        }
        (TlsVersion::Tls12, Some(TlsVersion::Tls12)) => &[&TLS12],
        (TlsVersion::Tls12, _) => &[&TLS13, &TLS12],
        (TlsVersion::Tls13, _) => &[&TLS13],
    };
    let mut provider = provider(&tls.cipher_suites)?;
    if !curves.is_empty() {
        provider.kx_groups = key_exchange_groups(&provider, curves)?;
    }
    let provider = Arc::new(provider);
    let certs = CertificateDer::pem_slice_iter(&pem("cert", &tls.cert_pem, &tls.cert_file)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("invalid server certificate PEM: {e}"))?;
    if certs.is_empty() {
        return Err("the server certificate PEM holds no CERTIFICATE block".into());
    }
    let key = PrivateKeyDer::from_pem_slice(&pem("key", &tls.key_pem, &tls.key_file)?)
        .map_err(|e| format!("invalid server key PEM: {e}"))?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(|e| format!("invalid min_version / cipher_suites combination: {e}"))?;
    let builder = match client_verifier(tls, &provider)? {
        None => builder.with_no_client_auth(),
        Some(verifier) => builder.with_client_cert_verifier(verifier),
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| format!("the server certificate and key do not fit: {e}"))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The PEM text of `what`: inline, or read from the file.
fn pem(what: &str, inline: &str, file: &str) -> Result<Vec<u8>, String> {
    if !inline.is_empty() {
        return Ok(inline.as_bytes().to_vec());
    }
    std::fs::read(file).map_err(|e| format!("failed to read {what}_file {file:?}: {e}"))
}

/// The ring provider, its TLS 1.2 suites narrowed to `names` (Go names).
/// TLS 1.3 suites cannot be chosen, as in Go: naming one is allowed and
/// changes nothing.
fn provider(names: &[String]) -> Result<CryptoProvider, String> {
    let mut provider = rustls::crypto::ring::default_provider();
    if names.is_empty() {
        return Ok(provider);
    }
    let all = provider.cipher_suites.clone();
    for name in names {
        if !all.iter().any(|s| is_named(s, name)) {
            let supported: Vec<_> = all.iter().map(go_name).collect();
            return Err(format!(
                "unsupported cipher suite {name:?}: supported are {}",
                supported.join(", ")
            ));
        }
    }
    provider
        .cipher_suites
        .retain(|s| s.version() == &TLS13 || names.iter().any(|n| is_named(s, n)));
    Ok(provider)
}

/// The provider's key exchange groups named by Go curve names, in the
/// order given. `CurveP521` has no implementation in the TLS library.
fn key_exchange_groups(
    provider: &CryptoProvider,
    curves: &[String],
) -> Result<Vec<&'static dyn rustls::crypto::SupportedKxGroup>, String> {
    curves
        .iter()
        .map(|name| {
            let group = match name.as_str() {
                "CurveP256" => NamedGroup::secp256r1,
                "CurveP384" => NamedGroup::secp384r1,
                "X25519" => NamedGroup::X25519,
                _ => {
                    return Err(format!(
                        "unsupported curve {name:?}: supported are CurveP256, CurveP384, X25519"
                    ));
                }
            };
            provider
                .kx_groups
                .iter()
                .copied()
                .find(|g| g.name() == group)
                .ok_or_else(|| format!("curve {name:?} is not available"))
        })
        .collect()
}

/// A suite's name as Go spells it (rustls prefixes TLS 1.3 suites with
/// `TLS13_`).
fn go_name(suite: &rustls::SupportedCipherSuite) -> String {
    let name = suite.suite().as_str().unwrap_or_default();
    match name.strip_prefix("TLS13_") {
        Some(rest) => format!("TLS_{rest}"),
        None => name.to_owned(),
    }
}

/// Whether `name` names `suite`; Go also accepts the ChaCha20 suites
/// without their `_SHA256`.
fn is_named(suite: &rustls::SupportedCipherSuite, name: &str) -> bool {
    let go = go_name(suite);
    go == name || go == format!("{name}_SHA256")
}

fn client_verifier(
    tls: &TlsConfig,
    provider: &Arc<CryptoProvider>,
) -> Result<Option<Arc<dyn ClientCertVerifier>>, String> {
    if tls.client_auth_type == ClientAuth::NoClientCert {
        return Ok(None);
    }
    let mut roots = RootCertStore::empty();
    if !tls.client_ca_pem.is_empty() || !tls.client_ca_file.is_empty() {
        let ca = pem("client_ca", &tls.client_ca_pem, &tls.client_ca_file)?;
        for cert in CertificateDer::pem_slice_iter(&ca) {
            let cert = cert.map_err(|e| format!("invalid client CA PEM: {e}"))?;
            roots
                .add(cert)
                .map_err(|e| format!("invalid client CA certificate: {e}"))?;
        }
        if roots.is_empty() {
            return Err("the client CA PEM holds no CERTIFICATE block".into());
        }
    }
    let verifier: Arc<dyn ClientCertVerifier> = match tls.client_auth_type {
        ClientAuth::NoClientCert => return Ok(None),
        ClientAuth::RequestClientCert | ClientAuth::RequireAnyClientCert => {
            Arc::new(AnyClientCert {
                mandatory: tls.client_auth_type == ClientAuth::RequireAnyClientCert,
                hints: roots.subjects(),
                algorithms: provider.signature_verification_algorithms,
            })
        }
        ClientAuth::VerifyClientCertIfGiven | ClientAuth::RequireAndVerifyClientCert => {
            let builder =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
            let builder = if tls.client_auth_type == ClientAuth::VerifyClientCertIfGiven {
                builder.allow_unauthenticated()
            } else {
                builder
            };
            builder
                .build()
                .map_err(|e| format!("invalid client CA: {e}"))?
        }
    };
    Ok(Some(verifier))
}

/// Go's `RequestClientCert` / `RequireAnyClientCert`: any certificate is
/// accepted without checking its chain, but the client must still prove
/// it holds the key (the handshake signature is verified).
#[derive(Debug)]
struct AnyClientCert {
    mandatory: bool,
    hints: Vec<DistinguishedName>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for AnyClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cipher_suites_are_checked_and_narrowed() {
        let p = provider(&["TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305".into()]).unwrap();
        let names: Vec<_> = p.cipher_suites.iter().map(go_name).collect();
        assert!(
            names
                .iter()
                .any(|n| n == "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256")
        );
        assert!(names.iter().any(|n| n == "TLS_AES_128_GCM_SHA256"));
        assert!(
            !names
                .iter()
                .any(|n| n == "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256")
        );
        assert!(provider(&["TLS_AES_128_GCM_SHA256".into()]).is_ok());
        let err = provider(&["TLS_RSA_WITH_RC4_128_SHA".into()]).unwrap_err();
        assert!(err.contains("unsupported cipher suite"), "{err}");
    }

    #[test]
    fn curves_are_chosen_by_go_name_in_order() {
        let p = rustls::crypto::ring::default_provider();
        let groups = key_exchange_groups(&p, &["CurveP384".into(), "X25519".into()]).unwrap();
        let names: Vec<_> = groups.iter().map(|g| g.name()).collect();
        assert_eq!(names, [NamedGroup::secp384r1, NamedGroup::X25519]);
        let err = key_exchange_groups(&p, &["CurveP521".into()])
            .err()
            .unwrap();
        assert!(err.contains("unsupported curve \"CurveP521\""), "{err}");
    }

    #[test]
    fn max_version_below_min_version_is_refused() {
        let tls = TlsConfig {
            cert_pem: "x".into(),
            key_pem: "y".into(),
            min_version: TlsVersion::Tls13,
            ..TlsConfig::default()
        };
        let err = server_config_with(&tls, Some(TlsVersion::Tls12), &[]).unwrap_err();
        assert!(err.contains("max_version TLS12"), "{err}");
    }

    #[test]
    fn unreadable_files_are_named() {
        let tls = TlsConfig {
            cert_file: "/nonexistent/cert.pem".into(),
            key_file: "/nonexistent/key.pem".into(),
            ..TlsConfig::default()
        };
        let err = server_config(&tls).unwrap_err();
        assert!(
            err.contains("failed to read cert_file \"/nonexistent/cert.pem\""),
            "{err}"
        );
    }
}
