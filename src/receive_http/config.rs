//! Decoding `pyroscope.receive_http` blocks from the Alloy language.
//!
//! Unknown attributes are errors (the decoder reports what was not
//! consumed), so every attribute Alloy accepts is read here, including
//! those of the `grpc` block and the `http2` tuning this relay ignores.

use std::time::Duration;

use crate::config::{BlockDecoder, ByteSize, DecodeBlock, Secret};
use crate::pipeline::Receiver;

use super::arguments::{
    Arguments, ClientAuth, Http2Config, HttpConfig, TlsConfig, TlsVersion, forward_header_name,
};

impl DecodeBlock for Arguments {
    fn decode(d: &mut BlockDecoder<'_>) -> Self {
        let defaults = Arguments::default();
        let forward_to: Vec<Receiver> = d.required("forward_to").unwrap_or_default();
        let http = d.block_or_default::<HttpConfig>("http");
        let _ignored: Option<IgnoredGrpc> = d.block("grpc");
        let graceful_shutdown_timeout = d.attr(
            "graceful_shutdown_timeout",
            defaults.graceful_shutdown_timeout,
        );
        let debug_info_upload_timeout = d.attr(
            "debug_info_upload_timeout",
            defaults.debug_info_upload_timeout,
        );
        let forward_headers: Vec<String> = d.attr("forward_headers", Vec::new());
        for name in &forward_headers {
            if let Err(message) = forward_header_name(name) {
                report(d, "forward_headers", message);
            }
        }
        Arguments {
            forward_to,
            http,
            graceful_shutdown_timeout,
            forward_headers,
            debug_info_upload_timeout,
        }
    }
}

impl DecodeBlock for HttpConfig {
    fn decode(d: &mut BlockDecoder<'_>) -> Self {
        let defaults = HttpConfig::default();
        let max_request_body_size = d
            .optional::<ByteSize>("max_request_body_size")
            .map_or(defaults.max_request_body_size, bytes);
        let max_decompressed_body_size = d
            .optional::<ByteSize>("max_decompressed_body_size")
            .map(bytes);
        HttpConfig {
            listen_address: d.attr("listen_address", defaults.listen_address),
            listen_port: d.attr("listen_port", defaults.listen_port),
            conn_limit: d.attr("conn_limit", defaults.conn_limit),
            server_read_timeout: d.attr("server_read_timeout", defaults.server_read_timeout),
            server_write_timeout: d.attr("server_write_timeout", defaults.server_write_timeout),
            server_idle_timeout: d.attr("server_idle_timeout", defaults.server_idle_timeout),
            max_request_body_size,
            max_decompressed_body_size,
            tls: d.block("tls"),
            http2: d.block_or_default("http2"),
        }
    }
}

fn bytes(size: ByteSize) -> u64 {
    size.0
}

impl DecodeBlock for TlsConfig {
    fn decode(d: &mut BlockDecoder<'_>) -> Self {
        // Alloy's receiver takes the suites as one comma-separated string.
        let cipher_suites = d
            .attr("cipher_suites", String::new())
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        decode_tls(d, cipher_suites)
    }
}

/// The attributes the receiver's `tls` block shares with the admin
/// server's (`http > tls`), which takes `cipher_suites` as a list.
pub(crate) fn decode_tls(d: &mut BlockDecoder<'_>, cipher_suites: Vec<String>) -> TlsConfig {
    let client_ca_pem: String = d.attr("client_ca_pem", String::new());
    // `client_ca` is the name some Alloy versions use.
    let client_ca: String = d.attr("client_ca", String::new());
    if !client_ca_pem.is_empty() && !client_ca.is_empty() {
        d.error("at most one of client_ca_pem and client_ca must be set");
    }
    let client_auth_type = match d.optional::<String>("client_auth_type") {
        None => ClientAuth::default(),
        Some(name) => ClientAuth::parse(&name).unwrap_or_else(|| {
            let message = format!(
                "invalid client_auth_type {name:?}: expected one of {}",
                ClientAuth::NAMES
            );
            report(d, "client_auth_type", message);
            ClientAuth::default()
        }),
    };
    let min_version = match d.optional::<String>("min_version") {
        None => TlsVersion::default(),
        Some(name) => TlsVersion::parse(&name).unwrap_or_else(|| {
            let message =
                format!("invalid min_version {name:?}: expected TLS10, TLS11, TLS12 or TLS13");
            report(d, "min_version", message);
            TlsVersion::default()
        }),
    };
    let tls = TlsConfig {
        cert_pem: d.attr("cert_pem", String::new()),
        cert_file: d.attr("cert_file", String::new()),
        key_pem: d
            .optional::<Secret>("key_pem")
            .map(|s| s.expose().to_owned())
            .unwrap_or_default(),
        key_file: d.attr("key_file", String::new()),
        client_ca_pem: if client_ca_pem.is_empty() {
            client_ca
        } else {
            client_ca_pem
        },
        client_ca_file: d.attr("client_ca_file", String::new()),
        client_auth_type,
        min_version,
        cipher_suites,
    };
    for problem in tls.problems() {
        d.error(problem);
    }
    tls
}

