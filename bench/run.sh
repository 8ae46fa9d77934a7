#!/usr/bin/env bash
# Benchmarks pyroscope-relay against nginx, both proxying to the same sink,
# alternating rounds in one run; prints a table and writes docs/performance.md.
# Usage: bash bench/run.sh [rounds] [seconds per round]
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
SECS=${2:-5}
TARGET=${CARGO_TARGET_DIR:-target}
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

need() { command -v "$1" >/dev/null 2>&1; }
if ! need nginx || ! need wrk || ! need h2load; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx wrk nghttp2-client
fi
cargo build --release --bin pyroscope-relay --example bench_sink

SINK=127.0.0.1:7001; SINK2=127.0.0.1:7002; RELAY=127.0.0.1:7101; ADMIN=127.0.0.1:7199; NGINX=127.0.0.1:7201
"$TARGET/release/examples/bench_sink" $SINK & PIDS+=($!)
"$TARGET/release/examples/bench_sink" $SINK2 & PIDS+=($!)

cat > "$WORK/relay.alloy" <<CONF
pyroscope.receive_http "in" {
  http {
    listen_address = "127.0.0.1"
    listen_port    = ${RELAY##*:}
    conn_limit     = 0
  }
  forward_to = [pyroscope.write.out.receiver]
}
pyroscope.write "out" {
  endpoint {
    url = "http://$SINK"
  }
}
CONF
"$TARGET/release/pyroscope-relay" run "$WORK/relay.alloy" --server.http.listen-addr $ADMIN \
  --storage.path "$WORK/data" --log.level warn & RELAY_PID=$!; PIDS+=($RELAY_PID)

cores=$(nproc)
cat > "$WORK/nginx.conf" <<CONF
worker_processes $cores;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
events { worker_connections 20000; }
http {
  access_log off;
  client_max_body_size 0;
  client_body_buffer_size 8m;
  client_body_temp_path $WORK/nginx-body;
  proxy_temp_path $WORK/nginx-proxy;
  upstream sink { server $SINK; keepalive 64; }
  server {
    listen ${NGINX};
    location / {
      proxy_pass http://sink;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
CONF
ulimit -n 65536 2>/dev/null || true  # needs privileges; the default limit may already do
nginx -c "$WORK/nginx.conf" -g 'daemon off;' & NGINX_PID=$!; PIDS+=($NGINX_PID)
for _ in $(seq 50); do curl -sf "http://$ADMIN/-/ready" >/dev/null && break; sleep 0.1; done
sleep 0.5

head -c 10240 ../shared/fixtures/py_folded.txt > "$WORK/body10k.txt"
head -c $((4*1024*1024)) /dev/urandom > "$WORK/body4m.bin"
PUSH10K="$WORK/push10k.bin"
# A 10 KB Connect PushRequest: the fixture's series with a 10 KB raw profile.
python3 - "$PUSH10K" <<'PY'
import sys
raw = open('../shared/fixtures/py_folded.txt','rb').read()[:10240]
def field(n, payload): 
    key = bytes([(n << 3) | 2]); ln = len(payload); out = b''
    while True:
        b = ln & 0x7f; ln >>= 7
        out += bytes([b | (0x80 if ln else 0)])
        if not ln: break
    return key + out + payload
label = lambda k, v: field(1, field(1, k.encode()) + field(2, v.encode()))
series = label('__name__', 'process_cpu') + label('service_name', 'bench') + field(2, field(1, raw) + field(2, b'id-1'))
open(sys.argv[1], 'wb').write(field(1, series))
PY
python3 -c "import sys; b=open(sys.argv[1],'rb').read(); open(sys.argv[2],'wb').write(b'\x00'+len(b).to_bytes(4,'big')+b)" "$PUSH10K" "$WORK/push10k.grpc"

cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
group_ticks() { local t=0; for p in $(pgrep -f "$1"); do t=$((t + $(cpu_ticks "$p"))); done; echo $t; }
rss_kib() { local t=0; for p in $(pgrep -f "$1"); do t=$((t + $(awk '/VmRSS/{print $2}' /proc/$p/status))); done; echo $t; }
hwm_kib() { awk '/VmHWM/{print $2}' "/proc/$1/status"; }

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
to_ms() { awk '{v=$1; if (v ~ /us$/) {sub(/us/,"",v); print v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v); print v} else {sub(/s/,"",v); print v*1000}}'; }

# run_wrk NAME URL BODY CONNS -> appends "rps p50ms p99ms cpu_per_1000" to $WORK/NAME
run_wrk() {
  local name=$1 url=$2 body=$3 conns=$4 pattern=$5 before after out rps
  before=$(group_ticks "$pattern")
  out=$(BODY_FILE=$body wrk -t2 -c"$conns" -d"${SECS}s" --latency -s bench/ingest.lua "$url")
  after=$(group_ticks "$pattern")
  rps=$(awk '/Requests\/sec/{print $2}' <<<"$out")
  local p50 p99 non2xx
  p50=$(awk '$1=="50%"{print $2}' <<<"$out" | to_ms)
  p99=$(awk '$1=="99%"{print $2}' <<<"$out" | to_ms)
  non2xx=$(awk '/Non-2xx/{print $4}' <<<"$out")
  [ -z "$non2xx" ] || { echo "$name: $non2xx non-2xx answers" >&2; exit 1; }
  local reqs; reqs=$(awk -v r="$rps" -v s="$SECS" 'BEGIN{print r*s}')
  echo "$rps $p50 $p99 $(awk -v t=$((after-before)) -v n="$reqs" 'BEGIN{printf "%.3f", t/100/n*1000}')" >> "$WORK/$name"
}

run_h2load() {
  local name=$1 url=$2 body=$3 ctype=$4 mode=$5
  local out; out=$(h2load $mode -D "$SECS" -c 64 -m 1 -d "$body" -H "content-type: $ctype" -H 'te: trailers' "$url" 2>&1)
  grep -q "0 failed" <<<"$out" || { echo "$name: $out" >&2; exit 1; }
  awk '/^finished in/{gsub(",","",$4); print $4}' <<<"$out" >> "$WORK/$name"
}

RELAY_P="release/pyroscope-relay run"; NGINX_P="nginx"
for round in $(seq "$ROUNDS"); do
  echo "round $round/$ROUNDS" >&2
  run_wrk sink_ingest "http://$SINK/ingest?name=bench.cpu" "$WORK/body10k.txt" 64 bench_sink
  run_wrk relay_ingest "http://$RELAY/ingest?name=bench.cpu" "$WORK/body10k.txt" 64 "$RELAY_P"
  run_wrk nginx_ingest "http://$NGINX/ingest?name=bench.cpu" "$WORK/body10k.txt" 64 "$NGINX_P"
  run_h2load relay_connect "http://$RELAY/push.v1.PusherService/Push" "$PUSH10K" application/proto --h1
  run_h2load relay_grpc "http://$RELAY/push.v1.PusherService/Push" "$WORK/push10k.grpc" application/grpc ""
  run_h2load nginx_connect "http://$NGINX/push.v1.PusherService/Push" "$PUSH10K" application/proto --h1
  run_wrk relay_4m "http://$RELAY/ingest?name=bench.cpu" "$WORK/body4m.bin" 16 "$RELAY_P"
  run_wrk nginx_4m "http://$NGINX/ingest?name=bench.cpu" "$WORK/body4m.bin" 16 "$NGINX_P"
done

col() { awk -v c="$2" '{print $c}' "$WORK/$1" | median; }

# Fan-out: a second relay sends every 4 MB body to two sinks; its peak RSS
# with 64 bodies in flight is compared with the bytes in flight.
FANOUT=127.0.0.1:7102
sed -e "s/listen_port    = ${RELAY##*:}/listen_port    = ${FANOUT##*:}/" \
    -e "s/forward_to = \[pyroscope.write.out.receiver\]/forward_to = [pyroscope.write.out.receiver, pyroscope.write.out2.receiver]/" \
    "$WORK/relay.alloy" > "$WORK/fanout.alloy"
printf 'pyroscope.write "out2" {\n  endpoint {\n    url = "http://%s"\n  }\n}\n' "$SINK2" >> "$WORK/fanout.alloy"
"$TARGET/release/pyroscope-relay" run "$WORK/fanout.alloy" --server.http.listen-addr 127.0.0.1:7198 \
  --storage.path "$WORK/data2" --log.level warn 2>"$WORK/fanout.log" & FANOUT_PID=$!; PIDS+=($FANOUT_PID)
for _ in $(seq 50); do curl -sf "http://127.0.0.1:7198/-/ready" >/dev/null && break; sleep 0.1; done
kill -0 $FANOUT_PID 2>/dev/null || { cat "$WORK/fanout.log" "$WORK/fanout.alloy" >&2; exit 1; }
fanout_idle=$(awk '/VmRSS/{print $2}' "/proc/$FANOUT_PID/status")
run_wrk fanout_4m "http://$FANOUT/ingest?name=bench.cpu" "$WORK/body4m.bin" 64 "fanout.alloy"
fanout_hwm=$(hwm_kib $FANOUT_PID)
kill $FANOUT_PID; wait $FANOUT_PID 2>/dev/null || true

# Idle connections, measured last so earlier rounds do not inflate RSS.
IDLE=16384
idle_rss() {
  local port=$1 pattern=$2 before after
  before=$(rss_kib "$pattern")
  python3 bench/idle_conns.py 127.0.0.1 "$port" "$IDLE" < <(sleep 6) > "$WORK/idle.out" &
  local client=$!
  sleep 5
  after=$(rss_kib "$pattern")
  wait $client || true
  grep -q "open $IDLE" "$WORK/idle.out" || { echo "could not open $IDLE connections" >&2; exit 1; }
  echo "$before $after"
}
read -r relay_idle_before relay_idle_after < <(idle_rss "${RELAY##*:}" "$RELAY_P")
read -r nginx_idle_before nginx_idle_after < <(idle_rss "${NGINX##*:}" "$NGINX_P")
relay_hwm=$(hwm_kib $RELAY_PID)

ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b==0) print "-"; else printf "%.2f", a/b }'; }
ri=$(col relay_ingest 1); ni=$(col nginx_ingest 1); si=$(col sink_ingest 1)
rp50=$(col relay_ingest 2); np50=$(col nginx_ingest 2)
rp99=$(col relay_ingest 3); np99=$(col nginx_ingest 3); sp99=$(col sink_ingest 3)
rcpu=$(col relay_ingest 4); ncpu=$(col nginx_ingest 4)
rc=$(col relay_connect 1); nc=$(col nginx_connect 1); rg=$(col relay_grpc 1)
r4=$(awk -v r="$(col relay_4m 1)" 'BEGIN{printf "%.1f", r*4}'); n4=$(awk -v r="$(col nginx_4m 1)" 'BEGIN{printf "%.1f", r*4}')
rpc=$(awk -v a="$relay_idle_after" -v b="$relay_idle_before" -v n=$IDLE 'BEGIN{printf "%.2f", (a-b)/n}')
npc=$(awk -v a="$nginx_idle_after" -v b="$nginx_idle_before" -v n=$IDLE 'BEGIN{printf "%.2f", (a-b)/n}')

table=$(cat <<TABLE
| figure | relay | nginx | relay / nginx | target |
|---|---|---|---|---|
| /ingest 10 KB, 64 conns: req/s | $ri | $ni | $(ratio "$ri" "$ni") | ≥ 0.9 |
| /ingest: p50 latency (ms) | $rp50 | $np50 | $(ratio "$rp50" "$np50") | |
| /ingest: p99 latency (ms) at max rate | $rp99 | $np99 | $(ratio "$rp99" "$np99") | |
| /ingest: CPU seconds per 1,000 requests | $rcpu | $ncpu | $(ratio "$rcpu" "$ncpu") | |
| Connect push 10 KB (HTTP/1.1): req/s | $rc | $nc | $(ratio "$rc" "$nc") | |
| Connect push ÷ relay /ingest req/s | $(ratio "$rc" "$ri") | | | ≥ 0.8 |
| gRPC push 10 KB over h2c: req/s | $rg | n/a | | |
| /ingest 4 MB bodies, 16 conns: MB/s | $r4 | $n4 | $(ratio "$r4" "$n4") | ≥ 0.9 |
| idle RSS before $IDLE connections (KiB) | $relay_idle_before | $nginx_idle_before | $(ratio "$relay_idle_before" "$nginx_idle_before") | relay ≤ 20 MiB |
| RSS per idle keep-alive connection (KiB) | $rpc | $npc | $(ratio "$rpc" "$npc") | relay ≤ 8 KiB |
| relay peak RSS over the run (KiB) | $relay_hwm | | | |
| fan-out to 2 sinks, 4 MB, 64 conns: req/s | $(col fanout_4m 1) | | | |
| fan-out peak RSS (KiB) vs 1.3 × 64 × 4 MiB + idle | $fanout_hwm | | $(ratio "$fanout_hwm" "$(awk -v i="$fanout_idle" 'BEGIN{print 1.3*64*4096 + i}')") | ≤ 1.0 |
TABLE
)
echo "$table"
echo "sink alone: $si req/s, p99 $sp99 ms (the relay and nginx both add a hop to it)"

{
  cat <<HEAD
Measured by \`bash bench/run.sh\` ($ROUNDS rounds of ${SECS}s per workload,
relay and nginx alternating, medians). Both proxy to the same sink
(\`bench/sink.rs\`, HTTP/1.1 and h2c, answers 200 empty); the sink alone did
$si req/s on the /ingest workload, so it is not the bottleneck of either.

- date: $(date -u +%Y-%m-%dT%H:%MZ)
- commit: $(git rev-parse --short HEAD)
- machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; shared with other work, so figures are noisy; ratios come from the same run
- load tools: wrk (HTTP/1.1, 2 threads), h2load (Connect over HTTP/1.1 with --h1, gRPC over h2c)

$table

Not measured yet: the fixed-rate run at 50% of nginx's maximum (workload 2):
wrk has no fixed-rate mode and h2load reports no p99.
HEAD
} > "$WORK/table.md"
# Replace the generated part of docs/performance.md, keep the analysis.
python3 - "$WORK/table.md" docs/performance.md <<'PY'
import sys
table = open(sys.argv[1]).read()
doc_path = sys.argv[2]
try:
    doc = open(doc_path).read()
except FileNotFoundError:
    doc = "# Performance\n\n<!-- bench:begin -->\n<!-- bench:end -->\n"
begin, end = "<!-- bench:begin -->", "<!-- bench:end -->"
head, rest = doc.split(begin, 1)
_, tail = rest.split(end, 1)
open(doc_path, "w").write(head + begin + "\n" + table + end + tail)
PY
echo "wrote docs/performance.md"
