#!/usr/bin/env bash
# Browser tests of the web UI (tests/ui/ui.test.mjs): installs Debian's
# Chromium (/usr/bin/chromium) and the pinned playwright-core from
# package-lock.json if they are missing, then runs the tests against the
# debug binary (`cargo build` first, or set E2E_RELAY_BIN). Screenshots of
# every page land in ${CARGO_TARGET_DIR:-target}/ui-screenshots/.
set -euo pipefail
cd "$(dirname "$0")"
export npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false

fail() { echo "tests/ui/run.sh: $*" >&2; exit 1; }
apt_install() { # PACKAGES...
  command -v apt-get >/dev/null || return 1
  echo "-- installing $* from Debian"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

[ -x /usr/bin/chromium ] || apt_install chromium || fail "/usr/bin/chromium not found (apt-get install chromium)"
command -v node >/dev/null && command -v npm >/dev/null || apt_install nodejs npm \
  || fail "node/npm not found (install Node.js 20 and npm)"
command -v curl >/dev/null || apt_install curl || fail "curl not found"

want=$(cat package.json package-lock.json | sha256sum | cut -d' ' -f1)
if [ "$(cat node_modules/.ui-stamp 2>/dev/null)" != "$want" ]; then
  echo "-- npm ci in tests/ui"
  npm ci --no-audit --no-fund --loglevel=error || fail "npm ci failed"
  echo "$want" > node_modules/.ui-stamp
fi
node --test ui.test.mjs
