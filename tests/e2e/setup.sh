#!/usr/bin/env bash
# Installs what the end-to-end suite needs, pinned, into ignored directories
# under tests/e2e/, and generates the protobuf code from the repository's
# proto/. Idempotent: a part whose pins (or protos) did not change is kept.
#
#   .venv-test      pytest, grpcio, grpcio-tools, protobuf   (requirements/test.txt)
#   .venv-py14      pyroscope-io 1.4.0                       (requirements/py14.txt)
#   .venv-py08      pyroscope-io 0.8.16                      (requirements/py08.txt)
#   node/rpc        connect-es 2.2.0, @bufbuild/*, @grpc/grpc-js 1.14.7 (package-lock.json)
#   node/agent06    @pyroscope/nodejs 0.6.4
#   node/agent04    @pyroscope/nodejs 0.4.13
#   gen/py          push.v1 / types.v1 / debuginfo.v1alpha1 Python code (grpc_tools.protoc)
#   node/rpc/gen    the same in ES code (buf generate + protoc-gen-es)
#
# Needs python3 (3.11, with venv), node 20 and npm; uses PyPI and npm only.
set -euo pipefail
cd "$(dirname "$0")"
E2E=$PWD
REPO=$(cd ../.. && pwd)
PY=${PYTHON:-python3}
export PIP_DISABLE_PIP_VERSION_CHECK=1 npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false

fail() { echo "tests/e2e/setup.sh: $*" >&2; exit 1; }
step() { echo "-- $*"; }
hash_of() { cat "$@" | sha256sum | cut -d' ' -f1; }

apt_install() { # PACKAGES...: the fallback for a machine without them
  command -v apt-get >/dev/null || return 1
  step "installing $* from Debian"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}
command -v "$PY" >/dev/null || apt_install python3 python3-venv || fail "$PY not found (install Python 3.11)"
command -v node >/dev/null && command -v npm >/dev/null || apt_install nodejs npm \
  || fail "node/npm not found (install Node.js 20 and npm)"
pyver=$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
[ "$pyver" = 3.11 ] || echo "warning: $PY is Python $pyver; the pins were made on 3.11" >&2
# Debian's own python3 ships venv separately.
"$PY" -c 'import ensurepip, venv' 2>/dev/null || apt_install python3-venv \
  || fail "$PY cannot make venvs (no ensurepip)"

venv() { # NAME: .venv-NAME from requirements/NAME.txt
  local dir=".venv-$1" req="requirements/$1.txt" want
  want=$(hash_of "$req")
  if [ "$(cat "$dir/.e2e-stamp" 2>/dev/null)" = "$want" ]; then
    step "$dir up to date"
    return
  fi
  step "creating $dir from $req"
  rm -rf "$dir"
  "$PY" -m venv "$dir"
  "$dir/bin/pip" install --no-cache-dir -q -r "$req" || fail "pip install -r $req failed"
  echo "$want" > "$dir/.e2e-stamp"
}

node_dir() { # DIR: npm ci from its package-lock.json
  local dir="node/$1" want
  want=$(hash_of "$dir/package.json" "$dir/package-lock.json")
  if [ "$(cat "$dir/node_modules/.e2e-stamp" 2>/dev/null)" = "$want" ]; then
    step "$dir up to date"
    return
  fi
  step "npm ci in $dir"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) || fail "npm ci in $dir failed"
  echo "$want" > "$dir/node_modules/.e2e-stamp"
}

venv test
venv py14
venv py08
node_dir rpc
node_dir agent06
node_dir agent04

protos=$(find "$REPO/proto" -name '*.proto' | sort)
# shellcheck disable=SC2086
want=$(hash_of $protos node/rpc/buf.gen.yaml requirements/test.txt node/rpc/package-lock.json)
if [ "$(cat gen/.e2e-stamp 2>/dev/null)" = "$want" ] && [ -d node/rpc/gen ]; then
  step "generated protobuf code up to date"
else
  step "generating protobuf code (grpc_tools.protoc, buf + protoc-gen-es)"
  rm -rf gen node/rpc/gen
  mkdir -p gen/py
  .venv-test/bin/python -m grpc_tools.protoc -I "$REPO/proto" \
    --python_out=gen/py --grpc_python_out=gen/py push/v1/push.proto types/v1/types.proto \
    debuginfo/v1alpha1/debuginfo.proto \
    || fail "grpc_tools.protoc failed"
  (cd node/rpc && ./node_modules/.bin/buf generate) || fail "buf generate failed"
  echo "$want" > gen/.e2e-stamp
fi

step "checking the installed clients"
check() { # WHAT EXPECTED ACTUAL
  [ "$2" = "$3" ] || fail "$1: expected $2, found $3"
  echo "   $1 $3"
}
pyv() { "$1/bin/python" -c "import importlib.metadata as m; print(m.version('$2'))"; }
nodev() { node -e "console.log(require('$1/node_modules/$2/package.json').version)"; }
check pyroscope-io 1.4.0 "$(pyv .venv-py14 pyroscope-io)"
check pyroscope-io 0.8.16 "$(pyv .venv-py08 pyroscope-io)"
check grpcio 1.85.3 "$(pyv .venv-test grpcio)"
check pytest 9.2.0 "$(pyv .venv-test pytest)"
check @pyroscope/nodejs 0.6.4 "$(nodev "$E2E/node/agent06" @pyroscope/nodejs)"
check @pyroscope/nodejs 0.4.13 "$(nodev "$E2E/node/agent04" @pyroscope/nodejs)"
check @connectrpc/connect-node 2.2.0 "$(nodev "$E2E/node/rpc" @connectrpc/connect-node)"
check @grpc/grpc-js 1.14.7 "$(nodev "$E2E/node/rpc" @grpc/grpc-js)"
.venv-py14/bin/python -c 'import pyroscope' || fail "pyroscope-io 1.4.0 does not import"
.venv-py08/bin/python -c 'import pyroscope' || fail "pyroscope-io 0.8.16 does not import"
(cd node/rpc && node -e "require('./gen/push/v1/push_pb.js').PusherService; require('./gen/debuginfo/v1alpha1/debuginfo_pb.js').DebuginfoService") \
  || fail "generated ES code does not load"
(cd "$E2E" && .venv-test/bin/python -c 'from e2elib import protos; protos.PushRequest(); protos.debuginfo_pb2.FileMetadata()') \
  || fail "generated Python code does not load"
echo "-- tests/e2e ready"
