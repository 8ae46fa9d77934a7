"""The eBPF profiler's debug-info uploads through the relay: connect-es 2.2.0
runs the sequence Alloy's pyroscope.ebpf runs (ShouldInitiateUpload; the
file streamed in a POST to `Upload/<gnu_build_id>`; UploadFinished) against
the relay, which relays it to the first debuginfo-capable target behind
`forward_to` (through a pyroscope.relabel to the pyroscope.write behind it),
and a recording stand-in for Pyroscope's debuginfo service checks what
arrives:

- accepted: every call and the file reach the backend, the file byte for
  byte, with the endpoint's tenant and credentials and the client headers
  named in `forward_headers`, in each protocol;
- a 200 MiB file passes through, over HTTP/1.1 and h2c, while the relay's
  peak RSS stays flat;
- declined: nothing is uploaded;
- no debuginfo target: `unavailable`, and 503 on Upload;
- the backend fails: the upload gets 502, a Connect error keeps its code;
- timeouts: a stalled upload gets 504 at receive_http's
  `debug_info_upload_timeout`, and the backend never sees it complete; an
  upload slower than `server_read_timeout` still succeeds;
- a client body that breaks off: 400, and the backend never sees it whole;
- wrong methods and paths: 405 and 404."""

import socket
import time
import urllib.request

import pytest

from e2elib import clients
from e2elib.debuginfo_backend import DebuginfoBackend
from e2elib.expect import basic

MIB = 1 << 20
TENANT = "ebpf-tenant"
BUILD_ID = "2f0a9c8e4b1d7a3e5c6f8091a2b3c4d5e6f70819"


def relay_config(port, backend_url, http_extra="", receive_extra=""):
    """receive_http -> relabel -> write, the write pointed at `backend_url`
    with a tenant header and basic auth."""
    return f"""
pyroscope.receive_http "ebpf" {{
  http {{
    listen_address = "127.0.0.1"
    listen_port    = {port}
{http_extra}  }}
  forward_to = [pyroscope.relabel.tag.receiver]
{receive_extra}}}
pyroscope.relabel "tag" {{
  rule {{
    target_label = "env"
    replacement  = "ebpf"
  }}
  forward_to = [pyroscope.write.backend.receiver]
}}
pyroscope.write "backend" {{
  endpoint {{
    url     = "{backend_url}"
    headers = {{ "X-Scope-OrgID" = "{TENANT}" }}
    basic_auth {{
      username = "ebpf"
      password = "secret"
    }}
  }}
}}
"""


def start(h, backend, **kw):
    port = h.port()
    relay = h.relay(relay_config(port, backend.url, **kw))
    return relay, f"http://127.0.0.1:{port}"


def run_sequence(h, base_url, name="upload", **args):
    return clients.node_rpc("debuginfo_upload.js", h.dir, name, {
        "baseUrl": base_url, "mode": "connect-proto", "buildId": BUILD_ID,
        "name": "libexample.so", "size": MIB, "chunked": True, **args,
    }, timeout=120)


def debuginfo_backend(h, **script):
    backend = DebuginfoBackend(**script).start()
    h.backends.append(backend)
    return backend


def assert_endpoint_headers(headers):
    assert headers.get("x-scope-orgid") == TENANT, headers
    assert headers.get("authorization") == basic("ebpf", "secret"), headers


def calls(relay, method, result):
    return relay.metric("pyroscope_receive_http_debuginfo_downstream_calls_total",
                        method=method, result=result)


