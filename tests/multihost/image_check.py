"""Runs the built image the way a container runtime would, minus the
runtime (image.sh says why): the image's ENTRYPOINT + CMD as its USER with
its Env, chrooted into its root filesystem, in this network namespace.

    python image_check.py ROOTFS IMAGE.json PPROF

Checks: the process runs as the image's non-root user; the default config
(/etc/pyroscope-relay/config.alloy) loads and listens on 0.0.0.0:9999;
the image's HEALTHCHECK command (curl /-/ready, run in the image as its
user) passes; a profile sent to port 9999 reaches the Pyroscope server
named by PYROSCOPE_URL with the same bytes; the volume
/var/lib/pyroscope-relay is writable by that user; SIGTERM exits 0."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

E2E = Path(__file__).resolve().parents[1] / "e2e"
sys.path.insert(0, str(E2E))

from e2elib.backend import Backend  # noqa: E402
from e2elib.relay import http  # noqa: E402


def main():
    root, image_json, pprof = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    config = json.loads(image_json.read_text())["Docker"]["config"]
    user = config["User"]
    assert user and not user.startswith("0"), f"the image runs as root: {user!r}"
    env = dict(e.split("=", 1) for e in config["Env"])
    backend = Backend("pyroscope").start()
    env["PYROSCOPE_URL"] = f"http://127.0.0.1:{backend.port}"
    argv = config["Entrypoint"] + config["Cmd"]

    def in_image(cmd, **kw):
        # A private /proc and /dev for the image (ip netns exec gave this
        # process its own mount namespace, so nothing leaks out).
        return subprocess.Popen(["chroot", f"--userspec={user}", str(root), *cmd],
                                env=env, **kw)

    for fs, target in (("proc", "proc"), ("devtmpfs", "dev")):
        subprocess.run(["mount", "-t", fs, fs, str(root / target)], check=True)
    log = open(root.parent / "relay-in-image.log", "wb")
    relay = in_image(argv, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert relay.poll() is None, f"the image's command exited {relay.returncode}"
            try:
                if http("GET", "http://127.0.0.1:12345/-/ready", timeout=2)[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "not ready after 30 s"
            time.sleep(0.1)
        status = Path(f"/proc/{relay.pid}/status").read_text()
        uid = next(l.split()[1] for l in status.splitlines() if l.startswith("Uid:"))
        assert uid == user.split(":")[0], f"runs as uid {uid}, the image says {user}"
        print(f"   the image's command runs as uid {uid}: {' '.join(argv)}")

        test = config["Healthcheck"]["Test"]
        assert test[0] == "CMD", test
        check = in_image(test[1:])
        assert check.wait(10) == 0, "the image's HEALTHCHECK failed"
        print(f"   HEALTHCHECK passed: {' '.join(test[1:])}")

        body = pprof.read_bytes()
        req = urllib.request.Request(
            "http://127.0.0.1:9999/ingest?name=image.cpu%7Bfrom%3Dcontainer%7D&format=pprof",
            data=body, headers={"Content-Type": "binary/octet-stream"}, method="POST")
        with urllib.request.urlopen(req, timeout=30) as resp:
            assert resp.status == 200, resp.status
        got = backend.wait_for(lambda s: s, timeout=10, what="the profile")
        assert got[0].body == body and got[0].name_labels.get("from") == "container", got[0]
        print("   a profile sent to :9999 reached PYROSCOPE_URL, bytes unchanged")

        probe = in_image(["sh", "-c", "touch /var/lib/pyroscope-relay/.w && rm /var/lib/pyroscope-relay/.w"])
        assert probe.wait(10) == 0, "the image's user cannot write its volume"
        print("   /var/lib/pyroscope-relay is writable by the image's user")

        relay.send_signal(signal.SIGTERM)
        assert relay.wait(45) == 0, f"SIGTERM: exit {relay.returncode}"
        print("   SIGTERM: exited 0")
    finally:
        if relay.poll() is None:
            relay.kill()
        backend.stop()
        for target in ("dev", "proc"):
            subprocess.run(["umount", "-l", str(root / target)])
        log.close()
        if sys.exc_info()[0] is not None:
            print((root.parent / "relay-in-image.log").read_text(errors="replace")[-4000:])
    print("image: passed")


if __name__ == "__main__":
    main()
