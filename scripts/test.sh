#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs what the tests need,
# checks formatting and lints, then runs unit, integration and end-to-end tests.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== toolchain"
cargo --version
rustup component list --installed 2>/dev/null | grep -E 'rustfmt|clippy' || \
  rustup component add rustfmt clippy

# jemalloc (the allocator) is built from C with make.
if ! command -v make >/dev/null && command -v apt-get >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq make >/dev/null
fi

echo "== the repository stands alone"
# Tests read fixtures from tests/fixtures, never from a folder beside the clone.
if grep -rnI --exclude-dir=target --exclude-dir=.git --exclude-dir=node_modules \
     --exclude-dir='.venv*' -e '\.\./shared' .; then
  echo "a path outside the repository (above) would fail in a fresh clone" >&2
  exit 1
fi

echo "== format and lints"
cargo fmt --check
cargo clippy --all-targets -- -D warnings

echo "== unit and integration tests"
cargo test --no-fail-fast

echo "== fuzz targets, 15 s each, so a regression in a parser is caught (docs/fuzzing.md)"
cargo fmt --check --manifest-path fuzz/Cargo.toml
bash fuzz/run.sh 15

echo "== README quickstart, exactly as written"
bash scripts/quickstart-test.sh

echo "== end-to-end tests: real clients through the relay binary (tests/e2e)"
cargo build
bash tests/e2e/setup.sh
tests/e2e/.venv-test/bin/python -m pytest tests/e2e

echo "== web UI in a real browser: Playwright driving Debian's Chromium (tests/ui)"
bash tests/ui/run.sh
echo "== deployment: manifests, and three replicas behind HAProxy on namespaced hosts (tests/multihost)"
bash tests/multihost/setup.sh
bash tests/multihost/manifests.sh
bash tests/multihost/run.sh
bash tests/multihost/image.sh
