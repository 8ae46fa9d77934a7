//! For the queue tests: a backend whose answer can be switched and whose
//! port can be closed and opened again, a relay process that can be killed
//! and restarted on the same storage path, and an HTTP client that returns
//! response headers.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_pyroscope-relay");

/// One request the backend answered 2xx to.
#[derive(Debug, Clone)]
pub struct Delivered {
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

struct BackendState {
    status: AtomicU16,
    delay_ms: AtomicU64,
    up: AtomicBool,
    delivered: Mutex<Vec<Delivered>>,
    attempts: AtomicU64,
    streams: Mutex<Vec<TcpStream>>,
}

/// A real HTTP/1.1 backend on 127.0.0.1 with keep-alive.
pub struct FlakyBackend {
    pub port: u16,
    state: Arc<BackendState>,
    stop_accepting: Arc<AtomicBool>,
}

impl FlakyBackend {
    pub fn start(status: u16) -> FlakyBackend {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(BackendState {
            status: AtomicU16::new(status),
            delay_ms: AtomicU64::new(0),
            up: AtomicBool::new(true),
            delivered: Mutex::new(Vec::new()),
            attempts: AtomicU64::new(0),
            streams: Mutex::new(Vec::new()),
        });
        let backend = FlakyBackend {
            port,
            state,
            stop_accepting: Arc::new(AtomicBool::new(false)),
        };
        backend.serve(listener);
        backend
    }

