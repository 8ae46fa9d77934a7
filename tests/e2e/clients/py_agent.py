"""A small Python application profiled by the real pyroscope-io agent
(1.x: Connect push; 0.8.x: /ingest pprof). Run with the interpreter of the
agent's venv:

    python py_agent.py --server URL --app NAME --seconds S [--interval I]
        [--mem] [--tag k=v ...] [--basic USER:PASS] [--tenant T] [--header k=v ...]

It burns CPU in two functions (one inside tag_wrapper({"handler": "work"}))
for S seconds, then calls pyroscope.shutdown(), which uploads the last
profile, and prints `done` on stdout.
"""

import argparse
import sys
import time

import pyroscope


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def work_plain(until):
    keep = []
    while time.monotonic() < until:
        fib(18)
        keep.append(bytearray(4096))  # something for the memory profiler
        if len(keep) > 2000:
            keep.clear()


def work_tagged(until):
    with pyroscope.tag_wrapper({"handler": "work"}):
        work_plain(until)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--app", required=True)
    ap.add_argument("--seconds", type=float, required=True)
    ap.add_argument("--interval", type=int, default=None, help="upload_interval (1.x only)")
    ap.add_argument("--mem", action="store_true", help="mem_enabled (1.x only)")
    ap.add_argument("--tag", action="append", default=[])
    ap.add_argument("--header", action="append", default=[])
    ap.add_argument("--basic", default="")
    ap.add_argument("--tenant", default="")
    a = ap.parse_args()

    kw = dict(
        application_name=a.app,
        server_address=a.server,
        tags=dict(t.split("=", 1) for t in a.tag),
        tenant_id=a.tenant,
        http_headers=dict(h.split("=", 1) for h in a.header),
        enable_logging=True,
    )
    if a.basic:
        kw["basic_auth_username"], kw["basic_auth_password"] = a.basic.split(":", 1)
    if a.interval is not None:
        kw["upload_interval"] = a.interval
    if a.mem:
        kw["mem_enabled"] = True
    pyroscope.configure(**kw)

    start = time.monotonic()
    half = start + a.seconds / 2
    work_tagged(half)
    work_plain(start + a.seconds)
    pyroscope.shutdown()
    print("done", flush=True)


if __name__ == "__main__":
    sys.exit(main())
