# Sourced by the tests/multihost scripts: sets $repo and $relay, the binary
# under test: MH_RELAY_BIN, else $CARGO_TARGET_DIR/debug/pyroscope-relay
# (default target/ in the repository).
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
target=${CARGO_TARGET_DIR:-$repo/target}
case $target in /*) ;; *) target=$repo/$target ;; esac
relay=${MH_RELAY_BIN:-$target/debug/pyroscope-relay}
