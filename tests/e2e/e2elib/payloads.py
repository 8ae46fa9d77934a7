"""PushRequests built from profiles the real agents captured
(tests/fixtures), with fresh sample IDs so each is traceable."""

import uuid
from pathlib import Path

from . import protos

FIXTURES = Path(__file__).resolve().parents[3] / "tests" / "fixtures"
PY_CPU = (FIXTURES / "py_cpu.pb").read_bytes()  # plain pprof
NODE_WALL = (FIXTURES / "node_wall_cpu.pb.gz").read_bytes()  # gzipped pprof
NODE_HEAP = (FIXTURES / "node_heap.pb.gz").read_bytes()  # gzipped pprof


def push(service: str, **extra_labels) -> bytes:
    """Two series, three samples: a plain CPU pprof, and gzipped wall and
    heap pprofs; labels include a `/` in a value."""
    common = {"service_name": service, "env": "test", "route": "/api/v1/push", **extra_labels}
    return protos.push_request([
        ({"__name__": "process_cpu", **common}, [(str(uuid.uuid4()), PY_CPU)]),
        ({"__name__": "wall", **common},
         [(str(uuid.uuid4()), NODE_WALL), (str(uuid.uuid4()), NODE_HEAP)]),
    ])
