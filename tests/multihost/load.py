"""Steady load through the load balancer, run in the clients' namespace:

    python load.py URL SECONDS OUT.json [TAG]

Three senders, one request after another each, for SECONDS:
- push:   the Connect protocol over HTTP/1.1 keep-alive (e2elib.keepalive,
          which behaves like the agents' pooling clients);
- grpc:   grpcio, a real gRPC client, over one h2c channel;
- ingest: /ingest with a folded body, HTTP/1.1 keep-alive.

Every request carries a fresh sample id (push, gRPC) or a body holding one
(/ingest). OUT.json gets, per sender, [id, ok, error, start, end] for each
request (times in seconds since the epoch), so the driver can check that
every acknowledged request reached the backend and see when failures
happened."""

import json
import sys
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

E2E = Path(__file__).resolve().parents[1] / "e2e"
sys.path.insert(0, str(E2E))

import grpc  # noqa: E402

from e2elib import payloads, protos  # noqa: E402
from e2elib.keepalive import KeepAlive  # noqa: E402

PAUSE = 0.02  # between two requests of one sender
CALL_TIMEOUT = 60  # per request: above the relay's own limits, below the driver's


def sender(name, send, until, out):
    while time.time() < until:
        uid = str(uuid.uuid4())
        start = time.time()
        try:
            send(uid)
            out.append([uid, True, "", start, time.time()])
        except Exception as e:  # recorded: the driver decides
            out.append([uid, False, repr(e)[:300], start, time.time()])
        time.sleep(PAUSE)


def main():
    url, seconds, out_path = sys.argv[1], float(sys.argv[2]), sys.argv[3]
    tag = sys.argv[4] if len(sys.argv) > 4 else "load"
    host, port = urlsplit(url).hostname, urlsplit(url).port
    push_client = KeepAlive(host, port, timeout=CALL_TIMEOUT)
    ingest_client = KeepAlive(host, port, timeout=CALL_TIMEOUT)
    channel = grpc.insecure_channel(f"{host}:{port}")
    stub = protos.push_pb2_grpc.PusherServiceStub(channel)

    def push(uid):
        body = protos.push_request([({"__name__": "process_cpu", "service_name": "mh-push",
                                      "run": tag}, [(uid, payloads.PY_CPU)])])
        status, _, data = push_client.request(
            "POST", "/push.v1.PusherService/Push", body, {"Content-Type": "application/proto"})
        if status != 200:
            raise AssertionError(f"HTTP {status}: {data[:200]!r}")

    def ingest(uid):
        status, _, data = ingest_client.request(
            "POST", f"/ingest?name=mh-ingest.cpu%7Brun%3D{tag}%7D&from=1&until=2&format=folded",
            f"main;work;{uid} 1".encode(), {"Content-Type": "binary/octet-stream"})
        if status != 200:
            raise AssertionError(f"HTTP {status}: {data[:200]!r}")

    def grpc_push(uid):
        req = protos.PushRequest.FromString(protos.push_request(
            [({"__name__": "process_cpu", "service_name": "mh-grpc", "run": tag},
              [(uid, payloads.PY_CPU)])]))
        stub.Push(req, timeout=CALL_TIMEOUT)

    until = time.time() + seconds
    results = {"push": [], "grpc": [], "ingest": []}
    threads = [threading.Thread(target=sender, args=(n, f, until, results[n]), daemon=True)
               for n, f in (("push", push), ("grpc", grpc_push), ("ingest", ingest))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 2 * CALL_TIMEOUT)
    channel.close()
    # Requests the keep-alive clients sent a second time because the
    # connection died under them with no answer (as the agents' clients do).
    results["resent"] = {"push": push_client.stale_retries, "ingest": ingest_client.stale_retries}
    Path(out_path).write_text(json.dumps(results))
    print("done", flush=True)


if __name__ == "__main__":
    main()
