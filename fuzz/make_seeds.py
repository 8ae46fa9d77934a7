#!/usr/bin/env python3
"""Writes the seed corpus of every fuzz target into fuzz/corpus/<target>/.

Seeds are the real agent payloads in tests/fixtures/, the Alloy examples in
the README and docs, and small hand-made inputs, each shaped as its target
reads its input (see the comments at the top of fuzz/fuzz_targets/*.rs).
Only the standard library is used; rerunning rewrites the same files.
"""

import base64
import gzip
import json
import pathlib
import re
import struct
import sys
import zlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
OUT = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "fuzz" / "corpus"


def fixture(name):
    return (FIXTURES / name).read_bytes()


def write(target, name, data):
    directory = OUT / target
    directory.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    (directory / name).write_bytes(data)


def frame(flags, message):
    return bytes([flags]) + struct.pack(">I", len(message)) + message


# --- config: every Alloy block in the docs, and a few hand-made files.
alloy_blocks = []
for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
    alloy_blocks += re.findall(r"```alloy\n(.*?)```", doc.read_text(), re.S)
alloy_blocks.append((ROOT / "examples" / "quickstart.alloy").read_text())
alloy_blocks += [
    'logging { level = "debug"\n format = "json" }\n',
    'http {\n  tls { cert_file = "/c.pem"\n key_file = "/k.pem" }\n'
    '  auth { basic { username = "u"\n password = "p" }\n'
    '    filter { paths = ["/"]\n authenticate_matching_paths = true } }\n}\n',
    'pyroscope.write "w" {\n  endpoint {\n    url = format("http://%s:%d", "localhost", 4040)\n'
    '    basic_auth { username = "u"\n password = sys.env("PW") }\n'
    '    headers = { "X-Scope-OrgID" = "t" }\n  }\n  external_labels = { env = "prod" }\n}\n',
    'pyroscope.relabel "r" {\n  forward_to = [pyroscope.write.w.receiver]\n'
    '  rule {\n    source_labels = ["a", "b"]\n    regex = "(.*);(.*)"\n'
    '    target_label = "c"\n    replacement = "$1-$2"\n    action = "replace"\n  }\n}\n'
    'pyroscope.write "w" { endpoint { url = "http://127.0.0.1:1" } }\n',
    'x = [1, 2.5, "s", true, null, {a = 1}][0] + 2 * (3 - -1) / 4 % 5 ^ 2 == 1 && !false || 1 < 2\n',
    'pyroscope.receive_http "in" {\n  http { listen_address = "127.0.0.1"\n listen_port = 0 }\n'
    '  forward_to = concat([], [pyroscope.archive.a.receiver])\n}\n'
    'pyroscope.archive "a" { path = "" \n retention = "1h"\n max_size = "1GiB" }\n',
]
for i, text in enumerate(alloy_blocks):
    write("config", f"doc-{i:02}.alloy", text)

# --- labelset and query.
names = [
    "app.cpu{env=prod,region=us-east-1}",
    "svc",
    "my/service.name-1{}",
    "a{b=1,,c=2}",
    "a{__name__=b,k= v }",
    "x{key=va=l{ue,k2}",
]
for i, name in enumerate(names):
    write("labelset", f"name-{i}", name)
queries = [
    "name=app.cpu%7Benv%3Dprod%7D&from=1700000000&until=1700000010"
    "&format=pprof&sampleRate=100&spyName=pyspy",
    "name=svc+x&name=second",
    "a=%zz&name=%41pp;x=1&name=app",
]
for i, q in enumerate(queries):
    write("query", f"query-{i}", q)

# --- rpc_framing: two limit bytes, then the body.
limit = struct.pack("<H", 0xFFFF)
small = struct.pack("<H", 64)
push_bin = fixture("push_request.bin")
write("rpc_framing", "grpc", limit + fixture("push_request.grpc"))
write("rpc_framing", "grpc-too-long", small + fixture("push_request.grpc"))
trailers = b"grpc-status: 3\r\ngrpc-message: bad%20thing\r\n"
write("rpc_framing", "grpc-web", limit + frame(0, b"") + frame(0x80, trailers))
write("rpc_framing", "trailers", limit + trailers)
write("rpc_framing", "connect-error", limit + b'{"code":"invalid_argument","message":"x"}')
for i, header in enumerate([
    "application/grpc-web+proto", "application/connect+json; charset=utf-8",
    "application/proto", "10S", "250m", "1500", "x-gzip",
]):
    write("rpc_framing", f"header-{i}", limit + header.encode())

