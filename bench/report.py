"""Turns bench/run.sh's results.tsv into the table (stdout) and, unless told
not to, docs/performance.md's generated part (between the bench markers;
the text after `<!-- bench:end -->` is kept)."""
import datetime, os, platform, statistics, sys
from collections import defaultdict

res, doc, write, commit, rounds, duration, idle_conns = sys.argv[1:8]
vals = defaultdict(list)
for line in open(res):
    w, t, m, v = line.rstrip("\n").split("\t")
    vals[(w, t, m)].append(float(v))

def med(w, t, m):
    v = vals.get((w, t, m))
    return statistics.median(v) if v else None

def f(x, d=1):
    return "n/a" if x is None else f"{x:,.{d}f}"

def ratio(a, b, d=2):
    return "n/a" if a is None or not b else f"{a / b:.{d}f}"

rows, targets = [], []
def row(name, r, n, d=1, note=""):
    rows.append((name, f(r, d), f(n, d), ratio(r, n), note))

MiB = 1024.0
rate = med("rate", "all", "target_rps")
row("/ingest 10 KB, 64 conns: req/s", med("ingest", "relay", "rps"), med("ingest", "nginx", "rps"), 0,
    f"sink alone: {f(med('ingest', 'sink', 'rps'), 0)}")
row("/ingest p50 latency (ms)", med("ingest", "relay", "p50_ms"), med("ingest", "nginx", "p50_ms"), 2,
    f"sink alone: {f(med('ingest', 'sink', 'p50_ms'), 2)}")
row("/ingest p99 latency (ms)", med("ingest", "relay", "p99_ms"), med("ingest", "nginx", "p99_ms"), 2,
    f"sink alone: {f(med('ingest', 'sink', 'p99_ms'), 2)}")
row("CPU seconds per 1,000 requests", med("ingest", "relay", "cpu_s_per_1k"), med("ingest", "nginx", "cpu_s_per_1k"), 3,
    "proxy process(es) only, not the sink or wrk")
row("  of which in the kernel (sys)", med("ingest", "relay", "sys_s_per_1k"), med("ingest", "nginx", "sys_s_per_1k"), 3,
    "loopback TCP both ways; the rest is user space")
def added(t, m, w="rate"):
    a, s = med(w, t, m), med(w, "sink", m)
    return None if a is None or s is None else a - s
row(f"open loop at 50% (oha, {f(rate, 0)} req/s): achieved req/s", med("rate", "relay", "rps"), med("rate", "nginx", "rps"), 0,
    f"sink alone: {f(med('rate', 'sink', 'rps'), 0)}")
row("open loop: p50 added over sink alone (ms)", added("relay", "p50_ms"), added("nginx", "p50_ms"), 3)
row("open loop: p99 added over sink alone (ms)", added("relay", "p99_ms"), added("nginx", "p99_ms"), 3,
    f"sink alone p99: {f(med('rate', 'sink', 'p99_ms'), 2)} ms; latency corrected")
own = med("rate_own", "all", "target_rps")
row(f"open loop at 50% of each one's own max (relay {f(own, 0)}, nginx {f(rate, 0)} req/s): p99 added (ms)",
    added("relay", "p99_ms", "rate_own"), added("nginx", "p99_ms"), 3, "queueing at equal load, not at equal rate")
for n in (1, 2):
    row(f"/ingest pinned to {n} core{'s' if n > 1 else ''}: req/s", med(f"cores{n}", "relay", "rps"), med(f"cores{n}", "nginx", "rps"), 0,
        "taskset on the proxy only")
    row(f"  CPU seconds per 1,000 requests, {n} core{'s' if n > 1 else ''}", med(f"cores{n}", "relay", "cpu_s_per_1k"),
        med(f"cores{n}", "nginx", "cpu_s_per_1k"), 3)
for c in (1024, 16384):
    row(f"/ingest, {c:,} conns: req/s", med(f"conns{c}", "relay", "rps"), med(f"conns{c}", "nginx", "rps"), 0,
        f"p99 ms: relay {f(med(f'conns{c}', 'relay', 'p99_ms'), 1)}, nginx {f(med(f'conns{c}', 'nginx', 'p99_ms'), 1)}")
    row(f"  CPU seconds per 1,000 requests, {c:,} conns", med(f"conns{c}", "relay", "cpu_s_per_1k"),
        med(f"conns{c}", "nginx", "cpu_s_per_1k"), 3)
row("push, Connect proto 11 KB, HTTP/1.1: req/s", med("connect", "relay", "rps"), med("connect", "nginx", "rps"), 0,
    "nginx: plain proxy_pass")
row("relay /ingest 10 KB req/s, rerun next to the push runs", med("connect_base", "relay", "rps"), None, 0,
    "for the push ÷ /ingest target")
row("push, gRPC 11 KB, h2c: req/s", med("grpc", "relay", "rps"), med("grpc", "nginx", "rps"), 0,
    "h2load 16 conns x 4 streams; nginx: grpc_pass")
