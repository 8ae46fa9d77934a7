//! The debuginfo routes, for the eBPF profiler's symbol uploads, relayed to
//! the first debuginfo target across `forward_to` (see
//! `pipeline::debuginfo`):
//!
//! | Path (under `/debuginfo.v1alpha1.DebuginfoService/`) | Answer |
//! |---|---|
//! | `ShouldInitiateUpload`, `UploadFinished` | the backend's answer, or its error with its code; `unavailable` with no target |
//! | `Upload/{gnu_build_id}` | 200 once the backend answered 200; 503 with no target; 502 when the backend failed or answered otherwise; 504 past `debug_info_upload_timeout`; 400 when the client's body broke off |
//! | the same paths, not POST | 405 |
//! | any other path | 404 |
//!
//! The unary calls are served in Connect, gRPC and gRPC-Web, proto or JSON,
//! like the push RPC, and relayed as Connect unary calls in the client's
//! codec. An upload streams: each frame of the client's body goes to the
//! backend as it arrives, so memory holds what is in flight (hyper's read
//! and write buffers and the HTTP/2 window), never the file. Its time is
//! bounded by `debug_info_upload_timeout` instead of the server's read and
//! write timeouts, and `max_request_body_size` does not apply to it, as
//! nothing of it is held.

use std::error::Error as StdError;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body::{Body, Frame, SizeHint};
use prost::Message;
use tokio::time::Instant;

use super::body;
use super::forward::forwarded_headers;
use super::push::{self, RpcError, earliest};
use super::reply::{self, HttpResponse};
use super::router::{App, Deadlines, Outcome};
use crate::codec::Code;
use crate::codec::proto::debuginfo::v1alpha1::{
    ShouldInitiateUploadRequest, UploadFinishedRequest,
};
use crate::codec::rpc::{Codec, Protocol};
use crate::pipeline::{
    DebuginfoCall, DebuginfoMethod, DebuginfoUpload, UploadBody, UploadError,
    first_debuginfo_target,
};

/// Alloy's words when no `forward_to` leads to a debuginfo target.
const NO_TARGET: &str = "no downstream endpoints available";
const UPLOAD_METHOD: &str = "Upload";
/// What is read of an upload the relay refuses before passing it on.
const DISCARD_MAX_BYTES: usize = 1 << 20;
const DISCARD_MAX_TIME: std::time::Duration = std::time::Duration::from_secs(1);

/// What a path under the service prefix names.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum DebuginfoRoute {
    Unary(DebuginfoMethod),
    /// The `{gnu_build_id}` segment, as received.
    Upload(String),
    Unknown,
}

impl DebuginfoRoute {
    /// `rest` is the path after `/debuginfo.v1alpha1.DebuginfoService/`.
    pub fn of(rest: &str) -> Self {
        if let Some(method) = DebuginfoMethod::from_name(rest) {
            return Self::Unary(method);
        }
        match rest.strip_prefix("Upload/") {
            Some(id) if is_path_segment(id) => Self::Upload(id.to_owned()),
            _ => Self::Unknown,
        }
    }
}

/// Whether `id` is one path segment once decoded, as Alloy's router needs
/// it to be (it matches decoded paths, after cleaning `.` and `..` away):
/// so that the id, passed on as received, names the same file downstream
/// and cannot climb out of the backend's upload path.
fn is_path_segment(id: &str) -> bool {
    let decoded = percent_encoding::percent_decode_str(id).decode_utf8_lossy();
    !matches!(&*decoded, "" | "." | "..") && !decoded.contains('/')
}

