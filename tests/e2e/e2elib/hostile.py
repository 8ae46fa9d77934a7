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
