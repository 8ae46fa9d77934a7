#!/usr/bin/env bash
# Several hosts on one machine: three relay replicas behind HAProxy, real
# agents and clients, a backend on its own host (multihost.py says what is
# checked). Needs root (network namespaces), iproute2 and haproxy (setup.sh),
# the e2e clients (tests/e2e/setup.sh) and a built relay.
#
#   bash tests/multihost/run.sh                      # every scenario, ~3 minutes
#   bash tests/multihost/run.sh --only kill9         # one (kill9, rolling, faults, kill9_queue, partition_queue, scale_down_queue)
#   bash tests/multihost/run.sh --soak 600           # repeat them for ~600 s
#
# The relay is $CARGO_TARGET_DIR/debug/pyroscope-relay (default target/), or
# MH_RELAY_BIN. Figures go to stdout and to $MH_OUT (default
# target-independent tests/multihost/last-run.json, not committed).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/relay-bin.sh"
only=kill9,rolling,faults,kill9_queue,partition_queue,scale_down_queue
soak=0
while [ $# -gt 0 ]; do
  case $1 in
    --only) only=$2; shift 2 ;;
    --soak) soak=$2; shift 2 ;;
    *) echo "usage: run.sh [--only LIST] [--soak SECONDS]" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "tests/multihost needs root (network namespaces)" >&2; exit 1; }
[ -x "$relay" ] || { echo "$relay not found: run cargo build first" >&2; exit 1; }
out=${MH_OUT:-$here/last-run.json}

# A prefix of our own: several runs (or other users of `ip netns`) never meet.
export MH_PREFIX=prlmh$$
work=$(mktemp -d)
keep=no
cleanup() {
  bash "$here/net.sh" down "$MH_PREFIX" || true
  if [ "$keep" = yes ]; then echo "multihost: logs kept in $work/run" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
cp "$relay" "$work/pyroscope-relay"   # a rebuild meanwhile cannot swap it
bash "$here/net.sh" up "$MH_PREFIX"

run_once() { # OUT
  # The driver runs in the backend's namespace: the backend is in-process.
  timeout 900 ip netns exec "$MH_PREFIX-be" \
    "$repo/tests/e2e/.venv-test/bin/python" "$here/multihost.py" \
    --relay "$work/pyroscope-relay" --workdir "$work/run" --out "$1" --only "$only"
}
show_logs() {
  for f in "$work"/run/r*/relay.log "$work"/run/haproxy.log; do
    [ -f "$f" ] && { echo "===== $f (tail)"; tail -n 40 "$f"; }
  done
  for f in "$work"/run/*/*.out; do
    [ -f "$f" ] && { echo "===== $f (tail)"; tail -n 15 "$f"; }
  done
}

end=$((SECONDS + soak)); round=0
while :; do
  round=$((round + 1))
  rm -rf "$work/run"; mkdir -p "$work/run"
  if ! run_once "$out"; then keep=yes; show_logs; echo "multihost: round $round failed" >&2; exit 1; fi
  [ "$SECONDS" -lt "$end" ] || break
  echo "== soak: round $round done, $((end - SECONDS)) s left"
done
echo "multihost: $round round(s) passed; figures in $out"
