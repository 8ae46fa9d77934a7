"""Real agents through the topologies users configure:

- the documented two-write example: one receive_http forwarding to a
  staging and a production `pyroscope.write`, each with its own backend,
  tenant and credentials;
- a receive_http -> pyroscope.relabel -> pyroscope.write chain (rename a
  label, drop a label, drop a whole service);
- `forward_headers = ["X-Scope-OrgID"]`: each agent's tenant reaches the
  backend (and nothing else of the agent's headers does)."""

from e2elib import clients
from e2elib.expect import assert_ingest_delivered, assert_push_delivered, basic


def receive(port, forward_to, extra=""):
    return f"""
pyroscope.receive_http "default" {{
  http {{
    listen_address = "127.0.0.1"
    listen_port    = {port}
  }}
  forward_to = [{forward_to}]
{extra}}}
"""


def run_agents(h, server, *, py14_apps=("pyapp",), node_tenant="", py_tenant="", seconds=5):
    procs = [
        clients.py_agent("1.4.0", h.dir, server, app, seconds=seconds, interval=2, mem=True,
                         tags={"env": "test"}, tenant=py_tenant, basic="agent:secret")
        for app in py14_apps
    ]
    procs.append(clients.node_agent(
        "0.6.4", h.dir, server, "nodeapp", seconds=seconds, flushIntervalMs=2000,
        tags={"env": "test", "route": "/a/b"}, tenantID=node_tenant,
        wall={"samplingDurationMs": 2000, "collectCpuTime": True},
    ))
    procs.append(clients.node_agent(
        "0.4.13", h.dir, server, "node04app", seconds=seconds, flushIntervalMs=2000,
        tags={"env": "test"}, tenantID=node_tenant,
    ))
    clients.wait_all(procs, timeout=60)


def test_two_writes_each_get_every_profile_once(harness):
    h = harness
    staging, production = h.backend("staging"), h.backend("production")
    port = h.port()
    h.relay(receive(port, "pyroscope.write.staging.receiver, pyroscope.write.production.receiver") + f"""
pyroscope.write "staging" {{
  endpoint {{
    url     = "{staging.url}"
    headers = {{ "X-Scope-OrgID" = "squad-staging" }}
  }}
}}

pyroscope.write "production" {{
  external_labels = {{ env = "production" }}
  endpoint {{
    url     = "{production.url}"
    headers = {{ "X-Scope-OrgID" = "squad-prod" }}
    basic_auth {{
      username = "prod"
      password = "prod-secret"
    }}
  }}
}}
""")
    tap = h.tap(port)
    run_agents(h, tap.url)
    staging.quiet(0.5), production.quiet(0.5)
    sent = tap.snapshot()
    assert all(r.upstream_status == 200 for r in sent), [r.upstream_status for r in sent]

    assert_push_delivered(sent, staging.snapshot())
    assert_ingest_delivered(sent, staging.snapshot())
    assert_push_delivered(sent, production.snapshot(), {"env": "production"})
    assert_ingest_delivered(sent, production.snapshot(), {"env": "production"})
    assert len(staging.snapshot()) == len(production.snapshot()) == len(sent)
    for r in staging.snapshot():
        assert r.header_all("X-Scope-OrgID") == ["squad-staging"]
        assert r.header("Authorization") is None, "the agent's credentials are not forwarded"
    for r in production.snapshot():
        assert r.header_all("X-Scope-OrgID") == ["squad-prod"]
        assert r.header_all("Authorization") == [basic("prod", "prod-secret")]


RELABEL_RULES = """
pyroscope.relabel "tidy" {
  forward_to = [pyroscope.write.backend.receiver]

  // env -> environment
  rule {
    source_labels = ["env"]
    target_label  = "environment"
  }
  rule {
    action = "labeldrop"
    regex  = "env"
  }
  // a service nobody wants to store
  rule {
    source_labels = ["service_name"]
    regex         = "noisy-.*"
    action        = "drop"
  }
}
"""


def relabel(labels: dict) -> dict:
    """What RELABEL_RULES do to a label set."""
    out = dict(labels)
    if "env" in out:
        out["environment"] = out.pop("env")
    return out


def test_relabel_then_write(harness):
    h = harness
    backend = h.backend()
    port = h.port()
    relay = h.relay(receive(port, "pyroscope.relabel.tidy.receiver") + RELABEL_RULES + f"""
pyroscope.write "backend" {{
  external_labels = {{ cluster = "c1" }}
  endpoint {{
    url = "{backend.url}"
  }}
}}
""")
    tap = h.tap(port)
    run_agents(h, tap.url, py14_apps=("pyapp", "noisy-batch"))
    backend.quiet(0.5)
    sent = tap.snapshot()
    # A dropped profile is a success for the agent, as in Alloy.
    assert all(r.upstream_status == 200 for r in sent), [r.upstream_status for r in sent]

    noisy = [r for r in sent if r.is_push
             and any(l["service_name"] == "noisy-batch" for l, _ in r.series())]
    kept = [r for r in sent if r not in noisy]
    assert noisy and kept
    received = backend.snapshot()
    assert not [r for r in received if r.is_push
                and any(l.get("service_name") == "noisy-batch" for l, _, _ in r.samples())]
    assert_push_delivered(kept, received, {"cluster": "c1"}, relabel)
    assert_ingest_delivered(kept, received, {"cluster": "c1"}, relabel)
    for r in received:
        labels = [l for l, _, _ in r.samples()] if r.is_push else [r.name_labels]
        for l in labels:
            assert l["environment"] == "test" and "env" not in l, l
    noisy_series = sum(len(r.series()) for r in noisy)
    assert relay.metric("pyroscope_relabel_profiles_dropped") == noisy_series


def test_forward_headers_pass_each_agents_tenant(harness):
    h = harness
    backend = h.backend()
    port = h.port()
    h.relay(receive(port, "pyroscope.write.backend.receiver",
                    '  forward_headers = ["X-Scope-OrgID"]\n') + f"""
pyroscope.write "backend" {{
  endpoint {{
    url = "{backend.url}"
  }}
}}
""")
    tap = h.tap(port)
    run_agents(h, tap.url, py_tenant="team-python", node_tenant="team-node")
    backend.quiet(0.5)
    sent = tap.snapshot()
    assert all(r.upstream_status == 200 for r in sent)
    received = backend.snapshot()
    assert_push_delivered(sent, received)
    assert_ingest_delivered(sent, received)
    for r in received:
        want = "team-python" if r.is_push else "team-node"
        assert r.header_all("X-Scope-OrgID") == [want], (r.path, r.headers)
        assert r.header("Authorization") is None, "only the listed headers are forwarded"
