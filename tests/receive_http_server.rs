//! The server: connection limit, timeouts, updates, shutdown, health, and
//! a barrage of malformed input.

mod receive_support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::StatusCode;
use pyroscope_relay::codec::envelope;
use pyroscope_relay::runtime::HealthState;
use receive_support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const GAUGE: &str =
    r#"{component_id="pyroscope.receive_http.test",component_path="/",protocol="http"}"#;

fn ingest_request() -> http::Request<ClientBody> {
    post("/ingest?name=app", &[], full("profile"))
}

#[tokio::test]
async fn conn_limit_holds_extra_connections_until_one_closes() {
    let d = Downstream::new("w");
    let mut a = args(&[&d]);
    a.http.conn_limit = 2;
    let relay = Relay::start(a).await;
    let addr = relay.addr();
    let gauge = format!("pyroscope_receive_http_tcp_connections{GAUGE}");
    let limit = format!("pyroscope_receive_http_tcp_connections_limit{GAUGE}");
    assert_eq!(relay.metric(&limit), Some(2.0));

    let mut first = h1_conn(addr).await;
    let mut second = h1_conn(addr).await;
    for sender in [&mut first, &mut second] {
        let reply = read_reply(sender.send_request(ingest_request()).await.unwrap()).await;
        assert_eq!(reply.status, StatusCode::OK);
    }
    assert_eq!(relay.metric(&gauge), Some(2.0));

    let mut third = h1_conn(addr).await;
    // The connection is handed back with the answer: were it dropped with
    // the task, the server (on its own threads) could count it closed
    // before the gauge is read below.
    let waiting = tokio::spawn(async move {
        let response = third.send_request(ingest_request()).await.unwrap();
        (read_reply(response).await, third)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !waiting.is_finished(),
        "the third connection waits in the accept queue"
    );
    assert_eq!(relay.metric(&gauge), Some(2.0));

    drop(first);
    let reply = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .unwrap()
        .unwrap();
    let (reply, third) = reply;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(relay.metric(&gauge), Some(2.0));
    drop((second, third));
    wait_for(|| relay.metric(&gauge) == Some(0.0), "the gauge to drop").await;
}

#[tokio::test]
async fn slow_body_is_cut_off_by_the_read_timeout() {
    let d = Downstream::new("w");
    let mut a = args(&[&d]);
    a.http.server_read_timeout = Duration::from_millis(400);
    let relay = Relay::start(a).await;
    let started = Instant::now();
    let head = "POST /ingest?name=a HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n0123456789";
    let out = raw_exchange(relay.addr(), head.as_bytes(), Duration::from_secs(5)).await;
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "and the connection closes"
    );
    assert_eq!(d.count(), 0);

    // A push client trickling its body gets deadline_exceeded.
    let mut stream = TcpStream::connect(relay.addr()).await.unwrap();
    let head = "POST /push.v1.PusherService/Push HTTP/1.1\r\nhost: x\r\ncontent-type: application/proto\r\ntransfer-encoding: chunked\r\n\r\n";
    stream.write_all(head.as_bytes()).await.unwrap();
    for _ in 0..3 {
        let _ = stream.write_all(b"1\r\n\n\r\n").await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 504"), "{text}");
    assert!(text.contains("deadline_exceeded"), "{text}");
}

#[tokio::test]
async fn slow_or_missing_headers_close_the_connection() {
    let mut a = args(&[]);
    a.http.server_read_timeout = Duration::from_millis(300);
    let relay = Relay::start(a).await;
    for bytes in [&b""[..], b"POST /ingest HTTP/1.1\r\nHo"] {
        let started = Instant::now();
        let out = raw_exchange(relay.addr(), bytes, Duration::from_secs(5)).await;
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_millis(250), "{elapsed:?}");
        assert!(
            elapsed < Duration::from_secs(3),
            "closed by the read timeout: {elapsed:?}"
        );
        assert!(
            out.is_empty() || out.starts_with(b"HTTP/1.1 408"),
            "{out:?}"
        );
    }
    let cut = r#"pyroscope_receive_http_connections_timed_out_total{component_id="pyroscope.receive_http.test",component_path="/",reason="read"}"#;
    assert_eq!(relay.metric(cut), Some(2.0), "{}", relay.metrics_text());
}

