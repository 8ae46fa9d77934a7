//! `bench-sink`: the backend of the benchmark. Reads every request body to
//! the end and answers 200 with an empty body (for `/push.v1.` paths with
//! `Content-Type: application/proto`, which an empty Connect proto response
//! is). HTTP/1.1 and cleartext HTTP/2 (prior knowledge) on the same port.
//!
//! `bench-sink PORT [THREADS]`
//!
//! `bench-sink --hold PORT N [PATH]`: opens N keep-alive connections to
//! 127.0.0.1:PORT, sends one `GET PATH` on each, reads the answer, then
//! keeps them all open until stdin closes or SIGTERM; prints `ready N`
//! once every connection got its answer.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, body::Incoming, service::service_fn};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

async fn answer(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let push = req.uri().path().starts_with("/push.v1.");
    let grpc = req
        .headers()
        .get("content-type")
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"));
    // Drain the body frame by frame without keeping it.
    let mut body = req.into_body();
    while let Some(frame) = body.frame().await {
        if frame.is_err() {
            break;
        }
    }
    let mut resp = Response::builder().status(200);
    if grpc {
        resp = resp
            .header("content-type", "application/grpc")
            .header("grpc-status", "0");
    } else if push {
        resp = resp.header("content-type", "application/proto");
    }
    Ok(resp.body(Full::new(Bytes::new())).unwrap())
}

fn serve(port: u16, threads: usize) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.expect("bind");
        let mut builder = Builder::new(TokioExecutor::new());
        builder
            .http1()
            .keep_alive(true)
            .http2()
            .max_concurrent_streams(1024)
            .initial_stream_window_size(4 << 20)
            .initial_connection_window_size(16 << 20);
        let builder = std::sync::Arc::new(builder);
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let builder = builder.clone();
            tokio::spawn(async move {
                let _ = builder
                    .serve_connection(TokioIo::new(stream), service_fn(answer))
                    .await;
            });
        }
    });
}

fn hold(port: u16, n: usize, path: String) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
        let mut conns = Vec::with_capacity(n);
        let mut tasks = tokio::task::JoinSet::new();
        let mut opened = 0usize;
        // At most 512 handshakes at a time.
        while opened < n || !tasks.is_empty() {
            while opened < n && tasks.len() < 512 {
                let req = req.clone();
                tasks.spawn(async move {
                    let mut s = TcpStream::connect(("127.0.0.1", port)).await?;
                    s.write_all(req.as_bytes()).await?;
                    let mut buf = [0u8; 4096];
                    let mut got = Vec::new();
                    // Read until the end of the headers of a body-less or
                    // small answer; any bytes count as "answered".
                    loop {
                        let k = s.read(&mut buf).await?;
                        if k == 0 {
                            return Err(std::io::Error::other("closed"));
                        }
                        got.extend_from_slice(&buf[..k]);
                        if got.windows(4).any(|w| w == b"\r\n\r\n") {
                            break;
                        }
                    }
                    Ok::<_, std::io::Error>(s)
                });
                opened += 1;
            }
            match tasks.join_next().await {
                Some(Ok(Ok(s))) => conns.push(s),
                Some(Ok(Err(e))) => eprintln!("hold: {e}"),
                Some(Err(e)) => eprintln!("hold: {e}"),
                None => {}
            }
        }
        println!("ready {}", conns.len());
        let mut stdin = tokio::io::stdin();
        let mut sink = [0u8; 64];
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).unwrap();
        tokio::select! {
            _ = async { while stdin.read(&mut sink).await.map(|k| k > 0).unwrap_or(false) {} } => {}
            _ = term.recv() => {}
        }
        drop(conns);
    });
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--hold") {
        let port = args[1].parse().expect("port");
        let n = args[2].parse().expect("count");
        let path = args.get(3).cloned().unwrap_or_else(|| "/-/idle".into());
        hold(port, n, path);
    } else {
        let port = args
            .first()
            .expect("usage: bench-sink PORT [THREADS]")
            .parse()
            .expect("port");
        let threads = args
            .get(1)
            .map(|t| t.parse().expect("threads"))
            .unwrap_or(2);
        serve(port, threads);
    }
}
