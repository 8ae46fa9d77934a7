"""The push API over every protocol real RPC clients speak, through a
running relay to a recording backend:

- connect-es 2.2.0: Connect proto, JSON and gzip over HTTP/1.1 (chunked
  bodies), Connect over h2c, gRPC and gRPC gzip over h2c, gRPC-Web proto
  and JSON over HTTP/1.1;
- @grpc/grpc-js 1.14.7 and Python grpcio 1.85.3, plain and gzip, over h2c
  (`content-type: application/grpc`; grpcio may send gzip's flag byte 0).

Each client sends two PushRequests (two series, three samples: a plain and
two gzipped pprofs) with its own tenant and credentials headers. The
backend must get each request as exactly one request holding all its
series, every sample once with identical bytes, labels plus the relay's
external labels, and the endpoint's tenant instead of the client's."""

import base64

import grpc
import pytest

from e2elib import clients, payloads, protos
from e2elib.expect import SentPush, assert_push_delivered

EXTERNAL = {"cluster": "rpc"}
TENANT = "rpc-tenant"
# What real clients send along (connect-es sent these headers when captured);
# without forward_headers none of it may reach the backend.
CLIENT_HEADERS = {"X-Scope-OrgID": "tenant-c", "Authorization": "Basic dXNlcjE6cGFzczE="}


@pytest.fixture(scope="module")
def stack(module_harness):
    h = module_harness
    backend = h.backend()
    port = h.port()
    h.relay(f"""
pyroscope.receive_http "rpc" {{
  http {{
    listen_address = "127.0.0.1"
    listen_port    = {port}
  }}
  forward_to = [pyroscope.write.backend.receiver]
}}
pyroscope.write "backend" {{
  external_labels = {{ cluster = "rpc" }}
  endpoint {{
    url     = "{backend.url}"
    headers = {{ "X-Scope-OrgID" = "{TENANT}" }}
  }}
}}
""")
    return h, port, backend


def received_for(backend, service):
    return [r for r in backend.quiet(0.3) if r.is_push and any(
        labels.get("service_name") == service for labels, _, _ in r.samples())]


def check(backend, service, bodies):
    received = received_for(backend, service)
    assert len(received) == len(bodies), f"{len(bodies)} client requests, {len(received)} forwarded"
    assert_push_delivered([SentPush(b) for b in bodies], received, EXTERNAL)
    for r in received:
        assert r.header("Content-Type") == "application/proto"
        assert r.header_all("X-Scope-OrgID") == [TENANT]
        assert r.header("Authorization") is None
        assert len(r.series()) == 2


CONNECT_ES_MODES = [
    "connect-proto", "connect-json", "connect-proto-gzip", "connect-h2",
    "grpc", "grpc-gzip", "grpcweb", "grpcweb-json",
]


@pytest.mark.parametrize("mode", CONNECT_ES_MODES)
def test_connect_es(stack, mode):
    h, port, backend = stack
    service = f"connect-es-{mode}"
    bodies = [payloads.push(service), payloads.push(service)]
    out = clients.node_rpc("connect_push.js", h.dir, f"connect-es-{mode}", {
        "baseUrl": f"http://127.0.0.1:{port}",
        "mode": mode,
        "requests": [base64.b64encode(b).decode() for b in bodies],
        "headers": CLIENT_HEADERS,
    })
    assert out["results"] == [{"ok": True}] * 2, out
    check(backend, service, bodies)


@pytest.mark.parametrize("mode", ["connect-proto", "connect-json", "connect-proto-gzip"])
def test_connect_es_http1_bodies_are_chunked(harness, mode):
    """The premise of the HTTP/1.1 Connect cases above: connect-es sends
    these bodies chunked, without Content-Length (seen at a bare backend)."""
    backend = harness.backend()
    out = clients.node_rpc("connect_push.js", harness.dir, f"connect-es-{mode}", {
        "baseUrl": backend.url, "mode": mode,
        "requests": [base64.b64encode(payloads.push("shape")).decode()],
    })
    assert out["results"] == [{"ok": True}], out
    (req,) = backend.snapshot()
    assert req.chunked and req.header("Content-Length") is None
    assert req.header("Content-Type") == ("application/json" if mode == "connect-json"
                                          else "application/proto")
    assert req.header("Content-Encoding") == ("gzip" if mode.endswith("gzip") else None)


@pytest.mark.parametrize("use_gzip", [False, True], ids=["plain", "gzip"])
def test_grpc_js(stack, use_gzip):
    h, port, backend = stack
    service = f"grpc-js-{'gzip' if use_gzip else 'plain'}"
    bodies = [payloads.push(service), payloads.push(service)]
    out = clients.node_rpc("grpcjs_push.js", h.dir, service, {
        "target": f"127.0.0.1:{port}",
        "requests": [base64.b64encode(b).decode() for b in bodies],
        "gzip": use_gzip,
        "metadata": CLIENT_HEADERS,
    })
    assert out["results"] == [{"ok": True}] * 2, out
    check(backend, service, bodies)


@pytest.mark.parametrize("use_gzip", [False, True], ids=["plain", "gzip"])
def test_python_grpcio(stack, use_gzip):
    _, port, backend = stack
    service = f"grpcio-{'gzip' if use_gzip else 'plain'}"
    # The first request is mostly already-gzipped pprofs, which grpcio may
    # leave uncompressed (flag byte 0) even under `grpc-encoding: gzip`; the
    # second is very compressible.
    bodies = [payloads.push(service), payloads.push(service, padding="x" * 20000)]
    compression = grpc.Compression.Gzip if use_gzip else grpc.Compression.NoCompression
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = protos.push_pb2_grpc.PusherServiceStub(channel)
        for body in bodies:
            reply = stub.Push(protos.PushRequest.FromString(body), timeout=10,
                              compression=compression,
                              metadata=[(k.lower(), v) for k, v in CLIENT_HEADERS.items()])
            assert isinstance(reply, protos.PushResponse)
    check(backend, service, bodies)