pub(super) async fn handle<B>(
    route: DebuginfoRoute,
    request: Request<B>,
    app: &App,
    deadlines: Deadlines,
) -> Outcome
where
    B: Body<Data = Bytes> + Unpin + Send + 'static,
    B::Error: StdError + Send + Sync + 'static,
{
    let post = request.method() == Method::POST;
    match route {
        DebuginfoRoute::Unknown => Outcome::new(reply::not_found(), "other", "http"),
        DebuginfoRoute::Unary(_) if !post => {
            Outcome::new(reply::method_not_allowed(), "debuginfo", "http")
        }
        DebuginfoRoute::Upload(_) if !post => {
            Outcome::new(reply::method_not_allowed(), "debuginfo_upload", "http")
        }
        DebuginfoRoute::Unary(method) => unary(method, request, app, deadlines).await,
        DebuginfoRoute::Upload(id) => upload(id, request, app).await,
    }
}

async fn unary<B>(
    method: DebuginfoMethod,
    request: Request<B>,
    app: &App,
    deadlines: Deadlines,
) -> Outcome
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    let Some((protocol, codec)) = push::rpc_kind(request.headers()) else {
        return Outcome::new(reply::unsupported_media_type(), "debuginfo", "http");
    };
    let result = relay_call(method, protocol, codec, request, app, deadlines).await;
    push::rpc_outcome("debuginfo", protocol, codec, result)
}

async fn relay_call<B>(
    method: DebuginfoMethod,
    protocol: Protocol,
    codec: Codec,
    request: Request<B>,
    app: &App,
    deadlines: Deadlines,
) -> Result<Bytes, RpcError>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    let (parts, body) = request.into_parts();
    let caller_deadline =
        push::caller_timeout(protocol, &parts.headers)?.map(|t| Instant::now() + t);
    let compression = push::request_compression(protocol, &parts.headers)?;
    let settings = app.settings();
    let read_deadline = earliest(deadlines.read, caller_deadline);
    let declared = body::content_length(&parts.headers);
    let body = body::read_limited(
        body,
        declared,
        settings.body_limit,
        read_deadline,
        &app.budget,
    )
    .await
    .map_err(|err| push::body_error(err, caller_deadline))?;
    let limit = usize::try_from(settings.decompressed_limit).unwrap_or(usize::MAX);
    let message =
        push::unwrap_message(protocol, compression, body, &settings, limit, &app.budget).await?;
    check_message(method, codec, &message)?;

    let Some(target) = first_debuginfo_target(&settings.forward_to) else {
        app.metrics.debuginfo_call(method.name(), false);
        tracing::warn!(method = method.name(), "debuginfo call: {NO_TARGET}");
        return Err(RpcError::new(Code::Unavailable, NO_TARGET));
    };
    let deadline = earliest(deadlines.respond, caller_deadline);
    if deadline.is_some_and(|d| d <= Instant::now()) {
        app.metrics.debuginfo_call(method.name(), false);
        return Err(RpcError::new(Code::DeadlineExceeded, "deadline exceeded"));
    }
    let call = DebuginfoCall {
        method,
        codec,
        message,
        forwarded_headers: forwarded_headers(&parts.headers, &settings.forward_headers),
        deadline,
    };
    let answer = match deadline {
        Some(deadline) => tokio::time::timeout_at(deadline, target.call(call))
            .await
            .unwrap_or_else(|_| {
                Err(crate::pipeline::AppendError::deadline_exceeded(
                    "deadline exceeded before the backend answered",
                ))
            }),
        None => target.call(call).await,
    };
    app.metrics.debuginfo_call(method.name(), answer.is_ok());
    answer.map_err(|err| {
        tracing::warn!(method = method.name(), code = err.code.name(), error = %err.message, "debuginfo call failed downstream");
        RpcError::new(err.code, err.message)
    })
}

