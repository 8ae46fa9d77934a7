"""What docs/deploy.md promises of an overlay's output, checked on the
objects `kubectl kustomize` built (schemas are kubernetes-validate's job):

    python overlay_checks.py OVERLAY-NAME BUILT.yaml
"""

import re
import sys

import yaml

CONFIG_DIR = "/etc/pyroscope-relay"
STATE_DIR = "/var/lib/pyroscope-relay"


def main():
    name, path = sys.argv[1], sys.argv[2]
    objs = [o for o in yaml.safe_load_all(open(path)) if o]
    by_kind = {}
    for o in objs:
        by_kind.setdefault(o["kind"], []).append(o)
    problems = []

    def need(cond, what):
        if not cond:
            problems.append(what)

    workloads = by_kind.get("Deployment", []) + by_kind.get("StatefulSet", [])
    need(len(workloads) == 1, f"one workload expected, found {len(workloads)}")
    w = workloads[0]
    want_kind = {"stateless": "Deployment", "queue": "StatefulSet"}.get(name)
    need(want_kind is None or w["kind"] == want_kind, f"{name} should run a {want_kind}")
    pod = w["spec"]["template"]
    labels = pod["metadata"]["labels"]
    spec = pod["spec"]
    c = spec["containers"][0]
    args = c["args"]

    def selects(selector):
        return selector and all(labels.get(k) == v for k, v in selector.items())

    need(selects(w["spec"]["selector"]["matchLabels"]), "the workload's selector misses its pods")
    for svc in by_kind.get("Service", []):
        need(selects(svc["spec"].get("selector")), f"Service {svc['metadata']['name']} selects no pod")
    for pdb in by_kind.get("PodDisruptionBudget", []):
        need(selects(pdb["spec"]["selector"]["matchLabels"]), "the PDB selects no pod")
    for hpa in by_kind.get("HorizontalPodAutoscaler", []):
        ref = hpa["spec"]["scaleTargetRef"]
        need((ref["kind"], ref["name"]) == (w["kind"], w["metadata"]["name"]),
             "the HPA scales something else")
    need(c["readinessProbe"]["httpGet"]["path"] == "/-/ready", "readiness is not /-/ready")
    need(c["livenessProbe"]["httpGet"]["path"] == "/-/healthy", "liveness is not /-/healthy")
    pre = c["lifecycle"]["preStop"]["exec"]["command"]
    need(pre[0] == "sleep", "preStop is not a sleep")
    grace = spec["terminationGracePeriodSeconds"]
    # preStop, then receive_http's graceful_shutdown_timeout (30s).
    need(grace >= int(pre[1]) + 30, f"grace {grace}s < preStop {pre[1]}s + 30s of draining")
    need(spec["securityContext"]["runAsNonRoot"] is True, "pods may run as root")
    need(args[0] == "run" and args[1].startswith(CONFIG_DIR + "/"), f"config path: {args[:2]}")
    need(f"--storage.path={STATE_DIR}" in args, "--storage.path is not the data volume")
    need("--server.http.listen-addr=0.0.0.0:12345" in args, "the admin port is not reachable")
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    need(mounts.get(CONFIG_DIR) == "config", "the config is not mounted")
    need(not any(m.get("subPath") for m in c["volumeMounts"]),
         "a subPath mount never sees ConfigMap updates")
    cms = {o["metadata"]["name"] for o in by_kind.get("ConfigMap", [])}
    vols = {v["name"]: v for v in spec.get("volumes", [])}
    need(vols["config"]["configMap"]["name"] in cms, "the config volume names no ConfigMap")
    need(all("config.alloy" in o["data"] for o in by_kind.get("ConfigMap", [])), "no config.alloy")
    ann = pod["metadata"].get("annotations", {})
    need(ann.get("prometheus.io/scrape") == "true" and ann.get("prometheus.io/port") == "12345",
         "no Prometheus scrape annotations on the pods")
    data = mounts.get(STATE_DIR)
    if w["kind"] == "StatefulSet":
        claims = [t["metadata"]["name"] for t in w["spec"].get("volumeClaimTemplates", [])]
        need(data in claims, "the data volume is not a PersistentVolumeClaim per replica")
        policy = w["spec"].get("persistentVolumeClaimRetentionPolicy", {})
        need(policy.get("whenScaled") == "Retain", "a scale-down would delete a backlog")
        cfg = next(iter(by_kind["ConfigMap"]))["data"]["config.alloy"]
        need("queue {" in cfg, "the queue overlay's config has no queue block")
        drain = re.search(r'drain_timeout\s*=\s*"(\d+)s"', cfg)
        need(drain is not None, "the queue does not send its backlog before a scale-down removes it")
        if drain:
            need(grace >= int(pre[1]) + 30 + int(drain[1]),
                 f"grace {grace}s < preStop {pre[1]}s + 30s + drain_timeout {drain[1]}s")
    else:
        need(data in vols, "no data volume")

    for p in problems:
        print(f"{name}: {p}")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
