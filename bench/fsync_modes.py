#!/usr/bin/env python3
"""What a durable batch costs the kernel, by the way it is written.

The queue's writer thread appends each batch of records with one `pwrite`
to the end of a segment and makes it durable with one `fdatasync`
(src/storage/writer.rs). This script times that, and the alternatives a
log could use instead, outside the relay: the CPU (user and system) and
wall time per batch of the size the writer writes at full load, on the
file system of DIR (docs/performance.md, "The durable queue", "What the
kernel costs").

    python3 bench/fsync_modes.py                 # 2000 batches of 270 KiB in a directory under /tmp
    python3 bench/fsync_modes.py --batches 500 --batch-kib 64 --dir /var/lib/relay-test

Modes:
  buffered             pwrite extending the file, then fdatasync (what the relay did first)
  buffered-reserved    the same with blocks reserved 4 MiB ahead, fallocate(KEEP_SIZE)
                       (what the relay does in a new segment file)
  buffered-prezeroed   the same into a file whose blocks were written with zeros first
                       (what the relay does in a reused segment file, whose blocks
                       were written before)
  direct-fallocated    O_DIRECT pwrite into fallocate()d (unwritten) blocks, then fdatasync
  direct-prezeroed     O_DIRECT pwrite into pre-zeroed blocks, then fdatasync
  direct-prezeroed-dsync   the same with O_DSYNC instead of fdatasync (one call per batch)
and, apart, the CPU that writing the zeros takes per batch-sized piece.

O_DIRECT needs a file system that supports it (not tmpfs); a mode that
fails says why and the others still run.
"""

import argparse
import ctypes
import ctypes.util
import mmap
import os
import resource
import tempfile
import time

ZERO_CHUNK = 1 << 20
RESERVE_AHEAD = 4 << 20
FALLOC_FL_KEEP_SIZE = 1


_LIBC = []


def reserve(fd, offset, length):
    """fallocate(FALLOC_FL_KEEP_SIZE): blocks without a new file size."""
    if not _LIBC:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
        _LIBC.append(libc)
    if _LIBC[0].fallocate(fd, FALLOC_FL_KEEP_SIZE, offset, length) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def cpu_seconds():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime, r.ru_stime


def aligned(size):
    """A page-aligned buffer (O_DIRECT needs one) of random bytes."""
    buf = mmap.mmap(-1, size)
    buf.write(os.urandom(size))
    return buf


def prezero(path, size):
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_DIRECT, 0o600)
    try:
        zeros = mmap.mmap(-1, ZERO_CHUNK)
        for offset in range(0, size, ZERO_CHUNK):
            os.pwrite(fd, zeros, offset)
        os.fsync(fd)
    finally:
        os.close(fd)


def run_mode(mode, directory, batch, batches):
    path = os.path.join(directory, f"segment-{mode}")
    size = batch * batches
    buf = aligned(batch)
    flags = os.O_RDWR | os.O_CREAT
    if mode.startswith("direct"):
        flags |= os.O_DIRECT
    if mode.endswith("-dsync"):
        flags |= os.O_DSYNC
    if "prezeroed" in mode:
        prezero(path, size)
    fd = os.open(path, flags, 0o600)
    try:
        if mode == "direct-fallocated":
            os.posix_fallocate(fd, 0, size)
            os.fsync(fd)
        reserved = 0
        (u0, s0), t0 = cpu_seconds(), time.monotonic()
        for i in range(batches):
            if mode == "buffered-reserved" and (i + 1) * batch > reserved:
                end = min((i + 1) * batch + RESERVE_AHEAD, size)
                reserve(fd, reserved, end - reserved)
                reserved = end
            os.pwrite(fd, buf, i * batch)
            if not mode.endswith("-dsync"):
                os.fdatasync(fd)
        (u1, s1), t1 = cpu_seconds(), time.monotonic()
    finally:
        os.close(fd)
        os.unlink(path)
    per = 1e6 / batches
    return (u1 - u0) * per, (s1 - s0) * per, (t1 - t0) * per


def zeroing_cost(directory, batch):
    """CPU per batch-sized piece of writing zeros ahead with O_DIRECT."""
    path = os.path.join(directory, "segment-zeroing")
    size = 64 << 20
    (u0, s0) = cpu_seconds()
    prezero(path, size)
    (u1, s1) = cpu_seconds()
    os.unlink(path)
    return ((u1 - u0) + (s1 - s0)) * 1e6 / (size / batch)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batches", type=int, default=2000)
    ap.add_argument("--batch-kib", type=int, default=270,
                    help="rounded up to 4 KiB (O_DIRECT); 270 KiB is ~25 records of 10 KB")
    ap.add_argument("--dir", default=None, help="a directory on the file system to measure")
    args = ap.parse_args()
    batch = -(-args.batch_kib * 1024 // 4096) * 4096
    directory = tempfile.mkdtemp(prefix="fsync-modes.", dir=args.dir)
    modes = ["buffered", "buffered-reserved", "buffered-prezeroed", "direct-fallocated",
             "direct-prezeroed", "direct-prezeroed-dsync"]
    print(f"{args.batches} batches of {batch // 1024} KiB in {directory}; per batch:")
    try:
        for mode in modes:
            try:
                user, system, wall = run_mode(mode, directory, batch, args.batches)
            except OSError as e:
                print(f"  {mode:24s} not measured: {e}")
                continue
            print(f"  {mode:24s} user {user:7.1f} us  system {system:7.1f} us  wall {wall:8.1f} us")
        try:
            print(f"  {'zeroing ahead (O_DIRECT)':24s} cpu  {zeroing_cost(directory, batch):7.1f} us per batch-sized piece")
        except OSError as e:
            print(f"  zeroing ahead not measured: {e}")
    finally:
        os.rmdir(directory)


if __name__ == "__main__":
    main()
