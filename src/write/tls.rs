//! The rustls client configuration of an endpoint (`tls_config`), built on
//! the ring provider.

use std::sync::{Arc, OnceLock};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::WriteError;
use super::http_config::{TlsConfig, TlsVersion};

/// Builds the client config. `http2` decides the ALPN offer.
pub(super) fn client_config(
    endpoint: &str,
    tls: &TlsConfig,
    http2: bool,
) -> Result<ClientConfig, WriteError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] = match tls.min_version {
        Some(TlsVersion::Tls13) => &[&rustls::version::TLS13],
        _ => &[&rustls::version::TLS13, &rustls::version::TLS12],
    };
    let client_error = |e: rustls::Error| WriteError::Client {
        endpoint: endpoint.to_owned(),
        message: e.to_string(),
    };
    let verifier = verifier(endpoint, tls, provider.clone())?;
    let builder = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(client_error)?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match client_identity(endpoint, tls)? {
        Some((chain, key)) => {
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| WriteError::BadPem {
                    endpoint: endpoint.to_owned(),
                    attribute: "tls_config client certificate",
                    message: e.to_string(),
                })?
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = if http2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    Ok(config)
}

fn verifier(
    endpoint: &str,
    tls: &TlsConfig,
    provider: Arc<CryptoProvider>,
) -> Result<Arc<dyn ServerCertVerifier>, WriteError> {
    if tls.insecure_skip_verify {
        return Ok(Arc::new(AcceptAnyCertificate(
            provider.signature_verification_algorithms,
        )));
    }
    let roots = match pem_source(endpoint, "ca_pem", &tls.ca_pem, "ca_file", &tls.ca_file)? {
        Some((attribute, pem)) => Arc::new(roots_from_pem(endpoint, attribute, &pem)?),
        None => system_roots(),
    };
    let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider)
        .build()
        .map_err(|e| WriteError::Client {
            endpoint: endpoint.to_owned(),
            message: format!("certificate verifier: {e}"),
        })?;
    if tls.server_name.is_empty() {
        return Ok(webpki);
    }
    let name =
        ServerName::try_from(tls.server_name.clone()).map_err(|e| WriteError::InvalidConfig {
            endpoint: endpoint.to_owned(),
            message: format!("tls_config.server_name {:?}: {e}", tls.server_name),
        })?;
    Ok(Arc::new(VerifyAs {
        inner: webpki,
        name,
    }))
}

/// The PEM text of an attribute pair: the inline value or the file's content.
fn pem_source(
    endpoint: &str,
    inline_attr: &'static str,
    inline: &str,
    file_attr: &'static str,
    file: &str,
) -> Result<Option<(&'static str, Vec<u8>)>, WriteError> {
    if !inline.is_empty() {
        return Ok(Some((inline_attr, inline.as_bytes().to_vec())));
    }
    if file.is_empty() {
        return Ok(None);
    }
    std::fs::read(file)
        .map(|bytes| Some((file_attr, bytes)))
        .map_err(|source| WriteError::ReadFile {
            endpoint: endpoint.to_owned(),
            attribute: file_attr,
            path: file.to_owned(),
            source,
        })
}

fn bad_pem(endpoint: &str, attribute: &'static str, message: impl Into<String>) -> WriteError {
    WriteError::BadPem {
        endpoint: endpoint.to_owned(),
        attribute,
        message: message.into(),
    }
}

fn certificates(
    endpoint: &str,
    attribute: &'static str,
    pem: &[u8],
) -> Result<Vec<CertificateDer<'static>>, WriteError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad_pem(endpoint, attribute, e.to_string()))?;
    if certs.is_empty() {
        return Err(bad_pem(
            endpoint,
            attribute,
            "no PEM \"CERTIFICATE\" block found",
        ));
    }
    Ok(certs)
}

fn roots_from_pem(
    endpoint: &str,
    attribute: &'static str,
    pem: &[u8],
) -> Result<RootCertStore, WriteError> {
    let mut roots = RootCertStore::empty();
    for cert in certificates(endpoint, attribute, pem)? {
        roots
            .add(cert)
            .map_err(|e| bad_pem(endpoint, attribute, e.to_string()))?;
    }
    Ok(roots)
}

/// The operating system's trust store, loaded once per process.
fn system_roots() -> Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let loaded = rustls_native_certs::load_native_certs();
            for error in &loaded.errors {
                tracing::warn!(%error, "could not load a system CA certificate");
            }
            let mut roots = RootCertStore::empty();
            let (added, ignored) = roots.add_parsable_certificates(loaded.certs);
            if ignored > 0 {
                tracing::debug!(added, ignored, "ignored unparsable system CA certificates");
            }
            Arc::new(roots)
        })
        .clone()
}

type Identity = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

fn client_identity(endpoint: &str, tls: &TlsConfig) -> Result<Option<Identity>, WriteError> {
    let key_pem = tls.key_pem.as_ref().map_or("", |s| s.expose());
    let cert = pem_source(
        endpoint,
        "cert_pem",
        &tls.cert_pem,
        "cert_file",
        &tls.cert_file,
    )?;
    let key = pem_source(endpoint, "key_pem", key_pem, "key_file", &tls.key_file)?;
    let (Some((cert_attr, cert)), Some((key_attr, key))) = (cert, key) else {
        return Ok(None);
    };
    let chain = certificates(endpoint, cert_attr, &cert)?;
    let key = PrivateKeyDer::from_pem_slice(&key).map_err(|e| {
        bad_pem(
            endpoint,
            key_attr,
            format!("no usable private key (PKCS#8, PKCS#1 or SEC1 PEM expected): {e}"),
        )
    })?;
    Ok(Some((chain, key)))
}

/// Verifies the chain against `tls_config.server_name` instead of the URL
/// host.
#[derive(Debug)]
struct VerifyAs {
    inner: Arc<WebPkiServerVerifier>,
    name: ServerName<'static>,
}

impl ServerCertVerifier for VerifyAs {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner
            .verify_server_cert(end_entity, intermediates, &self.name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// `insecure_skip_verify`: any certificate is accepted, but the handshake
/// signatures are still checked.
#[derive(Debug)]
struct AcceptAnyCertificate(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}
