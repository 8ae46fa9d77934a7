//! Real HTTP backends for the `pyroscope.write` tests: hyper servers on
//! 127.0.0.1:0 (plain or TLS, HTTP/1.1 and HTTP/2) that record every
//! request and answer from a closure, a raw forwarding proxy, test
//! certificates, and helpers to start the component.
#![allow(dead_code)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use prometheus_client::registry::Registry;
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use pyroscope_relay::codec::proto::PushRequest;
use pyroscope_relay::pipeline::{
    IngestProfile, Labels, Payload, Profile, Receiver, Sample, Series,
};
use pyroscope_relay::write::{Arguments, EndpointConfig, Metrics, Write};

/// One request as the backend saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: String,
    pub version: Version,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn header_all(&self, name: &str) -> Vec<String> {
        self.headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }

    pub fn push(&self) -> PushRequest {
        PushRequest::decode(self.body.clone()).expect("a PushRequest body")
    }

    /// Query parameters as `(key, raw value)` pairs in order.
    pub fn params(&self) -> Vec<(String, String)> {
        self.query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (k.to_owned(), v.to_owned())
            })
            .collect()
    }
}

/// The backend's answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub delay: Duration,
}

impl Reply {
    pub fn ok() -> Self {
        Self::status(200, "")
    }

    pub fn status(status: u16, body: &str) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
            delay: Duration::ZERO,
        }
    }

    /// A Connect unary error: JSON body, the code's HTTP status.
    pub fn connect_error(status: u16, code: &str, message: &str) -> Self {
        let body = serde_json::json!({"code": code, "message": message}).to_string();
        Self::status(status, &body).header("content-type", "application/json")
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn delayed(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

type Handler = dyn Fn(usize, &Recorded) -> Reply + Send + Sync;

/// A recording HTTP server; stops when dropped.
pub struct Backend {
    pub url: String,
    pub addr: SocketAddr,
    requests: Arc<Mutex<Vec<Recorded>>>,
    task: JoinHandle<()>,
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Backend {
    /// A plain HTTP backend answering with `handler(index, request)`.
    pub async fn start(
        handler: impl Fn(usize, &Recorded) -> Reply + Send + Sync + 'static,
    ) -> Self {
        Self::serve(None, Arc::new(handler)).await
    }

    /// An HTTPS backend (HTTP/2 offered by ALPN) at `https://localhost:<port>`.
    pub async fn start_tls(
        config: rustls::ServerConfig,
        handler: impl Fn(usize, &Recorded) -> Reply + Send + Sync + 'static,
    ) -> Self {
        Self::serve(Some(Arc::new(config)), Arc::new(handler)).await
    }

    /// Answers every request with 200.
    pub async fn ok() -> Self {
        Self::start(|_, _| Reply::ok()).await
    }

    async fn serve(tls: Option<Arc<rustls::ServerConfig>>, handler: Arc<Handler>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let recorded = requests.clone();
        let scheme = if tls.is_some() {
            "https://localhost"
        } else {
            "http://127.0.0.1"
        };
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (handler, recorded, tls) = (handler.clone(), recorded.clone(), tls.clone());
                tokio::spawn(async move {
                    let service =
                        service_fn(move |req| respond(req, handler.clone(), recorded.clone()));
                    let builder = auto::Builder::new(TokioExecutor::new());
                    match tls {
                        None => {
                            let _ = builder
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        }
                        Some(config) => {
                            let acceptor = tokio_rustls::TlsAcceptor::from(config);
                            let Ok(stream) = acceptor.accept(stream).await else {
                                return;
                            };
                            let _ = builder
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        }
                    }
                });
            }
        });
        Self {
            url: format!("{scheme}:{}", addr.port()),
            addr,
            requests,
            task,
        }
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.requests.lock().unwrap().len()
    }
}

async fn respond(
    req: Request<Incoming>,
    handler: Arc<Handler>,
    recorded: Arc<Mutex<Vec<Recorded>>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let rec = Recorded {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().unwrap_or("").to_owned(),
        version: parts.version,
        headers: parts.headers,
        body,
    };
    let index = {
        let mut all = recorded.lock().unwrap();
        all.push(rec.clone());
        all.len() - 1
    };
    let reply = handler(index, &rec);
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut resp = Response::new(Full::new(Bytes::from(reply.body)));
    *resp.status_mut() = StatusCode::from_u16(reply.status).unwrap();
    for (k, v) in reply.headers {
        resp.headers_mut().append(
            http::HeaderName::try_from(k).unwrap(),
            http::HeaderValue::try_from(v).unwrap(),
        );
    }
    Ok(resp)
}

/// A forwarding HTTP proxy that records the request head of every
/// connection (`CONNECT host:port` tunnels or absolute-form requests).
pub struct Proxy {
    pub url: String,
    pub heads: Arc<Mutex<Vec<String>>>,
    task: JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Proxy {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let heads = Arc::new(Mutex::new(Vec::new()));
        let seen = heads.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(proxy_connection(client, seen.clone()));
            }
        });
        Self { url, heads, task }
    }

    pub fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }
}

async fn proxy_connection(mut client: TcpStream, heads: Arc<Mutex<Vec<String>>>) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if client.read_exact(&mut byte).await.is_err() {
            return;
        }
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    heads.lock().unwrap().push(text.clone());
    let target = text
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    if text.starts_with("CONNECT ") {
        let Ok(mut upstream) = TcpStream::connect(&target).await else {
            return;
        };
        if client
            .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
            .await
            .is_err()
        {
            return;
        }
        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
    } else {
        // Absolute-form: hyper servers accept it as is.
        let authority = target
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        let Ok(mut upstream) = TcpStream::connect(&authority).await else {
            return;
        };
        if upstream.write_all(&head).await.is_err() {
            return;
        }
        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
    }
}