fn report(d: &mut BlockDecoder<'_>, attribute: &str, message: String) {
    match d.attr_span(attribute) {
        Some(span) => d.error_at(span, message),
        None => d.error(message),
    }
}

impl DecodeBlock for Http2Config {
    fn decode(d: &mut BlockDecoder<'_>) -> Self {
        let defaults = Http2Config::default();
        // Accepted for compatibility with Alloy; hyper has no equivalent.
        let _: Option<i64> = d.optional("max_handlers");
        let _: Option<u32> = d.optional("max_decoder_header_table_size");
        let _: Option<u32> = d.optional("max_encoder_header_table_size");
        let _: Option<bool> = d.optional("permit_prohibited_ciphers");
        let _: Option<Duration> = d.optional("write_byte_timeout");
        Http2Config {
            enabled: d.attr("enabled", defaults.enabled),
            max_concurrent_streams: d
                .attr("max_concurrent_streams", defaults.max_concurrent_streams),
            max_read_frame_size: d.attr("max_read_frame_size", defaults.max_read_frame_size),
            read_idle_timeout: d.attr("read_idle_timeout", defaults.read_idle_timeout),
            ping_timeout: d.attr("ping_timeout", defaults.ping_timeout),
            idle_timeout: d.attr("idle_timeout", defaults.idle_timeout),
            max_upload_buffer_per_connection: d.attr(
                "max_upload_buffer_per_connection",
                defaults.max_upload_buffer_per_connection,
            ),
            max_upload_buffer_per_stream: d.attr(
                "max_upload_buffer_per_stream",
                defaults.max_upload_buffer_per_stream,
            ),
        }
    }
}

/// Alloy's `grpc` block: read so that configs written for Alloy load, and
/// otherwise ignored (Alloy serves nothing on it for this component).
struct IgnoredGrpc;

impl DecodeBlock for IgnoredGrpc {
    fn decode(d: &mut BlockDecoder<'_>) -> Self {
        let _: Option<String> = d.optional("listen_address");
        let _: Option<u16> = d.optional("listen_port");
        let _: Option<i64> = d.optional("conn_limit");
        let _: Option<Duration> = d.optional("max_connection_age");
        let _: Option<Duration> = d.optional("max_connection_age_grace");
        let _: Option<Duration> = d.optional("max_connection_idle");
        let _: Option<i64> = d.optional("server_max_recv_msg_size");
        let _: Option<i64> = d.optional("server_max_send_msg_size");
        let _: Option<u64> = d.optional("server_max_concurrent_streams");
        let _: Option<IgnoredTls> = d.block("tls");
        IgnoredGrpc
    }
}

/// The `grpc > tls` block, read and ignored.
struct IgnoredTls;

impl DecodeBlock for IgnoredTls {
    fn decode(d: &mut BlockDecoder<'_>) -> Self {
        for name in [
            "cert_pem",
            "cert_file",
            "key_file",
            "client_ca_pem",
            "client_ca",
            "client_ca_file",
            "client_auth_type",
            "cipher_suites",
            "min_version",
        ] {
            let _: Option<String> = d.optional(name);
        }
        let _: Option<Secret> = d.optional("key_pem");
        IgnoredTls
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
