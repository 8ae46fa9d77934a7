"""Pyroscope's debuginfo service as the relay meets it: a stand-in that
records what arrives and answers as scripted.

HTTP/1.1 on 127.0.0.1 (threaded, keep-alive):
- `POST /debuginfo.v1alpha1.DebuginfoService/ShouldInitiateUpload` and
  `.../UploadFinished`: Connect unary, `application/proto` or
  `application/json`; the request is decoded with the code generated from
  the repository's proto and recorded; the answer is the scripted
  `should_upload` / `reason`, or the scripted Connect error.
- `POST /debuginfo.v1alpha1.DebuginfoService/Upload/<gnu_build_id>`: the
  body is read as it streams (Content-Length or chunked), hashed and
  counted, never held, so uploads of any size cost the backend no memory.
  An upload whose body broke off is recorded with `complete=False`.
"""

import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from google.protobuf import json_format

from . import protos

SERVICE = "/debuginfo.v1alpha1.DebuginfoService/"
_MESSAGES = {
    "ShouldInitiateUpload": (
        protos.debuginfo_pb2.ShouldInitiateUploadRequest,
        protos.debuginfo_pb2.ShouldInitiateUploadResponse,
    ),
    "UploadFinished": (
        protos.debuginfo_pb2.UploadFinishedRequest,
        protos.debuginfo_pb2.UploadFinishedResponse,
    ),
}
_CONNECT_STATUS = {"invalid_argument": 400, "resource_exhausted": 429, "unavailable": 503,
                   "internal": 500, "permission_denied": 403, "unauthenticated": 401}


@dataclass
class Call:
    method: str
    content_type: str
    headers: dict  # lower-cased names
    message: object  # the decoded request


@dataclass
class Upload:
    build_id: str
    headers: dict
    chunked: bool
    size: int = 0
    sha256: str = ""
    complete: bool = False
    error: str = ""


@dataclass
class Script:
    should_upload: bool = True
    reason: str = ""
    # (connect code, message) to answer the unary calls with, instead.
    unary_error: tuple = None
    upload_status: int = 200
    # Seconds to wait after an upload's body, before answering.
    upload_delay: float = 0.0


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "ThreadingHTTPServer"

    def log_message(self, *args):
        pass

    def _headers(self) -> dict:
        return {k.lower(): v for k, v in self.headers.items()}

    def _answer(self, status: int, content_type: str, body: bytes):
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        backend = self.server.backend
        if not self.path.startswith(SERVICE):
            self._answer(404, "text/plain", b"404 page not found\n")
            return
        method = self.path[len(SERVICE):]
        if method.startswith("Upload/"):
            self._upload(backend, method[len("Upload/"):])
        elif method in _MESSAGES:
            self._unary(backend, method)
        else:
            self._answer(404, "text/plain", b"404 page not found\n")

    def _unary(self, backend, method):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        content_type = self.headers.get("Content-Type", "")
        request_type, response_type = _MESSAGES[method]
        as_json = content_type.startswith("application/json")
        message = request_type()
        if as_json:
            json_format.Parse(body, message)
        else:
            message.ParseFromString(body)
        with backend.lock:
            backend.calls.append(Call(method, content_type, self._headers(), message))
            script = backend.script
        if script.unary_error:
            code, text = script.unary_error
            error = json.dumps({"code": code, "message": text}).encode()
            self._answer(_CONNECT_STATUS.get(code, 500), "application/json", error)
            return
        response = response_type()
        if method == "ShouldInitiateUpload":
            response.should_initiate_upload = script.should_upload
            response.reason = script.reason
        if as_json:
            self._answer(200, "application/json", json_format.MessageToJson(response).encode())
        else:
            self._answer(200, "application/proto", response.SerializeToString())

    def _upload(self, backend, build_id):
        chunked = "chunked" in (self.headers.get("Transfer-Encoding") or "").lower()
        record = Upload(build_id, self._headers(), chunked)
        with backend.lock:
            backend.uploads.append(record)
        digest = hashlib.sha256()
        try:
            for piece in self._body_pieces(chunked):
                digest.update(piece)
                record.size += len(piece)
            record.complete = True
        except (OSError, ValueError, EOFError) as e:
            record.error = repr(e)
            self.close_connection = True
            return
        finally:
            record.sha256 = digest.hexdigest()
        script = backend.script
        if script.upload_delay:
            time.sleep(script.upload_delay)
        status = script.upload_status
        text = b"" if status == 200 else f"scripted {status}\n".encode()
        try:
            self._answer(status, "text/plain" if text else None, text)
        except OSError:
            pass

    def _body_pieces(self, chunked):
        if chunked:
            while True:
                line = self.rfile.readline()
                if not line:
                    raise EOFError("connection closed inside a chunked body")
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return
                yield from self._exactly(size)
                self.rfile.readline()
        else:
            yield from self._exactly(int(self.headers.get("Content-Length") or 0))

    def _exactly(self, n):
        while n > 0:
            piece = self.rfile.read(min(n, 1 << 16))
            if not piece:
                raise EOFError(f"connection closed with {n} bytes of the body missing")
            n -= len(piece)
            yield piece


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class DebuginfoBackend:
    def __init__(self, **script):
        self.script = Script(**script)
        self.calls: list = []
        self.uploads: list = []
        self.lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.backend = self
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> "DebuginfoBackend":
        self._thread.start()
        return self

    def stop(self):
        self._server.shutdown()
        self._server.server_close()

    def calls_of(self, method: str) -> list:
        with self.lock:
            return [c for c in self.calls if c.method == method]

    def wait_uploads_settled(self, timeout: float = 10):
        """Waits until every upload that started has ended (completely or not)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if all(u.complete or u.error for u in self.uploads):
                    return list(self.uploads)
            time.sleep(0.05)
        raise AssertionError(f"uploads still running after {timeout}s: {self.uploads}")