@pytest.mark.parametrize("mode", ["connect-proto", "connect-json", "grpc", "grpcweb"])
def test_accepted_upload_reaches_the_backend_byte_for_byte(harness, mode):
    h = harness
    backend = debuginfo_backend(h, should_upload=True)
    relay, base = start(h, backend, receive_extra='  forward_headers = ["X-Client-Tag"]\n')
    size = 3 * MIB + 12345
    out = run_sequence(h, base, mode=mode, size=size, otelFileId="abc123",
                       headers={"X-Client-Tag": "node-7"})

    assert out["should"] == {"ok": True, "shouldInitiateUpload": True, "reason": ""}, out
    assert out["upload"]["status"] == 200, out
    assert out["finished"] == {"ok": True}, out

    [should] = backend.calls_of("ShouldInitiateUpload")
    assert should.message.file.gnu_build_id == BUILD_ID
    assert should.message.file.name == "libexample.so"
    assert should.message.file.otel_file_id == "abc123"
    assert should.message.file.type == 1  # TYPE_EXECUTABLE_FULL
    # Relayed as Connect unary in the client's codec.
    json_codec = mode == "connect-json"
    assert should.content_type == ("application/json" if json_codec else "application/proto")
    [upload] = backend.wait_uploads_settled()
    assert upload.build_id == BUILD_ID
    assert upload.complete and upload.size == size == out["upload"]["sent"]
    assert upload.sha256 == out["upload"]["sha256"]
    [finished] = backend.calls_of("UploadFinished")
    assert finished.message.gnu_build_id == BUILD_ID
    for headers in (should.headers, upload.headers, finished.headers):
        assert_endpoint_headers(headers)
        # forward_headers applies to debug info as to profiles.
        assert headers.get("x-client-tag") == "node-7", headers
    for method in ("ShouldInitiateUpload", "Upload", "UploadFinished"):
        assert calls(relay, method, "success") == 1, relay.metrics()


def vm_hwm_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM")


@pytest.mark.parametrize("transport", ["http1", "h2c"])
def test_a_200_mib_upload_streams_in_flat_memory(harness, transport):
    h = harness
    h2 = transport == "h2c"
    backend = debuginfo_backend(h, should_upload=True)
    relay, base = start(h, backend)
    # Warm up: the first upload sets up the pools and buffers any upload uses.
    warm = run_sequence(h, base, name="warm-up", size=4 * MIB, h2=h2)
    assert warm["upload"]["status"] == 200, warm
    before = vm_hwm_kib(relay.proc.pid)
    size = 200 * MIB
    started = time.monotonic()
    out = run_sequence(h, base, size=size, chunked=False, h2=h2)
    seconds = time.monotonic() - started
    after = vm_hwm_kib(relay.proc.pid)

    assert out["upload"]["status"] == 200, out
    uploads = backend.wait_uploads_settled()
    big = uploads[-1]
    assert big.complete and big.size == size and big.sha256 == out["upload"]["sha256"]
    # The client's Content-Length went downstream, so the backend knew the size.
    assert not big.chunked and big.headers.get("content-length") == str(size)
    grown_mib = (after - before) / 1024
    print(f"{transport}: 200 MiB upload in {seconds:.1f}s; relay peak RSS {before / 1024:.1f} MiB "
          f"-> {after / 1024:.1f} MiB (+{grown_mib:.1f} MiB)")
    # Streaming holds a few buffers (hyper's read and write buffers, the
    # HTTP/2 window of 1 MiB), never the file: 200 MiB through, peak RSS up
    # by less than 16 MiB.
    assert grown_mib < 16, f"peak RSS grew by {grown_mib:.1f} MiB for a 200 MiB upload"


def test_declined_upload_sends_nothing(harness):
    h = harness
    backend = debuginfo_backend(h, should_upload=False, reason="debuginfo already exists")
    relay, base = start(h, backend)
    out = run_sequence(h, base)
    assert out["should"] == {"ok": True, "shouldInitiateUpload": False,
                             "reason": "debuginfo already exists"}, out
    assert "upload" not in out and "finished" not in out
    [should] = backend.calls_of("ShouldInitiateUpload")
    assert should.message.file.gnu_build_id == BUILD_ID
    time.sleep(0.3)
    assert backend.uploads == [] and backend.calls_of("UploadFinished") == []
    assert calls(relay, "ShouldInitiateUpload", "success") == 1


def test_without_a_debuginfo_target_calls_are_unavailable_and_upload_503(harness):
    h = harness
    port = h.port()
    # An archive takes profiles but has no debuginfo service; a write with
    # no endpoint has none either.
    relay = h.relay(f"""
pyroscope.receive_http "ebpf" {{
  http {{
    listen_address = "127.0.0.1"
    listen_port    = {port}
  }}
  forward_to = [pyroscope.archive.local.receiver, pyroscope.write.empty.receiver]
}}
pyroscope.archive "local" {{ }}
pyroscope.write "empty" {{ }}
""")
    base = f"http://127.0.0.1:{port}"
    # The relay answers 503 without reading the body and closes the
    # connection; a small file is all written before that, so the client
    # reads the answer instead of failing its write.
    out = run_sequence(h, base, forceUpload=True, size=64 * 1024)
    assert out["should"]["ok"] is False and out["should"]["code"] == "Unavailable", out
    assert out["should"]["message"] == "no downstream endpoints available"
    assert out["upload"]["status"] == 503, out
    assert out["upload"]["body"] == "no downstream endpoints available\n"
    assert calls(relay, "ShouldInitiateUpload", "failure") == 1
    assert calls(relay, "Upload", "failure") == 1


