//! The debuginfo client of a `pyroscope.write` component: what
//! receive_http's debuginfo routes are relayed to.
//!
//! As in Alloy, the component's first endpoint is its debuginfo target.
//! Calls and uploads use that endpoint's transport (TLS, proxy), its
//! `headers` and `http_headers`, and its credentials, exactly as pushes do,
//! but are not retried: the eBPF profiler retries on its own schedule, and
//! a streamed upload cannot be sent twice.
//! - `ShouldInitiateUpload`, `UploadFinished`: Connect unary calls to
//!   `<url>/debuginfo.v1alpha1.DebuginfoService/<method>`, in the client's
//!   codec, bounded by `remote_timeout` and the caller's deadline. The
//!   backend's Connect error comes back with its code and message.
//! - Upload: a POST of the streamed body to
//!   `<url>/debuginfo.v1alpha1.DebuginfoService/Upload/<gnu_build_id>`,
//!   bounded by the endpoint's `debug_info_upload_timeout` (receive_http
//!   bounds it by its own).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::header::{AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, Method, Response};
use http_body_util::{BodyExt, Limited};
use tokio::time::Instant;

use super::appender::State;
use super::auth::AuthFailure;
use super::endpoint::Endpoint;
use super::headers;
use super::transport::{Outgoing, ResponseBody, read_bounded};
use crate::codec::compress::{self, Compression};
use crate::codec::rpc::Protocol;
use crate::codec::timeout::encode_connect_timeout_ms;
use crate::codec::{Code, connect_error};
use crate::pipeline::{
    AppendError, DEBUGINFO_SERVICE_PREFIX, DebuginfoCall, DebuginfoTarget, DebuginfoUpload,
    UploadError,
};

/// The most of a response message read (the debuginfo responses are a flag
/// and a reason).
const MAX_RESPONSE_MESSAGE: usize = 1 << 20;
/// How much of an error body is read, to find a Connect error in it.
const MAX_ERROR_BODY: usize = 64 * 1024;
/// How many bytes of a plain error body are quoted in the message.
const ERROR_EXCERPT: usize = 512;

/// The debuginfo target of a component in `state`: its first endpoint,
/// if it has one. Debug info never goes through the `queue`: the profiler
/// waits for each answer, and a file is not held anywhere.
pub(super) fn target(state: &State) -> Option<Arc<dyn DebuginfoTarget>> {
    let first = state.endpoints.first()?;
    Some(Arc::new(FirstEndpoint(first.clone())))
}

/// Holds the endpoint it was taken from, so a reload during an upload does
/// not pull it from under the upload.
struct FirstEndpoint(Arc<Endpoint>);

impl DebuginfoTarget for FirstEndpoint {
    fn call(&self, call: DebuginfoCall) -> BoxFuture<'_, Result<Bytes, AppendError>> {
        Box::pin(call_unary(&self.0, call))
    }

    fn upload(&self, upload: DebuginfoUpload) -> BoxFuture<'_, Result<(), UploadError>> {
        Box::pin(upload_file(&self.0, upload))
    }
}

async fn call_unary(ep: &Endpoint, call: DebuginfoCall) -> Result<Bytes, AppendError> {
    let procedure = call.method.procedure();
    let uri = ep
        .procedure_uri(procedure)
        .map_err(|e| AppendError::new(Code::Internal, e))?;
    let timeout = match call.deadline {
        Some(deadline) => ep
            .policy
            .remote_timeout
            .min(deadline.saturating_duration_since(Instant::now())),
        None => ep.policy.remote_timeout,
    };
    if timeout.is_zero() {
        return Err(AppendError::deadline_exceeded(
            "deadline exceeded before the call to the endpoint",
        ));
    }
    let mut headers = headers::assemble(&ep.configured_headers, &call.forwarded_headers);
    let content_type = Protocol::Connect.content_type(call.codec);
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert("connect-protocol-version", HeaderValue::from_static("1"));
    let ms = encode_connect_timeout_ms(timeout.max(Duration::from_millis(1)));
    headers.insert(
        "connect-timeout-ms",
        HeaderValue::try_from(ms).expect("digits"),
    );
    authorize(ep, &mut headers)
        .await
        .map_err(|failure| match failure {
            AuthFailure::Local(m) => AppendError::new(Code::Internal, m),
            AuthFailure::Remote(m) => AppendError::unavailable(m),
        })?;
    let run = async {
        let outgoing = Outgoing {
            method: Method::POST,
            uri,
            headers: &headers,
            extra: &[],
            body: call.message,
        };
        let response = ep
            .transport
            .send(outgoing)
            .await
            .map_err(|e| AppendError::unavailable(format!("{procedure}: {e}")))?;
        unary_answer(ep, response).await
    };
    match tokio::time::timeout(timeout, run).await {
        Ok(result) => result,
        Err(_) => Err(AppendError::deadline_exceeded(format!(
            "{procedure}: no answer from {} within {timeout:?}",
            ep.label
        ))),
    }
}

