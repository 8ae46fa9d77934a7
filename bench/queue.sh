#!/usr/bin/env bash
# What pyroscope.write's `queue` block costs and what it can do, on
# 127.0.0.1 (docs/performance.md, "The durable queue"):
#
#   1. /ingest 10 KB, 64 connections, as fast as possible: sustained req/s
#      (acknowledged and delivered) of a relay with
#      `queue { sync = "always" }` ÷ the same relay without a queue,
#      alternating rounds, medians. Both send to the sink over up to 64
#      requests at once: the relay without a queue sends one per client
#      request in flight, so the queue gets `max_in_flight = 64`
#      (QUEUE_MAX_IN_FLIGHT=8 measures the default, which caps delivery at
#      8 requests per sink round trip);
#   2. acknowledgement latency at 50% of the queued relay's rate: open
#      loop with oha (a fixed rate, each request's latency counted from when
#      it was due, as bench/run.sh; installed with cargo when missing), the
#      target's figure; and closed loop with wrk (each connection waits a
#      fixed delay after each answer), which ties the connections' sends to
#      the answers and so to the queue's group commits;
#   3. catch-up: the sink down, a backlog built at that 50% rate; then the
#      sink up: drain rate ÷ the rate the backlog was built at;
#   4. memory: RSS while a backlog of QUEUE_BACKLOG_MIB (1 GiB) is built,
#      how long a relay takes to open it after a restart, and its RSS while
#      it sends it.
#
#   bash bench/queue.sh                      # ROUNDS=5 DURATION=5
#   QUEUE_BACKLOG_MIB=256 bash bench/queue.sh
#   QUEUE_MAX_IN_FLIGHT=8 bash bench/queue.sh   # the queue's default
#   RELAY_CPUS=0 LOAD_CPUS=1 bash bench/queue.sh # relays on CPU 0; wrk, oha, sink on 1
#
# Installs wrk when missing (root). Data goes to a temporary directory on
# the same file system as /tmp (so fsync is the disk's). Everything it
# starts is stopped on exit.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-5}
BACKLOG_MIB=${QUEUE_BACKLOG_MIB:-1024}
P_SINK=18501 P_PLAIN=18502 P_PLAIN_ADMIN=18503 P_QUEUE=18504 P_QUEUE_ADMIN=18505

bench_init queue
need wrk
need_oha
build_relay_and_sink
# The processes by role, for stopping one of them; PIDS has them all.
declare -A PID=()

ingest_body >"$T/body"
BODY_BYTES=$(stat -c %s "$T/body")

BACKOFF='min_backoff_period = "100ms"
    max_backoff_period = "1s"'
relay_config $P_PLAIN $P_SINK "" "$BACKOFF" >"$T/plain.alloy"
relay_config $P_QUEUE $P_SINK "$(queue_block "max_size = \"$((BACKLOG_MIB * 4))MiB\"")" "$BACKOFF" >"$T/queue.alloy"

start_sink() { $(pinned "$LOAD_CPUS") "$SINK" $P_SINK 2 & PID[sink]=$!; PIDS+=($!); sleep 0.3; }
stop_sink() { kill "${PID[sink]}"; wait "${PID[sink]}" 2>/dev/null || true; unset 'PID[sink]'; }
start_relay() { # name port admin
  $(pinned "$RELAY_CPUS") "$RELAY" run "$T/$1.alloy" --server.http.listen-addr "127.0.0.1:$3" \
    --storage.path "$T/data-$1" --log.level warn 2>>"$T/$1.log" & PID[$1]=$!; PIDS+=($!)
  wait_ready "$3"
}
stop_relay() { # name
  kill "${PID[$1]}"; wait "${PID[$1]}" 2>/dev/null || true; unset "PID[$1]"
}
mem_kib() { awk -v f="$2:" '$1==f {print $2}' "/proc/$1/status"; }

