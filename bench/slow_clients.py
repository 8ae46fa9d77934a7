#!/usr/bin/env python3
"""Slow clients against the relay: 1,000 connections dribbling a request
head one byte a second and 1,000 trickling a body, while a steady client
sends small /ingest profiles one after another on a keep-alive connection
and measures its latency, first quiet, then with the slow clients. Each
slow connection is followed until the relay cuts it (server_read_timeout).

    python3 bench/slow_clients.py                        # release binary
    HEADS=200 BODIES=200 READ_TIMEOUT=5 python3 bench/slow_clients.py
    RELAY_BIN=target/debug/pyroscope-relay python3 bench/slow_clients.py

Prints the figures and one Markdown table row for docs/performance.md
("Slow clients"). Raises its open-file limit as far as the hard limit
allows (the relay it starts inherits it). Only loopback is used; the run
takes about READ_TIMEOUT + QUIET seconds plus start-up."""

import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
from e2elib import hostile  # noqa: E402

HEADS = int(os.environ.get("HEADS", 1000))
BODIES = int(os.environ.get("BODIES", 1000))
READ_TIMEOUT = float(os.environ.get("READ_TIMEOUT", 15))
QUIET = float(os.environ.get("QUIET", 10))
PORT = int(os.environ.get("PORT", 18240))
ADMIN_PORT = int(os.environ.get("ADMIN_PORT", 18241))


def relay_binary() -> Path:
    if os.environ.get("RELAY_BIN"):
        return Path(os.environ["RELAY_BIN"])
    target = Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target")
    return target / "release" / "pyroscope-relay"


def wait_ready(proc, url, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"the relay exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    sys.exit("the relay did not become ready")


def main():
    binary = relay_binary()
    if not binary.exists():
        sys.exit(f"{binary} not found: run `cargo build --release` (or set RELAY_BIN)")
    needed = 2 * (HEADS + BODIES) + 512
    fds = hostile.raise_fd_limit(needed)
    if fds < needed:
        sys.exit(f"open-file limit {fds} < {needed}: raise the hard limit (ulimit -Hn)")
    work = Path(tempfile.mkdtemp(prefix="slow-clients-"))
    config = work / "relay.alloy"
    config.write_text(f"""
pyroscope.receive_http "default" {{
  http {{
    listen_address      = "127.0.0.1"
    listen_port         = {PORT}
    server_read_timeout = "{READ_TIMEOUT:g}s"
  }}
  forward_to = []
}}
""")
    log = open(work / "relay.log", "wb")
    proc = subprocess.Popen(
        [str(binary), "run", str(config), "--server.http.listen-addr",
         f"127.0.0.1:{ADMIN_PORT}", "--storage.path", str(work / "data")],
        stdout=log, stderr=subprocess.STDOUT)
    try:
        admin = f"http://127.0.0.1:{ADMIN_PORT}"
        wait_ready(proc, admin + "/-/ready")
        body = (ROOT / "tests" / "fixtures" / "py_cpu.pb").read_bytes()
        result = hostile.measure_slow_clients(
            PORT, HEADS, BODIES, READ_TIMEOUT, QUIET, body,
            log=lambda m: print(m, file=sys.stderr))
        with urllib.request.urlopen(admin + "/metrics", timeout=5) as resp:
            metrics = resp.read().decode()
        rss = hostile.memory_kib(proc.pid)
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()
    cut_read = sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                   if line.startswith("pyroscope_receive_http_connections_timed_out_total")
                   and 'reason="read"' in line)
    report(result, cut_read, rss)
    shutil.rmtree(work, ignore_errors=True)


def report(result, cut_read, rss):
    quiet, loaded = result["quiet"], result["loaded"]
    ratio = loaded["p99_ms"] / quiet["p99_ms"]
    print(f"steady client: quiet p50 {quiet['p50_ms']:.2f} ms p99 {quiet['p99_ms']:.2f} ms "
          f"({quiet['requests']} requests); with {HEADS} slow heads + {BODIES} slow bodies "
          f"p50 {loaded['p50_ms']:.2f} ms p99 {loaded['p99_ms']:.2f} ms "
          f"({loaded['requests']} requests, {loaded['success_rate']:.2%} ok): x{ratio:.2f}")
    for kind in ("head", "body"):
        outcomes = [(t, s) for k, t, s in result["slow"] if k == kind]
        cut = [t for t, _ in outcomes if t is not None]
        statuses = sorted({str(s) for _, s in outcomes})
        span = f"{min(cut):.2f}..{max(cut):.2f} s" if cut else "none"
        print(f"slow {kind}s: {len(cut)}/{len(outcomes)} cut after {span}; answers {statuses}")
    print(f"connections counted as cut by the read timeout: {cut_read:.0f}; "
          f"relay VmHWM {rss['VmHWM'] / 1024:.0f} MiB")
    print("\n| slow heads + bodies | read timeout | quiet p50 / p99 | loaded p50 / p99 | "
          "p99 ratio | cut |")
    cut_all = sum(1 for _, t, _ in result["slow"] if t is not None)
    print(f"| {HEADS} + {BODIES} | {READ_TIMEOUT:g} s | {quiet['p50_ms']:.2f} / "
          f"{quiet['p99_ms']:.2f} ms | {loaded['p50_ms']:.2f} / {loaded['p99_ms']:.2f} ms | "
          f"{ratio:.2f} | {cut_all}/{HEADS + BODIES} |")


if __name__ == "__main__":
    main()
