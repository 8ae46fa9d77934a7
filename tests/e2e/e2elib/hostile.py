"""Hostile and well-behaved clients on raw sockets, and what the tests read
of the relay process: the memory budget and slow-client tests, and
bench/slow_clients.py, use them.

Hostile clients speak HTTP/1.1 byte by byte (asyncio streams) so that they
can hold a body back, dribble a head, or stall; the well-behaved client is
a thread with one keep-alive `http.client` connection that records each
request's status and latency."""

import asyncio
import http.client
import resource
import threading
import time
import zlib

MIB = 1 << 20


def raise_fd_limit(needed: int) -> int:
    """Raises this process's soft fd limit (inherited by the relay it
    starts) to at least `needed`, up to the hard limit; returns the limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        want = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        soft = want
    return soft


def memory_kib(pid: int) -> dict:
    """VmRSS and VmHWM (peak) of a process, in KiB."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])
    return out


class RssSampler(threading.Thread):
    """Samples a process's VmRSS every 20 ms; `peak_mib` is the highest."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid = pid
        self.peak_kib = 0
        self._halt = threading.Event()

    def run(self):
        while not self._halt.is_set():
            try:
                self.peak_kib = max(self.peak_kib, memory_kib(self.pid)["VmRSS"])
            except (OSError, KeyError):
                return
            self._halt.wait(0.02)

    def stop(self) -> float:
        self._halt.set()
        self.join()
        return self.peak_kib / 1024


def gzip_of_zeros(size: int) -> bytes:
    """A gzip member of `size` zero bytes, made in 1 MiB steps."""
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = bytes(MIB)
    parts = [z.compress(zeros) for _ in range(size // MIB)]
    parts.append(z.compress(bytes(size % MIB)))
    parts.append(z.flush())
    return b"".join(parts)


def percentile(values, p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


class SteadyClient(threading.Thread):
    """Sends the same small request over one keep-alive connection, one at
    a time, until stopped; records (status, seconds) per request. A failed
    connection counts as status 0 and is reopened."""

    def __init__(self, port: int, path: str, body: bytes, headers: dict, pause: float = 0.0):
        super().__init__(daemon=True)
        self.port, self.path, self.body, self.headers = port, path, body, headers
        self.pause = pause
        self.results = []
        self._halt = threading.Event()

    def run(self):
        conn = None
        while not self._halt.is_set():
            started = time.monotonic()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                conn.request("POST", self.path, body=self.body, headers=self.headers)
                resp = conn.getresponse()
                resp.read()
                status = resp.status
                if resp.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException):
                status = 0
                if conn is not None:
                    conn.close()
                conn = None
            self.results.append((status, time.monotonic() - started))
            if self.pause:
                self._halt.wait(self.pause)
        if conn is not None:
            conn.close()

    def stop(self):
        self._halt.set()
        self.join()

    def summary(self) -> dict:
        latencies = [s for _, s in self.results]
        ok = sum(1 for status, _ in self.results if status == 200)
        return {
            "requests": len(self.results),
            "ok": ok,
            "success_rate": ok / len(self.results) if self.results else 0.0,
            "p50_ms": percentile(latencies, 50) * 1000,
            "p99_ms": percentile(latencies, 99) * 1000,
            "statuses": sorted({status for status, _ in self.results}),
        }


def merge(summaries) -> dict:
    requests = sum(s["requests"] for s in summaries)
    ok = sum(s["ok"] for s in summaries)
    return {"requests": requests, "ok": ok, "success_rate": ok / requests if requests else 0.0}


async def read_status(reader: asyncio.StreamReader) -> int:
    """The status of the response on `reader` (its head is read, and its
    body when it declares a length)."""
    line = await reader.readline()
    if not line:
        raise ConnectionResetError("closed before a response")
    status = int(line.split()[1])
    length = 0
    while True:
        header = await reader.readline()
        if header in (b"\r\n", b"\n", b""):
            break
        name, _, value = header.decode("latin-1").partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    if length:
        await reader.readexactly(length)
    return status


def request_head(port: int, path: str, headers: dict) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def upload_and_hold(port: int, size: int, held_back: int, hold: float) -> str:
    """Declares a `size`-byte /ingest body, sends all but `held_back` bytes
    of it in 1 MiB writes, then waits up to `hold` seconds. Returns the
    status the relay answered, `reset` when it closed the connection
    before a status could be read, or `held` when it never answered."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return "connect_failed"
    answer = asyncio.ensure_future(read_status(reader))
    try:
        writer.write(request_head(port, "/ingest?name=attack&format=pprof", {
            "Content-Type": "binary/octet-stream", "Content-Length": str(size)}))
        chunk = bytes(MIB)
        sent = 0
        while sent < size - held_back and not answer.done():
            piece = chunk[: min(MIB, size - held_back - sent)]
            writer.write(piece)
            await writer.drain()
            sent += len(piece)
        try:
            return str(await asyncio.wait_for(asyncio.shield(answer), hold))
        except asyncio.TimeoutError:
            return "held"
    except (OSError, ValueError, IndexError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()
    # The relay closed the connection under the upload: its answer may
    # still have arrived first.
    try:
        return str(await asyncio.wait_for(answer, 1))
    except (OSError, ValueError, IndexError, asyncio.IncompleteReadError, asyncio.TimeoutError):
        return "reset"


async def post_once(port: int, path: str, headers: dict, body: bytes, timeout: float) -> str:
    """One POST on a new connection; the status, or `reset`."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return "connect_failed"
    try:
        writer.write(request_head(port, path, {**headers, "Content-Length": str(len(body))}))
        writer.write(body)
        await writer.drain()
        return str(await asyncio.wait_for(read_status(reader), timeout))
    except asyncio.TimeoutError:
        return "timeout"
    except (OSError, ValueError, IndexError, asyncio.IncompleteReadError):
        return "reset"
    finally:
        writer.close()


async def repeat_until(deadline: float, attack) -> list:
    """Runs `attack()` (a coroutine factory) again and again until
    `deadline` (monotonic); the outcomes."""
    outcomes = []
    while time.monotonic() < deadline:
        outcomes.append(await attack())
    return outcomes


# --- slow clients ------------------------------------------------------------

async def _slow_connection(port: int, kind: str, interval: float, give_up: float):
    """One slow client: `head` dribbles a request head one byte per
    `interval`, `body` sends a whole head declaring 1 MB and then dribbles
    the body the same way. Returns (kind, seconds until the relay cut the
    connection or None, the status it answered or None)."""
    started = time.monotonic()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return kind, None, "connect_failed"
    status = None
    if kind == "head":
        prefix = b"POST /ingest HTTP/1.1\r\nHost: relay\r\nX-Slow: "
        drip = b"a"
    else:
        prefix = request_head(port, "/ingest?name=slow&format=pprof", {
            "Content-Type": "binary/octet-stream", "Content-Length": "1000000"})
        drip = b"\0"
    received = b""
    try:
        # The head dribbler sends its first byte only: the rest comes one
        # byte at a time; the body trickler sends its head whole.
        writer.write(prefix[:1] if kind == "head" else prefix)
        pending = prefix[1:] if kind == "head" else b""
        while time.monotonic() - started < give_up:
            try:
                data = await asyncio.wait_for(reader.read(4096), interval)
            except asyncio.TimeoutError:
                if pending:
                    writer.write(pending[:1])
                    pending = pending[1:]
                else:
                    writer.write(drip)
                await writer.drain()
                continue
            if not data:  # the relay closed the connection
                break
            received += data
        else:
            return kind, None, "held"
    except OSError:
        pass
    finally:
        writer.close()
    if received.startswith(b"HTTP/1.1 "):
        status = received.split()[1].decode()
    return kind, time.monotonic() - started, status


def _swarm_process(port, heads, bodies, interval, give_up, opened, results):
    async def main():
        tasks = []
        for i in range(max(heads, bodies)):
            for kind, n in (("head", heads), ("body", bodies)):
                if i < n:
                    tasks.append(asyncio.ensure_future(
                        _slow_connection(port, kind, interval, give_up)))
            if i % 100 == 99:
                await asyncio.sleep(0)  # let the connects go out
        await asyncio.sleep(0.5)
        opened.set()
        return await asyncio.gather(*tasks)
    results.put(asyncio.run(main()))


def measure_slow_clients(port: int, heads: int, bodies: int, read_timeout: float,
                         quiet_seconds: float, steady_body: bytes, log=print) -> dict:
    """Measures a steady client's latency on the relay at `port` (whose
    `server_read_timeout` is `read_timeout` seconds) while quiet, then
    while `heads` connections dribble a request head and `bodies` trickle a
    body, one byte a second, from another process; the slow clients run
    until the relay cuts them. Returns the figures and every slow
    connection's (kind, seconds until cut, status)."""
    import multiprocessing

    path = "/ingest?name=steady.cpu&format=pprof"
    headers = {"Content-Type": "binary/octet-stream"}

    def steady(seconds):
        client = SteadyClient(port, path, steady_body, headers, pause=0.005)
        client.start()
        time.sleep(seconds)
        client.stop()
        return client.summary()

    quiet = steady(quiet_seconds)
    log(f"quiet: {quiet}")
    ctx = multiprocessing.get_context("fork")
    opened, results = ctx.Event(), ctx.Queue()
    swarm = ctx.Process(target=_swarm_process, daemon=True, args=(
        port, heads, bodies, 1.0, read_timeout * 3 + 10, opened, results))
    started = time.monotonic()
    swarm.start()
    if not opened.wait(60):
        raise AssertionError("the slow clients did not start")
    # Measure while every slow connection is open (they are cut at the
    # read timeout, counted from their start).
    window = max(1.0, read_timeout - (time.monotonic() - started) - 0.5)
    loaded = steady(window)
    log(f"with {heads} slow heads and {bodies} slow bodies: {loaded}")
    outcomes = results.get(timeout=read_timeout * 3 + 30)
    swarm.join(10)
    return {"quiet": quiet, "loaded": loaded, "slow": outcomes}
