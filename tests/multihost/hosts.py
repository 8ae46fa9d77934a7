"""The test's hosts and the processes on them: relay replicas, HAProxy,
clients, each started in its own network namespace (made by net.sh) with
`ip netns exec`, which execs the program itself, so a Popen's pid is the
program's and `kill -9` hits exactly it."""

import csv
import io
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import NamedTuple

import sys

E2E = Path(__file__).resolve().parents[1] / "e2e"
sys.path.insert(0, str(E2E))

from e2elib.relay import http  # noqa: E402

PREFIX = os.environ.get("MH_PREFIX", "prlmh")
ADDR = {"lb": "10.203.0.10", "r1": "10.203.0.11", "r2": "10.203.0.12", "r3": "10.203.0.13",
        "be": "10.203.0.20", "cl": "10.203.0.30"}
RELAY_PORT = 9999
ADMIN_PORT = 12345
REPO = Path(__file__).resolve().parents[2]


class Kill(NamedTuple):
    """A replica's SIGKILL: when it was sent and when the process was gone
    (`time.time()`)."""
    signalled: float
    dead: float

    def could_fail(self, started: float, ended: float) -> bool:
        """Whether a request that failed could have been in flight on the
        killed replica: sent before the process was gone (plus 50 ms: the
        load balancer learns of the closed connections only then, and a
        stream it forwarded on one in the meantime is refused), and not
        over more than 0.5 s before the signal."""
        return started <= self.dead + 0.05 and ended + 0.5 >= self.signalled


def in_ns(host: str, argv: list) -> list:
    return ["ip", "netns", "exec", f"{PREFIX}-{host}", *map(str, argv)]


def relay_config(replica: str, backend_url: str, queue: bool = False) -> str:
    # With the queue (issue 13), a profile is acknowledged once it is on the
    # replica's disk, under --storage.path; on SIGTERM the replica sends its
    # backlog for up to 60 s before it exits, as in the queue overlay.
    queue_block = '\n  queue {\n    drain_timeout = "60s"\n  }' if queue else ""
    return f"""
pyroscope.receive_http "default" {{
  http {{
    listen_address = "0.0.0.0"
    listen_port    = {RELAY_PORT}
  }}
  forward_to = [pyroscope.write.backend.receiver]
}}

pyroscope.write "backend" {{
  // Which replica forwarded a profile, for the test's accounting.
  external_labels = {{ replica = "{replica}" }}
  endpoint {{
    url = "{backend_url}"
  }}{queue_block}
}}
"""


class Replica:
    """One relay on host `name`, with its config and storage in `workdir`."""

    def __init__(self, binary: Path, workdir: Path, name: str, backend_url: str):
        self.binary, self.name = binary, name
        self.dir = workdir / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.config = self.dir / "config.alloy"
        self.config.write_text(relay_config(name, backend_url))
        self.log_path = self.dir / "relay.log"
        self.data = self.dir / "data"  # the same on every restart, like a pod's volume
        self.proc = None
        self.admin = f"http://{ADDR[name]}:{ADMIN_PORT}"
        self.backend_url = backend_url

    def use_queue(self, queue: bool):
        """Rewrites the config with or without the queue and reloads."""
        self.config.write_text(relay_config(self.name, self.backend_url, queue))
        status, body, _ = http("POST", self.admin + "/-/reload", timeout=30)
        assert status == 200, f"{self.name}: reload answered {status}: {body!r}"

    def metric(self, name: str) -> float:
        """Sum of every sample of `name` on /metrics."""
        status, body, _ = http("GET", self.admin + "/metrics", timeout=10)
        assert status == 200, status
        return sum(float(l.rsplit(" ", 1)[1]) for l in body.decode().splitlines()
                   if l.startswith(name + "{") or l.startswith(name + " "))

    def start(self, timeout: float = 30) -> "Replica":
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            in_ns(self.name, [self.binary, "run", self.config,
                              f"--server.http.listen-addr=0.0.0.0:{ADMIN_PORT}",
                              f"--storage.path={self.data}"]),
            stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited {self.proc.returncode}:\n{self.log()}")
            try:
                if http("GET", self.admin + "/-/ready", timeout=2)[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"{self.name} not ready after {timeout}s:\n{self.log()}")

    def kill9(self) -> "Kill":
        """SIGKILL; returns when it was sent and when the process was gone."""
        signalled = time.time()
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        return Kill(signalled, time.time())

    def terminate(self, timeout: float = 45) -> float:
        """SIGTERM, then waits for the exit; returns the seconds it took."""
        start = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError(f"{self.name} still running {timeout}s after SIGTERM")
        assert code == 0, f"{self.name} exited {code} on SIGTERM:\n{self.log()}"
        return time.monotonic() - start

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-8000:]