#[tokio::test]
async fn idle_keep_alive_connections_are_closed() {
    let mut a = args(&[]);
    a.http.server_idle_timeout = Duration::from_millis(300);
    let relay = Relay::start(a).await;
    let mut stream = TcpStream::connect(relay.addr()).await.unwrap();
    stream
        .write_all(b"POST /ingest?name=a HTTP/1.1\r\nhost: x\r\ncontent-length: 1\r\n\r\nx")
        .await
        .unwrap();
    let started = Instant::now();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut out))
        .await
        .expect("closed after the idle timeout")
        .unwrap();
    assert!(out.starts_with(b"HTTP/1.1 200"));
    assert!(started.elapsed() >= Duration::from_millis(250));

    let mut sender = h2_conn(relay.addr()).await;
    let reply = read_reply(sender.send_request(ingest_request()).await.unwrap()).await;
    assert_eq!(reply.status, StatusCode::OK);
    wait_for(|| sender.is_closed(), "the idle h2 connection to close").await;
}

#[tokio::test]
async fn update_keeps_the_listener_and_swaps_forward_to() {
    let old = Downstream::new("old");
    let new = Downstream::new("new");
    let mut relay = Relay::start(args(&[&old])).await;
    let addr = relay.addr();
    let mut conn = h1_conn(addr).await;
    let reply = read_reply(conn.send_request(ingest_request()).await.unwrap()).await;
    assert_eq!(reply.status, StatusCode::OK);

    let mut a = args(&[&new]);
    a.http.max_request_body_size = 10_000;
    relay.component.update(a.clone()).await;
    assert_eq!(relay.component.local_addr(), Some(addr));
    let reply = read_reply(conn.send_request(ingest_request()).await.unwrap()).await;
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "the same connection still works"
    );
    assert_eq!((old.count(), new.count()), (1, 1));
    let big = post("/ingest?name=a", &[], full(vec![0u8; 20_000]));
    let reply = read_reply(conn.send_request(big).await.unwrap()).await;
    assert_eq!(
        reply.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "new limit applies"
    );

    // A changed timeout on the same port restarts the server on the same
    // listening socket.
    a.http.listen_port = addr.port();
    a.http.server_read_timeout = Duration::from_secs(5);
    relay.component.update(a.clone()).await;
    assert!(relay.healthy(), "{:?}", relay.health.state());
    assert_eq!(relay.component.local_addr(), Some(addr));
    let reply = h1(addr, ingest_request()).await;
    assert_eq!(reply.status, StatusCode::OK);

    // A new port rebinds: the old one stops answering.
    a.http.listen_port = 0;
    a.http.listen_address = "127.0.0.2".into();
    relay.component.update(a).await;
    let moved = relay.addr();
    assert_ne!(moved, addr);
    assert_eq!(h1(moved, ingest_request()).await.status, StatusCode::OK);
    wait_for(
        || std::net::TcpStream::connect(addr).is_err(),
        "the old port to close",
    )
    .await;
    assert_eq!(new.count(), 3);
}

#[tokio::test]
async fn port_in_use_is_unhealthy_and_an_update_recovers() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let mut a = args(&[]);
    a.http.listen_port = port;
    let mut relay = Relay::start(a.clone()).await;
    let HealthState::Unhealthy(reason) = relay.health.state() else {
        panic!("expected unhealthy");
    };
    assert!(reason.contains("failed to listen"), "{reason}");
    assert!(relay.component.local_addr().is_none());
    a.http.listen_port = 0;
    relay.component.update(a.clone()).await;
    assert!(relay.healthy());
    assert_eq!(
        h1(relay.addr(), ingest_request()).await.status,
        StatusCode::OK
    );

    // A failed rebind keeps the old server serving.
    let served = relay.addr();
    a.http.listen_port = port;
    relay.component.update(a).await;
    assert!(!relay.healthy());
    assert_eq!(relay.component.local_addr(), Some(served));
    assert_eq!(h1(served, ingest_request()).await.status, StatusCode::OK);
}

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish() {
    let d = Downstream::new("slow");
    d.delay(Duration::from_millis(500));
    let relay = Relay::start(args(&[&d])).await;
    let addr = relay.addr();
    let in_flight = tokio::spawn(h1(addr, ingest_request()));
    wait_for(|| d.count() == 1, "the request to reach the receiver").await;
    relay.component.shutdown().await;
    assert_eq!(in_flight.await.unwrap().status, StatusCode::OK);
    assert!(TcpStream::connect(addr).await.is_err());

    let d = Downstream::new("stuck");
    d.delay(Duration::from_secs(30));
    let mut a = args(&[&d]);
    a.graceful_shutdown_timeout = Duration::from_millis(300);
    let relay = Relay::start(a).await;
    let stuck = tokio::spawn(h1(relay.addr(), ingest_request()));
    wait_for(|| d.count() == 1, "the request to reach the receiver").await;
    let started = Instant::now();
    relay.component.shutdown().await;
    assert!(started.elapsed() < Duration::from_secs(2));
    stuck.abort();
}

