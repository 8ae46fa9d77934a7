//! Response bodies and the answers of each protocol: plain HTTP for
//! `/ingest` and routing, and the success and error forms of Connect, gRPC
//! and gRPC-Web (for the push and debuginfo RPCs).

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{ALLOW, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};

use crate::codec::Code;
use crate::codec::connect_error;
use crate::codec::envelope;
use crate::codec::rpc::{self, Codec, Protocol};

/// Longest status message sent in a `grpc-message` header, before
/// percent-encoding (the gRPC-Web frame applies the same cap).
const MAX_GRPC_MESSAGE_LEN: usize = envelope::MAX_GRPC_MESSAGE_LEN;

pub(super) type HttpResponse = Response<ResponseBody>;

/// A response body held in memory: at most one data frame, then optional
/// trailers (gRPC). Empty with no trailers ends the stream with the
/// headers, which is what a gRPC Trailers-Only answer needs.
#[derive(Debug, Default)]
pub struct ResponseBody {
    data: Option<Bytes>,
    trailers: Option<HeaderMap>,
}

impl ResponseBody {
    pub(super) fn new(data: impl Into<Bytes>) -> Self {
        let data: Bytes = data.into();
        Self {
            data: (!data.is_empty()).then_some(data),
            trailers: None,
        }
    }

    fn with_trailers(data: Bytes, trailers: HeaderMap) -> Self {
        Self {
            data: (!data.is_empty()).then_some(data),
            trailers: Some(trailers),
        }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        if let Some(data) = this.data.take() {
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        Poll::Ready(this.trailers.take().map(|t| Ok(Frame::trailers(t))))
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_none() && self.trailers.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        let len = self.data.as_ref().map_or(0, |d| d.len() as u64);
        if self.trailers.is_none() {
            SizeHint::with_exact(len)
        } else {
            // Not exact, so HTTP/1.1 uses chunked encoding and can carry
            // the trailers.
            let mut hint = SizeHint::new();
            hint.set_lower(len);
            hint
        }
    }
}

fn response(
    status: StatusCode,
    content_type: Option<&'static str>,
    body: ResponseBody,
) -> HttpResponse {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    if let Some(content_type) = content_type {
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    }
    response
}

/// A plain-text answer; an empty `text` sends no body and no content type.
pub(super) fn plain(status: StatusCode, text: impl Into<Bytes>) -> HttpResponse {
    let text: Bytes = text.into();
    let content_type = (!text.is_empty()).then_some("text/plain; charset=utf-8");
    response(status, content_type, ResponseBody::new(text))
}

/// 404 as Go's `http.NotFound` words it.
pub(super) fn not_found() -> HttpResponse {
    plain(StatusCode::NOT_FOUND, "404 page not found\n")
}

/// 405 naming the one method the route takes.
pub(super) fn method_not_allowed() -> HttpResponse {
    let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, Bytes::new());
    response
        .headers_mut()
        .insert(ALLOW, HeaderValue::from_static("POST"));
    response
}

/// 415 for a push request whose content type names no protocol, listing
/// the accepted ones as connect-go does.
pub(super) fn unsupported_media_type() -> HttpResponse {
    let mut response = plain(StatusCode::UNSUPPORTED_MEDIA_TYPE, Bytes::new());
    response.headers_mut().insert(
        "accept-post",
        HeaderValue::from_static(rpc::ACCEPTED_CONTENT_TYPES),
    );
    response
}

/// A successful unary answer carrying `message`, already in `codec`.
pub(super) fn rpc_message(protocol: Protocol, codec: Codec, message: Bytes) -> HttpResponse {
    let content_type = Some(protocol.content_type(codec));
    if protocol == Protocol::Connect {
        return response(StatusCode::OK, content_type, ResponseBody::new(message));
    }
    let framed = match envelope::encode(0, &message) {
        Ok(framed) => framed,
        Err(err) => return rpc_error(protocol, codec, Code::Internal, &err.to_string()),
    };
    if protocol == Protocol::Grpc {
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", HeaderValue::from_static("0"));
        return response(
            StatusCode::OK,
            content_type,
            ResponseBody::with_trailers(framed, trailers),
        );
    }
    let mut body = framed.to_vec();
    body.extend_from_slice(&envelope::encode_grpc_web_trailers(None, ""));
    response(StatusCode::OK, content_type, ResponseBody::new(body))
}

/// A failed push, in the protocol's own error form: Connect's JSON body
/// with the code's HTTP status, gRPC's Trailers-Only `grpc-status` and
/// `grpc-message` headers, gRPC-Web's trailer frame.
pub(super) fn rpc_error(
    protocol: Protocol,
    codec: Codec,
    code: Code,
    message: &str,
) -> HttpResponse {
    match protocol {
        Protocol::Connect => {
            let status = StatusCode::from_u16(code.http_status())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let body = ResponseBody::new(connect_error::encode(code, message));
            response(status, Some(rpc::CONNECT_ERROR_CONTENT_TYPE), body)
        }
        Protocol::Grpc => {
            let mut response = response(
                StatusCode::OK,
                Some(protocol.content_type(codec)),
                ResponseBody::default(),
            );
            let headers = response.headers_mut();
            headers.insert("grpc-status", HeaderValue::from(code.grpc()));
            let encoded = connect_error::percent_encode_grpc_message(cut(message));
            if let Ok(value) = HeaderValue::from_str(&encoded) {
                headers.insert("grpc-message", value);
            }
            response
        }
        Protocol::GrpcWeb => {
            let body = envelope::encode_grpc_web_trailers(Some(code), message);
            response(
                StatusCode::OK,
                Some(protocol.content_type(codec)),
                ResponseBody::new(body),
            )
        }
    }
}

/// The longest prefix of `s` of at most [`MAX_GRPC_MESSAGE_LEN`] bytes
/// ending on a char boundary.
fn cut(s: &str) -> &str {
    if s.len() <= MAX_GRPC_MESSAGE_LEN {
        return s;
    }
    let mut end = MAX_GRPC_MESSAGE_LEN;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
