//! The receiving threads (two here, see `receive_support::Relay`): the
//! kernel spreads connections over their listeners, a connection's
//! requests are served on its thread, one connection limit holds across
//! them, a rebind moves every thread's listener, and shutdown drains the
//! requests in flight on all of them.

mod receive_support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures_util::future::join_all;
use http::StatusCode;
use pyroscope_relay::pipeline::Payload;
use pyroscope_relay::runtime::HealthState;
use receive_support::*;
use tokio::net::{TcpSocket, TcpStream};

const GAUGE: &str = r#"pyroscope_receive_http_tcp_connections{component_id="pyroscope.receive_http.test",component_path="/",protocol="http"}"#;

fn tagged(connection: usize) -> http::Request<ClientBody> {
    post(
        &format!("/ingest?name=app&conn={connection}"),
        &[],
        full("x"),
    )
}

/// (connection tag, thread) of every append, in order.
fn appends(d: &Downstream) -> Vec<(usize, String)> {
    let tags = d.received().into_iter().map(|p| match p.payload {
        Payload::Ingest(ingest) => ingest
            .query
            .split('&')
            .find_map(|kv| kv.strip_prefix("conn="))
            .and_then(|n| n.parse().ok())
            .expect("a conn tag"),
        Payload::Push(_) => panic!("only /ingest here"),
    });
    tags.zip(d.threads()).collect()
}

fn both_threads() -> BTreeSet<String> {
    ["receive-http-0", "receive-http-1"]
        .map(String::from)
        .into()
}

#[tokio::test]
async fn connections_spread_over_the_threads_and_stay_on_theirs() {
    let d = Downstream::new("w");
    let relay = Relay::start(args(&[&d])).await;
    let addr = relay.addr();

    // 64 HTTP/1.1 connections, one request each. The kernel hashes each
    // connection to one of the two listeners: all on one would happen once
    // in 2^63 runs.
    let replies = join_all((0..64).map(|i| h1(addr, tagged(i)))).await;
    assert!(replies.iter().all(|r| r.status == StatusCode::OK));
    let threads: BTreeSet<_> = appends(&d).into_iter().map(|(_, t)| t).collect();
    assert_eq!(
        threads,
        both_threads(),
        "the port (0 in the config) is shared"
    );

    // 32 HTTP/2 connections with 4 concurrent streams each: every stream
    // of a connection is served on that connection's thread.
    let mut senders = Vec::new();
    for _ in 0..32 {
        senders.push(h2_conn(addr).await);
    }
    let requests = senders.iter_mut().enumerate().flat_map(|(c, sender)| {
        (0..4).map(move |_| {
            let mut sender = sender.clone();
            async move { read_reply(sender.send_request(tagged(100 + c)).await.unwrap()).await }
        })
    });
    let replies = join_all(requests).await;
    assert!(replies.iter().all(|r| r.status == StatusCode::OK));
    let mut by_connection: BTreeMap<usize, BTreeSet<String>> = BTreeMap::new();
    for (tag, thread) in appends(&d).into_iter().filter(|(tag, _)| *tag >= 100) {
        by_connection.entry(tag).or_default().insert(thread);
    }
    assert_eq!(by_connection.len(), 32);
    for (tag, threads) in &by_connection {
        assert_eq!(
            threads.len(),
            1,
            "connection {tag} was served on {threads:?}"
        );
    }
    let used: BTreeSet<_> = by_connection.into_values().flatten().collect();
    assert_eq!(used, both_threads());
}

#[tokio::test]
async fn the_connection_limit_is_exact_across_threads() {
    let d = Downstream::new("w");
    let mut a = args(&[&d]);
    a.http.conn_limit = 3;
    let relay = Relay::start(a).await;
    let addr = relay.addr();

    // 10 clients each send a request and keep their connection open until
    // told to close it.
    let mut close = BTreeMap::new();
    for i in 0..10 {
        let (close_tx, close_rx) = tokio::sync::oneshot::channel::<()>();
        close.insert(i, close_tx);
        tokio::spawn(async move {
            let mut sender = h1_conn(addr).await;
            let reply = read_reply(sender.send_request(tagged(i)).await.unwrap()).await;
            assert_eq!(reply.status, StatusCode::OK);
            let _ = close_rx.await;
        });
    }
    // Three are served, whichever threads they landed on; each connection
    // closed lets exactly one more in.
    for served in 3..=10 {
        wait_for(|| d.count() == served, "the next connection to be served").await;
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(d.count(), served, "no more than the limit are served");
        assert_eq!(relay.metric(GAUGE), Some(3.0));
        let open = appends(&d)
            .into_iter()
            .map(|(tag, _)| tag)
            .find(|tag| close.contains_key(tag))
            .expect("a served connection still open");
        close.remove(&open);
    }
    drop(close);
    wait_for(
        || relay.metric(GAUGE) == Some(0.0),
        "every connection to close",
    )
    .await;
}

