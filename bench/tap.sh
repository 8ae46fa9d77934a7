#!/usr/bin/env bash
# What the live tap costs the data path: /ingest req/s (10 KB folded body,
# 64 connections, wrk) with nobody watching, with one tap reader that keeps
# up (curl -N), and with one that never reads (curl into a pipe nobody
# drains). Rounds alternate the order; the figures are medians and the
# ratios are to "none" in the same rounds. Beside req/s: the relay's CPU
# time (user + system, /proc/<pid>/stat) per 1,000 requests, and the tap
# reader's (curl's), since curl shares the cores with the relay.
#
#   bash bench/tap.sh                  # ROUNDS=5 DURATION=5
#   ROUNDS=9 DURATION=10 bash bench/tap.sh
#
# Installs wrk when missing (root). Everything it starts is stopped on exit.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-5}
P_SINK=18401 P_RELAY=18402 P_ADMIN=18403

bench_init tap
need wrk
build_relay_and_sink
ingest_body >"$T/body"
relay_config $P_RELAY $P_SINK >"$T/relay.alloy"
"$SINK" $P_SINK "$(nproc)" & PIDS+=($!)
"$RELAY" run "$T/relay.alloy" --server.http.listen-addr 127.0.0.1:$P_ADMIN \
  --storage.path "$T/data" --log.level warn & RELAY_PID=$!; PIDS+=($RELAY_PID)
wait_ready $P_ADMIN

URL="http://127.0.0.1:$P_RELAY$INGEST_Q"
TAP="http://127.0.0.1:$P_ADMIN/api/v1/tap?component=pyroscope.receive_http.in"

wrk_result() { # one wrk run -> its RESULT line
  BODY="$T/body" wrk -t2 -c64 -d"${DURATION}s" -s "$ROOT/bench/wrk.lua" "$URL" | grep '^RESULT'
}
rps() { wrk_result | field rps; }

measure() { # none|reader|stalled -> "req/s relay_cpu_ms_per_1k reader_cpu_ms_per_1k"
  local watcher="" line reqs r0 r1 w0=0 w1=0
  case $1 in
    reader) curl -sN "$TAP" >/dev/null & watcher=$! ;;
    # A pipe nobody drains: curl blocks once it is full and stops reading.
    stalled) mkfifo "$T/fifo.$$"; exec 7<>"$T/fifo.$$"; curl -sN "$TAP" >&7 & watcher=$! ;;
  esac
  sleep 0.5
  r0=$(cpu_ticks "$RELAY_PID"); [[ -n $watcher ]] && w0=$(cpu_ticks "$watcher")
  line=$(wrk_result)
  r1=$(cpu_ticks "$RELAY_PID"); [[ -n $watcher ]] && w1=$(cpu_ticks "$watcher")
  if [[ -n $watcher ]]; then kill "$watcher" 2>/dev/null || true; wait "$watcher" 2>/dev/null || true; fi
  if [[ $1 == stalled ]]; then exec 7>&-; rm -f "$T/fifo.$$"; fi
  reqs=$(field reqs <<<"$line")
  awk -v rps="$(field rps <<<"$line")" -v n="$reqs" -v t="$TICK" \
    -v r=$((r1 - r0)) -v w=$((w1 - w0)) 'BEGIN { printf "%s %.2f %.2f\n", rps, r / t / n * 1e6, w / t / n * 1e6 }'
}

log "warm-up"
DURATION=2 rps >/dev/null
declare -A RPS=() CPU=() READER=()
for round in $(seq 1 "$ROUNDS"); do
  if ((round % 2)); then order=(none reader stalled); else order=(stalled reader none); fi
  for kind in "${order[@]}"; do
    read -r r c w < <(measure "$kind")
    log "round $round $kind: $r req/s, relay CPU $c ms per 1,000 requests, tap reader $w ms"
    RPS[$kind]+="$r "; CPU[$kind]+="$c "; READER[$kind]+="$w "
  done
done

none=$(echo "${RPS[none]}" | median)
none_cpu=$(echo "${CPU[none]}" | median)
printf '| watchers | /ingest req/s (median of %s × %ss) | ÷ none | relay CPU ms per 1,000 requests | ÷ none | tap reader (curl) CPU ms per 1,000 |\n' "$ROUNDS" "$DURATION"
printf '|---|---:|---:|---:|---:|---:|\n'
for kind in none reader stalled; do
  m=$(echo "${RPS[$kind]}" | median) c=$(echo "${CPU[$kind]}" | median) w=$(echo "${READER[$kind]}" | median)
  awk -v k="$kind" -v m="$m" -v n="$none" -v c="$c" -v nc="$none_cpu" -v w="$w" \
    'BEGIN { printf "| %s | %.0f | %.2f | %.1f | %.2f | %.1f |\n", k, m, m / n, c, c / nc, w }'
done
