"""The real clients, each run as its own process with the interpreter or
node_modules that setup.sh installed (pinned versions)."""

import json
import os
import subprocess
import time
from pathlib import Path

E2E = Path(__file__).resolve().parent.parent
CLIENTS = E2E / "clients"
VENV_PY14 = E2E / ".venv-py14"  # pyroscope-io 1.4.0
VENV_PY08 = E2E / ".venv-py08"  # pyroscope-io 0.8.16
NODE_AGENT06 = E2E / "node" / "agent06" / "node_modules"  # @pyroscope/nodejs 0.6.4
NODE_AGENT04 = E2E / "node" / "agent04" / "node_modules"  # @pyroscope/nodejs 0.4.13
NODE_RPC = E2E / "node" / "rpc"  # connect-es 2.2.0, @grpc/grpc-js 1.14.7


class Proc:
    """A client process whose output goes to a file in the test's directory."""

    def __init__(self, name, argv, logdir, env=None):
        self.name = name
        self.log_path = Path(logdir) / f"{name}.out"
        self._log = open(self.log_path, "wb")
        self.started = time.monotonic()
        self.p = subprocess.Popen(
            argv, stdout=self._log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait(self, timeout: float = 60) -> str:
        try:
            self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            raise AssertionError(f"{self.name} still running after {timeout}s:\n{self.output()}")
        finally:
            self._log.close()
        out = self.output()
        assert self.p.returncode == 0, f"{self.name} exited {self.p.returncode}:\n{out}"
        assert "done" in out.split(), f"{self.name} did not finish:\n{out}"
        return out

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()


def py_agent(version, logdir, server, app, seconds, name=None, **opts) -> Proc:
    """pyroscope-io `version` ("1.4.0" or "0.8.16") profiling clients/py_agent.py.
    opts: interval, mem, tags (dict), basic ("u:p"), tenant, headers (dict)."""
    venv = {"1.4.0": VENV_PY14, "0.8.16": VENV_PY08}[version]
    argv = [str(venv / "bin" / "python"), str(CLIENTS / "py_agent.py"),
            "--server", server, "--app", app, "--seconds", str(seconds)]
    if opts.get("interval") is not None:
        argv += ["--interval", str(opts["interval"])]
    if opts.get("mem"):
        argv.append("--mem")
    for k, v in (opts.get("tags") or {}).items():
        argv += ["--tag", f"{k}={v}"]
    for k, v in (opts.get("headers") or {}).items():
        argv += ["--header", f"{k}={v}"]
    if opts.get("basic"):
        argv += ["--basic", opts["basic"]]
    if opts.get("tenant"):
        argv += ["--tenant", opts["tenant"]]
    return Proc(name or f"py{version}-{app}", argv, logdir)


def node_agent(version, logdir, server, app, seconds, name=None, **config) -> Proc:
    """@pyroscope/nodejs `version` ("0.6.4" or "0.4.13"); `config` goes to
    Pyroscope.init() (tags, flushIntervalMs, basicAuthUser, tenantID, ...)."""
    modules = {"0.6.4": NODE_AGENT06, "0.4.13": NODE_AGENT04}[version]
    # The agent throws "Heap profiler is not enabled." (and exits 1) when
    # stop() lands on a flush round: stop half-way between two flushes.
    flush = config.get("flushIntervalMs", 60000)
    offset = (seconds * 1000) % flush
    assert flush * 0.25 <= offset <= flush * 0.75, (
        f"stop the node agent half-way between flushes (seconds={seconds}, flush={flush})")
    cfg = {"serverAddress": server, "appName": app, "seconds": seconds, **config}
    return Proc(
        name or f"node{version}-{app}",
        ["node", str(CLIENTS / "node_agent.js"), json.dumps(cfg)],
        logdir,
        env={"NODE_PATH": str(modules), "DEBUG": "pyroscope*"},
    )


def node_rpc(script, logdir, name, args, timeout=60) -> dict:
    """Runs clients/<script> (connect-es or grpc-js) and returns the JSON
    line it prints last: {"results": [{"ok": true} | {"ok": false, "code": ..}]}."""
    p = Proc(name, ["node", str(CLIENTS / script), json.dumps(args)], logdir,
             env={"NODE_PATH": str(NODE_RPC / "node_modules")})
    out = p.wait(timeout)
    last = [l for l in out.splitlines() if l.startswith("{")][-1]
    return json.loads(last)


def wait_all(procs, timeout=90):
    deadline = time.monotonic() + timeout
    try:
        return [p.wait(max(1, deadline - time.monotonic())) for p in procs]
    finally:
        for p in procs:
            p.kill()