#[tokio::test]
async fn a_rebind_moves_every_listener_and_a_restart_keeps_them() {
    let d = Downstream::new("w");
    let mut a = args(&[&d]);
    a.http.conn_limit = 1;
    let mut relay = Relay::start(a.clone()).await;
    let addr = relay.addr();

    // One connection holds the only slot; a second one waits for it,
    // accepted by a thread or still in the kernel's queue.
    let mut holder = h1_conn(addr).await;
    let reply = read_reply(holder.send_request(tagged(0)).await.unwrap()).await;
    assert_eq!(reply.status, StatusCode::OK);
    let waiting = tokio::spawn(h1(addr, tagged(1)));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(d.count(), 1, "the second connection waits");

    // A changed timeout restarts the server on the same sockets: the
    // waiting connection is served by the new server, none is refused.
    a.http.listen_port = addr.port();
    a.http.server_read_timeout = Duration::from_secs(7);
    relay.component.update(a.clone()).await;
    assert!(relay.healthy());
    let reply = tokio::time::timeout(Duration::from_secs(5), waiting).await;
    assert_eq!(reply.expect("served").unwrap().status, StatusCode::OK);
    drop(holder);

    // A new address rebinds every thread's listener: the new port serves
    // on both threads, and no listener is left on the old one (the kernel
    // would hand it some of these connections).
    a.http.conn_limit = 0;
    a.http.listen_port = 0;
    a.http.listen_address = "127.0.0.2".into();
    relay.component.update(a).await;
    let moved = relay.addr();
    assert_ne!(moved, addr);
    let before = d.count();
    let replies = join_all((0..32).map(|i| h1(moved, tagged(i)))).await;
    assert!(replies.iter().all(|r| r.status == StatusCode::OK));
    let threads: BTreeSet<_> = appends(&d)[before..]
        .iter()
        .map(|(_, t)| t.clone())
        .collect();
    assert_eq!(threads, both_threads());
    wait_for(
        || (0..32).all(|_| std::net::TcpStream::connect(addr).is_err()),
        "every old listener to close",
    )
    .await;
}

#[tokio::test]
async fn shutdown_drains_requests_in_flight_on_every_thread() {
    let d = Downstream::new("slow");
    d.delay(Duration::from_millis(500));
    let relay = Relay::start(args(&[&d])).await;
    let addr = relay.addr();
    let in_flight: Vec<_> = (0..32).map(|i| tokio::spawn(h1(addr, tagged(i)))).collect();
    wait_for(|| d.count() == 32, "every request to reach the receiver").await;
    let threads: BTreeSet<_> = appends(&d).into_iter().map(|(_, t)| t).collect();
    assert_eq!(threads, both_threads());
    relay.component.shutdown().await;
    for reply in join_all(in_flight).await {
        assert_eq!(reply.unwrap().status, StatusCode::OK);
    }
    assert!(TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn a_port_another_socket_listens_on_with_reuseport_is_not_shared() {
    // What a second relay would hold: listeners with SO_REUSEPORT.
    let other = TcpSocket::new_v4().unwrap();
    other.set_reuseport(true).unwrap();
    other.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let other = other.listen(16).unwrap();
    let mut a = args(&[]);
    a.http.listen_port = other.local_addr().unwrap().port();
    let relay = Relay::start(a).await;
    let HealthState::Unhealthy(reason) = relay.health.state() else {
        panic!("expected unhealthy");
    };
    assert!(reason.contains("failed to listen"), "{reason}");
    assert!(reason.contains("in use"), "{reason}");
}
