"""An HTTP/1.1 keep-alive client that behaves like the agents' pooling
clients (reqwest/hyper, undici): before reusing a connection it checks that
the server has not closed it, and a request that dies on a reused
connection before any answer came back is sent once more on a new one.

That second try is what keeps a keep-alive client whole when a server
closes an idle connection at the instant the client writes (HTTP/1.1's
inherent race, met on a relay reload that restarts the server). The retry
would duplicate the request if the relay had processed it without
answering, so the exactly-once assertions also cover it; `stale_retries`
counts them."""

import http.client
import select
import socket
import threading


def _closed(sock) -> bool:
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        if not readable:
            return False
        return sock.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


class KeepAlive:
    def __init__(self, host: str, port: int, timeout: float = 120):
        self.conn = http.client.HTTPConnection(host, port, timeout=timeout)
        self.stale_retries = 0
        self.lock = threading.Lock()

    def request(self, method, target, body=b"", headers=None):
        """(status, content type, body) of one exchange."""
        with self.lock:
            for attempt in (1, 2):
                reused = self.conn.sock is not None
                if reused and _closed(self.conn.sock):
                    self.conn.close()
                    reused = False
                try:
                    self.conn.request(method, target, body=body, headers=headers or {})
                    resp = self.conn.getresponse()
                except (OSError, http.client.HTTPException):
                    self.conn.close()
                    if reused and attempt == 1:
                        self.stale_retries += 1
                        continue
                    raise
                try:
                    data = resp.read()
                finally:
                    if resp.will_close:
                        self.conn.close()
                return resp.status, resp.getheader("Content-Type"), data

    def close(self):
        self.conn.close()
