#!/usr/bin/env bash
# Installs what tests/multihost and the manifest checks need on a fresh
# Debian machine: iproute2 (ip netns), nftables (packet loss, partition),
# haproxy, and
# tests/multihost/.venv (requirements.txt: kubectl with kustomize,
# kubernetes-validate). Idempotent.
set -euo pipefail
cd "$(dirname "$0")"
export PIP_DISABLE_PIP_VERSION_CHECK=1
missing=()
command -v ip >/dev/null && command -v tc >/dev/null || missing+=(iproute2)
command -v haproxy >/dev/null || missing+=(haproxy)
command -v nft >/dev/null || missing+=(nftables)
if [ ${#missing[@]} -gt 0 ]; then
  echo "-- installing ${missing[*]} from Debian"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
want=$(sha256sum requirements.txt | cut -d' ' -f1)
if [ "$(cat .venv/.stamp 2>/dev/null)" != "$want" ]; then
  echo "-- creating tests/multihost/.venv"
  rm -rf .venv
  python3 -m venv .venv
  .venv/bin/pip install --no-cache-dir -q -r requirements.txt
  echo "$want" > .venv/.stamp
fi
echo "-- $(haproxy -v | head -1)"
echo "-- $(.venv/bin/kubectl version --client | tr '\n' ' ')"
