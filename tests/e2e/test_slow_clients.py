"""Slow clients cannot slow others down, and are cut at their deadline: a
smaller version of bench/slow_clients.py (200 connections dribbling a
request head one byte a second, 200 trickling a body) against a relay with
a 4 s `server_read_timeout`, while a steady client measures its latency.

Asserts that the steady client's p99 stays within a generous bound of its
quiet figure (the benchmark's target is 2x; this machine's CI is shared),
that every slow connection was cut between the read timeout and a few
seconds after it (body tricklers with 408), and that the cuts were counted
in pyroscope_receive_http_connections_timed_out_total."""

from e2elib import hostile, payloads
from e2elib.relay import http

HEADS = 200
BODIES = 200
READ_TIMEOUT = 4.0


def test_slow_heads_and_bodies_are_cut_and_do_not_slow_others(harness):
    fds = hostile.raise_fd_limit(4 * (HEADS + BODIES) + 256)
    assert fds >= 2 * (HEADS + BODIES) + 256, f"fd limit {fds} is too low for this test"
    port = harness.port()
    relay = harness.relay(f"""
pyroscope.receive_http "default" {{
  http {{
    listen_address      = "127.0.0.1"
    listen_port         = {port}
    server_read_timeout = "{READ_TIMEOUT:.0f}s"
  }}
  forward_to = []
}}
""")
    result = hostile.measure_slow_clients(port, HEADS, BODIES, READ_TIMEOUT, quiet_seconds=3,
                                          steady_body=payloads.PY_CPU)
    quiet, loaded, slow = result["quiet"], result["loaded"], result["slow"]
    ratio = loaded["p99_ms"] / quiet["p99_ms"]
    print(f"\nsteady client p99: quiet {quiet['p99_ms']:.2f} ms, with {HEADS}+{BODIES} slow "
          f"connections {loaded['p99_ms']:.2f} ms (x{ratio:.2f}); "
          f"{loaded['requests']} requests, success {loaded['success_rate']:.2%}")
    assert quiet["success_rate"] == 1.0 and loaded["success_rate"] == 1.0
    assert loaded["requests"] > 100
    assert loaded["p99_ms"] <= max(3 * quiet["p99_ms"], quiet["p99_ms"] + 25), (quiet, loaded)

    by_kind = {"head": [], "body": []}
    for kind, cut_after, status in slow:
        by_kind[kind].append((cut_after, status))
    assert len(by_kind["head"]) == HEADS and len(by_kind["body"]) == BODIES
    for kind, outcomes in by_kind.items():
        times = [t for t, _ in outcomes]
        assert all(t is not None for t in times), f"{kind}: not cut: {outcomes}"
        print(f"{kind}: cut after {min(times):.2f}..{max(times):.2f} s")
        assert min(times) >= READ_TIMEOUT - 0.3 and max(times) <= READ_TIMEOUT + 3, outcomes
    assert {s for _, s in by_kind["body"]} == {"408"}, by_kind["body"]
    assert {s for _, s in by_kind["head"]} == {None}, by_kind["head"]
    assert relay.metric("pyroscope_receive_http_connections_timed_out_total",
                        reason="read") >= HEADS
    assert http("GET", relay.admin + "/-/healthy")[0] == 200