    fn serve(&self, listener: TcpListener) {
        let state = Arc::clone(&self.state);
        let stop = Arc::clone(&self.stop_accepting);
        listener.set_nonblocking(true).unwrap();
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        stream.set_nonblocking(false).unwrap();
                        if let Ok(clone) = stream.try_clone() {
                            state.streams.lock().unwrap().push(clone);
                        }
                        let state = Arc::clone(&state);
                        std::thread::spawn(move || serve_conn(stream, &state));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn set_status(&self, status: u16) {
        self.state.status.store(status, Ordering::SeqCst);
    }

    pub fn set_delay(&self, delay: Duration) {
        self.state
            .delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    /// Closes the port and every open connection.
    pub fn close(&mut self) {
        self.stop_accepting.store(true, Ordering::SeqCst);
        self.state.up.store(false, Ordering::SeqCst);
        for s in self.state.streams.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
        std::thread::sleep(Duration::from_millis(50));
    }

    /// Listens on the same port again.
    pub fn reopen(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let listener = loop {
            match TcpListener::bind(("127.0.0.1", self.port)) {
                Ok(l) => break l,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => panic!("rebinding {}: {e}", self.port),
            }
        };
        self.stop_accepting = Arc::new(AtomicBool::new(false));
        self.state.up.store(true, Ordering::SeqCst);
        self.serve(listener);
    }

    pub fn delivered(&self) -> Vec<Delivered> {
        self.state.delivered.lock().unwrap().clone()
    }

    pub fn attempts(&self) -> u64 {
        self.state.attempts.load(Ordering::SeqCst)
    }

    /// Waits until `n` requests were delivered; returns them.
    pub fn wait_delivered(&self, n: usize, timeout: Duration) -> Vec<Delivered> {
        let deadline = Instant::now() + timeout;
        loop {
            let d = self.delivered();
            if d.len() >= n || Instant::now() > deadline {
                return d;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn serve_conn(stream: TcpStream, state: &BackendState) {
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut headers = HashMap::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if line == "\r\n" {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
            }
        }
        let length: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        if !state.up.load(Ordering::SeqCst) {
            return;
        }
        state.attempts.fetch_add(1, Ordering::SeqCst);
        let delay = state.delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            std::thread::sleep(Duration::from_millis(delay));
        }
        let status = state.status.load(Ordering::SeqCst);
        let path = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or("")
            .to_owned();
        if (200..300).contains(&status) {
            state.delivered.lock().unwrap().push(Delivered {
                path,
                headers,
                body,
            });
        }
        let response = format!("HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n");
        if reader.get_mut().write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

/// A relay process on a fixed storage path and admin address, which can be
/// killed and started again.
pub struct RelayProc {
    pub child: Option<Child>,
    pub dir: PathBuf,
    pub admin: String,
    log: PathBuf,
    starts: u32,
}

impl RelayProc {
    /// Writes `config` to `<dir>/config.alloy` and starts the relay.
    pub fn start(dir: &Path, config: &str) -> RelayProc {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("config.alloy"), config).unwrap();
        let mut relay = RelayProc {
            child: None,
            dir: dir.to_owned(),
            admin: format!("127.0.0.1:{}", free_port()),
            log: dir.join("relay.log"),
            starts: 0,
        };
        relay.restart();
        relay
    }

    pub fn restart(&mut self) {
        self.starts += 1;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(BIN)
            .arg("run")
            .arg(self.dir.join("config.alloy"))
            .arg("--server.http.listen-addr")
            .arg(&self.admin)
            .arg("--storage.path")
            .arg(self.dir.join("data"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting pyroscope-relay");
        self.child = Some(child);
        self.wait_ready(Duration::from_secs(30));
    }

    pub fn wait_ready(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(r) = request("GET", &format!("http://{}/-/ready", self.admin), &[], b"")
                && r.status == 200
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "relay not ready within {timeout:?}; log:\n{}",
            self.log_text()
        );
    }

    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then waits for the exit.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if c.try_wait().unwrap().is_some() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
            panic!("relay did not stop on SIGTERM; log:\n{}", self.log_text());
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn metrics(&self) -> String {
        request("GET", &format!("http://{}/metrics", self.admin), &[], b"")
            .map(|r| r.body)
            .unwrap_or_default()
    }

    pub fn reload(&self, config: &str) -> Response {
        std::fs::write(self.dir.join("config.alloy"), config).unwrap();
        request("POST", &format!("http://{}/-/reload", self.admin), &[], b"").unwrap()
    }

    pub fn storage(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// `pyroscope-relay queue status --json` on this relay's storage path,
    /// asserting the command succeeds.
    pub fn queue_status(&self) -> serde_json::Value {
        let out = Command::new(BIN)
            .args(["queue", "status", "--json", "--storage.path"])
            .arg(self.storage())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

impl Drop for RelayProc {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// The value of a metric series whose line starts with `prefix` (name and
/// labels as printed), or 0.
pub fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding an ephemeral port")
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: HashMap<String, String>,
    pub body: String,
}

/// A minimal HTTP/1.1 client (one request per connection).
pub fn request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Response, String> {
    let rest = url.strip_prefix("http://").ok_or("only http:// urls")?;
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_string()), |(h, p)| (h, format!("/{p}")));
    let mut stream = TcpStream::connect(host).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(Duration::from_secs(60))).ok();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    stream
        .write_all(req.as_bytes())
        .map_err(|e| e.to_string())?;
    stream.write_all(body).map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad response: {text:?}"))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Ok(Response {
        status,
        headers,
        body: body.to_owned(),
    })
}

/// Sends one `/ingest` profile named `<app>{seq="<seq>"}`; returns the
/// response and how long it took.
pub fn ingest(
    port: u16,
    app: &str,
    seq: usize,
    body: &[u8],
) -> (Result<Response, String>, Duration) {
    let started = Instant::now();
    let url = format!(
        "http://127.0.0.1:{port}/ingest?name={app}.cpu%7Bseq%3D{seq}%7D&format=pprof&from=1&until=2"
    );
    let r = request(
        "POST",
        &url,
        &[("Content-Type", "binary/octet-stream")],
        body,
    );
    (r, started.elapsed())
}

/// The `seq` label of a delivered `/ingest` request.
pub fn seq_of(d: &Delivered) -> Option<usize> {
    let q = d.path.split_once("seq%3D")?.1;
    let end = q.find(|c: char| !c.is_ascii_digit())?;
    q[..end].parse().ok()
}