/// The response message of a 200, or the backend's error with its Connect
/// code (from the error body, else from the HTTP status).
async fn unary_answer(
    ep: &Endpoint,
    response: Response<ResponseBody>,
) -> Result<Bytes, AppendError> {
    let status = response.status().as_u16();
    if status == 200 {
        let gzipped = response
            .headers()
            .get(CONTENT_ENCODING)
            .map(|v| Compression::parse(v.to_str().unwrap_or("\u{fffd}")))
            .transpose()
            .map_err(|e| AppendError::new(Code::Internal, format!("response: {e}")))?
            == Some(Compression::Gzip);
        let body = Limited::new(response.into_body(), MAX_RESPONSE_MESSAGE)
            .collect()
            .await
            .map_err(|e| AppendError::unavailable(format!("reading the response: {e}")))?
            .to_bytes();
        if !gzipped {
            return Ok(body);
        }
        return compress::gunzip_limited(&body, MAX_RESPONSE_MESSAGE)
            .map(Bytes::from)
            .map_err(|e| AppendError::new(Code::Internal, format!("response: {e}")));
    }
    if status == 401 {
        ep.auth.rejected();
    }
    let body = read_bounded(response, MAX_ERROR_BODY).await;
    Err(match connect_error::decode(&body) {
        Some((code, message)) => AppendError::from_http_status(status, message).with_code(code),
        None => {
            let excerpt = String::from_utf8_lossy(&body[..body.len().min(ERROR_EXCERPT)]);
            let message = format!("HTTP {status} from {}: {excerpt}", ep.label);
            AppendError::from_http_status(status, message).with_code(Code::from_http_status(status))
        }
    })
}

async fn upload_file(ep: &Endpoint, upload: DebuginfoUpload) -> Result<(), UploadError> {
    let started = Instant::now();
    let timeout = ep.debug_info_upload_timeout;
    let path = format!("{DEBUGINFO_SERVICE_PREFIX}Upload/{}", upload.gnu_build_id);
    let uri = ep.procedure_uri(&path).map_err(UploadError::Failed)?;
    let mut headers = headers::assemble(&ep.configured_headers, &upload.forwarded_headers);
    authorize(ep, &mut headers)
        .await
        .map_err(|failure| match failure {
            AuthFailure::Local(m) | AuthFailure::Remote(m) => UploadError::Failed(m),
        })?;
    let run = async {
        let response = ep
            .transport
            .send_streaming(uri, headers, upload.body)
            .await
            .map_err(|e| UploadError::Failed(e.to_string()))?;
        let status = response.status().as_u16();
        // Read (boundedly) so the connection can be reused, as Alloy does.
        read_bounded(response, MAX_ERROR_BODY).await;
        match status {
            200 => Ok(()),
            status => {
                if status == 401 {
                    ep.auth.rejected();
                }
                Err(UploadError::Status {
                    status,
                    elapsed: started.elapsed(),
                })
            }
        }
    };
    match tokio::time::timeout(timeout, run).await {
        Ok(result) => result,
        Err(_) => Err(UploadError::TimedOut(timeout)),
    }
}

/// Adds the endpoint's credentials, unless its configured headers already
/// set `Authorization` (as for pushes).
async fn authorize(ep: &Endpoint, headers: &mut HeaderMap) -> Result<(), AuthFailure> {
    if let Some(value) = ep.auth.header().await?
        && !ep.configured_headers.contains_key(AUTHORIZATION)
    {
        headers.insert(AUTHORIZATION, value);
    }
    Ok(())
}
