#!/usr/bin/env bash
# Two relay binaries side by side, in the same run, in front of the same
# bench-sink: /ingest 10 KB and Connect push 11.5 KB (64 connections, wrk),
# rounds alternating which binary goes first. Prints medians of req/s and
# of CPU seconds (user+system of the relay process) per 1,000 requests,
# and NEW ÷ BASE.
#
#   BASE=/path/to/old/pyroscope-relay bash bench/ab.sh
#   BASE=... NEW=... ROUNDS=5 DURATION=10 NEW_ARGS='--receive-threads 1' bash bench/ab.sh
set -euo pipefail
. "$(dirname "$0")/lib.sh"
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5}
: "${BASE:?BASE=path of the binary to compare against}"
P_SINK=18401 P_BASE=18402 P_NEW=18403
bench_init ab
need wrk
[[ -n ${NEW_BUILT:-} ]] || build_relay
build_sink
NEW=${NEW:-$CARGO_TARGET_DIR/release/pyroscope-relay}
ingest_body >"$T/ingest.txt"
for _ in 1 2 3 4; do cat "$FIX/push_request.bin"; done >"$T/push.bin"
"$SINK" $P_SINK "$(nproc)" & PIDS+=($!)
start() { # name binary port admin_port extra_args
  relay_config "$3" $P_SINK >"$T/$1.alloy"
  # shellcheck disable=SC2086
  "$2" run "$T/$1.alloy" --server.http.listen-addr "127.0.0.1:$4" --storage.path "$T/$1-data" \
    --log.level warn $5 &
}
start base "$BASE" $P_BASE 18404 "${BASE_ARGS:-}"; BASE_PID=$!; PIDS+=($BASE_PID)
start new "$NEW" $P_NEW 18405 "${NEW_ARGS:-}"; NEW_PID=$!; PIDS+=($NEW_PID)
for p in $P_SINK $P_BASE $P_NEW; do wait_port $p; done
run() { # workload name port pid
  local body ct path connect=""
  if [[ $1 == push ]]; then body=$T/push.bin ct=application/proto path=$PUSH_PATH connect=1
  else body=$T/ingest.txt ct=binary/octet-stream path=$INGEST_Q; fi
  local before after line
  before=$(cpu_ticks "$4")
  line=$(BODY=$body CT=$ct CONNECT=$connect wrk -t2 -c64 -d"${DURATION}s" -s "$ROOT/bench/wrk.lua" \
    "http://127.0.0.1:$3$path" 2>&1 | grep '^RESULT') || true
  after=$(cpu_ticks "$4")
  local reqs rps
  reqs=$(field reqs <<<"$line") rps=$(field rps <<<"$line")
  printf '%s %s %s %s\n' "$1" "$2" "$rps" \
    "$(awk -v t=$((after - before)) -v r="$reqs" -v hz="$TICK" 'BEGIN{printf "%.4f", t / hz / r * 1000}')" \
    | tee -a "$T/results" >&2
}
for r in $(seq 1 "$ROUNDS"); do
  for w in ingest push; do
    if ((r % 2)); then order="base new"; else order="new base"; fi
    for who in $order; do
      if [[ $who == base ]]; then run $w base $P_BASE $BASE_PID; else run $w new $P_NEW $NEW_PID; fi
    done
  done
done
python3 - "$T/results" <<'PY'
import sys, statistics as st
rows = [l.split() for l in open(sys.argv[1])]
med = lambda w, who, i: st.median(float(r[i]) for r in rows if r[0] == w and r[1] == who)
print(f"{'workload':8} {'base req/s':>11} {'new req/s':>10} {'ratio':>6} {'base cpu/1k':>12} {'new cpu/1k':>11} {'ratio':>6}")
for w in ("ingest", "push"):
    b, n, bc, nc = med(w, "base", 2), med(w, "new", 2), med(w, "base", 3), med(w, "new", 3)
    print(f"{w:8} {b:11,.0f} {n:10,.0f} {n / b:6.2f} {bc:12.4f} {nc:11.4f} {nc / bc:6.2f}")
PY
