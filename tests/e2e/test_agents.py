"""The real agents, all at once, through a running relay to a recording
backend: pyroscope-io 1.4.0 (Connect push, gzip, CPU + memory in one
request) and 0.8.16 (/ingest, gzipped pprof with Content-Encoding),
@pyroscope/nodejs 0.6.4 (/ingest, raw gzipped pprof, labels with `/` in
`name`) and 0.4.13 (multipart, no `format`).

A tap in front of the relay records exactly what each agent sent and what
the relay answered it; the backend records what the relay forwarded."""

import pytest

from e2elib import clients, pprof
from e2elib.expect import (
    assert_ingest_delivered,
    assert_push_delivered,
    basic,
    multipart_profile,
)

EXTERNAL = {"cluster": "e2e", "region": "relay-region"}
TENANT = "tenant-e2e"
RELAY_AUTH = ("relay-user", "relay-pass")


def config(port, backend_url):
    return f"""
pyroscope.receive_http "agents" {{
  http {{
    listen_address = "127.0.0.1"
    listen_port    = {port}
  }}
  forward_to = [pyroscope.write.backend.receiver]
}}

pyroscope.write "backend" {{
  external_labels = {{ cluster = "e2e", region = "relay-region" }}
  endpoint {{
    url     = "{backend_url}"
    headers = {{ "X-Scope-OrgID" = "{TENANT}" }}
    basic_auth {{
      username = "{RELAY_AUTH[0]}"
      password = "{RELAY_AUTH[1]}"
    }}
  }}
}}
"""


@pytest.fixture(scope="module")
def run(module_harness):
    h = module_harness
    backend = h.backend()
    port = h.port()
    relay = h.relay(config(port, backend.url))
    tap = h.tap(port)
    procs = [
        clients.py_agent(
            "1.4.0", h.dir, tap.url, "pyapp", seconds=5, interval=2, mem=True,
            tags={"env": "test", "region": "us-east"},
            basic="agent-user:agent-pass", tenant="agent-tenant",
        ),
        clients.py_agent(
            "0.8.16", h.dir, tap.url, "py08app.cpu", seconds=5,
            tags={"env": "test"}, basic="agent-user:agent-pass", tenant="agent-tenant",
        ),
        clients.node_agent(
            "0.6.4", h.dir, tap.url, "nodeapp", seconds=5, flushIntervalMs=2000,
            tags={"env": "test", "route": "/api/v1/users"},
            wall={"samplingDurationMs": 2000, "collectCpuTime": True},
            basicAuthUser="agent-user", basicAuthPassword="agent-pass", tenantID="agent-tenant",
        ),
        clients.node_agent(
            "0.4.13", h.dir, tap.url, "node04app", seconds=5, flushIntervalMs=2000,
            tags={"env": "test"}, tenantID="agent-tenant",
        ),
    ]
    clients.wait_all(procs, timeout=60)
    backend.quiet(1.0)
    return tap, backend, relay


def by_agent(requests, marker):
    return [r for r in requests if marker in (r.header("User-Agent") or "") + r.query]


def test_every_agent_request_was_answered_200(run):
    tap, _, _ = run
    sent = tap.snapshot()
    assert sent
    assert [(r.path, r.upstream_status) for r in sent if r.upstream_status != 200] == []


def test_python_1_4_push_cpu_and_memory_in_one_request(run):
    tap, backend, _ = run
    sent = [r for r in tap.pushes() if "pyspy/1.4.0" in r.header("User-Agent", "")]
    assert len(sent) >= 2, "pyroscope-io 1.4.0 uploads every 2 s and on shutdown"
    for r in sent:
        # What the agent sends: Connect unary, gzip of the whole PushRequest,
        # two series (memory, process_cpu) with an uncompressed pprof each.
        assert r.header("Content-Type") == "application/proto"
        assert r.header("Content-Encoding") == "gzip"
        assert r.header("Authorization") == basic("agent-user", "agent-pass")
        assert r.header("X-Scope-OrgID") == "agent-tenant"
        assert sorted(labels["__name__"] for labels, _ in r.series()) == ["memory", "process_cpu"]
    received = assert_push_delivered(sent, backend.pushes(), EXTERNAL)
    ids = {sid for _, sid, _ in (s for r in sent for s in r.samples())}
    mine = [r for r in received if {sid for _, sid, _ in r.samples()} & ids]
    assert len(mine) == len(sent)
    for r in mine:
        assert r.header("Content-Type") == "application/proto"
        assert r.header("Content-Encoding") in (None, "identity", "gzip")
        for labels, sid, raw in r.samples():
            assert labels["service_name"] == "pyapp"
            assert labels["env"] == "test"
            assert labels["region"] == "relay-region", "external labels override"
            assert labels["cluster"] == "e2e"
            assert labels["otel.scope.version"] == "1.4.0"
            assert raw[:2] != pprof.GZIP_MAGIC, "the agent's raw_profile is uncompressed"
            p = pprof.parse(raw)
            if labels["__name__"] == "process_cpu":
                assert p.sample_types == [("cpu", "nanoseconds")]
                assert p.period_type == ("cpu", "nanoseconds")
            else:
                assert p.sample_types == [
                    ("alloc_objects", "count"), ("alloc_space", "bytes"),
                    ("inuse_objects", "count"), ("inuse_space", "bytes"),
                ]
    cpu = [pprof.parse(raw) for r in mine for labels, _, raw in r.samples()
           if labels["__name__"] == "process_cpu"]
    assert any("work" in p.label_values("handler") for p in cpu), "thread tags in pprof labels"