static PANICS: AtomicUsize = AtomicUsize::new(0);

fn random_bytes(max: usize) -> Bytes {
    let len = fastrand::usize(..max);
    (0..len)
        .map(|_| fastrand::u8(..))
        .collect::<Vec<_>>()
        .into()
}

/// A random malformed push body for `content_type`.
fn malformed(good: &Bytes) -> (&'static str, Vec<(&'static str, &'static str)>, Bytes) {
    const TYPES: [&str; 6] = [
        "application/proto",
        "application/json",
        "application/grpc",
        "application/grpc-web+json",
        "application/grpc-web",
        "text/plain",
    ];
    let content_type = TYPES[fastrand::usize(..TYPES.len())];
    let framed = envelope::encode(0, good).unwrap();
    let mut headers = vec![("content-type", content_type)];
    let body = match fastrand::u8(..6) {
        0 => random_bytes(4096),
        1 => framed.slice(..fastrand::usize(..framed.len())),
        2 => {
            headers.push(("content-encoding", "gzip"));
            headers.push(("grpc-encoding", "gzip"));
            let mut b = envelope::encode(1, &random_bytes(200)).unwrap().to_vec();
            b.extend_from_slice(&random_bytes(10));
            b.into()
        }
        3 => {
            let mut b = vec![fastrand::u8(..2)];
            b.extend_from_slice(&fastrand::u32(..).to_be_bytes());
            b.extend_from_slice(&random_bytes(64));
            b.into()
        }
        4 => {
            let mut b = good.to_vec();
            let i = fastrand::usize(..b.len());
            b[i] ^= 0xff;
            b.truncate(fastrand::usize(i..=b.len()));
            b.into()
        }
        _ => {
            headers.push(("connect-timeout-ms", "-1"));
            headers.push(("grpc-timeout", "99999999999H"));
            good.clone()
        }
    };
    (content_type, headers, body)
}

#[tokio::test]
async fn thousands_of_malformed_requests_never_break_the_server() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        // Only panics outside the tests (other tests' failed asserts run
        // in this process too).
        if info
            .location()
            .is_none_or(|l| !l.file().starts_with("tests/"))
        {
            PANICS.fetch_add(1, Ordering::SeqCst);
        }
        default_hook(info);
    }));
    let d = Downstream::new("w");
    let mut a = args(&[&d]);
    a.http.server_read_timeout = Duration::from_millis(500);
    let relay = Relay::start(a).await;
    let addr = relay.addr();
    let good = pyroscope_relay::codec::encode_push(
        &pyroscope_relay::codec::decode_push(
            fixture("push_request.bin"),
            pyroscope_relay::codec::Codec::Proto,
        )
        .unwrap(),
        pyroscope_relay::codec::Codec::Proto,
    );

    // Raw garbage on the socket, including things that look like HTTP.
    let mut raw = Vec::new();
    for i in 0..300 {
        let bytes = match i % 4 {
            0 => random_bytes(2048).to_vec(),
            1 => {
                let mut b = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
                b.extend_from_slice(&random_bytes(512));
                b
            }
            2 => format!(
                "POST /ingest HTTP/1.1\r\ncontent-length: {}\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
                fastrand::u64(..)
            )
            .into_bytes(),
            _ => {
                let mut b = b"POST /push.v1.PusherService/Push HTTP/1.1\r\n".to_vec();
                b.extend_from_slice(&random_bytes(256));
                b
            }
        };
        raw.push(tokio::spawn(async move {
            raw_exchange(addr, &bytes, Duration::from_millis(800)).await
        }));
    }
    for task in raw {
        task.await.unwrap();
    }

    // Malformed requests over HTTP/1.1 and HTTP/2.
    let mut h1_sender = h1_conn(addr).await;
    let mut h2_sender = h2_conn(addr).await;
    let mut answered = 0;
    for i in 0..2400 {
        let (_, headers, body) = malformed(&good);
        let request = post("/push.v1.PusherService/Push", &headers, full(body));
        let result = if i % 2 == 0 {
            if h1_sender.ready().await.is_err() {
                h1_sender = h1_conn(addr).await;
            }
            h1_sender.send_request(request).await
        } else {
            if h2_sender.ready().await.is_err() {
                h2_sender = h2_conn(addr).await;
            }
            h2_sender.send_request(request).await
        };
        if let Ok(response) = result {
            let _ = read_reply(response).await;
            answered += 1;
        }
    }
    assert!(answered > 2000, "{answered}");

    let reply = h1(
        addr,
        post(
            "/push.v1.PusherService/Push",
            &[("content-type", "application/proto")],
            full(good),
        ),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(h2(addr, ingest_request()).await.status, StatusCode::OK);
    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "no handler panicked");
}

