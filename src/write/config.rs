//! Decoding `pyroscope.write` blocks from the Alloy configuration language.
//!
//! ```alloy
//! pyroscope.write "default" {
//!   external_labels = { cluster = "c1" }
//!   endpoint {
//!     url            = "https://pyroscope:4040"
//!     remote_timeout = "10s"
//!     headers        = { "X-Scope-OrgID" = "squad-1" }
//!     basic_auth { username = "u"  password = sys.env("PW") }
//!   }
//! }
//! ```
//!
//! Validation problems are reported as diagnostics with Alloy's messages;
//! decoding always returns a value.

use std::collections::BTreeMap;

use super::http_config::{
    Authorization, BasicAuth, HttpClientConfig, OAuth2Config, ProxyConfig, TlsConfig, TlsVersion,
};
use super::{Arguments, EndpointConfig, QueueArguments, WhenFull, endpoint};
use crate::config::{BlockDecoder, ByteSize, DecodeBlock, Secret};
use crate::storage::SyncPolicy;

impl DecodeBlock for Arguments {
    fn decode(d: &mut BlockDecoder<'_>) -> Self {
        let external_labels = d.attr("external_labels", BTreeMap::new());
        let endpoints = d.blocks("endpoint");
        // Undocumented in Alloy; accepted and ignored (no tracing here).
        let _: Option<Tracing> = d.block("tracing");
        let queue = d.block("queue");
        Arguments {
            external_labels,
            endpoints,
            queue,
        }
    }
}

impl DecodeBlock for QueueArguments {
    fn decode(d: &mut BlockDecoder<'_>) -> Self {
        let defaults = QueueArguments::default();
        let max_size = d.attr("max_size", ByteSize(defaults.max_size)).0;
        let max_age = d.attr("max_age", defaults.max_age);
        let when_full = match d.attr("when_full", "reject".to_owned()).as_str() {
            "reject" => WhenFull::Reject,
            "drop_oldest" => WhenFull::DropOldest,
            other => {
                report(
                    d,
                    "when_full",
                    format!("when_full must be \"reject\" or \"drop_oldest\", not {other:?}"),
                );
                defaults.when_full
            }
        };
        let sync_text = d.attr("sync", "always".to_owned());
        let sync = match sync_text.as_str() {
            "always" => SyncPolicy::Always,
            text => match crate::config::parse_duration(text) {
                Ok(every) if !every.is_zero() => SyncPolicy::Every(every),
                _ => {
                    report(
                        d,
                        "sync",
                        format!(
                            "sync must be \"always\" or a duration such as \"200ms\", not {text:?}"
                        ),
                    );
                    defaults.sync
                }
            },
        };
        let max_in_flight: usize = d.attr("max_in_flight", defaults.max_in_flight);
        let max_batch_bytes = d
            .attr("max_batch_bytes", ByteSize(defaults.max_batch_bytes))
            .0;
        let drain_timeout = d.attr("drain_timeout", defaults.drain_timeout);
        if max_size == 0 {
            report(d, "max_size", "max_size must be larger than 0 bytes".into());
        }
        if max_age.is_zero() {
            report(d, "max_age", "max_age must be longer than 0s".into());
        }
        if max_in_flight == 0 {
            report(
                d,
                "max_in_flight",
                "max_in_flight must be at least 1".into(),
            );
        }
        QueueArguments {
            max_size,
            max_age,
            when_full,
            sync,
            max_in_flight,
            max_batch_bytes,
            drain_timeout,
        }
    }
}

struct Tracing;

impl DecodeBlock for Tracing {
    fn decode(d: &mut BlockDecoder<'_>) -> Self {
        let _: bool = d.attr("jaeger_propagator", true);
        let _: bool = d.attr("trace_context_propagator", true);
        Tracing
    }
}

