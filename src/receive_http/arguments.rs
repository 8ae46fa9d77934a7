//! The component's arguments, with Alloy's defaults, and the checks that do
//! not need the config language (so both the decoder and the runtime use
//! them).

use std::fmt;
use std::time::Duration;

use http::HeaderName;

use crate::pipeline::Receiver;

/// Pyroscope's own default ingest body limit (`ingestion_body_limit_mb`).
pub const DEFAULT_MAX_REQUEST_BODY_SIZE: u64 = 256 * 1024 * 1024;
/// How much larger than the body limit a gzipped push body may expand.
pub const DECOMPRESSION_FACTOR: u64 = 4;
/// receive_http's `conn_limit` default (`64/4*1024` in Alloy).
pub const DEFAULT_CONN_LIMIT: usize = 16384;

/// `pyroscope.receive_http` arguments. `Default` gives Alloy's defaults
/// with an empty `forward_to`.
#[derive(Debug, Clone, PartialEq)]
pub struct Arguments {
    /// Receivers every profile is sent to, in parallel.
    pub forward_to: Vec<Receiver>,
    /// The `http` block.
    pub http: HttpConfig,
    /// How long `shutdown` (and a rebind) lets in-flight requests finish.
    pub graceful_shutdown_timeout: Duration,
    /// Client headers copied onto downstream requests (extension; Alloy
    /// forwards none).
    pub forward_headers: Vec<String>,
    /// Accepted for compatibility; the debuginfo routes are not served.
    pub debug_info_upload_timeout: Duration,
}

impl Default for Arguments {
    fn default() -> Self {
        Self {
            forward_to: Vec::new(),
            http: HttpConfig::default(),
            graceful_shutdown_timeout: Duration::from_secs(30),
            forward_headers: Vec::new(),
            debug_info_upload_timeout: Duration::from_secs(120),
        }
    }
}

/// The `http` block.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpConfig {
    /// Address to listen on; empty means every interface.
    pub listen_address: String,
    /// Port to listen on; 0 picks a free port.
    pub listen_port: u16,
    /// Most connections served at once; 0 means no limit. Further
    /// connections wait in the kernel's accept queue.
    pub conn_limit: usize,
    /// See the module docs, "Timeouts". Zero disables.
    pub server_read_timeout: Duration,
    /// See the module docs, "Timeouts". Zero disables.
    pub server_write_timeout: Duration,
    /// See the module docs, "Timeouts". Zero means `server_read_timeout`.
    pub server_idle_timeout: Duration,
    /// Largest request body accepted, as received; 0 means no limit.
    pub max_request_body_size: u64,
    /// Largest size a gzipped push body or message may expand to; `None`
    /// means [`DECOMPRESSION_FACTOR`] × `max_request_body_size`.
    pub max_decompressed_body_size: Option<u64>,
    /// TLS; `None` serves cleartext.
    pub tls: Option<TlsConfig>,
    /// The `http2` block's tuning.
    pub http2: Http2Config,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen_address: String::new(),
            listen_port: 8080,
            conn_limit: DEFAULT_CONN_LIMIT,
            server_read_timeout: Duration::from_secs(30),
            server_write_timeout: Duration::from_secs(30),
            server_idle_timeout: Duration::from_secs(120),
            max_request_body_size: DEFAULT_MAX_REQUEST_BODY_SIZE,
            max_decompressed_body_size: None,
            tls: None,
            http2: Http2Config::default(),
        }
    }
}

impl HttpConfig {
    /// Whether `other` needs a new server (listener settings, timeouts, TLS
    /// or HTTP/2 tuning changed). Body limits are read per request, so
    /// changing them alone keeps the server and its connections.
    pub fn needs_restart(&self, other: &HttpConfig) -> bool {
        let strip = |c: &HttpConfig| HttpConfig {
            max_request_body_size: 0,
            max_decompressed_body_size: None,
            ..c.clone()
        };
        strip(self) != strip(other)
    }

    /// The body limit in bytes; `u64::MAX` when unlimited.
    pub fn body_limit(&self) -> u64 {
        match self.max_request_body_size {
            0 => u64::MAX,
            n => n,
        }
    }

    /// The decompression limit in bytes; `u64::MAX` when unlimited.
    pub fn decompressed_limit(&self) -> u64 {
        match self.max_decompressed_body_size {
            Some(0) => u64::MAX,
            Some(n) => n,
            None => self.body_limit().saturating_mul(DECOMPRESSION_FACTOR),
        }
    }

    /// The idle timeout as Go's `http.Server` applies it.
    pub fn effective_idle_timeout(&self) -> Duration {
        if self.server_idle_timeout.is_zero() {
            self.server_read_timeout
        } else {
            self.server_idle_timeout
        }
    }
}

