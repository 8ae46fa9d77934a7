"""Three relay replicas behind HAProxy, on hosts made of network namespaces
(net.sh), with real agents and clients sending through the load balancer
to a recording backend on its own host. Run by run.sh, inside the
backend's namespace (the backend is e2elib's, in this process).

Scenarios, in order, each with its own `run` label on every profile:
  kill9     one replica killed with SIGKILL under load, restarted 4 s after
            HAProxy marks it down
  rolling   SIGTERM each replica in turn under load, restarting each
  faults    the path to the backend degraded (200 ms each way, 5% packet
            loss), then cut for 30 s, then healed (link.py)
  kill9_queue, partition_queue
            the same kill and cut with pyroscope.write's queue: every
            acknowledged profile arrives
  scale_down_queue
            with the queue, the backend cut off so every replica builds a
            backlog; as the cut heals, one replica is stopped for good with
            SIGTERM (a scale-down): it sends its backlog before it exits

Asserted: every profile a client saw acknowledged reached the backend;
in `kill9`, the only failed requests are ones in flight on the killed
replica (started before the kill, at most one per sequential sender); in
`rolling`, no request fails (agents included: HAProxy's log and the
agents' own); with the queue, the killed replica had a backlog on its
volume, and during the cut no send failed or waited over 1 s. The figures
are printed and written to OUT (JSON)."""

import argparse
import base64
import json
import re
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import link
from hosts import ADDR, REPO, Kill, LoadBalancer, Replica, in_ns
from link import DelayLine

E2E = REPO / "tests" / "e2e"
sys.path.insert(0, str(E2E))

from e2elib import clients, payloads, protos  # noqa: E402
from e2elib.backend import Answer, Backend  # noqa: E402

REPLICAS = ["r1", "r2", "r3"]
BACKEND_DELAY = 0.05  # every backend answer: requests are in flight when a replica dies
PUSH_PATH = "/push.v1.PusherService/Push"


class Rig:
    def __init__(self, binary: Path, workdir: Path):
        self.dir = workdir
        self.binary = binary
        self.backend = Backend("backend", host=ADDR["be"]).start()
        self.backend.default = Answer(delay=BACKEND_DELAY)
        # The replicas reach the backend through the faults' delay line.
        self.link = DelayLine(ADDR["be"], (ADDR["be"], self.backend.port))
        url = f"http://{ADDR['be']}:{self.link.port}"
        self.replicas = {r: Replica(binary, workdir, r, url) for r in REPLICAS}
        self.lb = LoadBalancer(workdir, REPLICAS)

    def start(self):
        for r in self.replicas.values():
            r.start()
        self.lb.start()
        for r in REPLICAS:
            self.lb.wait_state(r, "UP")

    def stop(self):
        self.lb.stop()
        for r in self.replicas.values():
            r.stop()
        self.backend.stop()
        self.link.close()
        link.drop(self.link.port, 0)


