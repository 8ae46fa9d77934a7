//! Shared helpers for the `receive_http_*` tests: a recording downstream,
//! a running relay on a free port, and raw HTTP/1.1 and HTTP/2 clients.
#![allow(dead_code)]

pub mod push;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper_util::rt::{TokioExecutor, TokioIo};
use prometheus_client::registry::Registry;
use tokio::net::TcpStream;

use pyroscope_relay::codec::Code;
use pyroscope_relay::pipeline::{AppendError, Appender, Profile, Receiver};
use pyroscope_relay::receive_http::{Arguments, Metrics, ReceiveHttp, RequestBudget, Workers};
use pyroscope_relay::runtime::{Health, HealthState};

pub const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

pub fn fixture(name: &str) -> Bytes {
    Bytes::from(std::fs::read(format!("{FIXTURES}/{name}")).expect("fixture"))
}

/// A downstream component: records what it gets, answers as told.
#[derive(Clone)]
pub struct Downstream {
    pub receiver: Receiver,
    state: Arc<Mutex<DownstreamState>>,
}

#[derive(Default)]
struct DownstreamState {
    received: Vec<Profile>,
    /// The name of the thread each append ran on.
    threads: Vec<String>,
    answer: Option<AppendError>,
    delay: Duration,
}

struct Recording(Arc<Mutex<DownstreamState>>);

impl Appender for Recording {
    fn append(&self, profile: Profile) -> BoxFuture<'_, Result<(), AppendError>> {
        Box::pin(async move {
            let (answer, delay) = {
                let mut state = self.0.lock().unwrap();
                state.received.push(profile);
                let thread = std::thread::current().name().unwrap_or("").to_owned();
                state.threads.push(thread);
                (state.answer.clone(), state.delay)
            };
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            answer.map_or(Ok(()), Err)
        })
    }
}

impl Downstream {
    pub fn new(name: &str) -> Self {
        let receiver = Receiver::new(name);
        let state = Arc::new(Mutex::new(DownstreamState::default()));
        receiver.install(Recording(state.clone()));
        Self { receiver, state }
    }

    pub fn failing(name: &str, err: AppendError) -> Self {
        let d = Self::new(name);
        d.fail_with(err);
        d
    }

    pub fn fail_with(&self, err: AppendError) {
        self.state.lock().unwrap().answer = Some(err);
    }

    pub fn delay(&self, delay: Duration) {
        self.state.lock().unwrap().delay = delay;
    }

    pub fn received(&self) -> Vec<Profile> {
        self.state.lock().unwrap().received.clone()
    }

    /// The names of the threads the appends ran on, in order.
    pub fn threads(&self) -> Vec<String> {
        self.state.lock().unwrap().threads.clone()
    }

    pub fn count(&self) -> usize {
        self.state.lock().unwrap().received.len()
    }
}

pub fn internal(message: &str) -> AppendError {
    AppendError::new(Code::Internal, message)
}