/// Go's `tls.ClientAuthType` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientAuth {
    #[default]
    NoClientCert,
    /// Ask for a certificate; accept none and do not verify one.
    RequestClientCert,
    /// Require a certificate; do not verify it against a CA.
    RequireAnyClientCert,
    /// Verify a certificate if one is sent.
    VerifyClientCertIfGiven,
    /// Require a certificate and verify it.
    RequireAndVerifyClientCert,
}

impl ClientAuth {
    pub const NAMES: &'static str = "NoClientCert, RequestClientCert, RequireAnyClientCert, \
         VerifyClientCertIfGiven, RequireAndVerifyClientCert";

    /// Parses a Go name; empty is `NoClientCert` and `RequireClientCert` is
    /// the old alias of `RequireAnyClientCert`, as exporter-toolkit accepts.
    pub fn parse(name: &str) -> Option<ClientAuth> {
        Some(match name {
            "" | "NoClientCert" => ClientAuth::NoClientCert,
            "RequestClientCert" => ClientAuth::RequestClientCert,
            "RequireAnyClientCert" | "RequireClientCert" => ClientAuth::RequireAnyClientCert,
            "VerifyClientCertIfGiven" => ClientAuth::VerifyClientCertIfGiven,
            "RequireAndVerifyClientCert" => ClientAuth::RequireAndVerifyClientCert,
            _ => return None,
        })
    }

    /// Whether the chain is checked against the client CA.
    pub fn verifies(self) -> bool {
        matches!(
            self,
            ClientAuth::VerifyClientCertIfGiven | ClientAuth::RequireAndVerifyClientCert
        )
    }
}

/// Lowest TLS version offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TlsVersion {
    /// TLS 1.2 and 1.3 (also what `TLS10` and `TLS11` give: the TLS
    /// library has nothing older).
    #[default]
    Tls12,
    Tls13,
}

impl TlsVersion {
    /// Parses `TLS10` .. `TLS13`; `None` for anything else.
    pub fn parse(name: &str) -> Option<TlsVersion> {
        match name {
            "" | "TLS10" | "TLS11" | "TLS12" => Some(TlsVersion::Tls12),
            "TLS13" => Some(TlsVersion::Tls13),
            _ => None,
        }
    }
}

/// The `http > tls` block.
#[derive(Clone, PartialEq, Default)]
pub struct TlsConfig {
    pub cert_pem: String,
    pub cert_file: String,
    /// A secret: never printed.
    pub key_pem: String,
    pub key_file: String,
    pub client_ca_pem: String,
    pub client_ca_file: String,
    pub client_auth_type: ClientAuth,
    pub min_version: TlsVersion,
    /// Go cipher suite names (comma-separated in Alloy); empty = defaults.
    pub cipher_suites: Vec<String>,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = if self.key_pem.is_empty() {
            ""
        } else {
            "(secret)"
        };
        f.debug_struct("TlsConfig")
            .field("cert_pem", &self.cert_pem)
            .field("cert_file", &self.cert_file)
            .field("key_pem", &key)
            .field("key_file", &self.key_file)
            .field("client_ca_pem", &self.client_ca_pem)
            .field("client_ca_file", &self.client_ca_file)
            .field("client_auth_type", &self.client_auth_type)
            .field("min_version", &self.min_version)
            .field("cipher_suites", &self.cipher_suites)
            .finish()
    }
}

impl TlsConfig {
    /// The pairing and exclusion rules, as messages naming the attributes.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let pairs = [
            ("cert_pem", &self.cert_pem, "cert_file", &self.cert_file),
            ("key_pem", &self.key_pem, "key_file", &self.key_file),
            (
                "client_ca_pem",
                &self.client_ca_pem,
                "client_ca_file",
                &self.client_ca_file,
            ),
        ];
        for (a, va, b, vb) in pairs {
            if !va.is_empty() && !vb.is_empty() {
                problems.push(format!("at most one of {a} and {b} must be set"));
            }
        }
        if self.cert_pem.is_empty() && self.cert_file.is_empty() {
            problems.push("a server certificate is required: set cert_pem or cert_file".into());
        }
        if self.key_pem.is_empty() && self.key_file.is_empty() {
            problems.push("a server key is required: set key_pem or key_file".into());
        }
        let has_ca = !self.client_ca_pem.is_empty() || !self.client_ca_file.is_empty();
        if self.client_auth_type.verifies() && !has_ca {
            problems.push(format!(
                "client_auth_type {:?} verifies client certificates and needs client_ca_pem \
                 or client_ca_file",
                self.client_auth_type
            ));
        }
        if has_ca && self.client_auth_type == ClientAuth::NoClientCert {
            problems.push(
                "a client CA is set but client_auth_type is NoClientCert: set client_auth_type"
                    .into(),
            );
        }
        problems
    }

    /// Whether certificates come from files, which are re-read on update.
    pub fn reads_files(&self) -> bool {
        !self.cert_file.is_empty() || !self.key_file.is_empty() || !self.client_ca_file.is_empty()
    }
}

