//! The pool through real sockets: a hyper backend on 127.0.0.1 that counts
//! the connections it accepted and those still open.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, Version};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::*;
use crate::write::http_config::{ProxyConfig, TlsConfig};

/// How the test backend behaves.
#[derive(Clone, Copy, Default)]
struct Behaviour {
    /// Before answering.
    delay: Duration,
    /// Bytes of the answer's body.
    body_len: usize,
    /// The backend drops every connection this long after accepting it.
    lifetime: Option<Duration>,
}

struct Backend {
    url: String,
    accepted: Arc<AtomicUsize>,
    open: Arc<AtomicUsize>,
    versions: Arc<std::sync::Mutex<Vec<Version>>>,
    task: JoinHandle<()>,
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Backend {
    async fn start(behaviour: Behaviour, tls: Option<Arc<rustls::ServerConfig>>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let open = Arc::new(AtomicUsize::new(0));
        let versions = Arc::new(std::sync::Mutex::new(Vec::new()));
        let url = match tls {
            Some(_) => format!("https://localhost:{port}"),
            None => format!("http://127.0.0.1:{port}"),
        };
        let (a, o, v) = (accepted.clone(), open.clone(), versions.clone());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                a.fetch_add(1, Ordering::SeqCst);
                o.fetch_add(1, Ordering::SeqCst);
                let (o, v, tls) = (o.clone(), v.clone(), tls.clone());
                tokio::spawn(async move {
                    let serve = serve(stream, tls, behaviour, v);
                    match behaviour.lifetime {
                        Some(lifetime) => drop(tokio::time::timeout(lifetime, serve).await),
                        None => serve.await,
                    }
                    o.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        Self {
            url,
            accepted,
            open,
            versions,
            task,
        }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    fn open(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }

    /// Waits (at most 5 s) until `open` connections remain.
    async fn wait_open(&self, open: usize) {
        for _ in 0..500 {
            if self.open() == open {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(self.open(), open, "connections still open at the backend");
    }
}

async fn serve(
    stream: tokio::net::TcpStream,
    tls: Option<Arc<rustls::ServerConfig>>,
    behaviour: Behaviour,
    versions: Arc<std::sync::Mutex<Vec<Version>>>,
) {
    let service = service_fn(move |req: Request<Incoming>| {
        let versions = versions.clone();
        async move {
            versions.lock().unwrap().push(req.version());
            let _ = req.into_body().collect().await;
            tokio::time::sleep(behaviour.delay).await;
            let body = Bytes::from(vec![b'x'; behaviour.body_len]);
            Ok::<_, Infallible>(Response::new(Full::new(body)))
        }
    });
    let builder = auto::Builder::new(TokioExecutor::new());
    match tls {
        None => {
            let _ = builder
                .serve_connection(TokioIo::new(stream), service)
                .await;
        }
        Some(config) => {
            let Ok(stream) = tokio_rustls::TlsAcceptor::from(config).accept(stream).await else {
                return;
            };
            let _ = builder
                .serve_connection(TokioIo::new(stream), service)
                .await;
        }
    }
}

fn transport(tls: TlsConfig, limits: Limits) -> Transport {
    let settings = Settings {
        tls: &tls,
        proxy: &ProxyConfig::default(),
        http2: true,
        follow_redirects: true,
    };
    Transport::with_limits("test", &settings, limits).unwrap()
}

fn plain(limits: Limits) -> Transport {
    transport(TlsConfig::default(), limits)
}

/// POSTs to `url` and reads the answer to the end.
async fn post(t: &Transport, url: &str) -> Version {
    let resp = t
        .send(Outgoing {
            method: Method::POST,
            uri: url.parse().unwrap(),
            headers: &HeaderMap::new(),
            extra: &[],
            body: Bytes::from_static(b"profile"),
        })
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let version = resp.version();
    resp.into_body().collect().await.unwrap();
    version
}

fn key(url: &str) -> Key {
    key_of(&url.parse().unwrap()).unwrap()
}

#[tokio::test]
async fn an_idle_connection_is_reused() {
    let backend = Backend::start(
        Behaviour {
            body_len: 3000,
            ..Default::default()
        },
        None,
    )
    .await;
    let t = plain(POOL_LIMITS);
    for _ in 0..20 {
        assert_eq!(post(&t, &backend.url).await, Version::HTTP_11);
    }
    assert_eq!(backend.accepted(), 1);
    assert_eq!(t.pool.idle_count(&key(&backend.url)), 1);
}

#[tokio::test]
async fn a_connection_closed_by_the_backend_is_replaced() {
    let backend = Backend::start(
        Behaviour {
            lifetime: Some(Duration::from_millis(100)),
            ..Default::default()
        },
        None,
    )
    .await;
    let t = plain(POOL_LIMITS);
    post(&t, &backend.url).await;
    backend.wait_open(0).await;
    // The pooled connection is dead; the request goes on a new one.
    post(&t, &backend.url).await;
    assert_eq!(backend.accepted(), 2);
}

#[tokio::test]
async fn a_body_dropped_unread_closes_its_connection() {
    let backend = Backend::start(
        Behaviour {
            body_len: 1 << 20,
            ..Default::default()
        },
        None,
    )
    .await;
    let t = plain(POOL_LIMITS);
    let resp = t
        .send(Outgoing {
            method: Method::POST,
            uri: backend.url.parse().unwrap(),
            headers: &HeaderMap::new(),
            extra: &[],
            body: Bytes::new(),
        })
        .await
        .unwrap();
    drop(resp);
    backend.wait_open(0).await;
    assert_eq!(t.pool.idle_count(&key(&backend.url)), 0);
    post(&t, &backend.url).await;
    assert_eq!(backend.accepted(), 2);
}

#[tokio::test]
async fn idle_connections_beyond_the_limit_are_closed() {
    let backend = Backend::start(
        Behaviour {
            delay: Duration::from_millis(200),
            ..Default::default()
        },
        None,
    )
    .await;
    let t = plain(Limits {
        max_idle_per_host: 2,
        ..POOL_LIMITS
    });
    let five = (0..5).map(|_| post(&t, &backend.url));
    futures_util::future::join_all(five).await;
    assert_eq!(backend.accepted(), 5);
    assert_eq!(t.pool.idle_count(&key(&backend.url)), 2);
    backend.wait_open(2).await;
}

#[tokio::test]
async fn idle_connections_are_closed_after_the_idle_timeout() {
    let backend = Backend::start(Behaviour::default(), None).await;
    let t = plain(Limits {
        // Wide enough that a slow machine does not overrun the checks.
        idle_timeout: Duration::from_millis(700),
        ..POOL_LIMITS
    });
    post(&t, &backend.url).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Used again within the timeout: the same connection, idle anew.
    post(&t, &backend.url).await;
    assert_eq!(backend.accepted(), 1);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(backend.open(), 1, "closed before its idle timeout");
    backend.wait_open(0).await;
    assert_eq!(t.pool.idle_count(&key(&backend.url)), 0);
    post(&t, &backend.url).await;
    assert_eq!(backend.accepted(), 2);
}

#[tokio::test]
async fn dropping_the_transport_closes_its_connections() {
    let backend = Backend::start(Behaviour::default(), None).await;
    let t = plain(POOL_LIMITS);
    post(&t, &backend.url).await;
    assert_eq!(backend.open(), 1);
    drop(t);
    backend.wait_open(0).await;
}

#[tokio::test]
async fn http2_requests_share_one_connection() {
    let (server, ca_pem) = test_tls();
    let backend = Backend::start(
        Behaviour {
            delay: Duration::from_millis(100),
            ..Default::default()
        },
        Some(Arc::new(server)),
    )
    .await;
    let t = transport(
        TlsConfig {
            ca_pem,
            ..Default::default()
        },
        POOL_LIMITS,
    );
    assert_eq!(post(&t, &backend.url).await, Version::HTTP_2);
    let eight = (0..8).map(|_| post(&t, &backend.url));
    let versions = futures_util::future::join_all(eight).await;
    assert!(versions.iter().all(|v| *v == Version::HTTP_2));
    assert_eq!(backend.accepted(), 1);
    assert_eq!(backend.versions.lock().unwrap().len(), 9);
}

/// A `localhost` server config (ALPN h2, http/1.1) and its CA's PEM.
fn test_tls() -> (rustls::ServerConfig, String) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    use rustls::pki_types::PrivatePkcs8KeyDer;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            PrivatePkcs8KeyDer::from(key.serialize_der()).into(),
        )
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    (config, ca.pem())
}
