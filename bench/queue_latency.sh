#!/usr/bin/env bash
# Acknowledgement latency of two queued relays side by side: an A/B of two
# builds (docs/performance.md, "Segment files reused"). Both have
# `queue { sync = "always" max_in_flight = 64 }` (QUEUE_SYNC,
# QUEUE_MAX_IN_FLIGHT) in front of the same bench-sink; wrk sends /ingest
# 10 KB over 64 connections at a fixed RATE, to each relay in turn, and the
# p99 of each round and the medians are printed, with each relay's mean
# fsync. With OPEN_LOOP=1, oha sends instead (open loop, latency corrected;
# see bench/queue.sh).
#
#   RELAY_A=old-build RELAY_B=new-build bash bench/queue_latency.sh
#   RATE=8000 ROUNDS=8 DURATION=5 RELAY_A=... RELAY_B=... bash bench/queue_latency.sh
#
# Without RELAY_A or RELAY_B, this checkout's release build is used for it.
# QUEUE_EXTRA goes into both queue blocks (QUEUE_EXTRA='max_size = "4GiB"').
set -euo pipefail
. "$(dirname "$0")/lib.sh"
ROUNDS=${ROUNDS:-6}
DURATION=${DURATION:-5}
RATE=${RATE:-7000}
P_SINK=18531 P_A=18532 P_A_ADMIN=18533 P_B=18534 P_B_ADMIN=18535
bench_init queue-latency
need wrk
[[ -z ${OPEN_LOOP:-} ]] || need_oha
build_relay_and_sink
RELAY_A=${RELAY_A:-$RELAY}
RELAY_B=${RELAY_B:-$RELAY}
ingest_body >"$T/body"
relay_config $P_A $P_SINK "$(queue_block "${QUEUE_EXTRA:-}")" >"$T/A.alloy"
relay_config $P_B $P_SINK "$(queue_block "${QUEUE_EXTRA:-}")" >"$T/B.alloy"
"$SINK" $P_SINK 2 & PIDS+=($!)
sleep 0.3
"$RELAY_A" run "$T/A.alloy" --server.http.listen-addr 127.0.0.1:$P_A_ADMIN \
  --storage.path "$T/data-A" --log.level warn 2>>"$T/A.log" & PIDS+=($!)
"$RELAY_B" run "$T/B.alloy" --server.http.listen-addr 127.0.0.1:$P_B_ADMIN \
  --storage.path "$T/data-B" --log.level warn 2>>"$T/B.log" & PIDS+=($!)
wait_ready $P_A_ADMIN
wait_ready $P_B_ADMIN
delay=$((64000 / RATE))
log "A: $RELAY_A"
log "B: $RELAY_B"
log "fixed rate $RATE req/s ($([[ -n ${OHA:-} ]] && echo "oha, open loop" || echo "wrk delay ${delay} ms per connection")), $ROUNDS rounds of ${DURATION}s, alternating"
wrk_run $P_A 2 "$delay" >/dev/null
wrk_run $P_B 2 "$delay" >/dev/null
p99_a="" p99_b=""
for round in $(seq 1 "$ROUNDS"); do
  # Alternate which goes first, so neither always follows the other.
  order="A B"
  ((round % 2)) || order="B A"
  for side in $order; do
    port_var=P_$side
    if [[ -n ${OHA:-} ]]; then
      r=$(oha_run "${!port_var}" "$DURATION" "$RATE")
    else
      r=$(wrk_run "${!port_var}" "$DURATION" "$delay")
    fi
    if [[ $side == A ]]; then p99_a+="$(field p99_ms <<<"$r") "; else p99_b+="$(field p99_ms <<<"$r") "; fi
    log "round $round $side: p99 $(field p99_ms <<<"$r") ms at $(field rps <<<"$r") req/s"
  done
done
mean_fsync() { # admin-port -> ms
  curl -sf "http://127.0.0.1:$1/metrics" | awk '
    /^pyroscope_write_queue_fsync_duration_seconds_sum/ {s += $NF}
    /^pyroscope_write_queue_fsync_duration_seconds_count/ {n += $NF}
    END {printf "%.3f", n ? s * 1000 / n : 0}'
}
echo "A: p99 ms per round: $p99_a; median $(echo "$p99_a" | median); mean fsync $(mean_fsync $P_A_ADMIN) ms"
echo "B: p99 ms per round: $p99_b; median $(echo "$p99_b" | median); mean fsync $(mean_fsync $P_B_ADMIN) ms"
