"""A small hand-written reader for pprof `perftools.profiles.Profile`
messages: just the fields the tests assert on (sample types, period,
times, sample labels and values). gzip is sniffed by its magic."""

import gzip
from dataclasses import dataclass, field

GZIP_MAGIC = b"\x1f\x8b"


def gunzip_if_needed(data: bytes) -> bytes:
    return gzip.decompress(data) if data[:2] == GZIP_MAGIC else data


def _varint(buf: bytes, i: int):
    shift = result = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, i
        shift += 7


def fields(buf: bytes):
    """Yields (field number, wire type, value) of one protobuf message;
    length-delimited values are bytes, varints and fixed ints are ints."""
    i, n = 0, len(buf)
    while i < n:
        key, i = _varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _varint(buf, i)
        elif wt == 1:
            v, i = int.from_bytes(buf[i : i + 8], "little"), i + 8
        elif wt == 2:
            ln, i = _varint(buf, i)
            v, i = buf[i : i + ln], i + ln
            if i > n:
                raise ValueError("truncated length-delimited field")
        elif wt == 5:
            v, i = int.from_bytes(buf[i : i + 4], "little"), i + 4
        else:
            raise ValueError(f"unsupported wire type {wt}")
        yield num, wt, v


def _ints(wt: int, v) -> list:
    """A repeated int64 field: packed (bytes) or one varint."""
    if wt == 2:
        out, i = [], 0
        while i < len(v):
            x, i = _varint(v, i)
            out.append(x - (1 << 64) if x >= 1 << 63 else x)
        return out
    return [v - (1 << 64) if v >= 1 << 63 else v]


@dataclass
class Profile:
    sample_types: list = field(default_factory=list)  # [(type, unit)]
    samples: list = field(default_factory=list)  # [(values, {label: value})]
    period_type: tuple = ("", "")
    period: int = 0
    time_nanos: int = 0
    duration_nanos: int = 0

    def label_values(self, key: str) -> set:
        return {labels[key] for _, labels in self.samples if key in labels}


def parse(data: bytes) -> Profile:
    data = gunzip_if_needed(data)
    strings: list = []
    raw_types, raw_samples, raw_period_type = [], [], None
    p = Profile()
    for num, wt, v in fields(data):
        if num == 1:
            raw_types.append(v)
        elif num == 2:
            raw_samples.append(v)
        elif num == 6:
            strings.append(v.decode("utf-8"))
        elif num == 9:
            p.time_nanos = v
        elif num == 10:
            p.duration_nanos = v
        elif num == 11:
            raw_period_type = v
        elif num == 12:
            p.period = v

    def value_type(buf):
        t = u = 0
        for n, _, x in fields(buf):
            if n == 1:
                t = x
            elif n == 2:
                u = x
        return strings[t], strings[u]

    p.sample_types = [value_type(b) for b in raw_types]
    if raw_period_type is not None:
        p.period_type = value_type(raw_period_type)
    for buf in raw_samples:
        values, labels = [], {}
        for n, wt, x in fields(buf):
            if n == 2:
                values.extend(_ints(wt, x))
            elif n == 3:
                key = s = num_v = 0
                for ln, _, lx in fields(x):
                    if ln == 1:
                        key = lx
                    elif ln == 2:
                        s = lx
                    elif ln == 3:
                        num_v = lx
                labels[strings[key]] = strings[s] if s else num_v
        p.samples.append((values, labels))
    return p
