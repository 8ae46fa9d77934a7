"""Opens N keep-alive TCP connections to HOST:PORT, sends one small request
on each so the server has fully set it up, then holds them until stdin closes."""
import socket
import sys

host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
conns = []
request = b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
for _ in range(count):
    s = socket.create_connection((host, port))
    s.sendall(request)
    conns.append(s)
for s in conns:
    s.recv(4096)
print("open", len(conns), flush=True)
sys.stdin.read()
