"""Reloading the relay while clients keep sending: nothing lost, nothing
duplicated.

Real agents (pyroscope-io 1.4.0 uploading every second, @pyroscope/nodejs
0.6.4 flushing every second, through a keep-alive tap) and three steady
load clients (/ingest and Connect push over HTTP/1.1 keep-alive, gRPC over
one h2c channel) send while the config is reloaded four times, twice with
`/-/reload` and twice with SIGHUP: a writer change, an `http` block change
(a new server takes over the listening socket), a relabel stage inserted
into the chain, and another `http` change. Every request a client saw
succeed must reach the backend exactly once, and none may fail."""

import threading
import time
import uuid

import grpc

from e2elib import clients, payloads, protos
from e2elib.expect import assert_ingest_delivered, assert_push_delivered
from e2elib.keepalive import KeepAlive


def config(port, backend_url, gen, idle="120s", conn_limit=16384, relabel=False):
    target = "pyroscope.relabel.stage.receiver" if relabel else "pyroscope.write.backend.receiver"
    stage = """
pyroscope.relabel "stage" {
  forward_to = [pyroscope.write.backend.receiver]
  rule {
    target_label = "stage"
    replacement  = "relabeled"
  }
}
""" if relabel else ""
    return f"""
pyroscope.receive_http "default" {{
  http {{
    listen_address      = "127.0.0.1"
    listen_port         = {port}
    server_idle_timeout = "{idle}"
    conn_limit          = {conn_limit}
  }}
  forward_to = [{target}]
}}
{stage}
pyroscope.write "backend" {{
  external_labels = {{ gen = "{gen}" }}
  endpoint {{
    url = "{backend_url}"
  }}
}}
"""


class Loader(threading.Thread):
    """Sends one request after another until stopped; records (id, ok, error)."""

    def __init__(self, name, send):
        super().__init__(name=name, daemon=True)
        self.send = send
        self.results = []
        self.stopping = threading.Event()

    def run(self):
        while not self.stopping.is_set():
            uid = str(uuid.uuid4())
            try:
                self.send(uid)
                self.results.append((uid, True, ""))
            except Exception as e:  # recorded: the test fails on any
                self.results.append((uid, False, repr(e)))
            time.sleep(0.02)

    def ok_ids(self):
        return [uid for uid, ok, _ in self.results if ok]

    def failures(self):
        return [(uid, err) for uid, ok, err in self.results if not ok]


def http_sender(client, target, headers, body_of):
    def send(uid):
        status, _, data = client.request("POST", target, body_of(uid), headers)
        if status != 200:
            raise AssertionError(f"HTTP {status}: {data[:200]!r}")
    return send


def test_reload_while_sending(harness):
    h = harness
    backend = h.backend()
    port = h.port()
    relay = h.relay(config(port, backend.url, gen=1))
    tap = h.tap(port)

    ingest_client, push_client = KeepAlive("127.0.0.1", port), KeepAlive("127.0.0.1", port)
    ingest = Loader("ingest", http_sender(
        ingest_client, "/ingest?name=load-ingest.cpu%7Bloader%3Dingest%7D&from=1&until=2&format=folded",
        {"Content-Type": "binary/octet-stream"},
        lambda uid: f"main;work;{uid} 1".encode()))
    push = Loader("push", http_sender(
        push_client, "/push.v1.PusherService/Push", {"Content-Type": "application/proto"},
        lambda uid: protos.push_request([({"__name__": "process_cpu", "service_name": "load-push"},
                                          [(uid, payloads.PY_CPU)])])))
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    stub = protos.push_pb2_grpc.PusherServiceStub(channel)
    grpc_loader = Loader("grpc", lambda uid: stub.Push(protos.PushRequest.FromString(
        protos.push_request([({"__name__": "process_cpu", "service_name": "load-grpc"},
                              [(uid, payloads.PY_CPU)])])), timeout=10))
    loaders = [ingest, push, grpc_loader]
    agents = [
        clients.py_agent("1.4.0", h.dir, tap.url, "pyapp", seconds=12, interval=1, mem=True),
        clients.node_agent("0.6.4", h.dir, tap.url, "nodeapp", seconds=12.5, flushIntervalMs=1000,
                           wall={"samplingDurationMs": 1000, "collectCpuTime": True}),
    ]
    try:
        for loader in loaders:
            loader.start()
        steps = [
            (config(port, backend.url, gen=2), "http"),
            (config(port, backend.url, gen=3, idle="90s"), "sighup"),
            (config(port, backend.url, gen=4, idle="90s", relabel=True), "http"),
            (config(port, backend.url, gen=5, idle="90s", conn_limit=8192, relabel=True), "sighup"),
        ]
        for cfg, via in steps:
            time.sleep(2.2)
            relay.reload(cfg, via=via)
        time.sleep(2.0)
    finally:
        for loader in loaders:
            loader.stopping.set()
        for loader in loaders:
            loader.join(30)
        channel.close()
        ingest_client.close(), push_client.close()
    clients.wait_all(agents, timeout=60)
    received = backend.quiet(1.0)
    print(f"requests sent again after a kept-alive connection died under them: "
          f"ingest {ingest_client.stale_retries}, push {push_client.stale_retries}, "
          f"agents {tap.stale_retries}")

    # The load clients: no failure, each success exactly once, and every
    # config took effect in order (a sequential client never goes back to
    # an older generation).
    for loader in loaders:
        assert loader.failures() == [], f"{loader.name}: {loader.failures()[:5]}"
        assert len(loader.ok_ids()) > 100, f"{loader.name} sent only {len(loader.ok_ids())}"
    got_ingest = [r for r in received if r.is_ingest and r.name_labels.get("loader") == "ingest"]
    bodies = [r.body.decode().split(";")[-1].split(" ")[0] for r in got_ingest]
    assert sorted(bodies) == sorted(ingest.ok_ids())
    gens = [int(r.name_labels["gen"]) for r in got_ingest]
    assert gens == sorted(gens) and set(gens) == {1, 2, 3, 4, 5}, gens
    staged = [r.name_labels.get("stage") == "relabeled" for r in got_ingest]
    assert staged == sorted(staged) and any(staged), staged
    for loader, service in ((push, "load-push"), (grpc_loader, "load-grpc")):
        got = [(sid, l) for r in received if r.is_push for l, sid, _ in r.samples()
               if l.get("service_name") == service]
        assert sorted(sid for sid, _ in got) == sorted(loader.ok_ids()), loader.name
        gens = [int(l["gen"]) for _, l in got]
        assert gens == sorted(gens) and set(gens) == {1, 2, 3, 4, 5}, (loader.name, gens)
        # A reload applies component by component, referenced ones first
        # (the writer, then the receiver's forward_to), so a request may
        # meet the new writer before the new chain; never the reverse, and
        # a sequential client never goes back.
        staged = [l.get("stage") == "relabeled" for _, l in got]
        assert staged == sorted(staged) and any(staged), (loader.name, staged)
        assert all(int(l["gen"]) >= 4 for _, l in got if l.get("stage")), loader.name

    # The agents: every upload answered 200 and delivered exactly once.
    sent = tap.snapshot()
    assert len(sent) >= 20
    assert [(r.upstream_status, r.upstream_body[:100]) for r in sent if r.upstream_status != 200] == []
    assert_push_delivered(sent, received, ignore=("gen", "stage"))
    assert_ingest_delivered(sent, received, ignore=("gen", "stage"))
