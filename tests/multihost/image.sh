#!/usr/bin/env bash
# Builds the container image from deploy/Dockerfile and runs it as far as
# this machine allows.
#
# Building: no base image can be pulled here, so the runtime base is Debian
# bookworm made with debootstrap and imported with `podman import`, and the
# relay binary comes from this checkout's build through a named build
# context that stands in for the Dockerfile's `build` stage (the Rust stage
# itself needs the public rust image). Every other line of the Dockerfile
# runs as users get it: apt-get, the user, the paths, the config, the
# entrypoint and command. buildah runs the RUN steps with chroot isolation.
#
# Running: podman cannot start containers on this machine (crun cannot set
# rlimits without CAP_SYS_RESOURCE, and the cgroup hierarchy is hybrid), so
# image_check.py runs the image's own ENTRYPOINT + CMD, as the image's USER,
# on the image's root filesystem (buildah mount + chroot), in a network
# namespace of its own: same files, user, paths and start command.
#
#   bash tests/multihost/image.sh          # ~2 minutes with a fresh debootstrap
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/relay-bin.sh"
[ "$(id -u)" = 0 ] || { echo "image.sh needs root" >&2; exit 1; }
for tool in buildah podman debootstrap; do
  command -v $tool >/dev/null || missing="${missing:-} $tool"
done
if [ -n "${missing:-}" ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi

tag=prl$$
work=$(mktemp -d)
ctr=
cleanup() {
  [ -n "$ctr" ] && { buildah umount "$ctr" >/dev/null 2>&1 || true; buildah rm "$ctr" >/dev/null 2>&1 || true; }
  ip netns del "$tag-img" 2>/dev/null || true
  podman rmi -f "localhost/$tag-relay:test" "localhost/$tag-base:bookworm" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "-- debootstrap: a Debian bookworm base"
timeout 600 debootstrap --variant=minbase bookworm "$work/rootfs" > "$work/debootstrap.log" 2>&1 \
  || { tail -20 "$work/debootstrap.log"; exit 1; }
tar -C "$work/rootfs" -c . | podman import - "localhost/$tag-base:bookworm" >/dev/null 2>&1

echo "-- buildah: deploy/Dockerfile, runtime stage on that base"
mkdir -p "$work/binary/out"
cp "$relay" "$work/binary/out/pyroscope-relay"
timeout 600 buildah bud --isolation chroot --format docker --ulimit nofile=1024:1024 \
  -f "$repo/deploy/Dockerfile" --build-arg "RUNTIME_IMAGE=localhost/$tag-base:bookworm" \
  --build-context "build=$work/binary" -t "localhost/$tag-relay:test" "$repo" > "$work/build.log" 2>&1 \
  || { tail -30 "$work/build.log"; exit 1; }

ctr=$(buildah from "localhost/$tag-relay:test")
root=$(buildah mount "$ctr")
buildah inspect --type image "localhost/$tag-relay:test" > "$work/image.json"
ip netns add "$tag-img"
ip -n "$tag-img" link set lo up
ip netns exec "$tag-img" "$repo/tests/e2e/.venv-test/bin/python" "$here/image_check.py" \
  "$root" "$work/image.json" "$repo/examples/cpu.pprof"
