"""The failures users meet, with real agents sending through the relay:

- the backend is down, then back: the relay retries and every profile is
  delivered exactly once, and the agents never see an error;
- the backend answers 400: the agents get 400, nothing is retried;
- the backend is slower than `remote_timeout`: the relay abandons the
  attempt at `remote_timeout` and retries, so the agent still gets its
  answer in time (the abandoned attempt had reached the backend: a
  timeout gives at-least-once delivery, as in Alloy);
- the backend stays slow: the agent gets an error within the retry budget
  instead of hanging."""

import base64
import time

from e2elib import clients, payloads
from e2elib.backend import Answer
from e2elib.expect import assert_ingest_delivered, assert_push_delivered


def config(port, backend_url, endpoint_extra=""):
    return f"""
pyroscope.receive_http "default" {{
  http {{
    listen_address = "127.0.0.1"
    listen_port    = {port}
  }}
  forward_to = [pyroscope.write.backend.receiver]
}}
pyroscope.write "backend" {{
  endpoint {{
    url = "{backend_url}"
{endpoint_extra}  }}
}}
"""


def wait_metric(relay, name, at_least=1, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if relay.metric(name) >= at_least:
            return
        time.sleep(0.1)
    raise AssertionError(f"{name} never reached {at_least}")


def test_backend_down_then_back_delivers_once(harness):
    h = harness
    backend = h.backend()
    port = h.port()
    relay = h.relay(config(port, backend.url, """    min_backoff_period  = "200ms"
    max_backoff_period  = "1s"
    max_backoff_retries = 0
    remote_timeout      = "2s"
"""))
    tap = h.tap(port)
    backend.stop()  # down before the agents start
    procs = [
        clients.py_agent("1.4.0", h.dir, tap.url, "pyapp", seconds=7, interval=2, mem=True,
                         tags={"env": "test"}),
        clients.node_agent("0.6.4", h.dir, tap.url, "nodeapp", seconds=7, flushIntervalMs=2000,
                           wall={"samplingDurationMs": 2000, "collectCpuTime": True}),
    ]
    # The first uploads are held by the relay's retries...
    wait_metric(relay, "pyroscope_write_retries_total", at_least=3)
    time.sleep(1.0)
    assert backend.snapshot() == []
    backend.start()  # ...until the backend is back on the same port.
    clients.wait_all(procs, timeout=60)
    received = backend.quiet(1.0)
    sent = tap.snapshot()
    assert [r.upstream_status for r in sent] == [200] * len(sent)
    assert_push_delivered(sent, received)
    assert_ingest_delivered(sent, received)
    assert len(received) == len(sent), "one backend request per agent request, no duplicates"
    assert relay.metric("pyroscope_write_dropped_profiles_total") == 0


def test_backend_400_reaches_the_agent_without_retry(harness):
    h = harness
    backend = h.backend()
    backend.default = Answer(400, message="I don't like your profile")
    port = h.port()
    relay = h.relay(config(port, backend.url, '    min_backoff_period = "100ms"\n'))
    tap = h.tap(port)
    procs = [
        clients.py_agent("1.4.0", h.dir, tap.url, "pyapp", seconds=3, interval=2,
                         tags={"env": "test"}),
        clients.py_agent("0.8.16", h.dir, tap.url, "py08app.cpu", seconds=3),
        clients.node_agent("0.6.4", h.dir, tap.url, "nodeapp", seconds=3, flushIntervalMs=2000),
    ]
    outputs = clients.wait_all(procs, timeout=60)
    received = backend.quiet(0.5)
    sent = tap.snapshot()
    assert sent
    assert [r.upstream_status for r in sent] == [400] * len(sent)
    for r in sent:
        if r.is_ingest:
            assert b"I don't like your profile" in r.upstream_body, r.upstream_body
        else:
            assert b'"invalid_argument"' in r.upstream_body, r.upstream_body
    # Exactly one attempt per profile: a 400 is final.
    assert_push_delivered(sent, received)
    assert_ingest_delivered(sent, received)
    assert len(received) == len(sent)
    assert relay.metric("pyroscope_write_retries_total") == 0
    assert relay.metric("pyroscope_write_dropped_profiles_total") > 0
    # And the agents say so in their own logs.
    assert "Sending Session failed 400" in outputs[0], outputs[0]
    assert "Server rejected data ingest: HTTP 400" in outputs[2], outputs[2]


def test_backend_slower_than_remote_timeout_once(harness):
    h = harness
    backend = h.backend()
    port = h.port()
    relay = h.relay(config(port, backend.url, """    remote_timeout     = "1s"
    min_backoff_period = "100ms"
"""))
    tap = h.tap(port)
    backend.script(Answer(200, delay=3.0))  # the first request answers after 3 s
    clients.wait_all([clients.py_agent("1.4.0", h.dir, tap.url, "pyapp", seconds=3,
                                       interval=2, tags={"env": "test"})], timeout=60)
    received = backend.quiet(0.5, timeout=10)
    sent = tap.snapshot()
    assert [r.upstream_status for r in sent] == [200] * len(sent)
    first, retry = received[0], received[1]
    # The retry carries the same profile, and left well before the slow
    # answer would have come: the relay gave up at remote_timeout.
    assert [s[1:] for s in first.samples()] == [s[1:] for s in retry.samples()]
    assert 1.0 <= retry.at - first.at < 2.5, retry.at - first.at
    assert relay.metric("pyroscope_write_retries_total") == 1
    # Everything else arrived exactly once.
    dedup = [r for r in received if r is not first]
    assert_push_delivered(sent, dedup)
    assert len(dedup) == len(sent)


def test_backend_always_slow_fails_in_bounded_time(harness):
    h = harness
    backend = h.backend()
    backend.default = Answer(200, delay=3.0)
    port = h.port()
    h.relay(config(port, backend.url, """    remote_timeout      = "1s"
    min_backoff_period  = "100ms"
    max_backoff_period  = "200ms"
    max_backoff_retries = 2
"""))
    tap = h.tap(port)
    clients.wait_all([clients.node_agent("0.6.4", h.dir, tap.url, "nodeapp", seconds=3,
                                         flushIntervalMs=2000)], timeout=60)
    received = backend.quiet(3.5, timeout=20)
    sent = tap.snapshot()
    assert sent
    for r in sent:
        # No downstream status to pass on: Alloy's answer.
        assert (r.upstream_status, r.upstream_body) == (500, b"Failed to process request\n")
        copies = [x for x in received if x.body == r.body]
        assert len(copies) == 2, "max_backoff_retries = 2 attempts, each cut at remote_timeout"
        assert 1.0 <= copies[1].at - copies[0].at < 2.0
    # A push client gets the timeout's meaning (and its answer in ~2 s).
    started = time.monotonic()
    out = clients.node_rpc("connect_push.js", h.dir, "connect-es", {
        "baseUrl": f"http://127.0.0.1:{port}", "mode": "connect-proto",
        "requests": [base64.b64encode(payloads.push("slow")).decode()],
    })
    assert out["results"][0]["code"] == "DeadlineExceeded", out
    assert "timed out after 1s" in out["results"][0]["message"], out
    assert time.monotonic() - started < 5