class Traffic:
    """The clients of one scenario, all on host cl, all through the LB:
    load.py (Connect over HTTP/1.1, gRPC, /ingest), connect-es in a second
    process, pyroscope-io 1.4.0 (push) and @pyroscope/nodejs 0.6.4 (/ingest)."""

    def __init__(self, rig: Rig, tag: str, seconds: float):
        self.rig, self.tag, self.seconds = rig, tag, seconds
        self.dir = rig.dir / tag
        self.dir.mkdir(exist_ok=True)
        self.log_start = rig.lb.log_offset()
        self.t0 = time.time()
        lb = rig.lb.url
        py = E2E / ".venv-test" / "bin" / "python"
        self.load_out = self.dir / "load.json"
        self.procs = [clients.Proc("load", in_ns("cl", [py, Path(__file__).parent / "load.py",
                                                       lb, seconds, self.load_out, tag]), self.dir)]
        # connect-es: one call after another, about as long as the others.
        self.connect_ids = [str(uuid.uuid4()) for _ in range(int(seconds * 8))]
        reqs = [base64.b64encode(protos.push_request(
            [({"__name__": "process_cpu", "service_name": "mh-connect-es", "run": tag},
              [(uid, payloads.PY_CPU)])])).decode() for uid in self.connect_ids]
        args = self.dir / "connect-es.json"
        args.write_text(json.dumps({"baseUrl": lb, "mode": "connect-proto", "requests": reqs,
                                    "timeoutMs": 60000}))
        self.procs.append(clients.Proc(
            "connect-es", in_ns("cl", ["node", clients.CLIENTS / "connect_push.js", f"@{args}"]),
            self.dir, env={"NODE_PATH": str(clients.NODE_RPC / "node_modules")}))
        self.procs.append(clients.Proc("py-agent", in_ns("cl", [
            clients.VENV_PY14 / "bin" / "python", clients.CLIENTS / "py_agent.py",
            "--server", lb, "--app", "mh-pyagent", "--seconds", seconds, "--interval", 1,
            "--tag", f"run={tag}"]), self.dir))
        node_seconds = int(seconds) + 0.5  # stop half-way between two flushes
        cfg = {"serverAddress": lb, "appName": "mh-nodeagent", "seconds": node_seconds,
               "flushIntervalMs": 1000, "tags": {"run": tag},
               "wall": {"samplingDurationMs": 1000, "collectCpuTime": True}}
        self.procs.append(clients.Proc(
            "node-agent", in_ns("cl", ["node", clients.CLIENTS / "node_agent.js", json.dumps(cfg)]),
            self.dir, env={"NODE_PATH": str(clients.NODE_AGENT06), "DEBUG": "pyroscope*"}))

    def finish(self, timeout: float) -> dict:
        outputs = []
        deadline = time.monotonic() + timeout
        try:
            for p in self.procs:
                try:
                    outputs.append(p.wait(max(1, deadline - time.monotonic())))
                except AssertionError:
                    out = p.output()
                    # @pyroscope/nodejs 0.6.4 throws this from its heap
                    # profiler when stop() lands on a flush round (see
                    # e2elib.clients.node_agent); its rounds drift, so over
                    # a long run the stop cannot be placed between two.
                    # Every upload before it is still checked.
                    if not (p.name == "node-agent" and "profiler stopping" in out
                            and "Heap profiler is not enabled." in out):
                        raise
                    print("   node agent: the known heap-profiler error at stop, ignored")
                    outputs.append(out)
        finally:
            for p in self.procs:
                p.kill()
        load = json.loads(self.load_out.read_text())
        self.resent = load.pop("resent")
        connect = [l for l in outputs[1].splitlines() if l.startswith("{")][-1]
        load["connect-es"] = [[uid, r["ok"], "" if r["ok"] else f"{r['code']}: {r['message']}"]
                              for uid, r in zip(self.connect_ids, json.loads(connect)["results"])]
        self.load = load
        # What the agents said went wrong (pyroscope-io logs failed uploads,
        # @pyroscope/nodejs with DEBUG=pyroscope* too).
        # (Up to the agent's stop: the node agent's known stop error, above,
        # is not a failed upload.)
        self.agent_errors = {
            p.name: [l for l in out.split("profiler stopping")[0].splitlines()
                     if re.search(r"error|fail", l, re.I)]
            for p, out in zip(self.procs[2:], outputs[2:])}
        self.lb_lines = [l for l in self.rig.lb.log_lines(self.log_start)
                         if l["path"] in (PUSH_PATH, "/ingest")]
        self.rig.backend.quiet(1.0, timeout=90)
        return load

    def received(self) -> Counter:
        """How often each load id reached the backend, for this scenario."""
        seen = Counter()
        for r in self.rig.backend.snapshot():
            if r.is_push and r.push is not None:
                for labels, sid, _ in r.samples():
                    if labels.get("run") == self.tag:
                        seen[sid] += 1
            elif r.is_ingest and r.name_labels.get("run") == self.tag:
                seen[r.body.decode(errors="replace").split(";")[-1].split(" ")[0]] += 1
        return seen

    def backend_requests(self) -> int:
        """Backend requests of this scenario (agents included)."""
        n = 0
        for r in self.rig.backend.snapshot():
            if r.is_push and r.push is not None:
                n += any(l.get("run") == self.tag for l, _, _ in r.samples())
            elif r.is_ingest:
                n += r.name_labels.get("run") == self.tag
        return n

    def check_acknowledged_delivered(self) -> dict:
        seen = self.received()
        figures = {}
        for sender, results in self.load.items():
            ok = [r[0] for r in results if r[1]]
            lost = [uid for uid in ok if seen[uid] == 0]
            assert not lost, f"{self.tag}/{sender}: {len(lost)} acknowledged, never delivered"
            failed = [r for r in results if not r[1]]
            figures[sender] = {
                "sent": len(results), "acknowledged": len(ok), "failed": len(failed),
                "failed_but_delivered": sum(seen[r[0]] > 0 for r in failed),
                "delivered_twice": sum(seen[uid] > 1 for uid in ok),
            }
        assert figures["push"]["acknowledged"] > 20 and figures["grpc"]["acknowledged"] > 20, figures
        lb_ok = sum(l["status"] == 200 for l in self.lb_lines)
        figures["lb"] = {"requests": len(self.lb_lines), "ok": lb_ok,
                         "failed": len(self.lb_lines) - lb_ok,
                         "backend_requests": self.backend_requests()}
        # Without a queue the relay answers 200 only after the backend did:
        # every 200 HAProxy passed on is one backend request (agents too).
        assert figures["lb"]["backend_requests"] >= lb_ok, figures["lb"]
        figures["resent_by_client"] = self.resent
        figures["agent_errors"] = {k: len(v) for k, v in self.agent_errors.items()}
        return figures

    def failures(self):
        return [(s, r) for s, results in self.load.items() for r in results if not r[1]]