/// The `http > http2` block. h2c is always served; `enabled` is accepted
/// and has no effect. The other attributes tune every HTTP/2 connection.
#[derive(Debug, Clone, PartialEq)]
pub struct Http2Config {
    pub enabled: bool,
    /// Streams a client may have open on one connection.
    pub max_concurrent_streams: u32,
    /// Largest frame the server accepts; 0 = the HTTP/2 default (16 KiB).
    pub max_read_frame_size: u32,
    /// Ping a connection that sent nothing for this long; 0 = never.
    pub read_idle_timeout: Duration,
    /// How long to wait for a ping's answer before closing.
    pub ping_timeout: Duration,
    /// Close a connection without streams for this long; 0 = use
    /// `server_idle_timeout`.
    pub idle_timeout: Duration,
    /// Flow-control window per connection; 0 = default (1 MiB).
    pub max_upload_buffer_per_connection: u32,
    /// Flow-control window per stream; 0 = default (1 MiB).
    pub max_upload_buffer_per_stream: u32,
}

impl Default for Http2Config {
    fn default() -> Self {
        Self {
            enabled: false,
            max_concurrent_streams: 100,
            max_read_frame_size: 0,
            read_idle_timeout: Duration::ZERO,
            ping_timeout: Duration::from_secs(15),
            idle_timeout: Duration::ZERO,
            max_upload_buffer_per_connection: 0,
            max_upload_buffer_per_stream: 0,
        }
    }
}

/// Headers that describe one hop, or that the protocol sets, and so are
/// never copied downstream.
const NOT_FORWARDABLE: [&str; 10] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
    "content-type",
];

/// Checks one `forward_headers` entry: a valid header name that may be
/// forwarded.
pub fn forward_header_name(name: &str) -> Result<HeaderName, String> {
    let parsed = HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| format!("forward_headers: {name:?} is not a valid header name"))?;
    if NOT_FORWARDABLE.contains(&parsed.as_str()) {
        return Err(format!(
            "forward_headers: {name:?} cannot be forwarded: it describes the connection or the \
             body, not the profile"
        ));
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_alloy() {
        let args = Arguments::default();
        assert_eq!(args.http.listen_port, 8080);
        assert_eq!(args.http.conn_limit, 16384);
        assert_eq!(args.http.server_idle_timeout, Duration::from_secs(120));
        assert_eq!(args.graceful_shutdown_timeout, Duration::from_secs(30));
        assert_eq!(args.http.decompressed_limit(), 4 * 256 * 1024 * 1024);
        assert_eq!(args.http.http2.max_concurrent_streams, 100);
    }

    #[test]
    fn body_limits_do_not_restart_the_server() {
        let a = HttpConfig::default();
        let mut b = a.clone();
        b.max_request_body_size = 10;
        b.max_decompressed_body_size = Some(20);
        assert!(!a.needs_restart(&b));
        b.listen_port = 1;
        assert!(a.needs_restart(&b));
    }

    #[test]
    fn tls_rules() {
        let tls = TlsConfig {
            cert_pem: "x".into(),
            cert_file: "y".into(),
            client_auth_type: ClientAuth::RequireAndVerifyClientCert,
            ..TlsConfig::default()
        };
        let problems = tls.problems().join("\n");
        assert!(problems.contains("at most one of cert_pem and cert_file"));
        assert!(problems.contains("a server key is required"));
        assert!(problems.contains("needs client_ca_pem or client_ca_file"));
        assert!(
            !format!(
                "{:?}",
                TlsConfig {
                    key_pem: "k".into(),
                    ..tls
                }
            )
            .contains("\"k\"")
        );
        assert_eq!(
            ClientAuth::parse("RequireClientCert"),
            Some(ClientAuth::RequireAnyClientCert)
        );
        assert_eq!(TlsVersion::parse("TLS13"), Some(TlsVersion::Tls13));
        assert_eq!(TlsVersion::parse("SSL3"), None);
    }

    #[test]
    fn forward_header_rules() {
        assert_eq!(
            forward_header_name("X-Scope-OrgID").unwrap().as_str(),
            "x-scope-orgid"
        );
        assert!(forward_header_name("Transfer-Encoding").is_err());
        assert!(forward_header_name("Host").is_err());
        assert!(forward_header_name("bad header").is_err());
    }
}
