//! `POST /push.v1.PusherService/Push` in Connect, gRPC and gRPC-Web: one
//! path from headers to receivers, differing only in where the timeout
//! and compression are named, whether the message is framed, and how the
//! answer is shaped (`reply`). The debuginfo unary calls reuse its header,
//! body and envelope handling (`debuginfo`).

use std::sync::{Arc, LazyLock};

use bytes::Bytes;
use http::{HeaderMap, Request};
use http_body::Body;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::body::{self, BodyError};
use super::budget::{RequestBudget, Reservation};
use super::forward::{self, Failures};
use super::reply;
use super::router::{App, Deadlines, Outcome};
use crate::codec::compress::{self, Compression};
use crate::codec::push::{decode_push, encode_push_response, series_from_proto};
use crate::codec::rpc::{Codec, Protocol, classify};
use crate::codec::{Code, CodecError, envelope, timeout};
use crate::pipeline::{Labels, Payload, Profile};

/// How many label sets an error message names before "and N more".
const DESCRIBED_SERIES: usize = 3;

/// A push (or debuginfo call) that failed, with the code to answer with.
#[derive(Debug)]
pub(super) struct RpcError {
    pub code: Code,
    pub message: String,
    /// The request body was not read to its end.
    pub body_unread: bool,
}

impl RpcError {
    pub(super) fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            body_unread: false,
        }
    }
}

impl From<CodecError> for RpcError {
    fn from(err: CodecError) -> Self {
        Self::new(err.code(), err.to_string())
    }
}

pub(super) async fn handle<B>(request: Request<B>, app: &App, deadlines: Deadlines) -> Outcome
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    let Some((protocol, codec)) = rpc_kind(request.headers()) else {
        return Outcome::new(reply::unsupported_media_type(), "push", "http");
    };
    let result = serve(protocol, codec, request, app, deadlines).await;
    rpc_outcome(
        "push",
        protocol,
        codec,
        result.map(|()| encode_push_response(codec)),
    )
}

/// The protocol and codec a unary RPC request's `Content-Type` names.
pub(super) fn rpc_kind(headers: &HeaderMap) -> Option<(Protocol, Codec)> {
    let content_type = headers.get(http::header::CONTENT_TYPE)?;
    classify(content_type.to_str().ok()?)
}

/// The answer to a unary RPC on `route`: the response message (already in
/// `codec`), or the error in the protocol's form.
pub(super) fn rpc_outcome(
    route: &'static str,
    protocol: Protocol,
    codec: Codec,
    result: Result<Bytes, RpcError>,
) -> Outcome {
    let (response, status, body_unread) = match result {
        Ok(message) => (reply::rpc_message(protocol, codec, message), "ok", false),
        Err(err) => {
            tracing::debug!(route, code = err.code.name(), message = %err.message, "RPC failed");
            let response = reply::rpc_error(protocol, codec, err.code, &err.message);
            (response, err.code.name(), err.body_unread)
        }
    };
    Outcome {
        response,
        route,
        protocol: protocol_label(protocol),
        status: status.into(),
        body_unread,
    }
}

fn protocol_label(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Connect => "connect",
        Protocol::Grpc => "grpc",
        Protocol::GrpcWeb => "grpc_web",
    }
}

async fn serve<B>(
    protocol: Protocol,
    codec: Codec,
    request: Request<B>,
    app: &App,
    deadlines: Deadlines,
) -> Result<(), RpcError>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    let (parts, body) = request.into_parts();
    let caller_deadline = caller_timeout(protocol, &parts.headers)?.map(|t| Instant::now() + t);
    let compression = request_compression(protocol, &parts.headers)?;
    let settings = app.settings();

    let read_deadline = earliest(deadlines.read, caller_deadline);
    let declared = body::content_length(&parts.headers);
    let limit = settings.body_limit;
    let body = body::read_limited(body, declared, limit, read_deadline, &app.budget)
        .await
        .map_err(|err| body_error(err, caller_deadline))?;
    app.metrics.received("push", body.len(), 0);

    let limit = usize::try_from(settings.decompressed_limit).unwrap_or(usize::MAX);
    let message =
        unwrap_message(protocol, compression, body, &settings, limit, &app.budget).await?;
    let series = series_from_proto(decode_push(message, codec)?);
    let profiles: usize = series.iter().map(|s| s.samples.len()).sum();
    app.metrics.received("push", 0, profiles);
    if series.is_empty() || settings.forward_to.is_empty() {
        return Ok(());
    }

    // Kept as received, for an error message; formatted only if one is due.
    let described: Vec<Labels> = series
        .iter()
        .take(DESCRIBED_SERIES)
        .map(|s| s.labels.clone())
        .collect();
    let series_count = series.len();
    let series = series
        .into_iter()
        .map(|mut s| {
            forward::ensure_service_name(&mut s.labels);
            s
        })
        .collect();
    let deadline = earliest(deadlines.respond, caller_deadline);
    if deadline.is_some_and(|d| d <= Instant::now()) {
        return Err(RpcError::new(Code::DeadlineExceeded, "deadline exceeded"));
    }
    let profile = Profile {
        payload: Payload::Push(series),
        forwarded_headers: forward::forwarded_headers(&parts.headers, &settings.forward_headers),
        deadline,
        protocol: protocol_label(protocol),
    };
    forward::deliver(&app.tap, &settings.forward_to, profile, deadline)
        .await
        .map_err(|failures| push_failure(&failures, &describe(&described, series_count)))
}

