#!/usr/bin/env bash
# What the live tap costs the data path: /ingest req/s (10 KB folded body,
# 64 connections, wrk) with nobody watching, with one tap reader that keeps
# up (curl -N), and with one that never reads (curl into a pipe nobody
# drains). Rounds alternate the order; the figures are medians and the
# ratios are to "none" in the same rounds.
#
#   bash bench/tap.sh                  # ROUNDS=5 DURATION=5
#   ROUNDS=9 DURATION=10 bash bench/tap.sh
#
# Installs wrk when missing (root). Everything it starts is stopped on exit.
set -euo pipefail

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-5}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
P_SINK=18401 P_RELAY=18402 P_ADMIN=18403

log() { printf '[bench-tap %s] %s\n' "$(date +%T)" "$*" >&2; }

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
log "building the relay and the sink"
(cd "$ROOT" && cargo build --release -q)
(cd "$ROOT/bench/sink" && export CARGO_TARGET_DIR="$CARGO_TARGET_DIR/bench-sink" &&
  { cargo build --release -q --offline 2>/dev/null || cargo build --release -q; })

T=$(mktemp -d /tmp/pyroscope-relay-bench-tap.XXXXXX)
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 0.3
  rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

head -c 10240 "$ROOT/tests/fixtures/py_folded.txt" >"$T/body"
cat >"$T/relay.alloy" <<CFG
pyroscope.receive_http "in" {
  http {
    listen_address = "127.0.0.1"
    listen_port = $P_RELAY
    conn_limit = 0
  }
  forward_to = [pyroscope.write.out.receiver]
}
pyroscope.write "out" {
  endpoint { url = "http://127.0.0.1:$P_SINK" }
}
CFG
"$CARGO_TARGET_DIR/bench-sink/release/bench-sink" $P_SINK "$(nproc)" & PIDS+=($!)
"$CARGO_TARGET_DIR/release/pyroscope-relay" run "$T/relay.alloy" --server.http.listen-addr 127.0.0.1:$P_ADMIN \
  --storage.path "$T/data" --log.level warn & PIDS+=($!)
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$P_ADMIN/-/ready" >/dev/null && break; sleep 0.1; done

URL="http://127.0.0.1:$P_RELAY/ingest?name=bench.cpu%7Benv%3Dbench%7D&from=1700000000&until=1700000010&format=folded&sampleRate=100&spyName=pyspy"
TAP="http://127.0.0.1:$P_ADMIN/api/v1/tap?component=pyroscope.receive_http.in"

rps() { # one wrk run -> req/s
  BODY="$T/body" wrk -t2 -c64 -d"${DURATION}s" -s "$ROOT/bench/wrk.lua" "$URL" |
    sed -n 's/^RESULT .*rps=\([0-9.]*\).*/\1/p'
}

measure() { # none|reader|stalled -> req/s
  local watcher=""
  case $1 in
    reader) curl -sN "$TAP" >/dev/null & watcher=$! ;;
    # A pipe nobody drains: curl blocks once it is full and stops reading.
    stalled) mkfifo "$T/fifo.$$"; exec 7<>"$T/fifo.$$"; curl -sN "$TAP" >&7 & watcher=$! ;;
  esac
  sleep 0.5
  rps
  if [[ -n $watcher ]]; then kill "$watcher" 2>/dev/null || true; wait "$watcher" 2>/dev/null || true; fi
  if [[ $1 == stalled ]]; then exec 7>&-; rm -f "$T/fifo.$$"; fi
}

log "warm-up"
DURATION=2 rps >/dev/null
declare -A RESULTS=([none]="" [reader]="" [stalled]="")
for round in $(seq 1 "$ROUNDS"); do
  if ((round % 2)); then order=(none reader stalled); else order=(stalled reader none); fi
  for kind in "${order[@]}"; do
    r=$(measure "$kind")
    log "round $round $kind: $r req/s"
    RESULTS[$kind]+="$r "
  done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
none=$(echo "${RESULTS[none]}" | median)
printf '| watchers | /ingest req/s (median of %s × %ss) | ÷ none |\n|---|---:|---:|\n' "$ROUNDS" "$DURATION"
for kind in none reader stalled; do
  m=$(echo "${RESULTS[$kind]}" | median)
  awk -v k="$kind" -v m="$m" -v n="$none" 'BEGIN { printf "| %s | %.0f | %.2f |\n", k, m, m / n }'
done