/// Refuses a message the backend could not decode either, as connect-go
/// would before Alloy's handler runs. The message itself is relayed as
/// received.
fn check_message(method: DebuginfoMethod, codec: Codec, message: &[u8]) -> Result<(), RpcError> {
    let invalid = |e: &dyn std::fmt::Display| {
        RpcError::new(
            Code::InvalidArgument,
            format!("unmarshal into {}: {e}", method.name()),
        )
    };
    match codec {
        Codec::Proto => match method {
            DebuginfoMethod::ShouldInitiateUpload => {
                let request =
                    ShouldInitiateUploadRequest::decode(message).map_err(|e| invalid(&e))?;
                let file = request.file.unwrap_or_default();
                tracing::debug!(gnu_build_id = %file.gnu_build_id, name = %file.name, "ShouldInitiateUpload");
            }
            DebuginfoMethod::UploadFinished => {
                let request = UploadFinishedRequest::decode(message).map_err(|e| invalid(&e))?;
                tracing::debug!(gnu_build_id = %request.gnu_build_id, "UploadFinished");
            }
        },
        Codec::Json => {
            serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(message)
                .map_err(|e| invalid(&e))?;
        }
    }
    Ok(())
}

async fn upload<B>(gnu_build_id: String, request: Request<B>, app: &App) -> Outcome
where
    B: Body<Data = Bytes> + Unpin + Send + 'static,
    B::Error: StdError + Send + Sync + 'static,
{
    let settings = app.settings();
    let (parts, body) = request.into_parts();
    let Some(target) = first_debuginfo_target(&settings.forward_to) else {
        app.metrics.debuginfo_call(UPLOAD_METHOD, false);
        tracing::warn!(gnu_build_id, "debuginfo upload: {NO_TARGET}");
        let read_all = discard_briefly(body).await;
        let response = reply::plain(StatusCode::SERVICE_UNAVAILABLE, format!("{NO_TARGET}\n"));
        return upload_outcome(response, !read_all);
    };
    let started = Instant::now();
    let progress = Arc::new(Progress::default());
    let relayed = Relayed {
        inner: body,
        progress: progress.clone(),
    };
    let timeout = settings.debug_info_upload_timeout;
    let deadline = (!timeout.is_zero()).then(|| started + timeout);
    let upload = DebuginfoUpload {
        gnu_build_id: gnu_build_id.clone(),
        body: UploadBody::new(relayed),
        forwarded_headers: forwarded_headers(&parts.headers, &settings.forward_headers),
    };
    let result = match deadline {
        Some(deadline) => tokio::time::timeout_at(deadline, target.upload(upload))
            .await
            .unwrap_or(Err(UploadError::TimedOut(timeout))),
        None => target.upload(upload).await,
    };
    app.metrics.debuginfo_call(UPLOAD_METHOD, result.is_ok());
    let bytes = progress.bytes.load(Ordering::Relaxed);
    let ended = progress.ended.load(Ordering::Acquire);
    let response = match result {
        Ok(()) => {
            tracing::debug!(gnu_build_id, bytes, "debuginfo upload relayed");
            reply::plain(StatusCode::OK, Bytes::new())
        }
        Err(err) => {
            tracing::warn!(gnu_build_id, bytes, error = %err, "debuginfo upload failed");
            let status = match err {
                _ if ended == BODY_FAILED => StatusCode::BAD_REQUEST,
                UploadError::TimedOut(_) => StatusCode::GATEWAY_TIMEOUT,
                UploadError::Status { .. } | UploadError::Failed(_) => StatusCode::BAD_GATEWAY,
            };
            let text = match progress.read_error.get() {
                Some(read) if status == StatusCode::BAD_REQUEST => {
                    format!("failed to read the request body: {read}\n")
                }
                _ => format!("downstream upload: {err}\n"),
            };
            reply::plain(status, text)
        }
    };
    upload_outcome(response, ended != BODY_COMPLETE)
}

/// Reads and drops what is left of a body the relay will not pass on, up
/// to [`DISCARD_MAX_BYTES`] within [`DISCARD_MAX_TIME`], before answering:
/// a client still writing a small body then reads the answer instead of
/// failing its write on a closed connection (Go's server drains up to
/// 256 KiB for the same reason). Whether the body was read to its end.
async fn discard_briefly<B>(mut body: B) -> bool
where
    B: Body<Data = Bytes> + Unpin,
{
    use http_body_util::BodyExt;
    let reading = async {
        let mut read: usize = 0;
        while read <= DISCARD_MAX_BYTES {
            match body.frame().await {
                Some(Ok(frame)) => read += frame.data_ref().map_or(0, Bytes::len),
                Some(Err(_)) => return false,
                None => return true,
            }
        }
        false
    };
    tokio::time::timeout(DISCARD_MAX_TIME, reading)
        .await
        .unwrap_or(false)
}