def kill_and_restart(rig: Rig, name: str) -> Kill:
    """8 s into the load, SIGKILL `name`; restart it (same storage path) 4 s
    after HAProxy marks it down; returns when it was killed."""
    time.sleep(8)
    kill = rig.replicas[name].kill9()
    rig.lb.wait_state(name, "DOWN", timeout=10)
    time.sleep(4)
    rig.replicas[name].start()
    rig.lb.wait_state(name, "UP", timeout=20)
    return kill


def scenario_kill9(rig: Rig) -> dict:
    t = Traffic(rig, "kill9", seconds=20)
    kill = kill_and_restart(rig, "r1")
    t.finish(timeout=120)
    figures = t.check_acknowledged_delivered()
    # The loss is the requests in flight on r1 when it died: every request
    # that failed had started before the kill and was still waiting then.
    # HAProxy closes such a client connection without an answer (a kept-
    # alive client may then resend: `resent_by_client`) or answers 502.
    failed = t.failures()
    for sender, r in failed:
        # connect-es reports no times; like every sender here it sends one
        # request after another, so at most one of its requests can have
        # been in flight at the kill.
        assert len(r) < 5 or kill.could_fail(r[3], r[4]), \
            f"{sender}: failure not in flight at the kill {kill}: {r}"
    per_sender = Counter(sender for sender, _ in failed)
    assert all(n == 1 for n in per_sender.values()), f"more than in flight failed: {failed}"
    bad = [l for l in t.lb_lines if l["status"] != 200]
    assert all(l["server"] == "r1" and l["term"].startswith("S") for l in bad), \
        "\n".join(l["line"] for l in bad)
    agent_failed = sum(figures["agent_errors"].values())
    resent = sum(t.resent.values())
    figures["in_flight_on_killed_replica"] = len(failed) + agent_failed + resent
    figures["of_which_lost"] = len(failed) + agent_failed
    figures["of_which_resent_by_client"] = resent
    figures["duplicates_at_backend"] = sum(v["delivered_twice"] for k, v in figures.items()
                                           if isinstance(v, dict) and "delivered_twice" in v)
    figures["lb_502_from_killed_replica"] = len(bad)
    figures["lb_requests_on_r1"] = sum(l["server"] == "r1" for l in t.lb_lines)
    return figures


def scenario_rolling(rig: Rig) -> dict:
    t = Traffic(rig, "rolling", seconds=24)
    time.sleep(3)
    stops = {}
    for name in REPLICAS:
        stops[name] = round(rig.replicas[name].terminate(), 2)
        rig.replicas[name].start()
        rig.lb.wait_state(name, "UP", timeout=20)
        time.sleep(1)
    t.finish(timeout=120)
    figures = t.check_acknowledged_delivered()
    assert t.failures() == [], t.failures()[:5]
    assert all(not v for v in t.agent_errors.values()), t.agent_errors
    bad = [l["line"] for l in t.lb_lines if l["status"] != 200]
    assert bad == [], "requests failed at HAProxy (agents included):\n" + "\n".join(bad)
    figures["seconds_to_exit_on_sigterm"] = stops
    return figures


