"""The path from the replicas to the backend, with faults (scenario `faults`).

This machine's kernel has no netem qdisc (CONFIG_NET_SCH_NETEM is not set,
and there are no modules to load), so `tc netem` cannot run here. Instead:

- latency: `DelayLine`, a TCP relay in front of the backend that holds
  every chunk of bytes, each way, for `delay` seconds before passing it on
  (in order), so a request and its answer each arrive `delay` late;
- packet loss and the partition: nftables rules in the backend's namespace
  that drop real packets to and from the delay line's port (a random 5%,
  or all of them), so TCP retransmits, stalls and times out as on a real
  network. Other traffic of that namespace (the driver reading the
  replicas' admin ports) is untouched."""

import socket
import subprocess
import threading
import time
from collections import deque

from hosts import in_ns


class DelayLine:
    def __init__(self, listen_host: str, target: tuple):
        self.target = target
        self.delay = 0.0
        self.server = socket.create_server((listen_host, 0), backlog=1024)
        self.port = self.server.getsockname()[1]
        self.closing = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closing:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            for a, b in ((client, upstream), (upstream, client)):
                _Direction(self, a, b).start()

    def close(self):
        self.closing = True
        self.server.close()


class _Direction:
    """Bytes from `src` to `dst`, each chunk released `line.delay` after it
    arrived."""

    def __init__(self, line: DelayLine, src, dst):
        self.line, self.src, self.dst = line, src, dst
        self.chunks = deque()
        self.ready = threading.Condition()

    def start(self):
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._write, daemon=True).start()

    def _read(self):
        while True:
            try:
                data = self.src.recv(65536)
            except OSError:
                data = b""
            with self.ready:
                self.chunks.append((time.monotonic() + self.line.delay, data))
                self.ready.notify()
            if not data:
                return

    def _write(self):
        while True:
            with self.ready:
                while not self.chunks:
                    self.ready.wait()
                due, data = self.chunks.popleft()
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            try:
                if not data:
                    self.dst.shutdown(socket.SHUT_WR)
                    return
                self.dst.sendall(data)
            except OSError:
                self.src.close()
                return


def drop(port: int, percent: int):
    """Drops `percent`% of the packets to and from `port` in the backend's
    namespace (0 removes the rules)."""
    subprocess.run(in_ns("be", ["nft", "delete", "table", "inet", "mhfaults"]),
                   capture_output=True)
    if not percent:
        return
    when = "" if percent >= 100 else f"numgen random mod 100 < {percent} "
    rules = f"""
table inet mhfaults {{
  chain input {{ type filter hook input priority 0; tcp dport {port} {when}drop; }}
  chain output {{ type filter hook output priority 0; tcp sport {port} {when}drop; }}
}}
"""
    subprocess.run(in_ns("be", ["nft", "-f", "-"]), input=rules.encode(), check=True)