big = lambda t: None if med("big", t, "rps") is None else med("big", t, "rps") * 4.0
row("/ingest 4 MiB, 16 conns: MiB/s", big("relay"), big("nginx"), 0)
row("fan-out to 2 sinks, 10 KB, 64 conns: req/s", med("fanout", "fanout", "rps"), med("fanout", "nginx_fan", "rps"), 0,
    "nginx: mirror")
hwm = lambda t: None if med("fanout4m", t, "hwm_kb") is None else med("fanout4m", t, "hwm_kb") / MiB
row("fan-out, 64 x 4 MiB in flight: peak RSS (MiB)", hwm("fanout"), hwm("nginx_fan"), 0,
    f"req/s relay {f(med('fanout4m', 'fanout', 'rps'), 1)}, nginx {f(med('fanout4m', 'nginx_fan', 'rps'), 1)}")
idle = lambda t: None if med("idle", t, "rss_kb") is None else med("idle", t, "rss_kb") / MiB
row("idle RSS (MiB)", idle("relay"), idle("nginx"), 1, "nginx: master + workers")
row(f"RSS per idle keep-alive conn (KiB), {idle_conns} conns", med("conns", "relay", "kib_per_conn"),
    med("conns", "nginx", "kib_per_conn"), 2,
    f"held: relay {f(med('conns', 'relay', 'held'), 0)}, nginx {f(med('conns', 'nginx', 'held'), 0)}")
errs = {t: sum(v for (w, tt, m), vs in vals.items() if tt == t and m == "errors" for v in vs)
        for t in ("relay", "nginx", "sink", "fanout", "nginx_fan")}

def target(name, value, ok_if, limit, shown):
    if value is None:
        targets.append((name, "n/a", limit, "not measured"))
    else:
        targets.append((name, shown(value), limit, "met" if ok_if(value) else "MISSED"))
g = lambda a, b: None if a is None or not b else a / b
target("/ingest req/s relay ÷ nginx", g(med("ingest", "relay", "rps"), med("ingest", "nginx", "rps")),
       lambda v: v >= 0.85, "≥ 0.85", lambda v: f"{v:.2f}")
target("/ingest CPU per request relay ÷ nginx", g(med("ingest", "relay", "cpu_s_per_1k"), med("ingest", "nginx", "cpu_s_per_1k")),
       lambda v: v <= 1.3, "≤ 1.3", lambda v: f"{v:.2f}")
pr, pn = added("relay", "p99_ms"), added("nginx", "p99_ms")
target("open-loop p99 added at 50% load relay ÷ nginx", g(pr, pn) if pn and pn > 0 else None,
       lambda v: v <= 1.2, "≤ 1.2", lambda v: f"{v:.2f}")
target("Connect push req/s ÷ relay /ingest req/s (same rounds)", g(med("connect", "relay", "rps"), med("connect_base", "relay", "rps")),
       lambda v: v >= 0.8, "≥ 0.8", lambda v: f"{v:.2f}")
target("4 MiB bodies MiB/s relay ÷ nginx", g(big("relay"), big("nginx")), lambda v: v >= 0.9, "≥ 0.9", lambda v: f"{v:.2f}")
target("RSS per idle connection", med("conns", "relay", "kib_per_conn"), lambda v: v <= 8, "≤ 8 KiB", lambda v: f"{v:.2f} KiB")
target("idle RSS", idle("relay"), lambda v: v <= 20, "≤ 20 MiB", lambda v: f"{v:.1f} MiB")
lim = 1.3 * 256 + (idle("fanout") or 0)
target("peak RSS, 2 targets, 64 x 4 MiB in flight", hwm("fanout"), lambda v: v <= lim,
       f"≤ 1.3 × 256 MiB + idle = {lim:.0f} MiB", lambda v: f"{v:.0f} MiB")

def table():
    out = ["| figure | relay | nginx | relay/nginx | note |", "|---|---:|---:|---:|---|"]
    out += [f"| {a} | {b} | {c} | {d} | {e} |" for a, b, c, d, e in rows]
    out += ["", "| target | measured | limit | |", "|---|---:|---|---|"]
    out += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in targets]
    out += ["", "Failed requests (wrk errors, all rounds): " + ", ".join(f"{k} {int(v)}" for k, v in errs.items())]
    return "\n".join(out)

t = table()
print(t)
if write == "1":
    mem = next(l.split()[1] for l in open("/proc/meminfo") if l.startswith("MemTotal"))
    model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.machine())
    head = (f"Run on {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, commit `{commit}`, "
            f"{os.cpu_count()} cores ({model}), {int(mem) / 1024 / 1024:.1f} GiB memory, "
            f"kernel {platform.release()}; {rounds} rounds × {duration} s per figure, medians.")
    gen = f"<!-- bench:begin (written by bench/run.sh) -->\n{head}\n\n{t}\n<!-- bench:end -->"
    old = open(doc).read() if os.path.exists(doc) else ""
    if "<!-- bench:begin" in old and "<!-- bench:end -->" in old:
        pre = old.split("<!-- bench:begin", 1)[0]
        post = old.split("<!-- bench:end -->", 1)[1]
        new = pre + gen + post
    else:
        new = "# Performance\n\n" + gen + "\n"
    open(doc, "w").write(new)
    print(f"\nwrote {doc}", file=sys.stderr)
