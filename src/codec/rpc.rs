//! Which RPC protocol and message codec a request uses, told by its
//! `Content-Type`, and the content type to answer or call with.

/// The procedure path of Pyroscope's push RPC.
pub const PUSH_PROCEDURE: &str = "/push.v1.PusherService/Push";

/// The RPC protocols served on the push procedure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// Connect unary: the body is the bare message, errors are JSON.
    Connect,
    /// gRPC: length-prefixed messages, status in HTTP/2 trailers.
    Grpc,
    /// gRPC-Web: length-prefixed messages, status in a final body frame.
    GrpcWeb,
}

/// How messages are serialized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// Binary protobuf.
    Proto,
    /// The proto3 JSON mapping.
    Json,
}

impl Codec {
    /// The codec's name in content types (`proto`, `json`).
    pub fn name(self) -> &'static str {
        match self {
            Codec::Proto => "proto",
            Codec::Json => "json",
        }
    }
}

impl Protocol {
    /// Whether messages travel in the 5-byte length-prefixed framing.
    pub fn is_enveloped(self) -> bool {
        !matches!(self, Protocol::Connect)
    }

    /// The content type of a successful response, and of a request this
    /// relay sends. gRPC with protobuf uses the bare `application/grpc`,
    /// as connect-go does, because some proxies only know that form.
    pub fn content_type(self, codec: Codec) -> &'static str {
        match (self, codec) {
            (Protocol::Connect, Codec::Proto) => "application/proto",
            (Protocol::Connect, Codec::Json) => "application/json",
            (Protocol::Grpc, Codec::Proto) => "application/grpc",
            (Protocol::Grpc, Codec::Json) => "application/grpc+json",
            (Protocol::GrpcWeb, Codec::Proto) => "application/grpc-web+proto",
            (Protocol::GrpcWeb, Codec::Json) => "application/grpc-web+json",
        }
    }
}

/// The content type of a Connect unary error body, whatever the codec.
pub const CONNECT_ERROR_CONTENT_TYPE: &str = "application/json";

/// Every request content type [`classify`] accepts, for `Accept-Post` on
/// 415 answers.
pub const ACCEPTED_CONTENT_TYPES: &str = "application/proto, application/json, \
     application/grpc, application/grpc+proto, application/grpc+json, \
     application/grpc-web, application/grpc-web+proto, application/grpc-web+json";

/// Tells the protocol and codec of a push request from its `Content-Type`.
///
/// The media type is matched case-insensitively. Parameters are ignored,
/// except that a `charset` other than UTF-8 is refused: JSON must be UTF-8,
/// and for protobuf a charset is meaningless but harmless. connect-go is
/// stricter (only `application/json; charset=utf-8` may carry a parameter);
/// being lenient costs nothing because the relay decodes the message
/// itself. `None` means an unsupported type (answer 415).
pub fn classify(content_type: &str) -> Option<(Protocol, Codec)> {
    let mut parts = content_type.split(';');
    let media_type = parts.next()?.trim().to_ascii_lowercase();
    if !parts.all(is_acceptable_parameter) {
        return None;
    }
    let classified = match media_type.as_str() {
        "application/proto" => (Protocol::Connect, Codec::Proto),
        "application/json" => (Protocol::Connect, Codec::Json),
        "application/grpc" | "application/grpc+proto" => (Protocol::Grpc, Codec::Proto),
        "application/grpc+json" => (Protocol::Grpc, Codec::Json),
        "application/grpc-web" | "application/grpc-web+proto" => (Protocol::GrpcWeb, Codec::Proto),
        "application/grpc-web+json" => (Protocol::GrpcWeb, Codec::Json),
        _ => return None,
    };
    Some(classified)
}

/// Whether a `name=value` content-type parameter can be ignored.
fn is_acceptable_parameter(parameter: &str) -> bool {
    let parameter = parameter.trim();
    if parameter.is_empty() {
        return true;
    }
    let Some((name, value)) = parameter.split_once('=') else {
        return false;
    };
    if !name.trim().eq_ignore_ascii_case("charset") {
        return true;
    }
    let value = value.trim();
    let value = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value);
    value.eq_ignore_ascii_case("utf-8") || value.eq_ignore_ascii_case("utf8")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_supported_content_type() {
        use Codec::*;
        use Protocol::*;
        let cases = [
            ("application/proto", (Connect, Proto)),
            ("application/json", (Connect, Json)),
            ("application/json; charset=utf-8", (Connect, Json)),
            ("application/grpc", (Grpc, Proto)),
            ("application/grpc+proto", (Grpc, Proto)),
            ("application/grpc+json", (Grpc, Json)),
            ("application/grpc-web", (GrpcWeb, Proto)),
            ("application/grpc-web+proto", (GrpcWeb, Proto)),
            ("application/grpc-web+json", (GrpcWeb, Json)),
        ];
        for (content_type, expected) in cases {
            assert_eq!(classify(content_type), Some(expected), "{content_type}");
            assert_eq!(
                classify(&content_type.to_ascii_uppercase()),
                Some(expected),
                "{content_type} in upper case"
            );
            assert!(ACCEPTED_CONTENT_TYPES.contains(content_type.split(';').next().unwrap()));
        }
    }

    #[test]
    fn parameters_are_handled() {
        let json = Some((Protocol::Connect, Codec::Json));
        assert_eq!(classify("application/json;charset=UTF-8"), json);
        assert_eq!(classify(" application/json ; charset=\"utf-8\" "), json);
        assert_eq!(classify("application/json; foo=bar"), json);
        assert_eq!(classify("application/json;"), json);
        assert_eq!(classify("application/json; charset=iso-8859-1"), None);
        assert_eq!(classify("application/json; garbage"), None);
    }

    #[test]
    fn unsupported_content_types() {
        for content_type in [
            "",
            "text/plain",
            "application/octet-stream",
            "application/x-protobuf",
            "application/connect+proto",
            "application/grpc+xml",
            "application/grpc-web-text",
            "multipart/form-data; boundary=x",
        ] {
            assert_eq!(classify(content_type), None, "{content_type}");
        }
    }

    #[test]
    fn response_content_types_classify_back() {
        for protocol in [Protocol::Connect, Protocol::Grpc, Protocol::GrpcWeb] {
            for codec in [Codec::Proto, Codec::Json] {
                let content_type = protocol.content_type(codec);
                assert_eq!(classify(content_type), Some((protocol, codec)));
            }
        }
        assert_eq!(
            Protocol::Grpc.content_type(Codec::Proto),
            "application/grpc"
        );
        assert!(Protocol::GrpcWeb.is_enveloped());
        assert!(!Protocol::Connect.is_enveloped());
        assert_eq!(Codec::Json.name(), "json");
    }
}