def test_python_0_8_ingest_gzipped_pprof_with_content_encoding(run):
    tap, backend, _ = run
    sent = [r for r in tap.ingests() if r.params.get("name", "").startswith("py08app")]
    assert len(sent) >= 1
    for r in sent:
        assert r.header("Content-Encoding") == "gzip"
        assert r.header("Content-Type") == "binary/octet-stream"
        assert r.params["format"] == "pprof" and r.params["spyName"] == "pyspy"
        assert r.body[:2] == pprof.GZIP_MAGIC
    received = assert_ingest_delivered(sent, backend.ingests(), EXTERNAL)
    for r in sent:
        got = next(x for x in received if x.body == r.body)
        assert got.name_labels == {
            "__name__": "py08app.cpu", "service_name": "py08app.cpu",
            "cluster": "e2e", "region": "relay-region",
        }
        p = pprof.parse(got.body)
        assert p.sample_types == [("cpu", "nanoseconds")]
        assert "test" in p.label_values("env"), "0.8 tags travel as pprof labels"


def test_node_0_6_ingest_raw_gzip_without_content_encoding(run):
    tap, backend, _ = run
    sent = [r for r in tap.ingests() if r.params.get("name", "").startswith("nodeapp{")]
    assert len(sent) >= 2, "a wall and a heap profile per flush"
    for r in sent:
        assert r.header("Content-Encoding") is None
        assert r.header("Content-Type") == "application/octet-stream"
        assert r.params["format"] == "pprof"
        assert r.body[:2] == pprof.GZIP_MAGIC
        assert r.header("Authorization") == basic("agent-user", "agent-pass")
    received = assert_ingest_delivered(sent, backend.ingests(), EXTERNAL)
    kinds = set()
    for r in sent:
        got = next(x for x in received if x.body == r.body)
        labels = got.name_labels
        assert labels["otel.scope.name"] == "com.grafana.pyroscope/nodejs"
        assert labels["route"] == "/api/v1/users"
        assert labels["service_name"] == "nodeapp" and labels["cluster"] == "e2e"
        types = [t for t, _ in pprof.parse(got.body).sample_types]
        kinds.add("wall" if "wall" in types else "heap" if "inuse_space" in types else str(types))
    assert kinds == {"wall", "heap"}


def test_node_0_4_multipart_without_format(run):
    tap, backend, _ = run
    sent = [r for r in tap.ingests() if r.params.get("name", "").startswith("node04app")]
    assert len(sent) >= 2
    for r in sent:
        assert "format" not in r.params
        assert r.header("Content-Type").startswith("multipart/form-data; boundary=")
    received = assert_ingest_delivered(sent, backend.ingests(), EXTERNAL)
    types = set()
    for r in sent:
        got = next(x for x in received if x.body == r.body)
        assert got.header("Content-Type") == r.header("Content-Type"), "boundary kept"
        profile = multipart_profile(got)
        assert profile[:2] == pprof.GZIP_MAGIC
        types.update(t for t, _ in pprof.parse(profile).sample_types)
    assert {"wall", "inuse_space"} <= types


def test_backend_gets_the_endpoint_credentials_not_the_agents(run):
    tap, backend, relay = run
    received = backend.snapshot()
    assert received
    for r in received:
        assert r.header_all("Authorization") == [basic(*RELAY_AUTH)], r.path
        assert r.header_all("X-Scope-OrgID") == [TENANT], r.path
    # Each profile counted once by the writer too.
    samples = sum(len(r.samples()) for r in received if r.is_push)
    ingests = sum(1 for r in received if r.is_ingest)
    assert relay.metric("pyroscope_write_sent_profiles_total") == samples + ingests
    assert relay.metric("pyroscope_write_dropped_profiles_total") == 0