# --- push_decode: a selector byte (bits 0-1 protocol, bit 2 JSON, bit 3
# gzip), then the body.
push_json = json.dumps({"series": [{
    "labels": [{"name": "__name__", "value": "process_cpu"},
               {"name": "service_name", "value": "app"}],
    "samples": [{"rawProfile": base64.b64encode(fixture("py_cpu.pb")[:64]).decode(),
                 "ID": "0b1f"}],
}]}).encode()
write("push_decode", "connect-proto", b"\x00" + push_bin)
write("push_decode", "grpc-proto", b"\x01" + fixture("push_request.grpc"))
write("push_decode", "grpc-web-gzip", b"\x0a" + frame(1, gzip.compress(push_bin, mtime=0)))
write("push_decode", "connect-gzip", b"\x08" + gzip.compress(push_bin, mtime=0))
write("push_decode", "connect-json", b"\x04" + push_json)
write("push_decode", "grpc-json", b"\x05" + frame(0, push_json))

# --- gzip: two limit bytes, then the input.
folded = fixture("py_folded.txt")
write("gzip", "node-wall", limit + fixture("node_wall_cpu.pb.gz"))
write("gzip", "node-heap", limit + fixture("node_heap.pb.gz"))
write("gzip", "folded-cut", struct.pack("<H", 4096) + gzip.compress(folded, mtime=0))
write("gzip", "members", limit + gzip.compress(b"one", mtime=0) + gzip.compress(b"two", mtime=0))


# --- segment_log and archive_meta: segment files as the archive writes them.
def varint(n):
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def string(s):
    b = s.encode()
    return varint(len(b)) + b


def meta(origin, labels):
    """The archive's record metadata: origin, then labels."""
    if origin[0] == "push":
        out = b"\x01" + string(origin[1])
    else:
        _, content_types, path, query = origin
        out = b"\x02" + varint(len(content_types)) + b"".join(map(string, content_types))
        out += string(path) + string(query)
    return out + varint(len(labels)) + b"".join(string(k) + string(v) for k, v in labels)


def header(record_id, origin, labels):
    """The log's record header: version, id, arrival, then the metadata."""
    arrival = 1_700_000_000_000_000_000 + record_id
    return bytes([1]) + struct.pack("<Qq", record_id, arrival) + meta(origin, labels)


def record(head, body):
    length = struct.pack("<I", 4 + len(head) + len(body))
    rest = struct.pack("<I", len(head)) + head + body
    crc = zlib.crc32(length + rest)
    return length + struct.pack("<I", crc) + rest


MAGIC = b"PYRARC\x00\x01"
labels = [("__name__", "process_cpu"), ("service_name", "app")]
push_head = header(1, ("push", "b6f8a7d2"), labels)
ingest_head = header(2, ("ingest", ["application/octet-stream"], "/ingest",
                         "name=app.cpu&format=pprof"), [("service_name", "node")])
segment = (MAGIC + record(push_head, fixture("py_cpu.pb"))
           + record(ingest_head, fixture("node_heap.pb.gz")))
write("archive_meta", "push", meta(("push", "b6f8a7d2"), labels))
write("archive_meta", "ingest", meta(("ingest", ["application/octet-stream"], "/ingest",
                                      "name=app.cpu&format=pprof"), [("service_name", "node")]))
# Selector bits: 1 fix checksums, 2 read-only, 4 two segments.
write("segment_log", "one", b"\x00" + segment)
write("segment_log", "one-fixed", b"\x01" + segment)
write("segment_log", "torn", b"\x00" + segment[:-7])
write("segment_log", "read-only", b"\x02" + segment)
split = len(MAGIC) + len(record(push_head, fixture("py_cpu.pb")))
second = MAGIC + record(header(3, ("push", "x"), labels), b"body")
write("segment_log", "two", b"\x05" + struct.pack("<H", split) + segment[:split] + second)
