#!/usr/bin/env bash
# Instruction profile of the relay on a fixed /ingest workload:
# valgrind --tool=callgrind, N requests of the 10 KB body over C connections
# (h2load --h1), then the top functions by own instruction count.
#   bash bench/callgrind.sh            # N=3000 C=8
#   ROUTE=push bash bench/callgrind.sh # Connect push of push_request.bin x4 (11.5 KB)
#   TAP=1 bash bench/callgrind.sh      # with one live tap reader on receive_http
#   QUEUE=1 bash bench/callgrind.sh    # pyroscope.write with `queue {}` (sync = "always")
set -euo pipefail
. "$(dirname "$0")/lib.sh"
# KEEP=path keeps the callgrind output file.
N=${N:-3000} C=${C:-8} TOP=${TOP:-30}
bench_init callgrind
need valgrind
need h2load nghttp2-client
build_relay_and_sink
"$SINK" 18301 2 & PIDS+=($!)
relay_config 18302 18301 "${QUEUE:+queue {\}}" >"$T/relay.alloy"
if [[ ${ROUTE:-ingest} == push ]]; then
  for _ in 1 2 3 4; do cat "$FIX/push_request.bin"; done >"$T/body"
  URL="http://127.0.0.1:18302$PUSH_PATH"
  HEADERS=(-H 'content-type: application/proto' -H 'connect-protocol-version: 1')
else
  ingest_body >"$T/body"
  URL="http://127.0.0.1:18302$INGEST_Q"
  HEADERS=(-H 'content-type: binary/octet-stream')
fi
valgrind --tool=callgrind --callgrind-out-file="$T/cg.out" "$RELAY" run "$T/relay.alloy" \
  --server.http.listen-addr 127.0.0.1:18303 --storage.path "$T/data" --log.level warn 2>"$T/vg.log" & RP=$!; PIDS+=($RP)
for i in $(seq 1 300); do (exec 3<>/dev/tcp/127.0.0.1/18302) 2>/dev/null && break; sleep 0.2; done
if [[ -n ${TAP:-} ]]; then
  curl -sN 'http://127.0.0.1:18303/api/v1/tap?component=pyroscope.receive_http.in' >/dev/null & PIDS+=($!)
  sleep 1
fi
h2load --h1 -n 200 -c 4 -d "$T/body" "${HEADERS[@]}" "$URL" >/dev/null   # warm-up
callgrind_control -z "$RP" >/dev/null 2>&1 || true   # count only the measured part
h2load --h1 -n "$N" -c "$C" -d "$T/body" "${HEADERS[@]}" "$URL" | grep -E 'requests:|status codes'
kill -INT "$RP"; for i in $(seq 1 300); do kill -0 "$RP" 2>/dev/null || break; sleep 0.2; done
f=$(ls -S "$T"/cg.out* | head -1)
[[ -n ${KEEP:-} ]] && cp "$f" "$KEEP"
echo "== own instructions (self), top $TOP"
callgrind_annotate --inclusive=no --threshold=100 "$f" 2>/dev/null | grep -E 'PROGRAM TOTALS|^ *[0-9,]+ \(' | grep -vE '\((99|100)\.[0-9]+%\)  [^P]' | head -$((TOP + 1)) || true
echo "== inclusive, relay and its HTTP crates (excluding runtime frames), top $TOP"
callgrind_annotate --inclusive=yes --threshold=100 "$f" 2>/dev/null | grep -E '^ *[0-9,]+ \(' |
  grep -E 'pyroscope_relay|reqwest|hyper::|url::|http::|h2::' | grep -vE 'tokio::runtime|__rust_begin' | head -"$TOP" || true
