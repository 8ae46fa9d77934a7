#!/usr/bin/env bash
# Where a queued profile's CPU goes, thread by thread (docs/performance.md,
# "The durable queue"): the relay without a queue and the relay with
# `queue { sync = "always" max_in_flight = 64 }` (QUEUE_MAX_IN_FLIGHT,
# bench/lib.sh) in front of the same bench-sink, /ingest 10 KB
# over 64 connections (wrk), rounds alternating; for each round the req/s
# and, per thread name, the user and system CPU per request read from
# /proc/<pid>/task/*/stat, and the sink's.
#
#   bash bench/queue_threads.sh              # ROUNDS=3 DURATION=5
#   QUEUE_SYNC=200ms bash bench/queue_threads.sh
#   RELAY_Q=/path/to/other/pyroscope-relay bash bench/queue_threads.sh   # another build queued
#   A_QUEUE=1 RELAY_A=old-build RELAY_Q=new-build bash bench/queue_threads.sh
#       # both queued: an A/B of two builds (the first is reported as "plain")
#
# A queued round waits until everything it sent is delivered before the
# CPU is read, so the senders' share of the round is in it.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5}
P_SINK=18521 P_PLAIN=18522 P_PLAIN_ADMIN=18523 P_QUEUE=18524 P_QUEUE_ADMIN=18525

bench_init queue-threads
need wrk
build_relay_and_sink
RELAY_A=${RELAY_A:-$RELAY}
RELAY_Q=${RELAY_Q:-$RELAY}
QUEUE_BLOCK=$(queue_block)
ingest_body >"$T/body"
relay_config $P_PLAIN $P_SINK "${A_QUEUE:+$QUEUE_BLOCK}" >"$T/plain.alloy"
relay_config $P_QUEUE $P_SINK "$QUEUE_BLOCK" >"$T/queue.alloy"

"$SINK" $P_SINK 2 & SINK_PID=$!; PIDS+=($!)
sleep 0.3
"$RELAY_A" run "$T/plain.alloy" --server.http.listen-addr 127.0.0.1:$P_PLAIN_ADMIN \
  --storage.path "$T/data-plain" --log.level warn & PLAIN_PID=$!; PIDS+=($!)
"$RELAY_Q" run "$T/queue.alloy" --server.http.listen-addr 127.0.0.1:$P_QUEUE_ADMIN \
  --storage.path "$T/data-queue" --log.level warn & QUEUE_PID=$!; PIDS+=($!)
wait_ready $P_PLAIN_ADMIN
wait_ready $P_QUEUE_ADMIN

# "name user_ticks system_ticks" per thread name, summed over threads.
thread_ticks() { # pid
  local t
  for t in /proc/"$1"/task/*; do
    # shellcheck disable=SC2046
    set -- $(sed 's/.*) //' "$t/stat" 2>/dev/null || echo)
    (($# >= 13)) && echo "$(tr ' ' '_' <"$t/comm") ${12} ${13}"
  done | awk '{u[$1] += $2; s[$1] += $3} END {for (k in u) print k, u[k], s[k]}' | sort
}
sent() { metric "$1" pyroscope_write_sent_profiles_total; } # admin port

log "warm-up"
wrk_run $P_PLAIN 2 >/dev/null
wrk_run $P_QUEUE 2 >/dev/null
sleep 1
for round in $(seq 1 "$ROUNDS"); do
  if ((round % 2)); then order=(plain queue); else order=(queue plain); fi
  for kind in "${order[@]}"; do
    if [[ $kind == plain ]]; then port=$P_PLAIN pid=$PLAIN_PID admin=$P_PLAIN_ADMIN; else port=$P_QUEUE pid=$QUEUE_PID admin=$P_QUEUE_ADMIN; fi
    s0=$(sent "$admin")
    thread_ticks "$pid" >"$T/before"
    sink0=$(cpu_ticks "$SINK_PID")
    r=$(wrk_run "$port" "$DURATION")
    n=$(field reqs <<<"$r")
    if [[ $kind == queue || -n ${A_QUEUE:-} ]]; then
      while (($(sent "$admin") < s0 + n)); do sleep 0.02; done
    fi
    thread_ticks "$pid" >"$T/after"
    sink1=$(cpu_ticks "$SINK_PID")
    echo "round $round, $kind: $(field rps <<<"$r") req/s; CPU per request (us):"
    join "$T/before" "$T/after" | awk -v n="$n" -v hz="$TICK" '
      { u = ($4 - $2) / hz * 1e6 / n; s = ($5 - $3) / hz * 1e6 / n; tu += u; ts += s
        if (u + s >= 0.05) printf "  %-18s user %6.2f  system %6.2f\n", $1, u, s }
      END { printf "  %-18s user %6.2f  system %6.2f  = %.1f\n", "relay", tu, ts, tu + ts }'
    awk -v n="$n" -v hz="$TICK" -v a="$sink0" -v b="$sink1" \
      'BEGIN { printf "  %-18s %.1f\n", "bench-sink", (b - a) / hz * 1e6 / n }'
  done
done
