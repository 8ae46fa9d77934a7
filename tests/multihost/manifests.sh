#!/usr/bin/env bash
# Checks everything under deploy/ that can be checked without a cluster:
# - each kustomize overlay builds (`kubectl kustomize`) and every object it
#   produces validates against the Kubernetes schemas (kubernetes-validate,
#   --strict: unknown fields are errors);
# - the overlays' invariants the docs promise (probes, preStop, grace
#   period, PVC per replica, selectors that select the pods);
# - every .alloy config shipped passes `pyroscope-relay check`;
# - the HAProxy config passes `haproxy -c`; the systemd unit passes
#   `systemd-analyze verify` where systemd is installed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/relay-bin.sh"
venv=$here/.venv/bin
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "manifests: $*" >&2; exit 1; }

for overlay in "$repo"/deploy/kubernetes/overlays/*/; do
  name=$(basename "$overlay")
  "$venv/kubectl" kustomize "$overlay" > "$tmp/$name.yaml" || fail "$name does not build"
  "$venv/kubernetes-validate" --strict --quiet "$tmp/$name.yaml" || fail "$name: schema errors above"
  "$venv/python" "$here/overlay_checks.py" "$name" "$tmp/$name.yaml" || fail "$name: checks above"
  echo "-- overlay $name: $(grep -c '^kind:' "$tmp/$name.yaml") objects, valid"
done

for cfg in "$repo"/deploy/container/config.alloy "$repo"/deploy/kubernetes/overlays/*/config.alloy; do
  rel=${cfg#"$repo"/}
  "$relay" check "$cfg" || fail "$rel does not pass pyroscope-relay check"
  echo "-- $rel: pyroscope-relay check passed"
done

haproxy -c -q -f "$repo/deploy/haproxy/haproxy.cfg" || fail "haproxy.cfg is not valid"
echo "-- deploy/haproxy/haproxy.cfg: haproxy -c passed"
if command -v systemd-analyze >/dev/null; then
  # The unit names /usr/local/bin/pyroscope-relay; point it at the build.
  sed "s|/usr/local/bin/pyroscope-relay|$relay|" "$repo/deploy/systemd/pyroscope-relay.service" \
    > "$tmp/pyroscope-relay.service"
  systemd-analyze verify "$tmp/pyroscope-relay.service" || fail "the systemd unit does not verify"
  echo "-- deploy/systemd/pyroscope-relay.service: systemd-analyze verify passed"
else
  echo "-- systemd-analyze not installed: the unit was not verified"
fi
