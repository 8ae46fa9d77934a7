#!/usr/bin/env bash
# Benchmark harness: the relay against nginx, both in front of the same fast
# sink, on 127.0.0.1. Prints one table and rewrites docs/performance.md.
#
#   bash bench/run.sh                 # ROUNDS=3 DURATION=5 by default
#   ROUNDS=5 DURATION=10 bash bench/run.sh
#   WRITE_DOC=0 bash bench/run.sh     # print the table only
#
# Needs root for apt-get and for nginx; installs nginx, wrk, nghttp2-client
# (h2load) when missing, and oha (open-loop load) with `cargo install`.
# Everything it starts is stopped on exit.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5}
IDLE_CONNS=${IDLE_CONNS:-16384}
WRITE_DOC=${WRITE_DOC:-1}
CORES=$(nproc)

# Ports (all on 127.0.0.1).
P_SINK=18201 P_SINK2=18202
P_RELAY=18210 P_RELAY_ADMIN=18211 P_FAN=18220 P_FAN_ADMIN=18221
P_NGX=18230 P_NGX_H2C=18231 P_NGX_FAN=18232

bench_init run

# --- tools -----------------------------------------------------------------
missing=()
command -v nginx >/dev/null || missing+=(nginx)
command -v wrk >/dev/null || missing+=(wrk)
command -v h2load >/dev/null || missing+=(nghttp2-client)
if ((${#missing[@]})); then
  log "installing ${missing[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
need_oha
# 65536 open files when allowed; in a container without CAP_SYS_RESOURCE the
# hard limit is the ceiling.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
NOFILE=$(ulimit -n)
if ((IDLE_CONNS > NOFILE - 1000)); then
  log "open-file limit $NOFILE: holding $((NOFILE - 1000)) idle connections instead of $IDLE_CONNS"
  IDLE_CONNS=$((NOFILE - 1000))
fi

build_relay_and_sink

RES=$T/results.tsv
: >"$RES"
record() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$RES"; }

# --- bodies ----------------------------------------------------------------
# The captured agent payloads (py_folded.txt, push_request.bin).
[[ -f $FIX/py_folded.txt && -f $FIX/push_request.bin ]] ||
  { log "no py_folded.txt / push_request.bin in $FIX: set FIXTURES=<dir>"; exit 1; }
python3 - "$FIX" "$T" <<'PY'
import sys, struct
fix, t = sys.argv[1], sys.argv[2]
folded = open(f"{fix}/py_folded.txt", "rb").read()
# 10 KB /ingest body: whole folded lines from py_folded.txt up to 10,240 bytes.
lines, out = folded.split(b"\n"), b""
for l in lines:
    if len(out) + len(l) + 1 > 10240: break
    out += l + b"\n"
open(f"{t}/ingest10k.txt", "wb").write(out.rstrip(b"\n"))
# 4 MiB body: py_folded.txt repeated, cut at 4,194,304 bytes.
big = (folded + b"\n") * (4194304 // len(folded) + 1)
open(f"{t}/ingest4m.txt", "wb").write(big[:4194304])
# ~10 KB PushRequest: push_request.bin 4 times (protobuf concatenation
# merges, so this is one PushRequest with 4 series), and its gRPC envelope.
push = open(f"{fix}/push_request.bin", "rb").read() * 4
open(f"{t}/push.bin", "wb").write(push)
open(f"{t}/push.grpc", "wb").write(b"\0" + struct.pack(">I", len(push)) + push)
PY

# --- processes -------------------------------------------------------------
"$SINK" $P_SINK "$CORES" & SINK_PID=$!; PIDS+=($SINK_PID)
"$SINK" $P_SINK2 "$CORES" & SINK2_PID=$!; PIDS+=($SINK2_PID)

receive_block() { # port
  printf 'pyroscope.receive_http "in" {\n  http {\n    listen_address = "127.0.0.1"\n    listen_port = %s\n    conn_limit = 0\n  }\n' "$1"
}
{ receive_block $P_RELAY
  echo '  forward_to = [pyroscope.write.out.receiver]'; echo '}'
  echo "pyroscope.write \"out\" {"; echo "  endpoint { url = \"http://127.0.0.1:$P_SINK\" }"; echo '}'
} >"$T/relay.alloy"
{ receive_block $P_FAN
  echo '  forward_to = [pyroscope.write.a.receiver, pyroscope.write.b.receiver]'; echo '}'
  echo "pyroscope.write \"a\" {"; echo "  endpoint { url = \"http://127.0.0.1:$P_SINK\" }"; echo '}'
  echo "pyroscope.write \"b\" {"; echo "  endpoint { url = \"http://127.0.0.1:$P_SINK2\" }"; echo '}'
} >"$T/fanout.alloy"
"$RELAY" run "$T/relay.alloy" --server.http.listen-addr 127.0.0.1:$P_RELAY_ADMIN \
  --storage.path "$T/relay-data" --log.level warn & RELAY_PID=$!; PIDS+=($RELAY_PID)
"$RELAY" run "$T/fanout.alloy" --server.http.listen-addr 127.0.0.1:$P_FAN_ADMIN \
  --storage.path "$T/fan-data" --log.level warn & FAN_PID=$!; PIDS+=($FAN_PID)

mkdir -p "$T/nginx"
cat >"$T/nginx/nginx.conf" <<NGX
daemon off;
master_process on;
user root;
worker_processes $CORES;
worker_rlimit_nofile $NOFILE;
pid $T/nginx/nginx.pid;
error_log $T/nginx/error.log warn;
events { worker_connections $((NOFILE - 100)); }
http {
  access_log off;
  client_body_temp_path $T/nginx/body;
  proxy_temp_path $T/nginx/proxy;
  fastcgi_temp_path $T/nginx/fcgi;
  uwsgi_temp_path $T/nginx/uwsgi;
  scgi_temp_path $T/nginx/scgi;
  keepalive_timeout 120s;
  keepalive_requests 1000000;
  client_max_body_size 0;
  client_body_buffer_size 8m;
  proxy_request_buffering on;
  proxy_http_version 1.1;
  proxy_set_header Connection "";
  upstream sink  { server 127.0.0.1:$P_SINK;  keepalive 64; keepalive_requests 1000000; }
  upstream sink2 { server 127.0.0.1:$P_SINK2; keepalive 64; keepalive_requests 1000000; }
  # gRPC gets its own pool: nginx would otherwise hand an HTTP/2 connection
  # kept by grpc_pass to proxy_pass ("upstream sent no valid HTTP/1.0 header").
  upstream sink_grpc { server 127.0.0.1:$P_SINK; keepalive 64; keepalive_requests 1000000; }
  server {
    listen 127.0.0.1:$P_NGX;
    location / { proxy_pass http://sink; }
  }
  server {
    listen 127.0.0.1:$P_NGX_H2C http2;
    location / { grpc_pass grpc://sink_grpc; }
  }
  server {
    listen 127.0.0.1:$P_NGX_FAN;
    location / { mirror /__mirror; mirror_request_body on; proxy_pass http://sink; }
    location = /__mirror { internal; proxy_pass http://sink2\$request_uri; }
  }
}
NGX
nginx -c "$T/nginx/nginx.conf" -p "$T/nginx" & NGX_PID=$!; PIDS+=($NGX_PID)
for p in $P_SINK $P_SINK2 $P_RELAY $P_FAN $P_NGX $P_NGX_H2C $P_NGX_FAN; do wait_port $p; done
sleep 0.5

# nginx = master + workers.
pids_of() { # relay|fanout|nginx|nginx_fan|sink
  case $1 in
    relay) echo $RELAY_PID ;;
    fanout) echo $FAN_PID ;;
    nginx | nginx_fan) echo $NGX_PID $(pgrep -P $NGX_PID | tr '\n' ' ') ;;
    sink) echo $SINK_PID ;;
  esac
}
port_of() {
  case $1 in relay) echo $P_RELAY ;; fanout) echo $P_FAN ;; nginx) echo $P_NGX ;; nginx_fan) echo $P_NGX_FAN ;; sink) echo $P_SINK ;; esac
}
cpu_user_sys() { # pid -> "utime stime" in clock ticks
  local f
  f=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) || { echo "0 0"; return; }
  set -- $f
  echo "${12} ${13}"
}
cpu_sum() { # pids... -> "user sys" summed, in clock ticks
  local u=0 s=0 p pu ps
  for p in "$@"; do read -r pu ps < <(cpu_user_sys "$p"); u=$((u + pu)); s=$((s + ps)); done
  echo "$u $s"
}
mem_kb() { # field pids... -> sum in KiB
  local field=$1 s=0 p v; shift
  for p in "$@"; do
    v=$(awk -v f="$field:" '$1==f {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
    s=$((s + ${v:-0}))
  done
  echo $s
}

# run_wrk WORKLOAD TARGET CONNS BODY CT PATH [DELAY_MS] [CONNECT]: one wrk run,
# results recorded as rps, p50_ms, p99_ms, errors, cpu_per_1k.
run_wrk() {
  local w=$1 tgt=$2 c=$3 body=$4 ct=$5 path=$6 delay=${7:-} connect=${8:-}
  local pids u0 s0 u1 s1 out line
  pids=$(pids_of "$tgt")
  read -r u0 s0 < <(cpu_sum $pids)
  out=$(BODY=$body CT=$ct DELAY_MS=$delay CONNECT=$connect timeout $((DURATION + 30)) \
    wrk -t2 -c"$c" -d"${DURATION}s" --timeout 20s -s "$ROOT/bench/wrk.lua" "http://127.0.0.1:$(port_of "$tgt")$path" 2>&1) || true
  read -r u1 s1 < <(cpu_sum $pids)
  line=$(grep '^RESULT' <<<"$out" || true)
  if [[ -z $line ]]; then log "wrk failed: $out"; return 0; fi
  local reqs rps p50 p99 errs
  reqs=$(sed 's/.*reqs=\([0-9]*\).*/\1/' <<<"$line")
  rps=$(sed 's/.*rps=\([0-9.]*\).*/\1/' <<<"$line")
  p50=$(sed 's/.*p50_ms=\([0-9.]*\).*/\1/' <<<"$line")
  p99=$(sed 's/.*p99_ms=\([0-9.]*\).*/\1/' <<<"$line")
  errs=$(sed 's/.*errors=\([0-9]*\).*/\1/' <<<"$line")
  record "$w" "$tgt" rps "$rps"; record "$w" "$tgt" p50_ms "$p50"; record "$w" "$tgt" p99_ms "$p99"
  record "$w" "$tgt" errors "$errs"
  per_1k() { awk -v d="$1" -v t="$TICK" -v n="$reqs" 'BEGIN{printf "%.4f", d/t/n*1000}'; }
  if ((reqs > 0)); then
    record "$w" "$tgt" cpu_s_per_1k "$(per_1k $((u1 - u0 + s1 - s0)))"
    record "$w" "$tgt" sys_s_per_1k "$(per_1k $((s1 - s0)))"
  fi
  log "$w $tgt: $line"
}

# run_h2load WORKLOAD TARGET PORT: gRPC over h2c.
run_h2load() {
  local w=$1 tgt=$2 port=$3 out rps ok
  out=$(timeout $((DURATION + 30)) h2load -t2 -c16 -m4 -D "$DURATION" --warm-up-time 1 -d "$T/push.grpc" \
    -H 'content-type: application/grpc' -H 'te: trailers' "http://127.0.0.1:$port$PUSH_PATH" 2>&1) || true
  rps=$(sed -n 's/^finished in [^,]*, \([0-9.]*\) req\/s.*/\1/p' <<<"$out")
  ok=$(sed -n 's/^status codes: \([0-9]*\) 2xx.*/\1/p' <<<"$out")
  [[ -n $rps ]] || { log "h2load failed: $out"; return 0; }
  record "$w" "$tgt" rps "$rps"
  log "$w $tgt: $rps req/s, ${ok:-0} 2xx"
}

# run_oha WORKLOAD TARGET RATE: /ingest 10 KB at a fixed RATE (open loop,
# latency corrected), 64 connections; records rps, p50_ms, p99_ms, errors.
run_oha() {
  local w=$1 tgt=$2 rate=$3 r k
  [[ -n $OHA ]] || return 0
  r=$(OHA_BODY="$T/ingest10k.txt" oha_run "$(port_of "$tgt")" "$DURATION" "$rate")
  [[ $r == RESULT* ]] || { log "oha failed: $(head -c 300 "$T/oha.json")"; return 0; }
  for k in rps p50_ms p99_ms errors; do record "$w" "$tgt" "$k" "$(field "$k" <<<"$r")"; done
  log "$w $tgt: ${r#RESULT }"
}

# pin TARGET CPULIST: every thread of the proxy's processes on those cores.
pin() {
  local p
  for p in $(pids_of "$1"); do taskset -a -p -c "$2" "$p" >/dev/null; done
}

# Alternates the order of relay and nginx from round to round.
pair() { if (($1 % 2)); then echo "relay nginx"; else echo "nginx relay"; fi; }

# --- 6 (first, on fresh processes): idle RSS, idle connections ------------
for tgt in relay fanout nginx; do record idle "$tgt" rss_kb "$(mem_kb VmRSS $(pids_of "$tgt"))"; done
hold() { # target -> records rss per connection
  local tgt=$1 before after fifo=$T/hold.fifo hp n i
  before=$(mem_kb VmRSS $(pids_of "$tgt"))
  rm -f "$fifo"; mkfifo "$fifo"
  "$SINK" --hold "$(port_of "$tgt")" "$IDLE_CONNS" /ingest <"$fifo" >"$T/hold.out" 2>"$T/hold.err" & hp=$!
  PIDS+=($hp)
  exec 9>"$fifo"
  for i in $(seq 1 600); do grep -q '^ready' "$T/hold.out" && break; sleep 0.1; done
  sleep 1
  after=$(mem_kb VmRSS $(pids_of "$tgt"))
  n=$(sed -n 's/^ready //p' "$T/hold.out"); n=${n:-0}
  exec 9>&-
  wait "$hp" 2>/dev/null || true
  log "idle conns $tgt: $n held, RSS ${before} -> ${after} KiB"
  record conns "$tgt" held "$n"
  ((n > 0)) && record conns "$tgt" kib_per_conn "$(awk -v a="$after" -v b="$before" -v n="$n" 'BEGIN{printf "%.3f", (a-b)/n}')"
  record conns "$tgt" rss_kb "$after"
  sleep 2
}
hold relay; hold nginx

# --- 1: /ingest 10 KB, 64 connections, max rate ----------------------------
for r in $(seq 1 "$ROUNDS"); do
  run_wrk ingest sink 64 "$T/ingest10k.txt" binary/octet-stream "$INGEST_Q"
  for tgt in $(pair "$r"); do run_wrk ingest "$tgt" 64 "$T/ingest10k.txt" binary/octet-stream "$INGEST_Q"; done
done

# --- 1b: scaling with cores: the proxy pinned to 1, then 2 cores ----------
ALL_CORES=0-$((CORES - 1))
for r in $(seq 1 "$ROUNDS"); do
  for cores in 0 0,1; do
    n=$(tr ',' '\n' <<<"$cores" | wc -l)
    ((n <= CORES)) || continue
    for tgt in $(pair "$r"); do
      pin "$tgt" "$cores"
      run_wrk "cores$n" "$tgt" 64 "$T/ingest10k.txt" binary/octet-stream "$INGEST_Q"
      pin "$tgt" "$ALL_CORES"
    done
  done
done

# --- 1c: scaling with connections: 1,024 and 16,384 (64 is workload 1) -----
for r in $(seq 1 "$ROUNDS"); do
  for c in 1024 16384; do
    ((c <= NOFILE - 1000)) || { log "open-file limit $NOFILE: no run with $c connections"; continue; }
    for tgt in $(pair "$r"); do run_wrk "conns$c" "$tgt" "$c" "$T/ingest10k.txt" binary/octet-stream "$INGEST_Q"; done
  done
done

# --- 2: open-loop latency at 50% of nginx's max rate (oha) ------------------
# oha sends at a fixed rate whatever the answers do, and counts each
# request's latency from when it was due (--latency-correction), so
# queueing shows; wrk's closed loop (the Lua delay this replaced) hid it.
# half_max TARGET: half of TARGET's median /ingest req/s (section 1).
half_max() {
  awk -F'\t' -v t="$1" '$1=="ingest" && $2==t && $3=="rps" {print $4}' "$RES" | sort -g |
    awk '{a[NR]=$1} END{printf "%d", a[int((NR+1)/2)]/2}'
}
RATE=$(half_max nginx)
record rate all target_rps "$RATE"
log "open loop: $RATE req/s (oha -q) over 64 connections"
for r in $(seq 1 "$ROUNDS"); do
  run_oha rate sink "$RATE"
  for tgt in $(pair "$r"); do run_oha rate "$tgt" "$RATE"; done
done

# --- 2b: the relay at 50% of its own max rate -------------------------------
# Whether the relay's added latency at 50% of nginx's max comes from being
# nearer its own limit (queueing) or from something else: the same
# measurement at half of the relay's own closed-loop maximum, against
# nginx at half of its own (section 2).
OWN_RATE=$(half_max relay)
record rate_own all target_rps "$OWN_RATE"
log "open loop at half the relay's own max: $OWN_RATE req/s"
for r in $(seq 1 "$ROUNDS"); do
  run_oha rate_own sink "$OWN_RATE"
  run_oha rate_own relay "$OWN_RATE"
done

# --- 3: push, Connect (HTTP/1.1, wrk) and gRPC (h2c, h2load) ---------------
for r in $(seq 1 "$ROUNDS"); do
  for tgt in $(pair "$r"); do run_wrk connect "$tgt" 64 "$T/push.bin" application/proto "$PUSH_PATH" "" 1; done
  # The relay's /ingest again, next to its Connect run, for the ratio push ÷ /ingest.
  run_wrk connect_base relay 64 "$T/ingest10k.txt" binary/octet-stream "$INGEST_Q"
  run_h2load grpc relay $P_RELAY; run_h2load grpc nginx $P_NGX_H2C
done

# --- 5: fan-out to 2 sinks (nginx: mirror) ---------------------------------
for r in $(seq 1 "$ROUNDS"); do
  for tgt in $( (($r % 2)) && echo "fanout nginx_fan" || echo "nginx_fan fanout"); do
    run_wrk fanout "$tgt" 64 "$T/ingest10k.txt" binary/octet-stream "$INGEST_Q"
  done
done
# Peak RSS: 64 connections x 4 MiB bodies (nginx's VmHWM also covers the
# workloads above; 4 MiB bodies have not been sent to it yet).
for tgt in fanout nginx_fan; do
  run_wrk fanout4m "$tgt" 64 "$T/ingest4m.txt" binary/octet-stream "$INGEST_Q"
  record fanout4m "$tgt" hwm_kb "$(mem_kb VmHWM $(pids_of "$tgt"))"
done

# --- 4: 4 MiB /ingest bodies, 16 connections -------------------------------
for r in $(seq 1 "$ROUNDS"); do
  for tgt in $(pair "$r"); do run_wrk big "$tgt" 16 "$T/ingest4m.txt" binary/octet-stream "$INGEST_Q"; done
done

# nginx's own account of failed requests, if any.
if [[ -s $T/nginx/error.log ]]; then
  log "nginx error.log: $(grep -c '\[error\]' "$T/nginx/error.log" || true) [error] lines; last ones:"
  grep '\[error\]' "$T/nginx/error.log" | tail -3 | cut -c1-300 >&2 || true
fi

# --- report ----------------------------------------------------------------
COMMIT=$(cd "$ROOT" && git rev-parse --short HEAD)$(cd "$ROOT" && git diff --quiet HEAD -- src build.rs proto Cargo.lock || echo "+dirty")
python3 "$ROOT/bench/report.py" "$RES" "$ROOT/docs/performance.md" "$WRITE_DOC" "$COMMIT" "$ROUNDS" "$DURATION" "$IDLE_CONNS"