fn upload_outcome(response: HttpResponse, body_unread: bool) -> Outcome {
    Outcome {
        body_unread,
        ..Outcome::new(response, "debuginfo_upload", "http")
    }
}

const BODY_COMPLETE: u8 = 1;
const BODY_FAILED: u8 = 2;

/// How far the client's body got on its way downstream.
#[derive(Debug, Default)]
struct Progress {
    bytes: AtomicU64,
    /// 0 while reading, then [`BODY_COMPLETE`] or [`BODY_FAILED`].
    ended: AtomicU8,
    /// Why the client's body could not be read, for the answer.
    read_error: OnceLock<String>,
}

/// The client's body as the backend's request body: data frames pass
/// through one at a time as the backend's connection takes them, and the
/// [`Progress`] tells the handler afterwards whether it was all read.
struct Relayed<B> {
    inner: B,
    progress: Arc<Progress>,
}

impl<B> Body for Relayed<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: StdError + Send + Sync + 'static,
{
    type Data = Bytes;
    type Error = Box<dyn StdError + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        loop {
            match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => {
                        let len = data.len() as u64;
                        this.progress.bytes.fetch_add(len, Ordering::Relaxed);
                        return Poll::Ready(Some(Ok(Frame::data(data))));
                    }
                    // Request trailers carry nothing the backend needs.
                    Err(_) => continue,
                },
                Some(Err(err)) => {
                    let _ = this.progress.read_error.set(err.to_string());
                    this.progress.ended.store(BODY_FAILED, Ordering::Release);
                    return Poll::Ready(Some(Err(Box::new(err))));
                }
                None => {
                    this.progress.ended.store(BODY_COMPLETE, Ordering::Release);
                    return Poll::Ready(None);
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    /// The client's `Content-Length`, when it sent one, goes downstream.
    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_under_the_service_prefix() {
        use DebuginfoRoute::*;
        assert_eq!(
            DebuginfoRoute::of("ShouldInitiateUpload"),
            Unary(DebuginfoMethod::ShouldInitiateUpload)
        );
        assert_eq!(
            DebuginfoRoute::of("UploadFinished"),
            Unary(DebuginfoMethod::UploadFinished)
        );
        assert_eq!(DebuginfoRoute::of("Upload/abc01"), Upload("abc01".into()));
        assert_eq!(DebuginfoRoute::of("Upload/a%20b"), Upload("a%20b".into()));
        let unknown = [
            "Upload",
            "Upload/",
            "Upload/a/b",
            "Upload/..",
            "Upload/%2E%2E",
            "Upload/a%2Fb",
            "ListDebuginfo",
            "",
        ];
        for unknown in unknown {
            assert_eq!(DebuginfoRoute::of(unknown), Unknown, "{unknown}");
        }
    }

    #[test]
    fn undecodable_messages_are_refused() {
        let ok = ShouldInitiateUploadRequest::default().encode_to_vec();
        assert!(check_message(DebuginfoMethod::ShouldInitiateUpload, Codec::Proto, &ok).is_ok());
        let err =
            check_message(DebuginfoMethod::UploadFinished, Codec::Proto, b"\xff\xff").unwrap_err();
        assert_eq!(err.code, Code::InvalidArgument);
        assert!(check_message(DebuginfoMethod::UploadFinished, Codec::Json, b"{}").is_ok());
        let err = check_message(DebuginfoMethod::UploadFinished, Codec::Json, b"[1]").unwrap_err();
        assert_eq!(err.code, Code::InvalidArgument);
    }
}