/// Waits up to 5 s for `condition`, checking every 10 ms.
pub async fn wait_for(mut condition: impl FnMut() -> bool, what: &str) {
    let started = std::time::Instant::now();
    while !condition() {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Arguments listening on a free loopback port.
pub fn args(forward_to: &[&Downstream]) -> Arguments {
    let mut args = Arguments {
        forward_to: forward_to.iter().map(|d| d.receiver.clone()).collect(),
        ..Arguments::default()
    };
    args.http.listen_address = "127.0.0.1".into();
    args.http.listen_port = 0;
    args.graceful_shutdown_timeout = Duration::from_secs(2);
    args
}

/// A running component.
pub struct Relay {
    pub component: ReceiveHttp,
    pub health: Health,
    pub registry: Registry,
}

impl Relay {
    pub async fn start(args: Arguments) -> Relay {
        Self::start_as("pyroscope.receive_http.test", args).await
    }

    pub async fn start_as(id: &str, args: Arguments) -> Relay {
        let mut registry = Registry::default();
        let metrics = Arc::new(Metrics::register(&mut registry));
        let health = Health::new();
        // Large enough never to refuse: budget tests run the binary.
        let budget = RequestBudget::new(1 << 40);
        budget.register(&mut registry);
        let tap = Arc::new(pyroscope_relay::pipeline::tap::Tap::new(id));
        // Two receiving threads, as on a 2-core machine, whatever this one has.
        let workers = Arc::new(Workers::start(2).expect("receiving threads"));
        let component =
            ReceiveHttp::start(id, args, metrics, budget, health.clone(), tap, workers).await;
        Relay {
            component,
            health,
            registry,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.component.local_addr().expect("listening")
    }

    pub fn healthy(&self) -> bool {
        self.health.state() == HealthState::Healthy
    }

    pub fn metrics_text(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).unwrap();
        out
    }

    /// The value of the sample whose line starts with `prefix`.
    pub fn metric(&self, prefix: &str) -> Option<f64> {
        self.metrics_text()
            .lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }
}

pub type ClientBody = BoxBody<Bytes, Infallible>;

pub fn full(body: impl Into<Bytes>) -> ClientBody {
    Full::new(body.into()).boxed()
}

/// A body sent in several frames, with no length: HTTP/1.1 chunked.
pub fn chunked(parts: Vec<Bytes>) -> ClientBody {
    let frames = parts.into_iter().map(|p| Ok(http_body::Frame::data(p)));
    StreamBody::new(futures_util::stream::iter(frames.collect::<Vec<_>>())).boxed()
}

/// A response read to its end.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub trailers: Option<HeaderMap>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// `grpc-status` from the trailers, else from the headers
    /// (Trailers-Only).
    pub fn grpc_status(&self) -> Option<u32> {
        let from = |h: &HeaderMap| h.get("grpc-status")?.to_str().ok()?.parse().ok();
        self.trailers
            .as_ref()
            .and_then(from)
            .or_else(|| from(&self.headers))
    }

    pub fn grpc_message(&self) -> String {
        let from = |h: &HeaderMap| Some(h.get("grpc-message")?.to_str().ok()?.to_owned());
        let raw = self
            .trailers
            .as_ref()
            .and_then(from)
            .or_else(|| from(&self.headers));
        pyroscope_relay::codec::connect_error::percent_decode_grpc_message(&raw.unwrap_or_default())
    }
}

pub async fn read_reply(response: Response<hyper::body::Incoming>) -> Reply {
    let (parts, body) = response.into_parts();
    let collected = body.collect().await.expect("response body");
    let trailers = collected.trailers().cloned();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body: collected.to_bytes(),
        trailers,
    }
}

/// Sends one request on a new HTTP/1.1 connection.
pub async fn h1(addr: SocketAddr, request: Request<ClientBody>) -> Reply {
    let mut sender = h1_conn(addr).await;
    read_reply(sender.send_request(request).await.expect("h1 response")).await
}

pub async fn h1_conn(addr: SocketAddr) -> hyper::client::conn::http1::SendRequest<ClientBody> {
    let stream = TcpStream::connect(addr).await.expect("connect");
    stream.set_nodelay(true).unwrap();
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("h1 handshake");
    tokio::spawn(conn);
    sender
}

/// Sends one request on a new cleartext HTTP/2 (prior knowledge)
/// connection.
pub async fn h2(addr: SocketAddr, request: Request<ClientBody>) -> Reply {
    let mut sender = h2_conn(addr).await;
    read_reply(sender.send_request(request).await.expect("h2 response")).await
}

pub async fn h2_conn(addr: SocketAddr) -> hyper::client::conn::http2::SendRequest<ClientBody> {
    let stream = TcpStream::connect(addr).await.expect("connect");
    stream.set_nodelay(true).unwrap();
    let (sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .expect("h2 handshake");
    tokio::spawn(conn);
    sender
}

/// Which transport a request travels on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    H1,
    H2,
}

pub async fn send(transport: Transport, addr: SocketAddr, request: Request<ClientBody>) -> Reply {
    match transport {
        Transport::H1 => h1(addr, request).await,
        Transport::H2 => h2(addr, request).await,
    }
}

/// A POST with the given headers.
pub fn post(path: &str, headers: &[(&str, &str)], body: ClientBody) -> Request<ClientBody> {
    let mut builder = Request::post(format!("http://relay{path}"));
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(body).unwrap()
}

/// Writes raw bytes on a new connection and reads until the server closes
/// (or `wait` passes); returns what came back.
pub async fn raw_exchange(addr: SocketAddr, bytes: &[u8], wait: Duration) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let _ = stream.write_all(bytes).await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(wait, stream.read_to_end(&mut out)).await;
    out
}
