"""A Pyroscope stand-in that records and decodes everything it receives.

HTTP/1.1 on 127.0.0.1 (threaded, keep-alive, Content-Length or chunked
bodies), like the port a real Pyroscope serves `/ingest` and the Connect
push API on. Every request is recorded (method, path, query, headers, raw
body) when its body has arrived, before the answer; push bodies are
gunzipped when `Content-Encoding: gzip` and decoded as `push.v1.PushRequest`.
Answers are scripted per request (status, delay), so tests can make it
fail, be slow, or be down (`stop()` closes the listener and every open
connection; `start()` listens again on the same port).
"""

import gzip
import http.client
import json
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from . import protos
from .keepalive import KeepAlive
from .labelset import parse_name

PUSH_PATH = "/push.v1.PusherService/Push"

# Connect error codes for the statuses a scripted answer may use.
_CONNECT_CODE = {
    400: "invalid_argument",
    401: "unauthenticated",
    403: "permission_denied",
    404: "not_found",
    408: "deadline_exceeded",
    429: "resource_exhausted",
    500: "internal",
    502: "unavailable",
    503: "unavailable",
    504: "deadline_exceeded",
}


@dataclass
class Answer:
    status: int = 200
    delay: float = 0.0
    message: str = ""


@dataclass
class Request:
    seq: int
    at: float  # time.monotonic() when the body had arrived
    method: str
    path: str
    query: str
    headers: list  # [(name, value)] as received
    body: bytes  # as received (still gzipped if it was)
    chunked: bool
    answer: Answer = None
    answered: bool = False  # the answer was written without error
    push: object = None  # decoded PushRequest, for the push path
    decode_error: str = ""
    upstream_status: int = 0  # tap mode: what the relay answered
    upstream_body: bytes = b""

    def header(self, name: str, default=None):
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return default

    def header_all(self, name: str) -> list:
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    @property
    def params(self) -> dict:
        return {k: v[0] for k, v in parse_qs(self.query, keep_blank_values=True).items()}

    @property
    def is_push(self) -> bool:
        return self.path.endswith(PUSH_PATH)

    @property
    def is_ingest(self) -> bool:
        return self.path.endswith("/ingest")

    @property
    def name_labels(self) -> dict:
        """Labels of an /ingest `name` parameter."""
        return parse_name(self.params.get("name", ""))

    def series(self) -> list:
        """For a push: [(labels dict, [(ID, raw_profile bytes)])]."""
        out = []
        for s in self.push.series:
            labels = {}
            for lp in s.labels:
                assert lp.name not in labels, f"duplicate label {lp.name} in {s}"
                labels[lp.name] = lp.value
            out.append((labels, [(x.ID, bytes(x.raw_profile)) for x in s.samples]))
        return out

    def samples(self) -> list:
        """For a push: [(labels dict, ID, raw_profile)] flattened."""
        return [(labels, sid, raw) for labels, samples in self.series() for sid, raw in samples]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, handler, backend):
        self.backend = backend
        self.connections = set()
        self.conn_lock = threading.Lock()
        super().__init__(addr, handler)

    def process_request(self, request, client_address):
        with self.conn_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self.conn_lock:
            self.connections.discard(request)
        super().shutdown_request(request)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, *args):
        pass

    def _read_body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks), True
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length), False

    def _handle(self):
        body, chunked = self._read_body()
        backend = self.server.backend
        url = urlsplit(self.path)
        req = backend._record(
            method=self.command,
            path=url.path,
            query=url.query,
            headers=list(self.headers.items()),
            body=body,
            chunked=chunked,
        )
        if backend.upstream:
            self._forward(req, backend.upstream)
            return
        answer = req.answer
        if answer.delay:
            time.sleep(answer.delay)
        try:
            self._reply(req, answer)
            req.answered = True
        except OSError:
            pass

    _HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host", "te",
            "upgrade", "proxy-connection", "trailer"}

    def _forward(self, req, upstream):
        """Tap mode: send the request on to `upstream` (host, port) and give
        the client the upstream's answer. Each client connection gets its
        own keep-alive connection upstream (see keepalive.KeepAlive), so the
        relay sees the client's connection pattern. A failed exchange is
        answered 502 with the error, and recorded."""
        client = getattr(self, "_upstream", None)
        if client is None:
            client = self._upstream = KeepAlive(*upstream)
            self.server.backend.upstream_clients.append(client)
        headers = {k: v for k, v in req.headers if k.lower() not in self._HOP}
        target = req.path + ("?" + req.query if req.query else "")
        try:
            status, ctype, payload = client.request(req.method, target, req.body, headers)
        except (OSError, http.client.HTTPException) as e:
            status, ctype, payload = 502, "text/plain", f"tap: {e!r}".encode()
        req.upstream_status, req.upstream_body = status, payload
        try:
            self.send_response(status)
            if ctype:
                self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            self.wfile.flush()
            req.answered = True
        except OSError:
            pass

    def _reply(self, req, answer):
        if answer.status == 200 and req.is_push and req.header("Content-Type") == "application/json":
            payload, ctype = b"{}", "application/json"  # an empty PushResponse in JSON
        elif answer.status == 200:
            payload = b""
            ctype = "application/proto" if req.is_push else "text/plain"
        elif req.is_push:
            code = _CONNECT_CODE.get(answer.status, "unknown")
            payload = json.dumps({"code": code, "message": answer.message or code}).encode()
            ctype = "application/json"
        else:
            payload = (answer.message or f"scripted status {answer.status}").encode()
            ctype = "text/plain"
        self.send_response(answer.status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
        self.wfile.flush()

    do_POST = _handle
    do_GET = _handle
    do_PUT = _handle


class Backend:
    def __init__(self, name: str = "backend", upstream=None, host: str = "127.0.0.1"):
        """With `upstream=(host, port)` this is a tap: it records each request
        and forwards it there, answering with the upstream's answer. `host`
        is the address to listen on (tests/multihost listens on a network
        namespace's address)."""
        self.name = name
        self.host = host
        self.upstream = upstream
        self.upstream_clients = []  # tap mode: one KeepAlive per client connection
        self.requests: list = []
        self.lock = threading.Lock()
        self.port = 0
        self._script: list = []  # Answers for the next requests, in order
        self.default = Answer()
        self._server = None
        self._thread = None

    # -- lifecycle ---------------------------------------------------------
    def start(self, port: int = 0) -> "Backend":
        deadline = time.monotonic() + 10
        while True:
            try:
                self._server = _Server((self.host, port or self.port), _Handler, self)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self):
        """Down: stop listening and cut every open connection."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with server.conn_lock:
            conns = list(server.connections)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()

    @property
    def stale_retries(self) -> int:
        """Tap mode: requests sent twice because a kept-alive upstream
        connection died under them (see keepalive.KeepAlive)."""
        return sum(c.stale_retries for c in self.upstream_clients)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- behaviour ---------------------------------------------------------
    def script(self, *answers: Answer):
        """The next len(answers) requests get these answers, then `default`."""
        with self.lock:
            self._script.extend(answers)

    def _record(self, **kw) -> Request:
        with self.lock:
            answer = self._script.pop(0) if self._script else self.default
            req = Request(seq=len(self.requests), at=time.monotonic(), answer=answer, **kw)
            if req.is_push and req.header("Content-Type") == "application/proto":
                try:
                    body = req.body
                    if (req.header("Content-Encoding") or "").lower() == "gzip":
                        body = gzip.decompress(body)
                    req.push = protos.PushRequest.FromString(body)
                except Exception as e:  # recorded; tests fail on it
                    req.decode_error = repr(e)
            self.requests.append(req)
            return req

    # -- queries -----------------------------------------------------------
    def snapshot(self) -> list:
        with self.lock:
            return list(self.requests)

    def pushes(self) -> list:
        return [r for r in self.snapshot() if r.is_push]

    def ingests(self) -> list:
        return [r for r in self.snapshot() if r.is_ingest]

    def wait_for(self, predicate, timeout: float = 15.0, what: str = "requests"):
        """Waits until predicate(snapshot) is true; returns the snapshot."""
        deadline = time.monotonic() + timeout
        while True:
            snap = self.snapshot()
            if predicate(snap):
                return snap
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{self.name}: timed out after {timeout}s waiting for {what}; "
                    f"got {len(snap)} requests: {[(r.method, r.path, r.query[:80]) for r in snap]}"
                )
            time.sleep(0.05)

    def quiet(self, seconds: float = 0.5, timeout: float = 20.0):
        """Waits until no request arrived for `seconds` (the relay is done)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            snap = self.snapshot()
            last = snap[-1].at if snap else 0
            if time.monotonic() - last >= seconds:
                return snap
            time.sleep(0.05)
        return self.snapshot()
