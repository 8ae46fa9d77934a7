//! Error bodies of the Connect protocol and the `grpc-message` encoding.
//!
//! A Connect unary error is a non-200 response with a JSON body
//! `{"code":"invalid_argument","message":"..."}`; gRPC carries the message
//! in the `grpc-message` trailer, percent-encoded.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::Code;

#[derive(Serialize)]
struct WireErrorOut<'a> {
    code: &'static str,
    #[serde(skip_serializing_if = "str::is_empty")]
    message: &'a str,
}

/// What a peer's error body may hold; `details` and unknown fields are
/// ignored.
#[derive(Deserialize)]
struct WireErrorIn {
    code: Option<String>,
    message: Option<String>,
}

/// The JSON body of a Connect error response. An empty message is omitted,
/// as the protocol allows.
pub fn encode(code: Code, message: &str) -> Vec<u8> {
    let wire = WireErrorOut {
        code: code.name(),
        message,
    };
    // Serializing two strings into a Vec cannot fail.
    serde_json::to_vec(&wire).expect("a Connect error always serializes")
}

/// Reads a backend's Connect error body. `None` when the body is not a JSON
/// object with a known `code`; the caller then falls back to
/// [`Code::from_http_status`], as connect-go does.
pub fn decode(body: &[u8]) -> Option<(Code, String)> {
    let wire: WireErrorIn = serde_json::from_slice(body).ok()?;
    let code = Code::from_name(wire.code.as_deref()?)?;
    Some((code, wire.message.unwrap_or_default()))
}

/// Percent-encodes a status message for the `grpc-message` header: bytes
/// outside printable ASCII (0x20..=0x7e) and `%` itself become `%XX`.
pub fn percent_encode_grpc_message(message: &str) -> String {
    let mut encoded = String::with_capacity(message.len());
    for &byte in message.as_bytes() {
        if (0x20..=0x7e).contains(&byte) && byte != b'%' {
            encoded.push(char::from(byte));
        } else {
            // Writing into a String cannot fail.
            let _ = write!(encoded, "%{byte:02X}");
        }
    }
    encoded
}

/// Decodes a `grpc-message` value. As the gRPC spec asks of receivers, a
/// `%` not followed by two hex digits is kept as it is, and bytes that do
/// not form UTF-8 become U+FFFD.
pub fn percent_decode_grpc_message(value: &str) -> String {
    let input = value.as_bytes();
    let mut decoded = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        let byte = input[i];
        if byte == b'%'
            && let Some(hex) = input.get(i + 1..i + 3)
            && let (Some(high), Some(low)) = (hex_value(hex[0]), hex_value(hex[1]))
        {
            decoded.push(high << 4 | low);
            i += 3;
            continue;
        }
        decoded.push(byte);
        i += 1;
    }
    match String::from_utf8(decoded) {
        Ok(text) => text,
        Err(err) => String::from_utf8_lossy(err.as_bytes()).into_owned(),
    }
}

fn hex_value(digit: u8) -> Option<u8> {
    char::from(digit).to_digit(16).map(|v| v as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_connect_error_json() {
        let body = encode(Code::ResourceExhausted, "limit \"x\" reached");
        assert_eq!(
            String::from_utf8(body.clone()).unwrap(),
            r#"{"code":"resource_exhausted","message":"limit \"x\" reached"}"#
        );
        assert_eq!(
            decode(&body),
            Some((Code::ResourceExhausted, "limit \"x\" reached".to_owned()))
        );
        assert_eq!(encode(Code::Internal, ""), br#"{"code":"internal"}"#);
    }

    #[test]
    fn decodes_backend_errors_leniently() {
        let body =
            br#"{"code":"unavailable","message":"down","details":[{"type":"t","value":"AA"}]}"#;
        assert_eq!(decode(body), Some((Code::Unavailable, "down".to_owned())));
        assert_eq!(
            decode(br#"{"code":"invalid_argument"}"#),
            Some((Code::InvalidArgument, String::new()))
        );
        assert_eq!(decode(br#"{"code":"no_such_code","message":"x"}"#), None);
        assert_eq!(decode(br#"{"message":"x"}"#), None);
        assert_eq!(decode(b"Bad Gateway\n"), None);
        assert_eq!(decode(b""), None);
    }

    #[test]
    fn grpc_message_percent_encoding() {
        assert_eq!(percent_encode_grpc_message("plain text"), "plain text");
        assert_eq!(
            percent_encode_grpc_message("100%\r\nnaïve"),
            "100%25%0D%0Ana%C3%AFve"
        );
        assert_eq!(
            percent_decode_grpc_message("100%25%0D%0Ana%C3%AFve"),
            "100%\r\nnaïve"
        );
        // Malformed escapes are kept; broken UTF-8 is replaced.
        assert_eq!(percent_decode_grpc_message("50%zz%4"), "50%zz%4");
        assert_eq!(percent_decode_grpc_message("%"), "%");
        assert_eq!(percent_decode_grpc_message("a%FFb"), "a\u{fffd}b");
        assert_eq!(percent_decode_grpc_message("%e2%9c%93"), "✓");
    }
}
