//! Alloy's top-level `http` block, which configures the admin server:
//!
//! ```alloy
//! http {
//!   tls  { cert_file = "/etc/relay/tls.crt"  key_file = "/etc/relay/tls.key" }
//!   auth {
//!     basic  { username = "admin"  password = sys.env("ADMIN_PASSWORD") }
//!     filter { paths = ["/-/ready"]  authenticate_matching_paths = false }
//!   }
//! }
//! ```
//!
//! The attributes and their meaning are Alloy's (see `docs/components.md`,
//! "The `http` block"); `windows_certificate_filter` is refused, as the
//! relay does not run on Windows.

use std::fmt;

use crate::config::{BlockDecoder, DecodeBlock, Secret};
use crate::receive_http::{TlsConfig, TlsVersion};

/// The decoded `http` block.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HttpBlock {
    pub tls: Option<AdminTls>,
    pub auth: Option<AuthConfig>,
}

/// `http > tls`: the receiver's TLS settings plus the two attributes only
/// this block has.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AdminTls {
    pub base: TlsConfig,
    /// The newest version offered; `None` offers every version.
    pub max_version: Option<TlsVersion>,
    /// Go curve names in preference order; empty keeps the defaults.
    pub curve_preferences: Vec<String>,
}

/// `http > auth`.
#[derive(Clone, PartialEq, Default)]
pub struct AuthConfig {
    /// Without `basic`, nothing is authenticated.
    pub basic: Option<(String, String)>,
    pub filter: PathFilter,
}

impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthConfig")
            .field("username", &self.basic.as_ref().map(|(u, _)| u))
            .field("filter", &self.filter)
            .finish()
    }
}

/// `http > auth > filter`: which paths need credentials, by prefix.
///
/// Without a `filter` block every path is authenticated (Alloy leaves the
/// block's fields at their zero values: no paths, and
/// `authenticate_matching_paths` false, which authenticates every path
/// that matches none). With the block, `authenticate_matching_paths`
/// defaults to true.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PathFilter {
    pub paths: Vec<String>,
    pub authenticate_matching_paths: bool,
}

impl PathFilter {
    /// Whether a request for `path` must carry credentials.
    pub fn needs_credentials(&self, path: &str) -> bool {
        let matches = self.paths.iter().any(|p| path.starts_with(p.as_str()));
        matches == self.authenticate_matching_paths
    }
}

impl DecodeBlock for HttpBlock {
    fn decode(d: &mut BlockDecoder<'_>) -> Self {
        HttpBlock {
            tls: d.block("tls"),
            auth: d.block("auth"),
        }
    }
}

impl DecodeBlock for AdminTls {
    fn decode(d: &mut BlockDecoder<'_>) -> Self {
        if d.block::<Refused>("windows_certificate_filter").is_some() {
            d.error("windows_certificate_filter is only available on Windows");
        }
        let cipher_suites = d.attr("cipher_suites", Vec::new());
        let base = crate::receive_http::decode_tls(d, cipher_suites);
        let max_version = version(d, "max_version");
        if max_version == Some(TlsVersion::Tls12) && base.min_version == TlsVersion::Tls13 {
            d.error("max_version is older than min_version");
        }
        AdminTls {
            base,
            max_version,
            curve_preferences: d.attr("curve_preferences", Vec::new()),
        }
    }
}

fn version(d: &mut BlockDecoder<'_>, name: &str) -> Option<TlsVersion> {
    let text: String = d.optional(name)?;
    if text.is_empty() {
        return None;
    }
    let parsed = TlsVersion::parse(&text);
    if parsed.is_none() {
        d.error(format!(
            "invalid {name} {text:?}: expected TLS10, TLS11, TLS12 or TLS13"
        ));
    }
    parsed
}

/// A block that may not be given; its contents are not read.
struct Refused;

impl DecodeBlock for Refused {
    fn decode(_: &mut BlockDecoder<'_>) -> Self {
        Refused
    }
}

impl DecodeBlock for AuthConfig {
    fn decode(d: &mut BlockDecoder<'_>) -> Self {
        AuthConfig {
            basic: d.block::<BasicBlock>("basic").map(|b| (b.0, b.1)),
            filter: d.block("filter").unwrap_or_default(),
        }
    }
}

struct BasicBlock(String, String);

impl DecodeBlock for BasicBlock {
    fn decode(d: &mut BlockDecoder<'_>) -> Self {
        let username = d.required::<String>("username").unwrap_or_default();
        let password = d
            .required::<Secret>("password")
            .map(|s| s.expose().to_owned())
            .unwrap_or_default();
        BasicBlock(username, password)
    }
}

impl DecodeBlock for PathFilter {
    fn decode(d: &mut BlockDecoder<'_>) -> Self {
        PathFilter {
            paths: d.attr("paths", Vec::new()),
            authenticate_matching_paths: d.attr("authenticate_matching_paths", true),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(paths: &[&str], authenticate_matching_paths: bool) -> PathFilter {
        PathFilter {
            paths: paths.iter().map(|p| p.to_string()).collect(),
            authenticate_matching_paths,
        }
    }

    #[test]
    fn filter_matches_prefixes_as_alloy_does() {
        let everything = PathFilter::default();
        assert!(everything.needs_credentials("/-/ready"));
        assert!(everything.needs_credentials("/metrics"));

        let protect = filter(&["/-/reload", "/api"], true);
        assert!(protect.needs_credentials("/-/reload"));
        assert!(protect.needs_credentials("/api/v1/profiles"));
        assert!(!protect.needs_credentials("/-/ready"));

        let exempt = filter(&["/-/ready", "/-/healthy"], false);
        assert!(!exempt.needs_credentials("/-/ready"));
        assert!(!exempt.needs_credentials("/-/healthy"));
        assert!(exempt.needs_credentials("/-/reload"));
        assert!(exempt.needs_credentials("/metrics"));

        // A filter block with no paths and the default true protects nothing.
        assert!(!filter(&[], true).needs_credentials("/-/reload"));
    }
}
