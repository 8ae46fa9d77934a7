"""The request memory budget (`--request-memory-limit`) against the two
attacks of issue 14, at ten times their scale, on a relay with a small
budget, while well-behaved clients keep sending small profiles:

- 320 connections each declaring a 32 MiB /ingest body and holding back
  its last MiB (the issue's attack had 32);
- 40 concurrent Connect pushes of a gzip bomb, 900 MiB of zeros in about
  900 KiB, again and again (the issue's had 4).

Each test asserts that the relay's peak RSS (VmHWM) stays under the budget
plus 64 MiB, that the attackers were refused (429 / resource_exhausted,
counted in pyroscope_relay_request_memory_refusals_total), that every
well-behaved request got through, that the relay stays healthy and that the
budget is all given back afterwards; it prints the well-behaved clients'
success rate and p99."""

import asyncio
import time

from e2elib import hostile, payloads
from e2elib.relay import http

BUDGET_MIB = 128
SLACK_MIB = 64
ATTACK_SECONDS = 12


def config(port, backend_url, read_timeout="30s"):
    return f"""
pyroscope.receive_http "default" {{
  http {{
    listen_address      = "127.0.0.1"
    listen_port         = {port}
    server_read_timeout = "{read_timeout}"
  }}
  forward_to = [pyroscope.write.backend.receiver]
}}
pyroscope.write "backend" {{
  endpoint {{
    url = "{backend_url}"
  }}
}}
"""


def start(h, read_timeout="30s"):
    backend = h.backend()
    port = h.port()
    relay = h.relay(config(port, backend.url, read_timeout),
                    args=["--request-memory-limit", f"{BUDGET_MIB}MiB"])
    assert relay.metric("pyroscope_relay_request_memory_limit_bytes") == BUDGET_MIB << 20
    return relay, port


def steady_ingest(port, n=4):
    return [hostile.SteadyClient(
        port, f"/ingest?name=steady.cpu%7Bworker%3D{i}%7D&format=pprof",
        payloads.PY_CPU, {"Content-Type": "binary/octet-stream"}, pause=0.02)
        for i in range(n)]


def steady_push(port, n=4):
    return [hostile.SteadyClient(
        port, "/push.v1.PusherService/Push", payloads.push(f"steady-{i}"),
        {"Content-Type": "application/proto"}, pause=0.02) for i in range(n)]


def quiet_p99(clients_factory, port, seconds=3):
    """The well-behaved clients' p99 (ms) with no attack, for comparison."""
    clients = clients_factory(port)
    for c in clients:
        c.start()
    time.sleep(seconds)
    for c in clients:
        c.stop()
    assert hostile.merge([c.summary() for c in clients])["success_rate"] == 1.0
    return max(c.summary()["p99_ms"] for c in clients)


def run_attack(relay, clients, attack):
    """Runs the attack with the well-behaved clients and an RSS sampler
    alongside; returns (attack outcomes, sampled peak MiB, VmHWM MiB)."""
    sampler = hostile.RssSampler(relay.proc.pid)
    sampler.start()
    for c in clients:
        c.start()
    try:
        outcomes = asyncio.run(attack())
    finally:
        for c in clients:
            c.stop()
        peak = sampler.stop()
    hwm = hostile.memory_kib(relay.proc.pid)["VmHWM"] / 1024
    return outcomes, peak, hwm


def check_after(relay, outcomes, clients, peak, hwm, label, quiet_ms):
    tally = {o: outcomes.count(o) for o in sorted(set(outcomes))}
    good = hostile.merge([c.summary() for c in clients])
    p99 = max(c.summary()["p99_ms"] for c in clients)
    refusals = relay.metric("pyroscope_relay_request_memory_refusals_total")
    print(f"\n{label}: attack outcomes {tally}; refusals counted {refusals:.0f}; "
          f"peak RSS sampled {peak:.0f} MiB, VmHWM {hwm:.0f} MiB (budget {BUDGET_MIB} MiB); "
          f"well-behaved: {good['ok']}/{good['requests']} ok "
          f"({good['success_rate']:.2%}), p99 {p99:.1f} ms (quiet: {quiet_ms:.1f} ms)")
    assert hwm < BUDGET_MIB + SLACK_MIB, f"VmHWM {hwm:.0f} MiB"
    assert refusals > 0 and tally.get("429", 0) > 0, tally
    assert good["requests"] > 50, good
    assert good["success_rate"] == 1.0, [c.summary() for c in clients]
    assert http("GET", relay.admin + "/-/healthy")[0] == 200
    # Refusals were logged, rate-limited: a warning when they started, then
    # at most one per 10 s.
    log = relay.log_path.read_text(errors="replace")
    warnings = log.count("refusing requests: the request memory budget is in use")
    assert 1 <= warnings <= 1 + ATTACK_SECONDS // 10 + 1, warnings
    # Every reservation is given back once the bodies are dropped.
    deadline = time.monotonic() + 20
    while relay.metric("pyroscope_relay_request_memory_in_use_bytes") != 0:
        assert time.monotonic() < deadline, "the budget was not given back"
        time.sleep(0.1)


def test_held_back_uploads_cannot_exhaust_memory(harness):
    hostile.raise_fd_limit(4096)
    # Holders that got in are cut by the read timeout and come back.
    relay, port = start(harness, read_timeout="5s")
    quiet_ms = quiet_p99(steady_ingest, port)
    clients = steady_ingest(port)

    async def attack():
        deadline = time.monotonic() + ATTACK_SECONDS
        one = lambda: hostile.upload_and_hold(port, 32 * hostile.MIB, hostile.MIB, hold=10)
        runs = await asyncio.gather(*(hostile.repeat_until(deadline, one) for _ in range(320)))
        return [o for run in runs for o in run]

    outcomes, peak, hwm = run_attack(relay, clients, attack)
    check_after(relay, outcomes, clients, peak, hwm, "held-back /ingest uploads", quiet_ms)
    # Some holders got in and were cut by server_read_timeout, not dropped.
    assert outcomes.count("408") > 0, outcomes


def test_gzip_bombs_are_stopped_by_the_budget(harness):
    hostile.raise_fd_limit(4096)
    relay, port = start(harness)
    bomb = hostile.gzip_of_zeros(900 * hostile.MIB)
    assert len(bomb) < 1000 * 1024
    quiet_ms = quiet_p99(steady_push, port)
    clients = steady_push(port)
    headers = {"Content-Type": "application/proto", "Content-Encoding": "gzip"}

    async def attack():
        deadline = time.monotonic() + ATTACK_SECONDS
        one = lambda: hostile.post_once(port, "/push.v1.PusherService/Push", headers, bomb, 60)
        runs = await asyncio.gather(*(hostile.repeat_until(deadline, one) for _ in range(40)))
        return [o for run in runs for o in run]

    outcomes, peak, hwm = run_attack(relay, clients, attack)
    check_after(relay, outcomes, clients, peak, hwm, "Connect gzip bombs", quiet_ms)
    # No bomb was expanded in full: each was refused.
    assert set(outcomes) <= {"429", "reset"}, outcomes