/// The caller's deadline header, as a duration from now.
pub(super) fn caller_timeout(
    protocol: Protocol,
    headers: &HeaderMap,
) -> Result<Option<std::time::Duration>, CodecError> {
    let (name, parse): (_, fn(&str) -> Result<_, CodecError>) = match protocol {
        Protocol::Connect => ("connect-timeout-ms", timeout::parse_connect_timeout_ms),
        Protocol::Grpc | Protocol::GrpcWeb => ("grpc-timeout", timeout::parse_grpc_timeout),
    };
    match headers.get(name) {
        None => Ok(None),
        Some(value) => parse(value.to_str().unwrap_or("\u{fffd}")).map(Some),
    }
}

/// The compression the request names: `Content-Encoding` for the whole
/// Connect body, `grpc-encoding` for gRPC messages flagged compressed.
pub(super) fn request_compression(
    protocol: Protocol,
    headers: &HeaderMap,
) -> Result<Compression, CodecError> {
    let name = match protocol {
        Protocol::Connect => http::header::CONTENT_ENCODING.as_str(),
        Protocol::Grpc | Protocol::GrpcWeb => "grpc-encoding",
    };
    match headers.get(name) {
        None => Ok(Compression::Identity),
        Some(value) => Compression::parse(value.to_str().unwrap_or("\u{fffd}")),
    }
}

/// The bare, uncompressed message of the body. Decompressed output is
/// reserved in the request memory budget as it grows; the compressed body
/// is let go as soon as it is decompressed.
pub(super) async fn unwrap_message(
    protocol: Protocol,
    compression: Compression,
    body: Bytes,
    settings: &super::router::Settings,
    decompressed_limit: usize,
    budget: &Arc<RequestBudget>,
) -> Result<Bytes, CodecError> {
    let max_len = usize::try_from(settings.body_limit).unwrap_or(usize::MAX);
    let (compressed, message) = split_message(protocol, compression, body, max_len)?;
    if !compressed || message.is_empty() {
        return Ok(message);
    }
    let reservation = budget.reservation();
    if message.len() < INLINE_GUNZIP_INPUT {
        return gunzip(message, decompressed_limit, reservation);
    }
    // A closed semaphore cannot happen (it is never closed); go on anyway.
    let _slot = GUNZIP_SLOTS.acquire().await;
    let work = move || gunzip(message, decompressed_limit, reservation);
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
        Err(_) => Err(CodecError::Decompress(compress::DecompressError::Refused {
            capacity: 0,
        })),
    }
}

/// Compressed inputs below this are gunzipped on the async worker: handing
/// them to another thread costs more than they take.
const INLINE_GUNZIP_INPUT: usize = 16 * 1024;

/// Larger inputs are gunzipped on the blocking pool, at most one per core
/// at a time, so that a stream of gzip bombs cannot take the async workers
/// (or all the CPU) that every other request needs.
static GUNZIP_SLOTS: LazyLock<Semaphore> =
    LazyLock::new(|| Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get())));

/// Whether the message is compressed, and the message: the body, or the
/// one enveloped message of gRPC / gRPC-Web.
fn split_message(
    protocol: Protocol,
    compression: Compression,
    body: Bytes,
    max_len: usize,
) -> Result<(bool, Bytes), CodecError> {
    if !protocol.is_enveloped() {
        return Ok((compression == Compression::Gzip, body));
    }
    let envelope = envelope::parse_single_message(&body, max_len)?;
    if envelope.compressed && compression == Compression::Identity {
        return Err(CodecError::CompressedWithoutEncoding);
    }
    Ok((envelope.compressed, envelope.message))
}

/// Gunzips `message`, holding in `reservation` what the output buffer
/// takes: while it grows, the old and the new allocation.
fn gunzip(message: Bytes, limit: usize, mut reservation: Reservation) -> Result<Bytes, CodecError> {
    let output = compress::gunzip_within(&message, limit, |from, to| {
        reservation.shrink_to(from as u64);
        reservation.grow_to((from + to) as u64).is_ok()
    });
    drop(message);
    let output = output?;
    reservation.shrink_to(output.capacity() as u64);
    Ok(reservation.seal(output))
}

pub(super) fn body_error(err: BodyError, caller_deadline: Option<Instant>) -> RpcError {
    let code = match err {
        BodyError::TooLarge { .. } | BodyError::OverBudget(_) => Code::ResourceExhausted,
        BodyError::TimedOut => Code::DeadlineExceeded,
        BodyError::Read(_) => Code::InvalidArgument,
    };
    let message = match err {
        BodyError::TimedOut if caller_deadline.is_some_and(|d| d <= Instant::now()) => {
            "deadline exceeded while reading the request".to_owned()
        }
        err => err.to_string(),
    };
    RpcError {
        body_unread: true,
        ..RpcError::new(code, message)
    }
}

/// Alloy's wording, one line per failed receiver:
/// `unable to append series {app="app-0"} to appendable 1: <error>`.
fn push_failure(failures: &Failures, described: &str) -> RpcError {
    let (_, chosen) = failures.most_meaningful();
    let message = failures
        .errors
        .iter()
        .map(|(i, err)| format!("unable to append series {described} to appendable {i}: {err}"))
        .collect::<Vec<_>>()
        .join("\n");
    RpcError::new(chosen.code, message)
}

/// The first label sets of a request as received, for error messages.
fn describe(first: &[Labels], total: usize) -> String {
    let mut described: Vec<String> = first.iter().map(Labels::to_string).collect();
    if total > first.len() {
        described.push(format!("and {} more", total - first.len()));
    }
    described.join(", ")
}

pub(super) fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
