//! The HTTP client settings squashed into each `endpoint` block (Alloy's
//! `common/config` `HTTPClientConfig`), and their validation with Alloy's
//! messages.

use std::collections::BTreeMap;

use crate::config::Secret;

#[derive(Debug, Clone, PartialEq)]
pub struct HttpClientConfig {
    pub basic_auth: Option<BasicAuth>,
    pub authorization: Option<Authorization>,
    pub oauth2: Option<OAuth2Config>,
    pub bearer_token: Option<Secret>,
    pub bearer_token_file: String,
    pub tls_config: TlsConfig,
    pub follow_redirects: bool,
    pub enable_http2: bool,
    pub proxy: ProxyConfig,
    /// `http_headers`: sent on every request, first value set, others added.
    pub http_headers: BTreeMap<String, Vec<Secret>>,
}

impl Default for HttpClientConfig {
    fn default() -> Self {
        Self {
            basic_auth: None,
            authorization: None,
            oauth2: None,
            bearer_token: None,
            bearer_token_file: String::new(),
            tls_config: TlsConfig::default(),
            follow_redirects: true,
            enable_http2: true,
            proxy: ProxyConfig::default(),
            http_headers: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct BasicAuth {
    pub username: String,
    pub password: Option<Secret>,
    pub password_file: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Authorization {
    /// Defaults to `Bearer`.
    pub r#type: String,
    pub credentials: Option<Secret>,
    pub credentials_file: String,
}

impl Default for Authorization {
    fn default() -> Self {
        Self {
            r#type: "Bearer".to_owned(),
            credentials: None,
            credentials_file: String::new(),
        }
    }
}

/// OAuth 2.0 client-credentials grant.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OAuth2Config {
    pub client_id: String,
    pub client_secret: Option<Secret>,
    pub client_secret_file: String,
    pub token_url: String,
    pub scopes: Vec<String>,
    pub endpoint_params: BTreeMap<String, String>,
    /// TLS and proxy of the token requests (Prometheus: not the endpoint's).
    pub tls_config: TlsConfig,
    pub proxy: ProxyConfig,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct TlsConfig {
    pub ca_pem: String,
    pub ca_file: String,
    pub cert_pem: String,
    pub cert_file: String,
    pub key_pem: Option<Secret>,
    pub key_file: String,
    pub server_name: String,
    pub insecure_skip_verify: bool,
    pub min_version: Option<TlsVersion>,
}

/// `min_version`: Prometheus' names. rustls speaks TLS 1.2 and 1.3 only, so
/// `TLS10` and `TLS11` allow the same versions as `TLS12`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsVersion {
    Tls10,
    Tls11,
    Tls12,
    Tls13,
}

impl TlsVersion {
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "TLS10" => Some(Self::Tls10),
            "TLS11" => Some(Self::Tls11),
            "TLS12" => Some(Self::Tls12),
            "TLS13" => Some(Self::Tls13),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProxyConfig {
    pub proxy_url: String,
    pub no_proxy: String,
    pub proxy_from_environment: bool,
    pub proxy_connect_header: BTreeMap<String, Vec<Secret>>,
}

fn has(secret: &Option<Secret>) -> bool {
    secret.as_ref().is_some_and(|s| !s.expose().is_empty())
}

impl HttpClientConfig {
    /// Every problem, in the order Alloy would report them (nested blocks
    /// first). Empty when valid.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(b) = &self.basic_auth
            && has(&b.password)
            && !b.password_file.is_empty()
        {
            out.push(
                "at most one of basic_auth password & password_file must be configured".into(),
            );
        }
        if let Some(a) = &self.authorization {
            if has(&a.credentials) && !a.credentials_file.is_empty() {
                out.push("at most one of authorization credentials & credentials_file must be configured".into());
            }
            if a.r#type.trim().eq_ignore_ascii_case("basic") {
                out.push(r#"authorization type cannot be set to "basic", use "basic_auth" block instead"#.into());
            }
        }
        if let Some(o) = &self.oauth2 {
            out.extend(o.problem());
        }
        out.extend(self.tls_config.problem());
        let auth_count = [
            self.basic_auth.is_some(),
            self.authorization.is_some(),
            self.oauth2.is_some(),
            has(&self.bearer_token),
            !self.bearer_token_file.is_empty(),
        ]
        .into_iter()
        .filter(|set| *set)
        .count();
        if auth_count > 1 {
            out.push("at most one of basic_auth, authorization, oauth2, bearer_token & bearer_token_file must be configured".into());
        }
        out.extend(self.proxy.problem());
        out
    }
}

impl OAuth2Config {
    fn problem(&self) -> Option<String> {
        let secret = has(&self.client_secret);
        let msg = if self.client_id.is_empty() {
            "oauth2 client_id must be configured"
        } else if !secret && self.client_secret_file.is_empty() {
            "either oauth2 client_secret or client_secret_file must be configured"
        } else if self.token_url.is_empty() {
            "oauth2 token_url must be configured"
        } else if secret && !self.client_secret_file.is_empty() {
            "at most one of oauth2 client_secret & client_secret_file must be configured"
        } else {
            return self
                .tls_config
                .problem()
                .or_else(|| self.proxy.problem())
                .map(|m| format!("oauth2: {m}"));
        };
        Some(msg.to_owned())
    }
}

impl TlsConfig {
    fn problem(&self) -> Option<String> {
        let key = has(&self.key_pem);
        let cert = !self.cert_pem.is_empty() || !self.cert_file.is_empty();
        let key_any = key || !self.key_file.is_empty();
        let msg = if !self.ca_pem.is_empty() && !self.ca_file.is_empty() {
            "at most one of ca_pem and ca_file must be configured"
        } else if !self.cert_pem.is_empty() && !self.cert_file.is_empty() {
            "at most one of cert_pem and cert_file must be configured"
        } else if key && !self.key_file.is_empty() {
            "at most one of key_pem and key_file must be configured"
        } else if cert && !key_any {
            "exactly one of key_pem or key_file must be configured when a client certificate is configured"
        } else if key_any && !cert {
            "exactly one of cert_pem or cert_file must be configured when a client key is configured"
        } else {
            return None;
        };
        Some(msg.to_owned())
    }
}

impl ProxyConfig {
    fn problem(&self) -> Option<String> {
        let url = !self.proxy_url.is_empty();
        let msg = if !self.proxy_connect_header.is_empty() && !self.proxy_from_environment && !url {
            "if proxy_connect_header is configured, proxy_url or proxy_from_environment must also be configured"
        } else if self.proxy_from_environment && url {
            "if proxy_from_environment is configured, proxy_url must not be configured"
        } else if self.proxy_from_environment && !self.no_proxy.is_empty() {
            "if proxy_from_environment is configured, no_proxy must not be configured"
        } else if !url && !self.no_proxy.is_empty() {
            "if no_proxy is configured, proxy_url must also be configured"
        } else {
            return None;
        };
        Some(msg.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> Option<Secret> {
        Some(Secret::new(s))
    }

    fn first(c: &HttpClientConfig) -> Option<String> {
        c.problems().into_iter().next()
    }

    const EXCLUSIVE: &str = "at most one of basic_auth, authorization, oauth2, bearer_token & bearer_token_file must be configured";

    #[test]
    fn auth_methods_are_exclusive() {
        let mut c = HttpClientConfig {
            bearer_token: secret("token"),
            bearer_token_file: "/path/to/file.token".into(),
            ..Default::default()
        };
        assert_eq!(first(&c).as_deref(), Some(EXCLUSIVE));
        c.bearer_token_file.clear();
        assert_eq!(first(&c), None);
        c.basic_auth = Some(BasicAuth::default());
        assert_eq!(first(&c).as_deref(), Some(EXCLUSIVE));
        let c = HttpClientConfig {
            authorization: Some(Authorization::default()),
            basic_auth: Some(BasicAuth::default()),
            ..Default::default()
        };
        assert_eq!(first(&c).as_deref(), Some(EXCLUSIVE));
        // An empty bearer_token does not count, as in Alloy.
        let c = HttpClientConfig {
            bearer_token: secret(""),
            basic_auth: Some(BasicAuth::default()),
            ..Default::default()
        };
        assert_eq!(first(&c), None);
    }

    #[test]
    fn pairs_are_exclusive() {
        let c = HttpClientConfig {
            basic_auth: Some(BasicAuth {
                username: "u".into(),
                password: secret("p"),
                password_file: "f".into(),
            }),
            ..Default::default()
        };
        assert_eq!(
            first(&c).unwrap(),
            "at most one of basic_auth password & password_file must be configured"
        );
        let c = HttpClientConfig {
            authorization: Some(Authorization {
                r#type: " Basic ".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(
            first(&c)
                .unwrap()
                .starts_with("authorization type cannot be set to \"basic\"")
        );
        let tls = |t: TlsConfig| {
            first(&HttpClientConfig {
                tls_config: t,
                ..Default::default()
            })
        };
        assert_eq!(
            tls(TlsConfig {
                ca_pem: "x".into(),
                ca_file: "y".into(),
                ..Default::default()
            })
            .unwrap(),
            "at most one of ca_pem and ca_file must be configured"
        );
        assert_eq!(
            tls(TlsConfig {
                cert_file: "c".into(),
                ..Default::default()
            })
            .unwrap(),
            "exactly one of key_pem or key_file must be configured when a client certificate is configured"
        );
        assert_eq!(
            tls(TlsConfig {
                key_pem: secret("k"),
                ..Default::default()
            })
            .unwrap(),
            "exactly one of cert_pem or cert_file must be configured when a client key is configured"
        );
        assert_eq!(
            tls(TlsConfig {
                cert_pem: "c".into(),
                key_pem: secret("k"),
                key_file: "f".into(),
                ..Default::default()
            })
            .unwrap(),
            "at most one of key_pem and key_file must be configured"
        );
    }

    #[test]
    fn oauth2_and_proxy_rules() {
        let o = |o: OAuth2Config| {
            first(&HttpClientConfig {
                oauth2: Some(o),
                ..Default::default()
            })
        };
        assert_eq!(
            o(OAuth2Config::default()).unwrap(),
            "oauth2 client_id must be configured"
        );
        let base = OAuth2Config {
            client_id: "id".into(),
            client_secret: secret("s"),
            token_url: "http://t".into(),
            ..Default::default()
        };
        assert_eq!(o(base.clone()), None);
        assert_eq!(
            o(OAuth2Config {
                client_secret_file: "f".into(),
                ..base.clone()
            })
            .unwrap(),
            "at most one of oauth2 client_secret & client_secret_file must be configured"
        );
        assert_eq!(
            o(OAuth2Config {
                token_url: String::new(),
                ..base
            })
            .unwrap(),
            "oauth2 token_url must be configured"
        );
        let p = |p: ProxyConfig| {
            first(&HttpClientConfig {
                proxy: p,
                ..Default::default()
            })
        };
        assert_eq!(
            p(ProxyConfig {
                no_proxy: "a".into(),
                ..Default::default()
            })
            .unwrap(),
            "if no_proxy is configured, proxy_url must also be configured"
        );
        assert_eq!(
            p(ProxyConfig {
                proxy_from_environment: true,
                proxy_url: "http://p".into(),
                ..Default::default()
            })
            .unwrap(),
            "if proxy_from_environment is configured, proxy_url must not be configured"
        );
        let header = BTreeMap::from([("X".to_owned(), vec![Secret::new("v")])]);
        assert!(
            p(ProxyConfig {
                proxy_connect_header: header,
                ..Default::default()
            })
            .unwrap()
            .starts_with("if proxy_connect_header")
        );
    }

    #[test]
    fn debug_hides_secrets() {
        let c = HttpClientConfig {
            bearer_token: secret("hunter2"),
            http_headers: BTreeMap::from([("X-Key".to_owned(), vec![Secret::new("hunter3")])]),
            tls_config: TlsConfig {
                key_pem: secret("hunter4"),
                ..Default::default()
            },
            ..Default::default()
        };
        let s = format!("{c:?}");
        assert!(!s.contains("hunter"), "{s}");
    }
}
