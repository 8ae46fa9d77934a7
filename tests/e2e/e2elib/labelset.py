"""Pyroscope's `name` labelset grammar (`app{k=v,k2=v2}`), enough to read
what a client or the relay put in an /ingest query."""


def parse_name(name: str) -> dict:
    """`app.cpu{env=test,region=eu}` -> {"__name__": "app.cpu", "env": "test", ...}.
    Values run to `,` or `}` and may contain `/`, `=` and `{`."""
    service, _, rest = name.partition("{")
    labels = {"__name__": service.strip()}
    key, value, in_value = "", "", False
    for ch in rest:
        if not in_value:
            if ch == "=":
                in_value = True
            elif ch == "}":
                break
            else:
                key += ch
        elif ch in ",}":
            labels[key.strip()] = value.strip()
            key, value, in_value = "", "", False
            if ch == "}":
                break
        else:
            value += ch
    return labels
