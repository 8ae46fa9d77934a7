//! The debuginfo capability: a second, narrow way through a `receiver`
//! export, for the eBPF profiler's symbol uploads.
//!
//! Profiles fan out to every receiver; debug info goes to ONE place, the
//! first debuginfo-capable target across a receiver's `forward_to` (as in
//! Alloy). A sender that can relay it (a `pyroscope.write` with at least
//! one endpoint) exposes a [`DebuginfoTarget`] through
//! [`Appender::debuginfo`](super::Appender::debuginfo); a stage
//! (`pyroscope.relabel`) passes on the first one behind it; anything else
//! (the archive) has none.

use std::error::Error as StdError;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::{HeaderName, HeaderValue};
use http_body_util::combinators::UnsyncBoxBody;
use tokio::time::Instant;

use super::AppendError;
use crate::codec::rpc::Codec;

/// The service's path prefix, on the relay and on the backend.
pub const DEBUGINFO_SERVICE_PREFIX: &str = "/debuginfo.v1alpha1.DebuginfoService/";

/// The Connect unary methods of `debuginfo.v1alpha1.DebuginfoService`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DebuginfoMethod {
    ShouldInitiateUpload,
    UploadFinished,
}

impl DebuginfoMethod {
    /// The method named by the path after [`DEBUGINFO_SERVICE_PREFIX`].
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "ShouldInitiateUpload" => Some(Self::ShouldInitiateUpload),
            "UploadFinished" => Some(Self::UploadFinished),
            _ => None,
        }
    }

    /// The method's name: the last path segment and the metric label.
    pub fn name(self) -> &'static str {
        match self {
            Self::ShouldInitiateUpload => "ShouldInitiateUpload",
            Self::UploadFinished => "UploadFinished",
        }
    }

    /// The procedure path, `/debuginfo.v1alpha1.DebuginfoService/<name>`.
    pub fn procedure(self) -> &'static str {
        match self {
            Self::ShouldInitiateUpload => {
                "/debuginfo.v1alpha1.DebuginfoService/ShouldInitiateUpload"
            }
            Self::UploadFinished => "/debuginfo.v1alpha1.DebuginfoService/UploadFinished",
        }
    }
}

/// One unary call to relay. The message is passed on in the codec it came
/// in, so that nothing the client sent is lost in a re-encoding.
#[derive(Debug, Clone)]
pub struct DebuginfoCall {
    pub method: DebuginfoMethod,
    pub codec: Codec,
    /// The bare, uncompressed request message.
    pub message: Bytes,
    /// Client headers named in receive_http's `forward_headers`.
    pub forwarded_headers: Arc<[(HeaderName, HeaderValue)]>,
    /// When the caller stops waiting.
    pub deadline: Option<Instant>,
}

/// A streamed request body: frames are passed on as they arrive, so an
/// upload holds only what is in flight, never the whole file.
pub type UploadBody = UnsyncBoxBody<Bytes, Box<dyn StdError + Send + Sync>>;

/// One debug-info file to relay.
pub struct DebuginfoUpload {
    /// The `{gnu_build_id}` path segment, as received (still
    /// percent-encoded, so it is a valid path segment as it is).
    pub gnu_build_id: String,
    pub body: UploadBody,
    pub forwarded_headers: Arc<[(HeaderName, HeaderValue)]>,
}

/// Why an upload failed downstream.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// The backend answered, with a status other than 200.
    #[error("upload: HTTP {status} (duration {elapsed:?})")]
    Status { status: u16, elapsed: Duration },
    /// A `debug_info_upload_timeout` (the endpoint's, or receive_http's)
    /// passed before the backend answered.
    #[error("upload timed out after {0:?}")]
    TimedOut(Duration),
    /// The request could not be made or finished: connection, TLS, proxy,
    /// credentials, or the client's body broke off.
    #[error("upload: {0}")]
    Failed(String),
}

/// Something that relays debug info to a backend: one `pyroscope.write`
/// endpoint.
pub trait DebuginfoTarget: Send + Sync + 'static {
    /// Relays a unary call. `Ok` is the backend's response message in the
    /// call's codec; `Err` carries the backend's Connect code.
    fn call(&self, call: DebuginfoCall) -> BoxFuture<'_, Result<Bytes, AppendError>>;

    /// Streams an upload to the backend; `Ok` when it answered 200. The
    /// caller bounds it in time with its own timeout too.
    fn upload(&self, upload: DebuginfoUpload) -> BoxFuture<'_, Result<(), UploadError>>;
}