class LoadBalancer:
    """HAProxy on host lb running deploy/haproxy/haproxy.cfg, with its
    `server` lines pointed at the replicas and its admin socket in workdir."""

    def __init__(self, workdir: Path, replicas: list):
        self.dir = workdir
        self.socket = workdir / "haproxy.sock"
        self.log_path = workdir / "haproxy.log"
        shipped = (REPO / "deploy" / "haproxy" / "haproxy.cfg").read_text()
        lines = []
        for line in shipped.splitlines():
            stripped = line.strip()
            if stripped.startswith("server r"):
                continue
            if stripped.startswith("stats socket"):
                line = f"    stats socket {self.socket} mode 600 level admin"
            lines.append(line)
            if stripped.startswith("default-server"):
                lines += [f"    server {r} {ADDR[r]}:{RELAY_PORT}" for r in replicas]
        assert sum(l.strip().startswith("server r") for l in lines) == len(replicas)
        self.config = workdir / "haproxy.cfg"
        self.config.write_text("\n".join(lines) + "\n")
        self.url = f"http://{ADDR['lb']}:{RELAY_PORT}"
        self.proc = None

    def start(self) -> "LoadBalancer":
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(in_ns("lb", ["haproxy", "-db", "-f", self.config]),
                                     stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + 20
        while not self.socket.exists():
            assert self.proc.poll() is None, f"haproxy exited:\n{self.log_path.read_text()}"
            assert time.monotonic() < deadline, "haproxy has no admin socket after 20s"
            time.sleep(0.1)
        return self

    def command(self, line: str) -> str:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5)
            s.connect(str(self.socket))
            s.sendall(line.encode() + b"\n")
            chunks = []
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return b"".join(chunks).decode()
                chunks.append(chunk)

    def states(self) -> dict:
        """{server: status} of the relays backend ("UP", "DOWN", "UP 1/2", ...)."""
        text = self.command("show stat").lstrip("# ")
        rows = csv.DictReader(io.StringIO(text))
        return {r["svname"]: r["status"] for r in rows
                if r["pxname"] == "relays" and r["svname"] not in ("BACKEND", "FRONTEND")}

    def wait_state(self, server: str, want: str, timeout: float = 20):
        deadline = time.monotonic() + timeout
        while True:
            state = self.states().get(server)
            if state == want:
                return
            assert time.monotonic() < deadline, f"haproxy: {server} is {state}, not {want}"
            time.sleep(0.1)

    def log_lines(self, start: int = 0) -> list:
        """Request log lines, from byte offset `start` of the log."""
        with open(self.log_path, "rb") as f:
            f.seek(start)
            return [parse_log(l) for l in f.read().decode(errors="replace").splitlines()
                    if l.count("/") >= 2 and " relays/" in l]

    def log_offset(self) -> int:
        return self.log_path.stat().st_size

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def parse_log(line: str) -> dict:
    """A line of the shipped log-format:
    client backend/server status termination-state retries method path total-ms
    accepted-at "user agent"."""
    head, _, agent = line.partition(' "')
    f = head.split()
    path = f[6]
    if "://" in path:  # HTTP/2 requests are logged with their authority
        path = "/" + path.split("://", 1)[1].partition("/")[2]
    return {"client": f[0], "server": f[1].split("/", 1)[1], "status": int(f[2]),
            "term": f[3], "retries": f[4], "method": f[5], "path": path, "ms": int(f[7]),
            "at": int(f[8]),
            "agent": agent.rstrip('"'), "line": line}
