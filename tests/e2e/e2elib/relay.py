"""The pyroscope-relay binary, run as a user runs it: `pyroscope-relay run
CONFIG --server.http.listen-addr ... --storage.path ...`, with its log in a
file of the test's directory."""

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method: str, url: str, body: bytes = b"", headers=None, timeout: float = 30):
    """(status, body bytes, headers) of one request; HTTP errors are answers too."""
    req = urllib.request.Request(url, data=body if method != "GET" else None, method=method)
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read(), resp.headers
    except urllib.error.HTTPError as e:
        return e.code, e.read(), e.headers


class Relay:
    def __init__(self, binary: Path, workdir: Path, config: str, name: str = "relay",
                 args=()):
        self.binary = binary
        self.args = list(args)  # more flags of `run`
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.config_path = self.dir / f"{name}.alloy"
        self.log_path = self.dir / f"{name}.log"
        self.admin_port = free_port()
        self.proc = None
        self.write_config(config)

    @property
    def admin(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    def write_config(self, config: str):
        tmp = self.config_path.with_suffix(".tmp")
        tmp.write_text(config)
        os.replace(tmp, self.config_path)
        self.config = config

    def start(self, timeout: float = 30) -> "Relay":
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [
                str(self.binary),
                "run",
                str(self.config_path),
                "--server.http.listen-addr",
                f"127.0.0.1:{self.admin_port}",
                "--storage.path",
                str(self.dir / f"{self.name}-data"),
                "--log.level",
                "debug",
                *self.args,
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"relay exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if http("GET", self.admin + "/-/ready", timeout=2)[0] == 200:
                    return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"relay not ready after {timeout}s:\n{self.log()}")
            time.sleep(0.05)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-20000:]
        except FileNotFoundError:
            return ""

    def reload(self, config: str = None, via: str = "http"):
        """Writes `config` (if given) and reloads through `/-/reload` or SIGHUP."""
        if config is not None:
            self.write_config(config)
        if via == "http":
            status, body, _ = http("POST", self.admin + "/-/reload")
            assert status == 200, f"reload answered {status}: {body!r}\n{self.log()}"
        else:
            before = self.log_path.stat().st_size
            self.proc.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                with open(self.log_path, "rb") as f:
                    f.seek(before)
                    tail = f.read()
                    if b"reload on SIGHUP failed" in tail:
                        raise AssertionError(f"SIGHUP reload failed:\n{self.log()}")
                    if b"config reloaded on SIGHUP" in tail:
                        return
                time.sleep(0.05)
            raise AssertionError(f"no reload logged after SIGHUP:\n{self.log()}")

    def metrics(self) -> str:
        status, body, _ = http("GET", self.admin + "/metrics")
        assert status == 200
        return body.decode()

    def metric(self, name: str, **labels) -> float:
        """Sum of the samples of `name` whose labels include `labels`."""
        total = 0.0
        for line in self.metrics().splitlines():
            if not line.startswith(name + "{") and not line.startswith(name + " "):
                continue
            if all(f'{k}="{v}"' in line for k, v in labels.items()):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=35)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self._log.close()
