"""The budget: sums per pod, the Minikube system pods, the stack's targets and the node fit checks."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import yaml

from scripts.resource_budget.charts import monitoring
from scripts.resource_budget.containers import Container
from scripts.resource_budget.manifests import manifest_containers
from scripts.resource_budget.paths import ROOT

MONITORING_MEMORY_LIMIT_TARGET_MI = 1536.0  # 1.5 GiB
MONITORING_CPU_REQUEST_TARGET_M = 600.0  # 0.6 CPU

# Pods Minikube runs on its own node, with the requests/limits of their upstream manifests: the kubeadm static pods
# (kube-apiserver 250m, kube-controller-manager 200m, kube-scheduler 100m, etcd 100m/100Mi), CoreDNS
# (100m/70Mi, memory limit 170Mi), the metrics-server addon (100m/200Mi) and the CNI kindnet (100m/50Mi requests
# and limits): minikube v1.38.1 picks kindnet for a KIC driver (docker, podman) with a runtime other than docker,
# i.e. the lab's docker + containerd (pkg/minikube/cni/cni.go chooseDefault; the figures in
# pkg/minikube/cni/kindnet.go). kube-proxy and the storage provisioner set none. These are the manifests' figures,
# not read from a running cluster: check them with `kubectl describe node` on yours.
SYSTEM_PODS: dict[str, dict[str, dict[str, float]]] = {
    "kube-apiserver": {"requests": {"cpu": 250, "memory": 0}, "limits": {"cpu": 0, "memory": 0}},
    "kube-controller-manager": {"requests": {"cpu": 200, "memory": 0}, "limits": {"cpu": 0, "memory": 0}},
    "kube-scheduler": {"requests": {"cpu": 100, "memory": 0}, "limits": {"cpu": 0, "memory": 0}},
    "etcd": {"requests": {"cpu": 100, "memory": 100}, "limits": {"cpu": 0, "memory": 0}},
    "coredns": {"requests": {"cpu": 100, "memory": 70}, "limits": {"cpu": 0, "memory": 170}},
    "metrics-server": {"requests": {"cpu": 100, "memory": 200}, "limits": {"cpu": 0, "memory": 0}},
    "kindnet": {"requests": {"cpu": 100, "memory": 50}, "limits": {"cpu": 100, "memory": 50}},
}

# What no memory limit bounds on the node: the control plane's pods set requests only, and the node's own processes
# are no pods at all. The memory left beyond all limits is therefore an estimate of the margin, not a guarantee.
UNBOUNDED_MEMORY = ("kube-apiserver", "etcd", "kubelet", "containerd", "buildkitd")


def pod_sums(containers: list[Container]) -> dict[str, dict[str, float]]:
    """Sum per the scheduler's rule: each pod needs max(sum of its containers, its largest init container)."""
    pods: dict[tuple[str, str], list[Container]] = {}
    for c in containers:
        pods.setdefault((c.group, c.workload), []).append(c)
    total = {"requests": {"cpu": 0.0, "memory": 0.0}, "limits": {"cpu": 0.0, "memory": 0.0}}
    for members in pods.values():
        count = max(c.count for c in members)  # sidecars run beside the main container in each pod
        for kind in ("requests", "limits"):
            for res in ("cpu", "memory"):
                main = sum(getattr(c, kind)[res] for c in members if not c.init)
                init = max((getattr(c, kind)[res] for c in members if c.init), default=0.0)
                total[kind][res] += count * max(main, init)
    return total


def budget(rendered: Path) -> dict[str, Any]:
    mon = monitoring(rendered)
    # The API's namespace: the API, and Alertmanager's webhook receiver (rendered by the monitoring role).
    app = manifest_containers(
        "app",
        sorted((rendered / "app_deploy").glob("*.yaml"))
        + sorted((rendered / "monitoring" / "alert_receiver").glob("*.yaml")),
    )
    stress_files = (
        sorted((rendered / "stress_test").glob("*.yaml")) if (rendered / "stress_test").is_dir() else []
    )
    stress_variants = {p.stem: manifest_containers("stress", [p]) for p in stress_files}
    stress_sums = {k: pod_sums(v) for k, v in stress_variants.items()}
    biggest = max(stress_sums, key=lambda k: stress_sums[k]["requests"]["memory"], default=None)
    resources = yaml.safe_load((ROOT / "group_vars" / "all" / "resources.yml").read_text())
    node = {
        "cpu": float(resources["minikube_reset_cpus"]) * 1000,
        "memory": float(resources["minikube_reset_memory_mb"]),
    }
    system = {
        kind: {res: sum(p[kind][res] for p in SYSTEM_PODS.values()) for res in ("cpu", "memory")}
        for kind in ("requests", "limits")
    }
    sums = {"monitoring": pod_sums(mon), "app": pod_sums(app)}
    if biggest:
        sums[f"stress ({biggest})"] = stress_sums[biggest]
    sums["minikube system pods"] = system
    lab_total = {
        kind: {res: sum(s[kind][res] for s in sums.values()) for res in ("cpu", "memory")}
        for kind in ("requests", "limits")
    }
    checks = {
        "monitoring memory limits <= 1.5 GiB": sums["monitoring"]["limits"]["memory"]
        <= MONITORING_MEMORY_LIMIT_TARGET_MI,
        "monitoring CPU requests <= 0.6 CPU": sums["monitoring"]["requests"]["cpu"]
        <= MONITORING_CPU_REQUEST_TARGET_M,
        "all CPU requests fit the node": lab_total["requests"]["cpu"] <= node["cpu"],
        "all memory requests fit the node": lab_total["requests"]["memory"] <= node["memory"],
        "all memory limits fit the node": lab_total["limits"]["memory"] <= node["memory"],
    }
    return {
        "containers": [asdict(c) for c in mon + app + [c for v in stress_variants.values() for c in v]],
        "sums": sums,
        "stress_variants": stress_sums,
        "total": lab_total,
        "node": node,
        "checks": checks,
        "memory_margin_estimate": {
            "mib": node["memory"] - lab_total["limits"]["memory"],
            "excludes": list(UNBOUNDED_MEMORY),
        },
    }