/// A test CA and a `localhost` server certificate it signed, plus a client
/// certificate it signed.
pub struct Pki {
    pub ca_pem: String,
    pub server_cert_pem: String,
    pub server_key_pem: String,
    pub client_cert_pem: String,
    pub client_key_pem: String,
}

impl Pki {
    pub fn new() -> Self {
        use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let leaf = |names: Vec<String>| {
            let key = KeyPair::generate().unwrap();
            let cert = CertificateParams::new(names)
                .unwrap()
                .signed_by(&key, &ca)
                .unwrap();
            (cert.pem(), key.serialize_pem())
        };
        let (server_cert_pem, server_key_pem) =
            leaf(vec!["localhost".into(), "backend.test".into()]);
        let (client_cert_pem, client_key_pem) = leaf(vec!["client.test".into()]);
        Self {
            ca_pem: ca.pem(),
            server_cert_pem,
            server_key_pem,
            client_cert_pem,
            client_key_pem,
        }
    }

    /// A server config; with `require_client_cert`, clients must present a
    /// certificate signed by the CA.
    pub fn server_config(&self, require_client_cert: bool) -> rustls::ServerConfig {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let certs = CertificateDer::pem_slice_iter(self.server_cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_slice(self.server_key_pem.as_bytes()).unwrap();
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = if require_client_cert {
            let mut roots = rustls::RootCertStore::empty();
            for c in CertificateDer::pem_slice_iter(self.ca_pem.as_bytes()) {
                roots.add(c.unwrap()).unwrap();
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .unwrap();
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let mut config = builder.with_single_cert(certs, key).unwrap();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        config
    }
}

/// A started component with its own metrics registry.
pub struct Harness {
    pub write: Write,
    pub receiver: Receiver,
    pub registry: Registry,
}

impl Harness {
    pub fn start(args: Arguments) -> Self {
        Self::try_start(args).unwrap_or_else(|e| panic!("start: {e}"))
    }

    pub fn try_start(args: Arguments) -> Result<Self, pyroscope_relay::write::WriteError> {
        let mut registry = Registry::default();
        let metrics = Arc::new(Metrics::register(&mut registry));
        let receiver = Receiver::new("pyroscope.write.test");
        // Without a queue block nothing is written under the data dir.
        let data_dir = std::env::temp_dir().join("pyroscope-relay-write-harness");
        let health = pyroscope_relay::runtime::Health::default();
        let write = Write::start(
            "pyroscope.write.test",
            receiver.clone(),
            args,
            metrics,
            data_dir,
            health,
        )?;
        Ok(Self {
            write,
            receiver,
            registry,
        })
    }

    pub fn metrics_text(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).unwrap();
        out
    }

    /// The value of a counter series `name{endpoint="<endpoint>",...}`.
    pub fn counter(&self, name: &str, endpoint: &str) -> f64 {
        let prefix = format!(
            "{name}{{endpoint=\"{endpoint}\",component_id=\"pyroscope.write.test\",component_path=\"/\"}} "
        );
        self.metrics_text()
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .map_or(0.0, |v| v.parse().unwrap())
    }
}

/// An endpoint with fast test backoff.
pub fn endpoint(url: &str, retries: u32) -> EndpointConfig {
    let mut e = EndpointConfig::new(url);
    e.min_backoff_period = Duration::from_millis(1);
    e.max_backoff_period = Duration::from_millis(5);
    e.max_backoff_retries = retries;
    e
}

pub fn args(endpoints: Vec<EndpointConfig>) -> Arguments {
    Arguments {
        endpoints,
        ..Default::default()
    }
}

pub fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs_unsorted(pairs.iter().copied())
}

/// `(sample id, raw profile)`.
pub type RawSample<'a> = (&'a str, &'static [u8]);

pub fn push_profile(series: Vec<(Labels, Vec<RawSample<'_>>)>) -> Profile {
    Profile::new(Payload::Push(
        series
            .into_iter()
            .map(|(labels, samples)| Series {
                labels,
                samples: samples
                    .into_iter()
                    .map(|(id, raw)| Sample {
                        id: id.to_owned(),
                        raw_profile: Bytes::from_static(raw),
                    })
                    .collect(),
            })
            .collect(),
    ))
}

/// The push profile of Alloy's Test_Write_FanOut.
pub fn fanout_profile() -> Profile {
    push_profile(vec![(
        labels(&[
            ("__name__", "test"),
            ("__type__", "type"),
            ("job", "foo"),
            ("foo", "bar"),
        ]),
        vec![("test-request-id", b"pprofraw")],
    )])
}

pub fn ingest_profile(
    labels: Labels,
    query: &str,
    content_types: &[&'static str],
    body: &'static [u8],
) -> Profile {
    Profile::new(Payload::Ingest(IngestProfile {
        body: Bytes::from_static(body),
        content_types: content_types
            .iter()
            .map(|c| http::HeaderValue::from_static(c))
            .collect(),
        path: "/ingest".to_owned(),
        query: query.to_owned(),
        labels,
    }))
}

/// Label pairs of a pushed series.
pub fn pairs(series: &pyroscope_relay::codec::proto::RawProfileSeries) -> Vec<(String, String)> {
    series
        .labels
        .iter()
        .map(|l| (l.name.clone(), l.value.clone()))
        .collect()
}
