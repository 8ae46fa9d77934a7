#!/usr/bin/env bash
# Runs every cargo-fuzz target (or those named) for SECONDS each, one after
# another, on a corpus seeded by make_seeds.py; see docs/fuzzing.md.
#
#   fuzz/run.sh [SECONDS] [TARGET...]     default: 900 s (15 min) per target
#
# Installs the nightly toolchain and cargo-fuzz when they are missing.
# Prints executions, coverage and corpus size per target; exits non-zero
# if any target found a crash, a leak, a timeout or ran out of memory (the
# input is saved under fuzz/artifacts/<target>/).
#
# FUZZ_SANITIZER (default none): the crate forbids unsafe code, so
# AddressSanitizer adds little but costs most of the speed; set it to
# `address` to run the same targets under ASan.
set -euo pipefail
cd "$(dirname "$0")"

seconds=${1:-900}
shift || true
all_targets=(config labelset query rpc_framing push_decode gzip segment_log archive_meta)
# `storage_model` is not a cargo-fuzz target: the segment log's model-based
# property test (src/storage/model_tests.rs), run with 50 random cases per
# second of SECONDS after the fuzz targets.
targets=()
run_model=0
for name in "$@"; do
  if [ "$name" = storage_model ]; then run_model=1; else targets+=("$name"); fi
done
if [ $# -eq 0 ]; then
  targets=("${all_targets[@]}")
  run_model=1
fi
sanitizer=${FUZZ_SANITIZER:-none}

rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

echo "== building the fuzz targets (nightly, sanitizer: $sanitizer)"
mkdir -p logs
if ! cargo +nightly fuzz build -s "$sanitizer" >logs/build.log 2>&1; then
  tail -40 logs/build.log >&2
  exit 1
fi

echo "== seeding corpora"
python3 make_seeds.py corpus

# The archive targets open scratch directories; keep them in memory.
scratch=$(mktemp -d "${FUZZ_TMPDIR:-/dev/shm}/pyroscope-relay-fuzz.XXXXXX" 2>/dev/null || mktemp -d)
trap 'rm -rf "$scratch"' EXIT

failed=()
for target in "${targets[@]}"; do
  mkdir -p "artifacts/$target"
  log="logs/$target.log"
  echo "== $target for ${seconds}s"
  status=0
  TMPDIR=$scratch cargo +nightly fuzz run -s "$sanitizer" "$target" "corpus/$target" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    >"$log" 2>&1 || status=$?
  runs=$(grep -oE '^Done [0-9]+ runs' "$log" | grep -oE '[0-9]+' || echo '?')
  cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+/[0-9a-zA-Z]+' "$log" | tail -1 || true)
  rate=$(grep -oE 'stat::average_exec_per_sec: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo '?')
  echo "   runs: $runs  exec/s: $rate  $cov"
  if [ "$status" -ne 0 ]; then
    echo "   FAILED (exit $status); see fuzz/$log and fuzz/artifacts/$target/" >&2
    grep -m1 -A12 -E 'panicked at|ERROR: libFuzzer' "$log" >&2 || tail -20 "$log" >&2
    failed+=("$target")
  fi
done

if [ "$run_model" = 1 ]; then
  cases=$((seconds * 50))
  echo "== storage_model: $cases cases of the segment log's model test"
  if ! (cd .. && PROPTEST_CASES=$cases cargo test --quiet --lib storage::model_tests \
        >fuzz/logs/storage_model.log 2>&1); then
    echo "   FAILED; see fuzz/logs/storage_model.log (the shrunk case is in it)" >&2
    grep -m1 -A40 'minimal failing input' logs/storage_model.log >&2 || tail -40 logs/storage_model.log >&2
    failed+=(storage_model)
  fi
fi

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz targets with findings: ${failed[*]}" >&2
  exit 1
fi
echo "== all fuzz targets ran clean"