/// Reads one HTTP/1.1 response (head and `Content-Length` body) from a raw
/// stream; `Err` when the server closed or reset the connection first.
async fn read_response(stream: &mut TcpStream) -> Result<String, std::io::Error> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&got[..end]).to_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap());
            if got.len() >= end + 4 + len {
                return Ok(head);
            }
        }
        match stream.read(&mut buf).await? {
            0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            n => got.extend_from_slice(&buf[..n]),
        }
    }
}

const KEEP_ALIVE_INGEST: &[u8] =
    b"POST /ingest?name=app HTTP/1.1\r\nhost: relay\r\ncontent-length: 7\r\n\r\nprofile";

/// A rebind drains the old server: a request whose head is arriving, or
/// that is being handled, completes, and its answer says `Connection:
/// close` so the client does not reuse the connection.
#[tokio::test]
async fn a_rebind_lets_keep_alive_clients_finish_their_requests() {
    let d = Downstream::new("slow");
    let mut a = args(&[&d]);
    let mut relay = Relay::start(a.clone()).await;
    let old = relay.addr();

    // One connection is between requests, partway through sending the
    // next head; the other has a request in the receiver.
    let mut arriving = TcpStream::connect(old).await.unwrap();
    arriving.write_all(KEEP_ALIVE_INGEST).await.unwrap();
    let first = read_response(&mut arriving).await.unwrap();
    assert!(!first.contains("connection: close"), "{first}");
    let (head, rest) = KEEP_ALIVE_INGEST.split_at(40);
    arriving.write_all(head).await.unwrap();

    d.delay(Duration::from_millis(300));
    let mut handled = TcpStream::connect(old).await.unwrap();
    handled.write_all(KEEP_ALIVE_INGEST).await.unwrap();
    wait_for(|| d.count() == 2, "the request to reach the receiver").await;

    a.http.listen_address = "127.0.0.2".into();
    relay.component.update(a).await;
    assert_ne!(relay.addr(), old, "rebound");
    tokio::time::sleep(Duration::from_millis(100)).await;

    let answer = read_response(&mut handled).await.unwrap();
    assert!(answer.starts_with("http/1.1 200"), "{answer}");
    assert!(answer.contains("connection: close"), "{answer}");

    arriving.write_all(rest).await.unwrap();
    let answer = read_response(&mut arriving)
        .await
        .expect("the request being written when the drain began is answered");
    assert!(answer.starts_with("http/1.1 200"), "{answer}");
    assert!(answer.contains("connection: close"), "{answer}");
    let mut tail = Vec::new();
    arriving.read_to_end(&mut tail).await.unwrap();
    assert!(tail.is_empty(), "then closed");
    assert_eq!(d.count(), 3);
}

/// A request head (request line and headers) of up to 64 KiB is read; a
/// larger one is answered `431` without reaching the receiver.
#[tokio::test]
async fn a_request_head_over_64_kib_gets_431() {
    let d = Downstream::new("ok");
    let relay = Relay::start(args(&[&d])).await;
    let request = |pad: usize| {
        format!(
            "POST /ingest?name=app HTTP/1.1\r\nhost: relay\r\nx-pad: {}\r\ncontent-length: 7\r\n\r\nprofile",
            "a".repeat(pad)
        )
    };
    let mut fits = TcpStream::connect(relay.addr()).await.unwrap();
    fits.write_all(request(60 << 10).as_bytes()).await.unwrap();
    let answer = read_response(&mut fits).await.unwrap();
    assert!(answer.starts_with("http/1.1 200"), "{answer}");

    let mut too_large = TcpStream::connect(relay.addr()).await.unwrap();
    // The server may answer and close before the whole head is written.
    let _ = too_large.write_all(request(70 << 10).as_bytes()).await;
    let answer = read_response(&mut too_large).await.unwrap();
    assert!(answer.starts_with("http/1.1 431"), "{answer}");
    assert_eq!(d.count(), 1, "only the first reached the receiver");
}