def scenario_faults(rig: Rig, degraded=15, partition=30, healed=15) -> dict:
    """The path to the backend: 200 ms each way and 5% packet loss, then
    cut for 30 s, then whole again (link.py says how, without netem)."""
    t = Traffic(rig, "faults", seconds=degraded + partition + healed)
    marks = {"start": time.time()}
    rig.link.delay = 0.2
    link.drop(rig.link.port, 5)
    time.sleep(degraded)
    marks["partition"] = time.time()
    link.drop(rig.link.port, 100)
    time.sleep(partition)
    marks["healed"] = time.time()
    link.drop(rig.link.port, 0)
    rig.link.delay = 0.0
    t.finish(timeout=240)
    figures = t.check_acknowledged_delivered()
    by_part = Counter()
    latency = {"degraded": [], "healed": []}

    def part_of(at):
        return ("degraded" if at < marks["partition"] else
                "partition" if at < marks["healed"] else "healed")

    for results in t.load.values():
        for r in results:
            if len(r) < 5:  # connect-es reports no times
                continue
            part = part_of(r[3])
            by_part[(part, r[1])] += 1
            if r[1] and part in latency:
                latency[part].append(r[4] - r[3])
    lb = Counter((part_of(l["at"]), l["status"]) for l in t.lb_lines)
    for part in ("degraded", "partition", "healed"):
        figures[part] = {"load_ok": by_part[(part, True)], "load_failed": by_part[(part, False)],
                         "lb_status": {str(st): n for (p, st), n in sorted(lb.items()) if p == part}}
        if latency.get(part):
            xs = sorted(latency[part])
            figures[part]["p50_ms"] = round(1000 * xs[len(xs) // 2])
            figures[part]["p99_ms"] = round(1000 * xs[int(len(xs) * 0.99)])
    assert figures["healed"]["load_ok"] > 0, "nothing got through after the partition ended"
    return figures


def queue_supported(binary: Path, workdir: Path) -> bool:
    """Whether this build has pyroscope.write's `queue` block (issue 13)."""
    probe = workdir / "queue-probe.alloy"
    probe.write_text('pyroscope.write "w" {\n  endpoint { url = "http://127.0.0.1:1" }\n'
                     '  queue {}\n}\n')
    return subprocess.run([binary, "check", probe], capture_output=True).returncode == 0


def wait_queues_empty(rig: Rig, timeout: float = 120, names=REPLICAS):
    deadline = time.monotonic() + timeout
    while True:
        pending = {n: rig.replicas[n].metric("pyroscope_write_queue_pending_profiles")
                   for n in names}
        if not any(pending.values()):
            return
        assert time.monotonic() < deadline, f"queues not drained after {timeout}s: {pending}"
        time.sleep(0.5)


def queue_backlog(rig: Rig, name: str) -> int:
    """Profiles pending on replica `name`'s volume, as `pyroscope-relay
    queue status` reads them from disk (the replica may be stopped)."""
    out = subprocess.run([rig.binary, "queue", "status", "--storage.path",
                          rig.replicas[name].data, "--json"],
                         capture_output=True, check=True).stdout
    return int(sum(e["pending_profiles"] for e in json.loads(out)["queues"]))


def scenario_kill9_queue(rig: Rig) -> dict:
    """With the queue: the backend cut off so every replica builds a
    backlog, SIGKILL a replica, restart it on the same storage path (its
    volume), heal: every acknowledged profile arrives, the killed
    replica's backlog included."""
    for r in rig.replicas.values():
        r.use_queue(True)
    t = Traffic(rig, "kill9_queue", seconds=20)
    time.sleep(4)
    link.drop(rig.link.port, 100)
    time.sleep(4)
    kill = rig.replicas["r1"].kill9()
    backlog = queue_backlog(rig, "r1")
    rig.lb.wait_state("r1", "DOWN", timeout=10)
    time.sleep(2)
    rig.replicas["r1"].start()
    rig.lb.wait_state("r1", "UP", timeout=20)
    time.sleep(2)
    link.drop(rig.link.port, 0)
    t.finish(timeout=120)
    wait_queues_empty(rig)
    t.rig.backend.quiet(1.0, timeout=60)
    figures = t.check_acknowledged_delivered()
    failed = t.failures()
    for sender, r in failed:
        assert len(r) < 5 or kill.could_fail(r[3], r[4]), f"{sender}: {kill} {r}"
    assert backlog > 0, "r1 had nothing queued when it was killed: the test proves nothing"
    delivered_from_r1 = sum(
        1 for r in rig.backend.snapshot() if r.is_push and r.push is not None
        for labels, _, _ in r.samples()
        if labels.get("run") == "kill9_queue" and labels.get("replica") == "r1")
    figures["backlog_on_killed_replica_volume"] = backlog
    figures["push_samples_delivered_via_r1"] = delivered_from_r1
    figures["in_flight_on_killed_replica"] = (len(failed) + sum(t.resent.values())
                                              + sum(figures["agent_errors"].values()))
    figures["duplicates_at_backend"] = sum(v["delivered_twice"] for v in figures.values()
                                           if isinstance(v, dict) and "delivered_twice" in v)
    return figures


def scenario_partition_queue(rig: Rig, partition=30) -> dict:
    """With the queue: the backend cut off for 30 s; every send is still
    acknowledged at once, and everything arrives after the cut heals."""
    for r in rig.replicas.values():
        r.use_queue(True)
    t = Traffic(rig, "partition_queue", seconds=partition + 15)
    time.sleep(5)
    link.drop(rig.link.port, 100)
    time.sleep(partition)
    link.drop(rig.link.port, 0)
    t.finish(timeout=180)
    wait_queues_empty(rig)
    t.rig.backend.quiet(1.0, timeout=60)
    figures = t.check_acknowledged_delivered()
    assert t.failures() == [], t.failures()[:5]
    slow = [r for results in t.load.values() for r in results if len(r) > 4 and r[4] - r[3] > 1]
    figures["acknowledged_after_more_than_1s"] = len(slow)
    assert not slow, f"acknowledgements slower than 1 s with the queue: {slow[:5]}"
    return figures


def scenario_scale_down_queue(rig: Rig, partition=10) -> dict:
    """With the queue: the backend cut off for 10 s so every replica builds
    a backlog; as the cut heals, r3 gets SIGTERM and is not started again
    (a StatefulSet scaled down: its volume may never be mounted again). It
    sends its backlog within drain_timeout, exits 0 with nothing left on its
    volume, and no client request fails."""
    for r in rig.replicas.values():
        r.use_queue(True)
    t = Traffic(rig, "scale_down_queue", seconds=partition + 14)
    time.sleep(4)
    link.drop(rig.link.port, 100)
    time.sleep(partition)
    backlog = rig.replicas["r3"].metric("pyroscope_write_queue_pending_profiles")
    link.drop(rig.link.port, 0)
    took = rig.replicas["r3"].terminate(timeout=90)
    left = queue_backlog(rig, "r3")
    log = rig.replicas["r3"].log()
    rig.lb.wait_state("r3", "DOWN", timeout=10)
    t.finish(timeout=120)
    wait_queues_empty(rig, names=["r1", "r2"])
    t.rig.backend.quiet(1.0, timeout=60)
    figures = t.check_acknowledged_delivered()
    assert backlog > 0, "r3 had nothing queued when it was stopped: the test proves nothing"
    assert left == 0, f"r3 left {left} profiles on its volume:\n{log}"
    assert "queue closed; nothing left to send" in log, log
    assert t.failures() == [], t.failures()[:5]
    figures["backlog_on_r3_at_sigterm"] = int(backlog)
    figures["r3_seconds_to_exit"] = round(took, 2)
    figures["left_on_r3_volume"] = left
    # The rig stays whole for whatever runs next.
    rig.replicas["r3"].start()
    rig.lb.wait_state("r3", "UP", timeout=20)
    return figures


QUEUE_SCENARIOS = {"kill9_queue", "partition_queue", "scale_down_queue"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--relay", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--only", default="kill9,rolling,faults,kill9_queue,partition_queue,scale_down_queue")
    a = ap.parse_args()
    rig = Rig(Path(a.relay), Path(a.workdir))
    results = {}
    try:
        rig.start()
        has_queue = queue_supported(Path(a.relay), Path(a.workdir))
        for name in a.only.split(","):
            if name in QUEUE_SCENARIOS and not has_queue:
                print(f"== scenario {name}: NOT RUN, this build has no pyroscope.write queue block")
                results[name] = {"not_run": "no queue block in this build"}
                continue
            started = time.monotonic()
            print(f"== scenario {name}", flush=True)
            results[name] = globals()[f"scenario_{name}"](rig)
            results[name]["seconds"] = round(time.monotonic() - started, 1)
            print(json.dumps(results[name], indent=1), flush=True)
    finally:
        rig.stop()
        Path(a.out).write_text(json.dumps(results, indent=1))
    print("multihost: all scenarios passed")


if __name__ == "__main__":
    main()
