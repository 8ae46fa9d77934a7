"""What the backend must have received for what a client sent, following
the relay's documented behaviour (Alloy's; docs/components.md and docs/compatibility.md):

- push: labels as sent, plus `app_name=<__name__>` (receive_http's
  ensureServiceName when `service_name` is present, or `service_name` from
  `__name__` when not), `__*` labels other than `__name__`/`__delta__`
  dropped, then `external_labels` (override; "" deletes); sample IDs and
  raw_profile bytes unchanged; every series of one request in ONE request
  per endpoint;
- /ingest: body and Content-Type unchanged, every query parameter
  unchanged except `name`, rebuilt from the name's labels with
  `service_name` (from `__name__` when absent), `__name__ := service_name`
  and the external labels.
"""

import base64
from collections import Counter

from .labelset import parse_name


def _apply(labels: dict, external: dict) -> dict:
    out = dict(labels)
    for k, v in (external or {}).items():
        if v == "":
            out.pop(k, None)
        else:
            out[k] = v
    return out


def ensure_service_name(labels: dict) -> dict:
    out = dict(labels)
    name = out.get("__name__", "")
    key = "app_name" if "service_name" in out else "service_name"
    if name:
        out[key] = name
    else:
        out.pop(key, None)
    return out


def push_labels(sent: dict, external: dict = None, relabel=None) -> dict:
    out = ensure_service_name(sent)
    if relabel:
        out = relabel(out)
    out = {k: v for k, v in out.items() if not k.startswith("__") or k in ("__name__", "__delta__")}
    return _apply(out, external)


def ingest_labels(name: str, external: dict = None, relabel=None) -> dict:
    out = ensure_service_name(parse_name(name))
    if relabel:
        out = relabel(out)
    if out.get("service_name"):
        out["__name__"] = out["service_name"]
    return _apply(out, external)


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def sent_samples(requests) -> list:
    """[(labels, ID, raw)] of every push a client sent (tap records)."""
    return [s for r in requests if r.is_push for s in r.samples()]


def _without(labels: dict, ignore) -> dict:
    return {k: v for k, v in labels.items() if k not in ignore}


def assert_push_delivered(sent_requests, received_requests, external=None, relabel=None,
                          ignore=()):
    """Every sample a client sent arrived exactly once, bytes unchanged,
    with the expected labels; each client request became exactly one
    backend request holding all its series. `relabel(labels)` is what a
    pyroscope.relabel stage between receive_http and write does. Labels
    named in `ignore` are left out of the comparison."""
    sent_requests = [r for r in sent_requests if r.is_push]
    received = [r for r in received_requests if r.is_push]
    for r in received:
        assert not r.decode_error, f"backend could not decode a push: {r.decode_error}"
    ids = Counter(sid for r in received for _, sid, _ in r.samples())
    by_id = {sid: (labels, raw, r.seq) for r in received for labels, sid, raw in r.samples()}
    assert sent_requests, "the client sent no push"
    for req in sent_requests:
        assert not req.decode_error, req.decode_error
        seqs = set()
        for labels, sid, raw in req.samples():
            assert ids[sid] == 1, f"sample {sid} arrived {ids[sid]} times (want exactly once)"
            got_labels, got_raw, seq = by_id[sid]
            assert got_raw == raw, f"sample {sid}: raw_profile bytes changed"
            want = _without(push_labels(labels, external, relabel), ignore)
            got_labels = _without(got_labels, ignore)
            assert got_labels == want, f"sample {sid}: labels\n got {got_labels}\nwant {want}"
            seqs.add(seq)
        assert len(seqs) == 1, f"one client request was split into backend requests {seqs}"
    return received


def assert_ingest_delivered(sent_requests, received_requests, external=None, relabel=None,
                            ignore=()):
    """Every /ingest a client sent arrived exactly once with the same body
    bytes, Content-Type and query (but `name`), and the expected name."""
    sent_requests = [r for r in sent_requests if r.is_ingest]
    received = [r for r in received_requests if r.is_ingest]
    assert sent_requests, "the client sent no /ingest"
    bodies = Counter(r.body for r in received)
    for req in sent_requests:
        assert bodies[req.body] == 1, (
            f"an /ingest body of {len(req.body)} bytes arrived {bodies[req.body]} times "
            f"(want exactly once): {req.query}"
        )
        got = next(r for r in received if r.body == req.body)
        assert got.header("Content-Type") == req.header("Content-Type")
        sent_params, got_params = dict(req.params), dict(got.params)
        sent_name, got_name = sent_params.pop("name"), got_params.pop("name")
        assert got_params == sent_params, f"query changed: {req.query} -> {got.query}"
        want = _without(ingest_labels(sent_name, external, relabel), ignore)
        assert _without(parse_name(got_name), ignore) == want, f"name {sent_name!r} arrived as {got_name!r}, want {want}"
        assert got_name.startswith(want["__name__"] + "{") or got_name == want["__name__"]
    return received


def multipart_profile(req) -> bytes:
    """The `profile` part of a multipart/form-data /ingest body."""
    ctype = req.header("Content-Type")
    boundary = ctype.split("boundary=", 1)[1].strip('"').encode()
    for part in req.body.split(b"--" + boundary):
        head, sep, data = part.partition(b"\r\n\r\n")
        if sep and b'name="profile"' in head:
            return data[: -2] if data.endswith(b"\r\n") else data
    raise AssertionError(f"no profile part in {req.body[:200]!r}")


class SentPush:
    """A PushRequest a test client sent, shaped like a recorded request."""

    is_push, is_ingest, decode_error = True, False, ""

    def __init__(self, body: bytes):
        from . import protos

        self.body = body
        self.push = protos.PushRequest.FromString(body)

    def series(self):
        return [({lp.name: lp.value for lp in s.labels},
                 [(x.ID, bytes(x.raw_profile)) for x in s.samples]) for s in self.push.series]

    def samples(self):
        return [(labels, sid, raw) for labels, samples in self.series() for sid, raw in samples]
