//! Connection serving: reuse across a detach, and the limits while detached.

use super::*;
use crate::receive_http::metrics::{ComponentMetrics, Metrics};
use crate::receive_http::router::Settings;
use tokio::io::DuplexStream;

const T: Timeouts = Timeouts {
    read: Duration::from_secs(10),
    write: Duration::from_secs(10),
    idle: Duration::from_secs(60),
    h2_idle: Duration::from_secs(60),
};
const GET: &[u8] = b"GET /ingest HTTP/1.1\r\nHost: relay\r\n\r\n";

fn shared() -> Arc<ConnShared> {
    let app = Arc::new(App::new(
        Settings {
            forward_to: vec![],
            forward_headers: vec![],
            body_limit: 1024,
            decompressed_limit: 1024,
            debug_info_upload_timeout: Duration::from_secs(120),
        },
        ComponentMetrics::new("test", Arc::new(Metrics::unregistered())),
        crate::receive_http::budget::RequestBudget::new(1 << 20),
        Arc::new(crate::pipeline::tap::Tap::new("test")),
    ));
    Arc::new(ConnShared {
        app,
        http1: http1::Builder::new(),
        http2: http2::Builder::new(TokioExecutor::new()),
        timeouts: T,
        tls: None,
    })
}

fn start() -> (DuplexStream, watch::Sender<bool>) {
    let (client, server) = tokio::io::duplex(64 * 1024);
    let (drain_tx, drain) = watch::channel(false);
    let shared = shared();
    tokio::spawn(async move { serve_io(server, &shared, drain).await });
    (client, drain_tx)
}

/// Reads one answer (headers and a `Content-Length` body); its status.
async fn answer(client: &mut DuplexStream) -> u16 {
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        assert_eq!(client.read(&mut byte).await.unwrap(), 1, "closed");
        got.push(byte[0]);
    }
    let head = String::from_utf8(got).unwrap().to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().unwrap());
    let mut body = vec![0u8; length];
    client.read_exact(&mut body).await.unwrap();
    head[9..12].parse().unwrap()
}

async fn closed(client: &mut DuplexStream) -> bool {
    let mut byte = [0u8; 1];
    matches!(client.read(&mut byte).await, Ok(0) | Err(_))
}

#[tokio::test(start_paused = true)]
async fn keep_alive_survives_detaching_between_requests() {
    let (mut client, _drain) = start();
    client.write_all(GET).await.unwrap();
    assert_eq!(answer(&mut client).await, 405);
    tokio::time::sleep(DETACH_AFTER * 5).await;
    client.write_all(GET).await.unwrap();
    assert_eq!(answer(&mut client).await, 405);
    // Pipelined requests, and a head split across the detach.
    client.write_all(&[GET, GET].concat()).await.unwrap();
    assert_eq!(answer(&mut client).await, 405);
    assert_eq!(answer(&mut client).await, 405);
    tokio::time::sleep(DETACH_AFTER * 5).await;
    client.write_all(&GET[..5]).await.unwrap();
    tokio::time::sleep(DETACH_AFTER * 5).await;
    client.write_all(&GET[5..]).await.unwrap();
    assert_eq!(answer(&mut client).await, 405);
    // Part of the next head read with the previous request: hyper's
    // read-ahead must survive the detach.
    client.write_all(&[GET, &GET[..5]].concat()).await.unwrap();
    assert_eq!(answer(&mut client).await, 405);
    tokio::time::sleep(DETACH_AFTER * 5).await;
    client.write_all(&GET[5..]).await.unwrap();
    assert_eq!(answer(&mut client).await, 405);
}

#[tokio::test(start_paused = true)]
async fn timeouts_and_draining_hold_while_detached() {
    let (mut client, _drain) = start();
    client.write_all(GET).await.unwrap();
    assert_eq!(answer(&mut client).await, 405);
    tokio::time::sleep(T.idle + Duration::from_secs(1)).await;
    assert!(closed(&mut client).await, "idle timeout");

    let (mut client, _drain) = start();
    client.write_all(GET).await.unwrap();
    assert_eq!(answer(&mut client).await, 405);
    tokio::time::sleep(DETACH_AFTER * 5).await;
    client.write_all(&GET[..5]).await.unwrap();
    tokio::time::sleep(T.read + Duration::from_secs(1)).await;
    assert!(closed(&mut client).await, "read timeout on a partial head");

    let (mut client, drain) = start();
    client.write_all(GET).await.unwrap();
    assert_eq!(answer(&mut client).await, 405);
    tokio::time::sleep(DETACH_AFTER * 5).await;
    drain.send(true).unwrap();
    assert!(closed(&mut client).await, "drained");
}

#[tokio::test]
async fn a_connection_task_stays_small() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let stream = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (_drain_tx, drain) = watch::channel(false);
    // hyper's connections and the TLS session are boxed; what is left
    // is the socket, the clock handles and the timers (~1.3 KiB).
    let task = serve(stream, shared(), drain);
    assert!(std::mem::size_of_val(&task) <= 2048);
}