def test_backend_failures_reach_the_client(harness):
    h = harness
    backend = debuginfo_backend(h, should_upload=True, upload_status=500)
    relay, base = start(h, backend)
    out = run_sequence(h, base)
    assert out["upload"]["status"] == 502, out
    assert out["upload"]["body"].startswith("downstream upload: upload: HTTP 500"), out
    assert "finished" not in out
    [upload] = backend.wait_uploads_settled()
    assert upload.complete  # the backend read it all, then failed
    assert calls(relay, "Upload", "failure") == 1

    # A Connect error keeps its code and message.
    backend.script.unary_error = ("resource_exhausted", "tenant over its debuginfo quota")
    out = run_sequence(h, base, name="quota")
    assert out["should"] == {"ok": False, "code": "ResourceExhausted",
                             "message": "tenant over its debuginfo quota"}, out
    assert calls(relay, "ShouldInitiateUpload", "failure") == 1


def test_a_stalled_upload_times_out_and_never_completes_downstream(harness):
    h = harness
    backend = debuginfo_backend(h, should_upload=True)
    relay, base = start(h, backend, receive_extra='  debug_info_upload_timeout = "2s"\n')
    out = run_sequence(h, base, size=8 * MIB, stallAfter=2 * MIB, stallMs=8000)
    assert out["upload"]["status"] == 504, out
    assert out["upload"]["body"] == "downstream upload: upload timed out after 2s\n", out
    # Answered at the timeout, while the client was still stalled.
    assert 1900 <= out["upload"]["ms"] < 5000, out
    [upload] = backend.wait_uploads_settled()
    assert not upload.complete and upload.size < 8 * MIB, upload
    assert calls(relay, "Upload", "failure") == 1


def test_an_upload_may_outlast_the_server_read_timeout(harness):
    h = harness
    backend = debuginfo_backend(h, should_upload=True)
    relay, base = start(h, backend, http_extra='    server_read_timeout = "1s"\n')
    out = run_sequence(h, base, size=4 * MIB, stallAfter=MIB, stallMs=2500)
    assert out["upload"]["status"] == 200, out
    [upload] = backend.wait_uploads_settled()
    assert upload.complete and upload.sha256 == out["upload"]["sha256"]
    assert out["finished"] == {"ok": True}


def test_wrong_methods_and_unknown_paths(harness):
    h = harness
    backend = debuginfo_backend(h)
    _, base = start(h, backend)
    service = base + "/debuginfo.v1alpha1.DebuginfoService/"

    def status(method, path):
        req = urllib.request.Request(service + path, method=method,
                                     data=b"" if method == "POST" else None)
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status
        except urllib.error.HTTPError as e:
            return e.code

    assert status("GET", "ShouldInitiateUpload") == 405
    assert status("GET", f"Upload/{BUILD_ID}") == 405
    assert status("POST", "ListDebuginfo") == 404
    assert status("POST", "Upload/") == 404
    assert status("POST", "Upload/a/b") == 404
    assert backend.calls == [] and backend.uploads == []


def test_a_broken_client_body_is_a_400_and_never_completes_downstream(harness):
    h = harness
    backend = debuginfo_backend(h)
    relay, base = start(h, backend)
    port = int(base.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(
            f"POST /debuginfo.v1alpha1.DebuginfoService/Upload/{BUILD_ID} HTTP/1.1\r\n"
            "Host: relay\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
            + b"10\r\n" + b"x" * 16 + b"\r\n"
            + b"zz\r\n"  # not a chunk size
        )
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.endswith(b"\n"):
            piece = s.recv(4096)
            if not piece:
                break
            answer += piece
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 "), answer
    assert body.startswith(b"failed to read the request body: "), answer
    assert b"connection: close" in head.lower(), answer
    # The relay may or may not have reached the backend before the body
    # broke; either way the backend never has the whole file.
    time.sleep(0.3)
    uploads = backend.wait_uploads_settled()
    assert len(uploads) <= 1 and not any(u.complete for u in uploads), uploads
    assert calls(relay, "Upload", "failure") == 1
