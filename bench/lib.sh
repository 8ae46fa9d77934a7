# Sourced by the bench scripts (bench/*.sh): what they all do the same way.
#
#   . "$(dirname "$0")/lib.sh"
#   bench_init queue          # ROOT, CARGO_TARGET_DIR, T (scratch dir), log, cleanup
#   need wrk                  # apt-get install when missing (root)
#   build_relay_and_sink      # RELAY, SINK (build_relay, build_sink alone)
#
# Every process a script starts in the background goes into PIDS; on exit
# (or Ctrl-C) they are stopped, killed if still there after 0.3 s, and
# waited for, so that a run right after this one finds its ports free.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
FIX=${FIXTURES:-$ROOT/tests/fixtures}
TICK=$(getconf CLK_TCK)
# The /ingest request of every workload: 10 KB of folded stacks from a
# captured py-spy profile.
INGEST_Q='/ingest?name=bench.cpu%7Benv%3Dbench%7D&from=1700000000&until=1700000010&format=folded&sampleRate=100&spyName=pyspy'
PUSH_PATH=/push.v1.PusherService/Push
# CPU pinning (taskset -c lists), empty by default: RELAY_CPUS for the
# relays a script starts, LOAD_CPUS for wrk, oha and the sink. With both
# set, the load generators stop taking the relay's CPU, and what a latency
# figure measures is the relay rather than the machine's contention
# (docs/performance.md, "Pinned, and a commit delay tried").
RELAY_CPUS=${RELAY_CPUS:-}
LOAD_CPUS=${LOAD_CPUS:-}
# `$(pinned "$LOAD_CPUS") cmd ...`: taskset execs the command, so a
# background one's $! is still the command's pid.
pinned() { # cpus -> "taskset -c CPUS", or nothing when CPUS is empty
  [[ -z $1 ]] || echo "taskset -c $1"
}
# The queued relay's `max_in_flight` in the queue benches: as many requests
# at the sink as the relay without a queue has, one per wrk connection (64);
# QUEUE_MAX_IN_FLIGHT=8 measures the default.
QUEUE_MAX_IN_FLIGHT=${QUEUE_MAX_IN_FLIGHT:-64}
PIDS=()

# The queue benches' `queue` block: `sync` from QUEUE_SYNC ("always" by
# default), `max_in_flight` from QUEUE_MAX_IN_FLIGHT, and EXTRA lines.
queue_block() { # [extra]
  cat <<BLOCK
queue {
    sync = "${QUEUE_SYNC:-always}"
    max_in_flight = $QUEUE_MAX_IN_FLIGHT
    ${1:-}
  }
BLOCK
}

bench_init() { # name
  BENCH_NAME=$1
  T=$(mktemp -d "/tmp/pyroscope-relay-bench-$1.XXXXXX")
  trap bench_cleanup EXIT
  trap 'exit 130' INT TERM
}

bench_cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 0.3
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$T"
}

log() { printf '[bench-%s %s] %s\n' "$BENCH_NAME" "$(date +%T)" "$*" >&2; }

need() { # command [package]
  command -v "$1" >/dev/null && return 0
  log "installing ${2:-$1}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${2:-$1}" >/dev/null
}

# oha, the open-loop load generator (requests go out at a fixed rate
# whatever the answers do, and each one's latency counts from when it was
# due), for the latency at 50% load; `cargo install`ed when missing. OHA is
# empty when it cannot be had.
need_oha() {
  OHA=$(command -v oha || echo "$HOME/.cargo/bin/oha")
  [[ -x $OHA ]] && return 0
  log "installing oha (cargo install oha --locked)"
  cargo install oha --locked -q >&2 && return 0
  log "oha could not be installed: the open-loop latency is not measured"
  OHA=""
}

build_relay() {
  log "building the relay"
  (cd "$ROOT" && cargo build --release -q)
  RELAY=$CARGO_TARGET_DIR/release/pyroscope-relay
}

