#!/usr/bin/env bash
# Runs README.md's quickstart block exactly as written, in a scratch storage
# directory, and fails if any command in it fails.
set -euo pipefail
cd "$(dirname "$0")/.."
block=$(sed -n '/<!-- quickstart:begin -->/,/<!-- quickstart:end -->/p' README.md | sed '1,2d;$d' | sed '$d')
[ -n "$block" ] || { echo "no quickstart block in README.md" >&2; exit 1; }
rm -rf data-relay
out=$(bash -euo pipefail -c "set -m; $block" 2>&1) || { echo "$out"; echo "quickstart failed" >&2; exit 1; }
echo "$out"
grep -q "the same bytes came back" <<<"$out"
grep -q "local-1" <<<"$out"
rm -rf data-relay /tmp/quickstart.pprof
echo "quickstart: 1 passed, 0 failed"