start_sink
start_relay plain $P_PLAIN $P_PLAIN_ADMIN
start_relay queue $P_QUEUE $P_QUEUE_ADMIN

# --- 1. throughput ---------------------------------------------------------
log "warm-up"
wrk_run $P_PLAIN 2 >/dev/null
wrk_run $P_QUEUE 2 >/dev/null
# The queued relay answers once a profile is on disk, and may answer faster
# than it sends: its "acknowledged" req/s is wrk's; its "sustained" rate is
# the profiles of the run ÷ the time from the start of the run until the
# last of them was delivered (pyroscope_write_sent_profiles_total), so a
# backlog left behind is paid for in the round that built it.
sent() { metric $P_QUEUE_ADMIN pyroscope_write_sent_profiles_total; }
now() { date +%s.%N; }
plain="" acked="" sustained="" errors=0
for round in $(seq 1 "$ROUNDS"); do
  if ((round % 2)); then order=(plain queue); else order=(queue plain); fi
  for kind in "${order[@]}"; do
    if [[ $kind == plain ]]; then
      r=$(wrk_run $P_PLAIN "$DURATION")
      plain+="$(field rps <<<"$r") "
      log "round $round plain: $(field rps <<<"$r") req/s (p99 $(field p99_ms <<<"$r") ms)"
    else
      s0=$(sent) t0=$(now)
      r=$(wrk_run $P_QUEUE "$DURATION")
      # A refused request (a queue full at a small QUEUE_BACKLOG_MIB) is
      # in wrk's count and its errors, and is never sent.
      want=$((s0 + $(field reqs <<<"$r") - $(field errors <<<"$r")))
      while (($(sent) < want)); do
        awk -v a="$t0" -v b="$(now)" 'BEGIN { exit !(b - a > 300) }' && { log "not delivered after 300 s"; break; }
        sleep 0.02
      done
      sus=$(awk -v n="$(field reqs <<<"$r")" -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.1f", n / (b - a) }')
      acked+="$(field rps <<<"$r") " sustained+="$sus "
      log "round $round queue: $(field rps <<<"$r") req/s acknowledged (p99 $(field p99_ms <<<"$r") ms), $sus/s sustained"
    fi
    errors=$((errors + $(field errors <<<"$r")))
  done
done
plain_rps=$(echo "$plain" | median)
queue_rps=$(echo "$acked" | median)
sustained_rps=$(echo "$sustained" | median)

# --- 2. latency at 50% load -------------------------------------------------
rate=$(awk -v r="$sustained_rps" 'BEGIN { printf "%d", r / 2 }')
delay=$((64000 / rate))
log "fixed rate $rate req/s: open loop (oha -q $rate), closed loop (wrk delay ${delay} ms per connection)"
lat_plain="" lat_queue="" open_plain="" open_queue="" open_achieved=""
for round in $(seq 1 3); do
  if [[ -n $OHA ]]; then
    r=$(oha_run $P_QUEUE "$DURATION" "$rate"); open_queue+="$(field p99_ms <<<"$r") "
    open_achieved=$(field rps <<<"$r") errors=$((errors + $(field errors <<<"$r")))
    r=$(oha_run $P_PLAIN "$DURATION" "$rate"); open_plain+="$(field p99_ms <<<"$r") "
    errors=$((errors + $(field errors <<<"$r")))
    log "round $round open loop: p99 queue $(echo "$open_queue" | awk '{print $NF}') ms, plain $(field p99_ms <<<"$r") ms"
  fi
  r=$(wrk_run $P_QUEUE "$DURATION" "$delay"); lat_queue+="$(field p99_ms <<<"$r") "
  q_achieved=$(field rps <<<"$r")
  r=$(wrk_run $P_PLAIN "$DURATION" "$delay"); lat_plain+="$(field p99_ms <<<"$r") "
  log "round $round closed loop: p99 queue $(echo "$lat_queue" | awk '{print $NF}') ms, plain $(field p99_ms <<<"$r") ms"
done
p99_queue=$(echo "$lat_queue" | median)
# Group commit: acknowledged appends per fsync, and the mean fsync, over
# parts 1 and 2.
fsyncs=$(metric $P_QUEUE_ADMIN pyroscope_write_queue_fsync_duration_seconds_count)
fsync_ms=$(curl -sf "http://127.0.0.1:$P_QUEUE_ADMIN/metrics" | awk '/^pyroscope_write_queue_fsync_duration_seconds_sum/ {s += $NF} END {print s * 1000}')
p99_plain=$(echo "$lat_plain" | median)
stop_relay plain

# --- 3 and 4. backlog, catch-up, memory ----------------------------------------
# The queue relay again, fresh, with an empty queue: its VmHWM is this
# phase's own.
stop_relay queue
rm -rf "$T/data-queue"
start_relay queue $P_QUEUE $P_QUEUE_ADMIN
stop_sink
target_bytes=$((BACKLOG_MIB * 1024 * 1024))
# Built at the 50% rate of part 2, a relay's ordinary load: catching up
# means draining faster than that (while ingest goes on, in real life).
log "sink down: building a backlog of $BACKLOG_MIB MiB at $rate req/s"
built_secs=0
while :; do
  r=$(wrk_run $P_QUEUE 5 "$delay")
  built_secs=$(awk -v a="$built_secs" -v b="$(field secs <<<"$r")" 'BEGIN { print a + b }')
  pending=$(metric $P_QUEUE_ADMIN pyroscope_write_queue_pending_bytes)
  log "backlog $((pending / 1048576)) MiB after ${built_secs}s"
  ((pending < target_bytes)) || break
  ((${built_secs%.*} < 900)) || { log "backlog still short after 900 s"; break; }
done
rejected=$(metric $P_QUEUE_ADMIN pyroscope_write_queue_rejected_profiles_total)
backlog_profiles=$(metric $P_QUEUE_ADMIN pyroscope_write_queue_pending_profiles)
build_rate=$(awk -v n="$backlog_profiles" -v s="$built_secs" 'BEGIN { printf "%.0f", n / s }')
backlog_bytes=$(metric $P_QUEUE_ADMIN pyroscope_write_queue_pending_bytes)
rss_build=$(mem_kib "${PID[queue]}" VmHWM)
log "backlog: $backlog_profiles profiles, $((backlog_bytes / 1048576)) MiB ($rejected refused); VmHWM $((rss_build / 1024)) MiB"

stop_relay queue
t0=$(date +%s.%N)
start_relay queue $P_QUEUE $P_QUEUE_ADMIN
open_secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
rss_open=$(mem_kib "${PID[queue]}" VmRSS)
log "reopened with the backlog in ${open_secs}s, RSS $((rss_open / 1024)) MiB"

start_sink
t0=$(date +%s.%N) first=""
while :; do
  # The sent counter moves with every delivery; the pending gauge once a
  # second when nothing is appended. Done when every profile was sent (or,
  # should some be dropped, when nothing is pending).
  sent_now=$(sent) now=$(date +%s.%N)
  [[ -n $first || $sent_now -eq 0 ]] || first=$now
  ((sent_now < backlog_profiles)) || break
  (($(metric $P_QUEUE_ADMIN pyroscope_write_queue_pending_profiles) > 0)) || break
  awk -v a="$t0" -v b="$now" 'BEGIN { exit !(b - a > 900) }' && { log "drain not done after 900 s"; break; }
  sleep 0.05
done
# From the sink's start, the senders' backoff (at most 1 s here) included;
# and from the first delivery, the rate at which the backlog went out.
drain_secs=$(awk -v a="$t0" -v b="$now" 'BEGIN { printf "%.2f", b - a }')
sending_secs=$(awk -v a="${first:-$t0}" -v b="$now" 'BEGIN { printf "%.2f", b - a }')
drain_rate=$(awk -v n="$backlog_profiles" -v s="$sending_secs" 'BEGIN { printf "%.0f", n / (s > 0.05 ? s : 0.05) }')
rss_drain=$(mem_kib "${PID[queue]}" VmHWM)
log "drained $backlog_profiles in ${drain_secs}s from the sink's start, ${sending_secs}s from the first delivery: $drain_rate profiles/s; VmHWM $((rss_drain / 1024)) MiB"

# --- table ---------------------------------------------------------------------
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
verdict() { awk -v v="$1" -v l="$2" -v op="$3" 'BEGIN { ok = (op == "ge") ? v >= l : v <= l; print ok ? "met" : "MISSED" }'; }
pinning="unpinned"
[[ -z $RELAY_CPUS$LOAD_CPUS ]] || pinning="relays on CPUs ${RELAY_CPUS:-any}; wrk, oha and the sink on ${LOAD_CPUS:-any}"
echo "Run on $(date -u '+%Y-%m-%d %H:%M') UTC, commit \`$(git -C "$ROOT" rev-parse --short HEAD)\`, $(nproc) cores ($pinning); $ROUNDS rounds × ${DURATION} s, medians; /ingest 10 KB ($BODY_BYTES bytes), 64 connections; queue \`max_in_flight = $QUEUE_MAX_IN_FLIGHT\`; errors (wrk, oha): $errors."
echo
echo "| figure | measured | target | |"
echo "|---|---:|---|---|"
r=$(ratio "$sustained_rps" "$plain_rps")
echo "| sustained req/s with \`queue { sync = \"${QUEUE_SYNC:-always}\" }\` ÷ without (${sustained_rps} ÷ ${plain_rps}) | $r | ≥ 0.8 | $(verdict "$r" 0.8 ge) |"
echo "| acknowledged req/s with the queue ÷ without (${queue_rps} ÷ ${plain_rps}) | $(ratio "$queue_rps" "$plain_rps") | | |"
if [[ -n $OHA ]]; then
  p99_open=$(echo "$open_queue" | median)
  echo "| acknowledgement p99 at $rate req/s (50%), open loop (oha; achieved $open_achieved), queue | ${p99_open} ms | ≤ 5 ms | $(verdict "$p99_open" 5 le) |"
  echo "| same, without the queue | $(echo "$open_plain" | median) ms | | |"
  echo "| closed loop (wrk, ${delay} ms between a connection's answer and its next request; achieved $q_achieved), queue | ${p99_queue} ms | | |"
else
  echo "| acknowledgement p99 at $rate req/s (50%), closed loop (wrk, ${delay} ms between a connection's answer and its next request; achieved $q_achieved; oha missing), queue | ${p99_queue} ms | ≤ 5 ms | $(verdict "$p99_queue" 5 le) |"
fi
echo "| closed loop, without the queue | ${p99_plain} ms | | |"
echo "| fsyncs in parts 1 and 2; mean fsync | $fsyncs; $(awk -v s="$fsync_ms" -v n="$fsyncs" 'BEGIN { printf "%.2f ms", s / n }') | | |"
r=$(ratio "$drain_rate" "$build_rate")
echo "| catch-up: drain ${drain_rate} profiles/s (sink up, no ingest; ${sending_secs} s from the first delivery, ${drain_secs} s from the sink's start) ÷ backlog built at ${build_rate}/s | $r | ≥ 2 | $(verdict "$r" 2 ge) |"
echo "| peak RSS building a backlog of $((backlog_bytes / 1048576)) MiB ($backlog_profiles profiles) | $(mib "$rss_build") MiB | ≤ 64 MiB | $(verdict "$(mib "$rss_build")" 64 le) |"
echo "| restart with that backlog: ready after | ${open_secs} s | seconds | |"
echo "| peak RSS sending it | $(mib "$rss_drain") MiB | ≤ 64 MiB | $(verdict "$(mib "$rss_drain")" 64 le) |"