build_sink() {
  (cd "$ROOT/bench/sink" && export CARGO_TARGET_DIR="$CARGO_TARGET_DIR/bench-sink" &&
    { cargo build --release -q --offline 2>/dev/null || cargo build --release -q; })
  SINK=$CARGO_TARGET_DIR/bench-sink/release/bench-sink
}

build_relay_and_sink() { build_relay; build_sink; }

# A relay config: `pyroscope.receive_http "in"` on PORT forwarding to
# `pyroscope.write "out"`, whose one endpoint is the sink on SINK_PORT.
# WRITE_EXTRA goes inside the write block (a `queue` block); ENDPOINT_EXTRA
# inside its endpoint block.
relay_config() { # port sink_port [write_extra] [endpoint_extra]
  cat <<CFG
pyroscope.receive_http "in" {
  http {
    listen_address = "127.0.0.1"
    listen_port = $1
    conn_limit = 0
  }
  forward_to = [pyroscope.write.out.receiver]
}
pyroscope.write "out" {
  endpoint {
    url = "http://127.0.0.1:$2"
    ${4:-}
  }
  ${3:-}
}
CFG
}

ingest_body() { head -c 10240 "$FIX/py_folded.txt"; }

wait_port() { # port
  local i
  for i in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  log "port $1 did not open"
  return 1
}

wait_ready() { # admin-port
  local i
  for i in $(seq 1 600); do
    curl -sf "http://127.0.0.1:$1/-/ready" >/dev/null && return 0
    sleep 0.05
  done
  log "not ready on $1"
  return 1
}

cpu_ticks() { # pid -> utime + stime in clock ticks (0 when gone)
  local f
  f=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
  # shellcheck disable=SC2086
  set -- $f
  echo $((${12} + ${13}))
}

# The sum of a metric over its label sets, read from a relay's admin port.
metric() { # admin-port name -> summed value
  curl -sf "http://127.0.0.1:$1/metrics" | awk -v n="$2" 'index($0, n) == 1 && (substr($0, length(n) + 1, 1) ~ /[{ ]/) {s += $NF} END {printf "%.0f\n", s}'
}

# /ingest of $T/body (the 10 KB body) over 64 connections; with DELAY_MS,
# each connection waits that long before each request (bench/wrk.lua).
wrk_run() { # port seconds [delay_ms] -> RESULT line
  BODY="$T/body" DELAY_MS=${3:-} $(pinned "$LOAD_CPUS") wrk -t2 -c64 -d"$2s" -s "$ROOT/bench/wrk.lua" "http://127.0.0.1:$1$INGEST_Q" | grep '^RESULT'
}

# /ingest of $T/body (OHA_BODY) at a fixed RATE over 64 connections with
# oha (open loop, latency corrected): a RESULT line with wrk_run's fields.
oha_run() { # port seconds rate -> RESULT line
  $(pinned "$LOAD_CPUS") timeout $(($2 + 30)) "$OHA" --no-tui --output-format json -z "$2s" -c 64 -q "$3" \
    --latency-correction -m POST -T binary/octet-stream -D "${OHA_BODY:-$T/body}" \
    "http://127.0.0.1:$1$INGEST_Q" >"$T/oha.json" 2>&1 || true
  python3 - "$T/oha.json" 2>/dev/null <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
s, p = r["summary"], r["latencyPercentiles"]
codes = r.get("statusCodeDistribution", {})
errors = sum(r.get("errorDistribution", {}).values()) + sum(n for c, n in codes.items() if not c.startswith("2"))
reqs = sum(codes.values())
print(f"RESULT reqs={reqs} secs={s['total']:.3f} rps={s['requestsPerSec']:.1f} "
      f"p50_ms={p['p50'] * 1000:.3f} p99_ms={p['p99'] * 1000:.3f} errors={errors}")
PY
}

field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p"; } # name, on a wrk RESULT line
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
