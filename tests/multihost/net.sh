#!/usr/bin/env bash
# Builds or removes the test's hosts: network namespaces on one bridge.
#
#   net.sh up PREFIX     namespaces PREFIX-{lb,r1,r2,r3,be,cl} each with eth0 on
#                        10.203.0.0/24, plugged into bridge br0 in PREFIX-sw
#   net.sh down PREFIX   ends the processes left in them and removes them
#
# The addresses exist only inside these namespaces: no route leads out of
# them, so no packet of the test can leave the machine.
set -euo pipefail
cmd=$1 prefix=$2
hosts=(lb:10 r1:11 r2:12 r3:13 be:20 cl:30)

up() {
  ip netns add "$prefix-sw"
  ip -n "$prefix-sw" link set lo up
  ip -n "$prefix-sw" link add br0 type bridge
  ip -n "$prefix-sw" link set br0 up
  for h in "${hosts[@]}"; do
    local name=${h%%:*} n=${h##*:}
    ip netns add "$prefix-$name"
    ip -n "$prefix-$name" link set lo up
    ip link add "to-$name" netns "$prefix-sw" type veth peer name eth0 netns "$prefix-$name"
    ip -n "$prefix-sw" link set "to-$name" master br0 up
    ip -n "$prefix-$name" addr add "10.203.0.$n/24" dev eth0
    ip -n "$prefix-$name" link set eth0 up
  done
}

down() {
  local ns pids
  for ns in $(ip netns list | awk '{print $1}' | grep -E "^$prefix-(sw|lb|r[0-9]|be|cl)$"); do
    pids=$(ip netns pids "$ns" || true)
    [ -n "$pids" ] && kill -9 $pids 2>/dev/null || true
    ip netns del "$ns" || true
  done
}

case $cmd in
  up) down; up ;;
  down) down ;;
  *) echo "usage: net.sh up|down PREFIX" >&2; exit 2 ;;
esac
