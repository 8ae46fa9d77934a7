"""Fixtures of the end-to-end suite: the relay binary, recording backends,
relays and taps, each cleaned up after its test or module; the relay's log
and the clients' output are printed when a test fails."""

import os
import shutil
import sys
from pathlib import Path

import pytest

E2E = Path(__file__).resolve().parent
REPO = E2E.parent.parent
sys.path.insert(0, str(E2E))

from e2elib.backend import Backend  # noqa: E402
from e2elib.relay import Relay, free_port  # noqa: E402


def _relay_binary() -> Path:
    if os.environ.get("E2E_RELAY_BIN"):
        return Path(os.environ["E2E_RELAY_BIN"])
    target = Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target")
    if not target.is_absolute():
        target = REPO / target
    return target / "debug" / "pyroscope-relay"


@pytest.fixture(scope="session")
def relay_bin(tmp_path_factory) -> Path:
    """The debug binary `cargo build` made, copied once so that a rebuild
    running meanwhile (a shared target directory) cannot swap it mid-suite."""
    src = _relay_binary()
    if not src.exists():
        pytest.exit(f"{src} not found: run `cargo build` first (or set E2E_RELAY_BIN)", 2)
    dst = tmp_path_factory.mktemp("bin") / "pyroscope-relay"
    shutil.copy2(src, dst)
    return dst


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    rep = yield
    setattr(item, "rep_" + rep.when, rep)
    return rep


class Harness:
    """Starts backends, taps and relays in one directory and stops them all."""

    def __init__(self, relay_bin: Path, workdir: Path):
        self.relay_bin = relay_bin
        self.dir = workdir
        self.backends = []
        self.relays = []

    def backend(self, name="backend", **kw) -> Backend:
        b = Backend(name, **kw).start()
        self.backends.append(b)
        return b

    def tap(self, relay_port: int, name="tap") -> Backend:
        """A recording HTTP/1.1 forwarder in front of the relay: what the
        agents sent, and what the relay answered them."""
        return self.backend(name, upstream=("127.0.0.1", relay_port))

    def relay(self, config: str, name="relay", args=()) -> Relay:
        r = Relay(self.relay_bin, self.dir, config, name, args)
        self.relays.append(r)
        return r.start()

    def port(self) -> int:
        return free_port()

    def close(self, failed: bool):
        for r in self.relays:
            r.stop()
        for b in self.backends:
            b.stop()
        if failed:
            for r in self.relays:
                print(f"\n===== {r.name} log ({r.log_path}) =====\n{r.log()}")
            for out in sorted(self.dir.glob("*.out")):
                print(f"\n===== {out.name} =====\n{out.read_text(errors='replace')[-6000:]}")


@pytest.fixture
def harness(relay_bin, tmp_path, request):
    h = Harness(relay_bin, tmp_path)
    yield h
    rep = getattr(request.node, "rep_call", None)
    h.close(failed=rep is None or rep.failed)


@pytest.fixture(scope="module")
def module_harness(relay_bin, tmp_path_factory, request):
    h = Harness(relay_bin, tmp_path_factory.mktemp(request.module.__name__))
    yield h
    failed = any(getattr(i, "rep_call", None) is not None and i.rep_call.failed
                 for i in request.session.items if i.module is request.module)
    h.close(failed=failed)
