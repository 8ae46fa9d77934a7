//! `pyroscope.write` as a debuginfo target, against real backends: the
//! calls and the streamed upload go to the first endpoint under its URL
//! path, with its TLS, proxy, headers and credentials; the backend's
//! Connect code comes back; a failed or slow upload fails as it should.

mod write_support;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use prost::Message;
use pyroscope_relay::codec::Code;
use pyroscope_relay::codec::proto::debuginfo::v1alpha1::{
    FileMetadata, ShouldInitiateUploadRequest, ShouldInitiateUploadResponse,
};
use pyroscope_relay::codec::rpc::Codec;
use pyroscope_relay::pipeline::{
    DebuginfoCall, DebuginfoMethod, DebuginfoTarget, DebuginfoUpload, UploadBody, UploadError,
};
use pyroscope_relay::write::{Authorization, Secret, TlsConfig};
use write_support::*;

const BUILD_ID: &str = "4f1e0d2c";

fn target(h: &Harness) -> Arc<dyn DebuginfoTarget> {
    h.receiver
        .debuginfo()
        .expect("a write with an endpoint is a target")
}

/// `chunks` chunks of 64 KiB, each filled with its index, as a stream.
fn body(chunks: u8) -> (UploadBody, Vec<u8>) {
    let parts: Vec<Bytes> = (0..chunks)
        .map(|i| Bytes::from(vec![i; 64 << 10]))
        .collect();
    let whole = parts.concat();
    let frames = parts
        .into_iter()
        .map(|b| Ok::<_, Infallible>(Frame::data(b)));
    let stream = StreamBody::new(futures_util::stream::iter(frames));
    (
        UploadBody::new(stream.map_err(|never| match never {})),
        whole,
    )
}

fn upload(chunks: u8) -> (DebuginfoUpload, Vec<u8>) {
    let (body, whole) = body(chunks);
    let upload = DebuginfoUpload {
        gnu_build_id: BUILD_ID.to_owned(),
        body,
        forwarded_headers: Arc::from(Vec::new()),
    };
    (upload, whole)
}

fn should_initiate(codec: Codec, message: Bytes) -> DebuginfoCall {
    DebuginfoCall {
        method: DebuginfoMethod::ShouldInitiateUpload,
        codec,
        message,
        forwarded_headers: Arc::from(Vec::new()),
        deadline: None,
    }
}

#[tokio::test]
async fn uploads_stream_through_tls_and_a_proxy_under_the_endpoint_path() {
    let pki = Pki::new();
    let backend = Backend::start_tls(pki.server_config(false), |_, _| Reply::ok()).await;
    let proxy = Proxy::start().await;
    let mut e = endpoint(&format!("{}/prefix/", backend.url), 1);
    e.http_client.tls_config = TlsConfig {
        ca_pem: pki.ca_pem.clone(),
        ..Default::default()
    };
    e.http_client.proxy.proxy_url = proxy.url.clone();
    e.http_client.authorization = Some(Authorization {
        r#type: "Bearer".into(),
        credentials: Some(Secret::new("t0ken")),
        credentials_file: String::new(),
    });
    e.headers.insert("X-Scope-OrgID".into(), "tenant-1".into());
    let h = Harness::start(args(vec![e]));

    let (up, sent) = upload(40);
    target(&h).upload(up).await.unwrap();
    let [got] = backend.requests().try_into().unwrap();
    assert_eq!(
        got.path,
        format!("/prefix/debuginfo.v1alpha1.DebuginfoService/Upload/{BUILD_ID}")
    );
    assert_eq!(got.method, "POST");
    assert_eq!(got.body.len(), sent.len());
    assert!(got.body == sent, "the uploaded bytes differ");
    assert_eq!(got.header("authorization"), Some("Bearer t0ken"));
    assert_eq!(got.header("x-scope-orgid"), Some("tenant-1"));
    assert!(proxy.heads()[0].starts_with("CONNECT localhost:"));

    // The unary calls go the same way, in the caller's codec.
    let request = ShouldInitiateUploadRequest {
        file: Some(FileMetadata {
            gnu_build_id: BUILD_ID.into(),
            ..Default::default()
        }),
    };
    let message = Bytes::from(request.encode_to_vec());
    target(&h)
        .call(should_initiate(Codec::Proto, message.clone()))
        .await
        .unwrap();
    let got = backend.requests().pop().unwrap();
    assert_eq!(
        got.path,
        "/prefix/debuginfo.v1alpha1.DebuginfoService/ShouldInitiateUpload"
    );
    assert_eq!(got.body, message);
    assert_eq!(got.header("content-type"), Some("application/proto"));
    assert_eq!(got.header("connect-protocol-version"), Some("1"));
    assert_eq!(got.header("authorization"), Some("Bearer t0ken"));
}

#[tokio::test]
async fn call_answers_and_errors_keep_their_meaning() {
    let answer = ShouldInitiateUploadResponse {
        should_initiate_upload: true,
        reason: "new".into(),
    };
    let encoded = answer.encode_to_vec();
    let backend = Backend::start(move |i, _| match i {
        0 => Reply {
            body: encoded.clone(),
            ..Reply::ok()
        },
        1 => Reply::connect_error(429, "resource_exhausted", "over quota"),
        _ => Reply::status(502, "bad gateway"),
    })
    .await;
    let h = Harness::start(args(vec![endpoint(&backend.url, 1)]));
    let t = target(&h);
    let got = t
        .call(should_initiate(Codec::Proto, Bytes::new()))
        .await
        .unwrap();
    assert_eq!(ShouldInitiateUploadResponse::decode(got).unwrap(), answer);
    let err = t
        .call(should_initiate(Codec::Json, Bytes::from_static(b"{}")))
        .await
        .unwrap_err();
    assert_eq!(
        (err.code, err.message.as_str()),
        (Code::ResourceExhausted, "over quota")
    );
    assert_eq!(
        backend.requests()[1].header("content-type"),
        Some("application/json")
    );
    let err = t
        .call(should_initiate(Codec::Proto, Bytes::new()))
        .await
        .unwrap_err();
    assert_eq!(err.code, Code::Unavailable);
    assert!(err.message.contains("HTTP 502"), "{}", err.message);
}

#[tokio::test]
async fn failed_redirected_and_slow_uploads() {
    let backend = Backend::start(|i, _| match i {
        0 => Reply::status(500, "boom"),
        1 => Reply::status(307, "").header("location", "/elsewhere"),
        _ => Reply::ok().delayed(Duration::from_secs(5)),
    })
    .await;
    let mut e = endpoint(&backend.url, 1);
    e.debug_info_upload_timeout = Duration::from_millis(300);
    let h = Harness::start(args(vec![e]));
    let t = target(&h);
    let err = t.upload(upload(2).0).await.unwrap_err();
    assert!(
        matches!(err, UploadError::Status { status: 500, .. }),
        "{err}"
    );
    // A streamed body cannot be sent again: the redirect is the answer.
    let err = t.upload(upload(2).0).await.unwrap_err();
    assert!(
        matches!(err, UploadError::Status { status: 307, .. }),
        "{err}"
    );
    assert_eq!(backend.count(), 2);
    let err = t.upload(upload(2).0).await.unwrap_err();
    assert!(
        matches!(err, UploadError::TimedOut(d) if d == Duration::from_millis(300)),
        "{err}"
    );
    assert_eq!(err.to_string(), "upload timed out after 300ms");
}

#[tokio::test]
async fn a_write_without_endpoints_is_no_target() {
    let h = Harness::start(args(vec![]));
    assert!(h.receiver.debuginfo().is_none());
}