impl DecodeBlock for EndpointConfig {
    fn decode(d: &mut BlockDecoder<'_>) -> Self {
        let defaults = EndpointConfig::new("");
        let url: String = d.required("url").unwrap_or_default();
        let cfg = EndpointConfig {
            name: d.attr("name", String::new()),
            remote_timeout: d.attr("remote_timeout", defaults.remote_timeout),
            headers: d.attr("headers", BTreeMap::new()),
            min_backoff_period: d.attr("min_backoff_period", defaults.min_backoff_period),
            max_backoff_period: d.attr("max_backoff_period", defaults.max_backoff_period),
            max_backoff_retries: d.attr("max_backoff_retries", defaults.max_backoff_retries),
            retry_on_http_429: d.attr("retry_on_http_429", defaults.retry_on_http_429),
            debug_info_upload_timeout: d.attr(
                "debug_info_upload_timeout",
                defaults.debug_info_upload_timeout,
            ),
            http_client: decode_http_client(d),
            url,
        };
        if !cfg.url.is_empty()
            && let Err(message) = endpoint::parse_url(&cfg.url)
        {
            report(d, "url", message);
        }
        for problem in cfg.problems() {
            let attribute = if problem.starts_with("remote_timeout") {
                "remote_timeout"
            } else if problem.starts_with("min_backoff_period") {
                "min_backoff_period"
            } else if problem == "url must be set" {
                if d.attr_span("url").is_none() {
                    continue; // already reported as missing
                }
                "url"
            } else {
                ""
            };
            report(d, attribute, problem);
        }
        cfg
    }
}

/// Reports at the attribute's value when it is set, else at the header.
fn report(d: &mut BlockDecoder<'_>, attribute: &str, message: String) {
    match d.attr_span(attribute) {
        Some(span) => d.error_at(span, message),
        None => d.error(message),
    }
}

/// The HTTP client attributes and blocks squashed into `endpoint`.
fn decode_http_client(d: &mut BlockDecoder<'_>) -> HttpClientConfig {
    let defaults = HttpClientConfig::default();
    HttpClientConfig {
        basic_auth: d.block("basic_auth"),
        authorization: d.block("authorization"),
        oauth2: d.block("oauth2"),
        bearer_token: d.optional::<Secret>("bearer_token"),
        bearer_token_file: d.attr("bearer_token_file", String::new()),
        tls_config: d.block_or_default("tls_config"),
        follow_redirects: d.attr("follow_redirects", defaults.follow_redirects),
        enable_http2: d.attr("enable_http2", defaults.enable_http2),
        proxy: decode_proxy(d),
        http_headers: d.attr("http_headers", BTreeMap::new()),
    }
}

/// The proxy attributes, squashed into `endpoint` and into `oauth2`.
fn decode_proxy(d: &mut BlockDecoder<'_>) -> ProxyConfig {
    ProxyConfig {
        proxy_url: d.attr("proxy_url", String::new()),
        no_proxy: d.attr("no_proxy", String::new()),
        proxy_from_environment: d.attr("proxy_from_environment", false),
        proxy_connect_header: d.attr("proxy_connect_header", BTreeMap::new()),
    }
}

impl DecodeBlock for BasicAuth {
    fn decode(d: &mut BlockDecoder<'_>) -> Self {
        BasicAuth {
            username: d.attr("username", String::new()),
            password: d.optional::<Secret>("password"),
            password_file: d.attr("password_file", String::new()),
        }
    }
}

impl DecodeBlock for Authorization {
    fn decode(d: &mut BlockDecoder<'_>) -> Self {
        Authorization {
            r#type: d.attr("type", "Bearer".to_owned()),
            credentials: d.optional::<Secret>("credentials"),
            credentials_file: d.attr("credentials_file", String::new()),
        }
    }
}

impl DecodeBlock for OAuth2Config {
    fn decode(d: &mut BlockDecoder<'_>) -> Self {
        OAuth2Config {
            client_id: d.attr("client_id", String::new()),
            client_secret: d.optional::<Secret>("client_secret"),
            client_secret_file: d.attr("client_secret_file", String::new()),
            token_url: d.attr("token_url", String::new()),
            scopes: d.attr("scopes", Vec::new()),
            endpoint_params: d.attr("endpoint_params", BTreeMap::new()),
            tls_config: d.block_or_default("tls_config"),
            proxy: decode_proxy(d),
        }
    }
}

impl DecodeBlock for TlsConfig {
    fn decode(d: &mut BlockDecoder<'_>) -> Self {
        let min_version = d.optional::<String>("min_version").and_then(|name| {
            let version = TlsVersion::from_name(&name);
            if version.is_none() {
                report(d, "min_version", format!("unknown TLS version: {name}"));
            }
            version
        });
        TlsConfig {
            ca_pem: d.attr("ca_pem", String::new()),
            ca_file: d.attr("ca_file", String::new()),
            cert_pem: d.attr("cert_pem", String::new()),
            cert_file: d.attr("cert_file", String::new()),
            key_pem: d.optional::<Secret>("key_pem"),
            key_file: d.attr("key_file", String::new()),
            server_name: d.attr("server_name", String::new()),
            insecure_skip_verify: d.attr("insecure_skip_verify", false),
            min_version,
        }
    }
}
